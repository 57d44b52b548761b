//! Time from Xen: the pvclock (system time, ns since the domain booted) and
//! the wall clock, both read from pages Xen updates under a version counter.
//!
//! A record is consistent when its version is even and unchanged across the
//! read; readers retry otherwise. The TSC value comes from the caller (the
//! architecture reads it), so the arithmetic is tested on the host.
//!
//! Never: return a time computed from a torn record.

use crate::abi::shared_info::{SharedInfoPage, VcpuTimeInfo};
use core::sync::atomic::{Ordering, fence};

/// A consistent copy of a `vcpu_time_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PvClockSnapshot {
    /// TSC at the last update.
    pub tsc_timestamp: u64,
    /// System time at the last update (ns).
    pub system_time: u64,
    /// 32.32 fixed-point multiplier from shifted TSC ticks to ns.
    pub tsc_to_system_mul: u32,
    /// Shift applied to the TSC delta before multiplying.
    pub tsc_shift: i8,
}

impl PvClockSnapshot {
    /// Reads the record Xen maintains, retrying while it is being updated.
    pub fn read(time: &VcpuTimeInfo) -> Self {
        loop {
            let version = time.version.load(Ordering::Acquire);
            if version % 2 == 1 {
                core::hint::spin_loop();
                continue;
            }
            let snapshot = Self {
                tsc_timestamp: time.tsc_timestamp.load(Ordering::Relaxed),
                system_time: time.system_time.load(Ordering::Relaxed),
                tsc_to_system_mul: time.tsc_to_system_mul.load(Ordering::Relaxed),
                tsc_shift: time.tsc_shift.load(Ordering::Relaxed),
            };
            fence(Ordering::Acquire);
            if time.version.load(Ordering::Relaxed) == version {
                return snapshot;
            }
        }
    }

    /// System time (ns) at TSC value `tsc`.
    pub fn system_time_at(&self, tsc: u64) -> u64 {
        let delta = tsc.saturating_sub(self.tsc_timestamp);
        let shifted = match self.tsc_shift {
            shift if shift >= 0 => delta.checked_shl(shift as u32).unwrap_or(u64::MAX),
            shift => delta >> shift.unsigned_abs().min(63),
        };
        let nanoseconds = ((u128::from(shifted) * u128::from(self.tsc_to_system_mul)) >> 32) as u64;
        self.system_time.saturating_add(nanoseconds)
    }

    /// TSC ticks per second implied by the multiplier and shift.
    pub fn tsc_frequency(&self) -> u64 {
        if self.tsc_to_system_mul == 0 {
            return 0;
        }
        let mut frequency = (1_000_000_000u128 << 32) / u128::from(self.tsc_to_system_mul);
        if self.tsc_shift >= 0 {
            frequency >>= self.tsc_shift as u32;
        } else {
            frequency <<= self.tsc_shift.unsigned_abs();
        }
        frequency as u64
    }
}

/// Wall-clock time: seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct WallClock {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub seconds: u64,
    /// Nanoseconds within the second.
    pub nanoseconds: u32,
}

impl WallClock {
    /// The wall-clock time at system time 0, from the shared info page.
    pub fn boot_time(shared: &dyn SharedInfoPage) -> Self {
        let fields = shared.wall_clock();
        loop {
            let version = fields.version.load(Ordering::Acquire);
            if version % 2 == 1 {
                core::hint::spin_loop();
                continue;
            }
            let low = fields.seconds.load(Ordering::Relaxed);
            let high = fields.seconds_high.load(Ordering::Relaxed);
            let nanoseconds = fields.nanoseconds.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if fields.version.load(Ordering::Relaxed) == version {
                return Self { seconds: (u64::from(high) << 32) | u64::from(low), nanoseconds };
            }
        }
    }

    /// This wall-clock time plus `system_time` nanoseconds.
    pub fn after(self, system_time: u64) -> Self {
        let total = u64::from(self.nanoseconds) + system_time % 1_000_000_000;
        Self {
            seconds: self.seconds + system_time / 1_000_000_000 + total / 1_000_000_000,
            nanoseconds: (total % 1_000_000_000) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The arithmetic; reading the records off the simulated shared info
    //! page: tests/time.rs.

    use super::*;

    fn snapshot(mul: u32, shift: i8) -> PvClockSnapshot {
        PvClockSnapshot { tsc_timestamp: 1_000, system_time: 5_000_000, tsc_to_system_mul: mul, tsc_shift: shift }
    }

    #[test]
    fn scales_tsc_ticks_to_nanoseconds() {
        // A 2 GHz TSC: 0.5 ns per tick = 0x8000_0000 in 32.32, shift 0.
        let clock = snapshot(0x8000_0000, 0);
        assert_eq!(clock.system_time_at(1_000), 5_000_000);
        assert_eq!(clock.system_time_at(3_000), 5_001_000);
        assert_eq!(clock.tsc_frequency(), 2_000_000_000);
        // The same rate written as a 1 GHz-per-shifted-tick with shift -1.
        let halved = snapshot(0xffff_ffff, -1);
        assert_eq!(halved.system_time_at(3_000), 5_000_999);
        // A TSC read before the record's timestamp does not go backwards.
        assert_eq!(clock.system_time_at(10), 5_000_000);
    }

    #[test]
    fn huge_deltas_do_not_overflow() {
        let clock = snapshot(u32::MAX, 3);
        assert!(clock.system_time_at(u64::MAX) >= 5_000_000);
    }
}
