//! Time as the HTTP engine sees it: instants the caller passes in.
//!
//! The engine never reads a clock. Every call that can start or check a
//! timer takes the current [`Instant`] from the caller (the kernel's monotonic
//! clock, or smoltcp's `Instant`, or a test's counter), and deadlines come back
//! as instants on the same scale.
//!
//! Contract: instants only ever compare with other instants of the same
//! caller; arithmetic saturates, so no value can make it panic or wrap.

use core::time::Duration;

/// A point in time, in milliseconds since an origin the caller chooses
/// (usually boot). Only differences between instants mean anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    milliseconds: u64,
}

impl Instant {
    /// The origin of the caller's time scale.
    pub const ZERO: Instant = Instant { milliseconds: 0 };

    /// The instant `milliseconds` after the origin.
    pub const fn from_millis(milliseconds: u64) -> Instant {
        Instant { milliseconds }
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.milliseconds
    }

    /// This instant moved `duration` later, saturating at the end of time.
    pub fn saturating_add(self, duration: Duration) -> Instant {
        let milliseconds = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Instant { milliseconds: self.milliseconds.saturating_add(milliseconds) }
    }

    /// How long after `earlier` this instant is (zero if it is not later).
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.milliseconds.saturating_sub(earlier.milliseconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let late = Instant::from_millis(u64::MAX - 1);
        assert_eq!(late.saturating_add(Duration::from_secs(5)).as_millis(), u64::MAX);
        assert_eq!(Instant::ZERO.saturating_duration_since(late), Duration::ZERO);
        assert_eq!(Instant::from_millis(1500).saturating_duration_since(Instant::from_millis(500)).as_millis(), 1000);
    }
}
