//! When to tell the operator that DHCP has brought no lease.
//!
//! A guest that asks for an address on a bridge with no DHCP server would
//! otherwise say nothing after "asking for an address by DHCP". The loop
//! keeps a [`LeaseHint`] from the moment it asks (again after a lease is
//! lost, or when a new vif's MAC asks afresh) until a lease comes, and logs
//! [`hint`] when one is due: [`FIRST_HINT`] after asking, then each time
//! the wait has doubled (60 s, 120 s, 240 s, ...), at most [`LONGEST_GAP`]
//! apart.
//!
//! Pure arithmetic on the running clock's instants: no logging here.

use crate::InterfaceId;
use alloc::format;
use alloc::string::String;
use smoltcp::time::{Duration, Instant};

/// How long after asking the first hint comes.
pub const FIRST_HINT: Duration = Duration::from_secs(30);
/// The longest time between two hints.
pub const LONGEST_GAP: Duration = Duration::from_secs(600);

/// The hint for a wait of `waited` without a lease on interface `id`.
pub fn hint(id: InterfaceId, waited: Duration) -> String {
    let words = match id {
        InterfaceId::Main => String::new(),
        InterfaceId::Vif(number) => format!("vif{number}."),
    };
    format!(
        "{}: no DHCP lease after {} s: is there a DHCP server on the bridge? or set {words}ip=ADDR/LEN {words}gw=ADDR",
        id.log_tag(),
        waited.secs()
    )
}

/// The hints while one request for a lease goes unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseHint {
    asked_at: Instant,
    next: Instant,
}

impl LeaseHint {
    /// Asking for a lease at `now`.
    pub fn new(now: Instant) -> Self {
        Self { asked_at: now, next: now + FIRST_HINT }
    }

    /// When the next hint is due.
    pub fn deadline(&self) -> Instant {
        self.next
    }

    /// How long the wait has been, if a hint is due at `now`; the next one
    /// is then due when the wait has doubled (at most [`LONGEST_GAP`]
    /// later), and hints overdue together come as one.
    pub fn due(&mut self, now: Instant) -> Option<Duration> {
        if now < self.next {
            return None;
        }
        while self.next <= now {
            let waited = self.next - self.asked_at;
            self.next += if waited < LONGEST_GAP { waited } else { LONGEST_GAP };
        }
        Some(now - self.asked_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_come_as_the_wait_doubles_then_every_ten_minutes() {
        let start = Instant::from_secs(5);
        let mut hint = LeaseHint::new(start);
        let mut logged = Vec::new();
        let mut now = start;
        while now < start + Duration::from_secs(3000) {
            if let Some(waited) = hint.due(now) {
                logged.push(waited.secs());
            }
            assert!(hint.deadline() > now);
            now += Duration::from_millis(250);
        }
        assert_eq!(logged, [30, 60, 120, 240, 480, 960, 1560, 2160, 2760]);
    }

    #[test]
    fn nothing_is_due_before_the_first_hint() {
        let mut hint = LeaseHint::new(Instant::ZERO);
        assert_eq!(hint.deadline(), Instant::from_secs(30));
        assert_eq!(hint.due(Instant::from_millis(29_999)), None);
        assert_eq!(hint.due(Instant::from_millis(30_004)), Some(Duration::from_millis(30_004)));
        assert_eq!(hint.due(Instant::from_millis(30_005)), None, "once");
        assert_eq!(hint.deadline(), Instant::from_secs(60));
    }

    #[test]
    fn overdue_hints_come_as_one() {
        let mut hint = LeaseHint::new(Instant::ZERO);
        assert_eq!(hint.due(Instant::from_secs(500)), Some(Duration::from_secs(500)));
        assert_eq!(hint.deadline(), Instant::from_secs(960));
        assert_eq!(hint.due(Instant::from_secs(959)), None);
    }

    #[test]
    fn the_hint_says_what_to_check() {
        assert_eq!(
            hint(InterfaceId::Main, Duration::from_millis(30_400)),
            "network: no DHCP lease after 30 s: is there a DHCP server on the bridge? or set ip=ADDR/LEN gw=ADDR"
        );
        assert_eq!(
            hint(InterfaceId::Vif(1), Duration::from_secs(60)),
            "network (vif 1): no DHCP lease after 60 s: is there a DHCP server on the bridge? or set vif1.ip=ADDR/LEN vif1.gw=ADDR"
        );
    }
}
