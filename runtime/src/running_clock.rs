//! The network's clock: Xen system time less the time the domain did not
//! run.
//!
//! Xen system time goes on while a domain is paused (`xl pause`, a save, a
//! migration's last round, a host too busy to schedule it). Every timer of
//! the network stack and the services would then fire the moment the
//! domain runs again, before it has read a single frame its peers sent
//! meanwhile: a handshake in flight, an idle keep-alive connection, a
//! transfer slowed by nothing but the pause would all be reset. So the loop
//! keeps its own clock: each time it reads it, it knows what to expect (no
//! time at all if it was busy, the deadline if it slept toward one); time
//! beyond that by more than [`LATE_WAKE_SLACK_NS`] is time it did not run,
//! and the clock leaves it out. Peers get the time they would have had;
//! bounds still hold in running time.
//!
//! A sleep with no deadline (nothing pending anywhere) cannot tell a pause
//! from idleness, and needs not: no timer was running.
//!
//! After a resume in a new domain ([`RunningClock::resumed`]) system time
//! may have jumped either way (another host's clock): running time goes on
//! from where it was.
//!
//! Contract: pure arithmetic on the times given; the clock never runs
//! backwards, and never runs ahead of system time but after a resume on a
//! host whose system time is behind.

/// How much later than expected the clock may be read before the lateness
/// counts as not running: a turn of the loop, or a wake-up, takes far less.
pub const LATE_WAKE_SLACK_NS: u64 = 500_000_000;

/// System time less the time the loop did not run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunningClock {
    /// Nanoseconds left out so far.
    skipped_ns: u64,
    /// How far running time is ahead of system time since a resume on a
    /// host whose system time was behind (0 otherwise).
    ahead_ns: u64,
    /// The latest running time handed out.
    latest_ns: u64,
    /// When the clock was last read, in system time.
    last_read_ns: Option<u64>,
    /// What the loop expected when it last went to sleep: `Some(deadline)`
    /// (system time), or `None` for a sleep with no deadline (idle).
    sleep: Option<Option<u64>>,
}

impl RunningClock {
    /// The running time at system time `system_ns`. Time since the last
    /// read beyond what the loop expected (it was busy: no time; it slept
    /// toward a deadline: until then), give or take the slack, is left out.
    pub fn now(&mut self, system_ns: u64) -> u64 {
        if let Some(last) = self.last_read_ns {
            let expected = match self.sleep.take() {
                None => Some(last),
                Some(Some(deadline)) => Some(deadline.max(last)),
                Some(None) => None,
            };
            if let Some(expected) = expected {
                let late = system_ns.saturating_sub(expected);
                if late > LATE_WAKE_SLACK_NS {
                    self.skipped_ns += late - LATE_WAKE_SLACK_NS;
                }
            }
        }
        self.last_read_ns = Some(system_ns);
        let running = system_ns.saturating_add(self.ahead_ns).saturating_sub(self.skipped_ns).max(self.latest_ns);
        self.latest_ns = running;
        running
    }

    /// The system time at which running time `running_ns` comes (to sleep
    /// toward).
    pub fn system_time_of(&self, running_ns: u64) -> u64 {
        running_ns.saturating_add(self.skipped_ns).saturating_sub(self.ahead_ns)
    }

    /// The loop goes to sleep until system time `deadline_ns`, or until an
    /// event if `None`.
    pub fn sleeping(&mut self, deadline_ns: Option<u64>) {
        self.sleep = Some(deadline_ns);
    }

    /// Nanoseconds left out so far.
    pub fn skipped_ns(&self) -> u64 {
        self.skipped_ns
    }

    /// The domain was restored (in a new domain, perhaps on another host)
    /// and reads system time `system_ns` now: running time goes on from
    /// where it was, however system time moved meanwhile. On the same host
    /// it moved forward by the time the domain was suspended, which is left
    /// out as any pause; another host's system time may be anywhere,
    /// behind included (running time is then ahead of system time, by as
    /// much, from now on).
    pub fn resumed(&mut self, system_ns: u64) {
        self.skipped_ns = system_ns.saturating_sub(self.latest_ns);
        self.ahead_ns = self.latest_ns.saturating_sub(system_ns);
        self.last_read_ns = Some(system_ns);
        self.sleep = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_pause_during_a_sleep_is_left_out_of_running_time() {
        let mut clock = RunningClock::default();
        assert_eq!(clock.now(10 * SECOND), 10 * SECOND);
        // Asleep toward 11 s, woken at 71 s: paused for about a minute.
        clock.sleeping(Some(11 * SECOND));
        let now = clock.now(71 * SECOND);
        assert_eq!(clock.skipped_ns(), 60 * SECOND - LATE_WAKE_SLACK_NS);
        assert_eq!(now, 11 * SECOND + LATE_WAKE_SLACK_NS, "the timers see half a second late, not a minute");
        assert_eq!(clock.system_time_of(now + SECOND), 72 * SECOND, "sleeps are asked for in system time");
    }

    #[test]
    fn a_pause_during_a_busy_turn_is_left_out_too() {
        let mut clock = RunningClock::default();
        clock.now(10 * SECOND);
        let now = clock.now(15 * SECOND);
        assert_eq!(now, 10 * SECOND + LATE_WAKE_SLACK_NS);
    }

    #[test]
    fn on_time_wake_ups_and_idle_sleeps_change_nothing() {
        let mut clock = RunningClock::default();
        clock.now(SECOND);
        clock.sleeping(Some(5 * SECOND));
        clock.now(5 * SECOND + LATE_WAKE_SLACK_NS);
        clock.sleeping(Some(9 * SECOND));
        clock.now(6 * SECOND);
        clock.sleeping(None);
        clock.now(500 * SECOND);
        assert_eq!(clock.skipped_ns(), 0);
        assert_eq!(clock.now(500 * SECOND + 1000), 500 * SECOND + 1000);
    }

    #[test]
    fn a_resume_continues_running_time_whichever_way_system_time_moved() {
        let mut clock = RunningClock::default();
        clock.now(10 * SECOND);
        // Suspended in a busy turn, restored 40 s later on the same host.
        clock.resumed(50 * SECOND);
        assert_eq!(clock.now(50 * SECOND), 10 * SECOND, "no time passed for the timers");
        assert_eq!(clock.now(50 * SECOND + 400_000_000), 10 * SECOND + 400_000_000);
        // Migrated to a host whose system time is far behind.
        clock.resumed(3 * SECOND);
        assert_eq!(clock.skipped_ns(), 0);
        assert_eq!(clock.now(3 * SECOND), 10 * SECOND + 400_000_000, "not back to 3 s");
        assert_eq!(clock.now(3 * SECOND + 400_000_000), 10 * SECOND + 800_000_000, "and running at once");
        assert_eq!(clock.system_time_of(12 * SECOND), 4 * SECOND + 600_000_000, "sleeps are in the new host's time");
    }

    #[test]
    fn running_time_never_goes_back() {
        let mut clock = RunningClock::default();
        assert_eq!(clock.now(20 * SECOND), 20 * SECOND);
        assert_eq!(clock.now(19 * SECOND), 20 * SECOND, "held, not moved back");
    }
}
