//! The one-shot timer (`VCPUOP_set_singleshot_timer` + `VIRQ_TIMER`) and the
//! wait that every loop in xenecho sleeps in.
//!
//! [`Timer::wait`] blocks in `SCHEDOP_poll` on the caller's ports plus the
//! timer's port, so the vCPU sleeps until an event or the deadline — an idle
//! appliance costs nothing. The timer is re-armed only when the deadline
//! changes, so a loop that wakes for other events costs no timer hypercall.
//!
//! Where the timer raises no port (Xen on ARM: the generic timer's interrupt
//! wakes the poll, see [`Hypervisor::timer_raises_virq`]), a wait that the
//! deadline ended reports [`Wake::Event`]; callers check the time anyway.
//!
//! Never: sleep past a deadline that has already passed (Xen's `ETIME`
//! answer makes the wait return at once).

use crate::abi::event_channel::Port;
use crate::abi::vcpu::VIRQ_TIMER;
use crate::event_channel::EventChannels;
use crate::hypervisor::{Hypervisor, XenError};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Most ports one wait can watch besides the timer's.
pub const MAX_WAIT_PORTS: usize = 15;

const NOT_ARMED: u64 = u64::MAX;

/// Why a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// One of the caller's ports is pending (or another event woke us).
    Event,
    /// The deadline was reached.
    Deadline,
}

/// The vCPU's one-shot timer.
pub struct Timer<'a, H: Hypervisor> {
    events: &'a EventChannels<'a, H>,
    port: AtomicU32,
    armed_for: AtomicU64,
}

impl<'a, H: Hypervisor> Timer<'a, H> {
    /// Binds `VIRQ_TIMER` on vCPU 0.
    pub fn new(events: &'a EventChannels<'a, H>) -> Result<Self, XenError> {
        let port = events.bind_virq(VIRQ_TIMER)?;
        Ok(Self { events, port: AtomicU32::new(port), armed_for: AtomicU64::new(NOT_ARMED) })
    }

    /// The timer's event-channel port.
    pub fn port(&self) -> Port {
        self.port.load(Ordering::Relaxed)
    }

    /// After a resume in a new domain, where no port is bound and no timer
    /// armed: binds `VIRQ_TIMER` again (the port may differ) and arms the
    /// timer afresh on the next wait.
    pub fn rebind(&self) -> Result<Port, XenError> {
        let port = self.events.bind_virq(VIRQ_TIMER)?;
        self.port.store(port, Ordering::Relaxed);
        self.forget_armed();
        Ok(port)
    }

    /// Forgets which deadline the timer was armed for, so the next wait
    /// arms it again (after a suspend, whose outcome may have dropped it).
    pub fn forget_armed(&self) {
        self.armed_for.store(NOT_ARMED, Ordering::Relaxed);
    }

    /// Sleeps until one of `ports` is pending or system time reaches
    /// `deadline` (ns). Pending bits of `ports` are left for their handlers.
    pub fn wait(&self, ports: &[Port], deadline: Option<u64>) -> Result<Wake, XenError> {
        if ports.len() > MAX_WAIT_PORTS {
            return Err(XenError::EINVAL);
        }
        if let Some(deadline) = deadline
            && !self.arm(deadline)?
        {
            return Ok(Wake::Deadline);
        }
        let mut watched = [0; MAX_WAIT_PORTS + 1];
        watched[..ports.len()].copy_from_slice(ports);
        let port = self.port();
        watched[ports.len()] = port;
        self.events.wait(&watched[..=ports.len()], None)?;
        if self.events.take_pending(port) {
            self.armed_for.store(NOT_ARMED, Ordering::Relaxed);
            if ports.iter().all(|&port| !self.events.is_pending(port)) {
                return Ok(Wake::Deadline);
            }
        }
        Ok(Wake::Event)
    }

    /// Arms the timer for `deadline`; false if the deadline has passed.
    fn arm(&self, deadline: u64) -> Result<bool, XenError> {
        if self.armed_for.load(Ordering::Relaxed) == deadline && self.events.hypervisor().timer_raises_virq() {
            return Ok(true);
        }
        match self.events.hypervisor().set_singleshot_timer(0, deadline) {
            Ok(()) => {
                self.armed_for.store(deadline, Ordering::Relaxed);
                Ok(true)
            }
            Err(XenError::ETIME) => Ok(false),
            Err(error) => Err(error),
        }
    }
}
