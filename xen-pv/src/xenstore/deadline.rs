//! Time for the xenstore client: the [`Clock`] its deadlines are measured
//! and slept on, and the [`Breaker`] that keeps a stalled daemon from
//! costing one timeout per operation.
//!
//! The [`crate::Hypervisor`] seam has no clock, and `SCHEDOP_poll`'s own
//! timeout is in Xen's system time, which is the guest's on x86 but not on
//! ARM (there the guest counts the virtual counter, offset from Xen's by an
//! amount it cannot read). So whoever builds the client says how to read
//! the time and how to sleep until a deadline in that time: a kernel passes
//! its clock and its one-shot timer's wait, the simulation (`xen_sim`'s
//! `SimXen::clock`) its virtual clock and a sleep in `SCHEDOP_poll` with the
//! deadline as the poll's timeout.
//!
//! Contract: [`Clock`] holds two plain function pointers, so a client that
//! holds one can live in a `static`. A sleep may end early (an event, a
//! spurious wake-up): the client looks at the ring and the time again. The
//! [`Breaker`] is a pure state machine over times it is given.
//!
//! Never: read the time or sleep other than through the two functions the
//! [`Clock`] was given.

use crate::abi::event_channel::Port;
use crate::event_channel::EventChannels;
use crate::hypervisor::{Hypervisor, XenError};

/// How long a request waits for its reply unless the client is told
/// otherwise: 2 s, far beyond what a working xenstored takes, short enough
/// that a stall costs the data path one noticeable pause and no more.
pub const DEFAULT_REQUEST_TIMEOUT_NS: u64 = 2_000_000_000;

/// How long after a timeout the client lets one request through to probe a
/// daemon that has sent nothing since (30 s): a daemon that lost the
/// request, and so will never send its late reply, cannot shut the client
/// out for good.
pub const STALLED_PROBE_INTERVAL_NS: u64 = 30_000_000_000;

/// Reads the time: Xen system time, nanoseconds, never going back.
pub type ReadTime<H> = fn(&H) -> u64;

/// Sleeps until one of the ports is pending or the time (as [`ReadTime`]
/// reads it) reaches the deadline, whichever comes first; may return
/// earlier. Leaves pending bits alone.
pub type SleepUntil<H> = fn(&EventChannels<'_, H>, &[Port], u64) -> Result<(), XenError>;

/// The time a xenstore client measures deadlines in, and how it sleeps
/// until one.
pub struct Clock<H: Hypervisor> {
    now: ReadTime<H>,
    sleep_until: SleepUntil<H>,
}

impl<H: Hypervisor> Clock<H> {
    /// A clock that reads the time with `now` and sleeps with
    /// `sleep_until`.
    pub const fn new(now: ReadTime<H>, sleep_until: SleepUntil<H>) -> Self {
        Self { now, sleep_until }
    }

    /// The time now (ns).
    pub fn now(&self, hypervisor: &H) -> u64 {
        (self.now)(hypervisor)
    }

    /// Sleeps until one of `ports` is pending or the time reaches
    /// `deadline`; may return earlier.
    pub fn sleep_until(&self, events: &EventChannels<'_, H>, ports: &[Port], deadline: u64) -> Result<(), XenError> {
        (self.sleep_until)(events, ports, deadline)
    }
}

/// Whether requests may go to the daemon: closed (they may) until one
/// times out, then open (they fail at once) until the daemon sends
/// anything, or until [`STALLED_PROBE_INTERVAL_NS`] has passed since the
/// last timeout (one request goes through as a probe; if it times out too,
/// the interval starts again).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    /// When the last request timed out, while no message has come since.
    tripped_at: Option<u64>,
}

impl Breaker {
    /// A request timed out at `now`.
    pub fn trip(&mut self, now: u64) {
        self.tripped_at = Some(now);
    }

    /// The daemon sent a message: it is alive.
    pub fn close(&mut self) {
        self.tripped_at = None;
    }

    /// Whether a request timed out and the daemon has sent nothing since.
    pub fn is_open(&self) -> bool {
        self.tripped_at.is_some()
    }

    /// Whether a request may go to the daemon at `now`.
    pub fn admits(&self, now: u64) -> bool {
        self.tripped_at.is_none_or(|tripped_at| now.saturating_sub(tripped_at) >= STALLED_PROBE_INTERVAL_NS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_opens_the_breaker_until_a_message_or_the_probe_interval() {
        let mut breaker = Breaker::default();
        assert!(!breaker.is_open() && breaker.admits(0));
        breaker.trip(1_000);
        assert!(breaker.is_open());
        assert!(!breaker.admits(1_000));
        assert!(!breaker.admits(1_000 + STALLED_PROBE_INTERVAL_NS - 1));
        assert!(breaker.admits(1_000 + STALLED_PROBE_INTERVAL_NS), "a probe");
        breaker.trip(1_000 + STALLED_PROBE_INTERVAL_NS + DEFAULT_REQUEST_TIMEOUT_NS);
        assert!(!breaker.admits(1_000 + STALLED_PROBE_INTERVAL_NS + DEFAULT_REQUEST_TIMEOUT_NS));
        breaker.close();
        assert!(!breaker.is_open() && breaker.admits(0), "a clock that went back does not matter once closed");
    }
}
