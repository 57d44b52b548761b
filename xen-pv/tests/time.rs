//! Reading the pvclock and wall-clock records off the simulated
//! hypervisor's shared info page.
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;
use xen_pv::time::{PvClockSnapshot, WallClock};
use xen_sim::SimXen;

#[test]
fn reads_a_consistent_record() {
    let xen = SimXen::new(1);
    let time = &xen.shared_info().vcpu_info[0].time;
    time.tsc_timestamp.store(77, Ordering::Relaxed);
    time.system_time.store(123, Ordering::Relaxed);
    time.tsc_to_system_mul.store(0x4000_0000, Ordering::Relaxed);
    time.tsc_shift.store(-2, Ordering::Relaxed);
    time.version.store(2, Ordering::Release);
    let read = PvClockSnapshot::read(time);
    assert_eq!(
        read,
        PvClockSnapshot { tsc_timestamp: 77, system_time: 123, tsc_to_system_mul: 0x4000_0000, tsc_shift: -2 }
    );
}

#[test]
fn wall_clock_combines_seconds_and_system_time() {
    let xen = SimXen::new(1);
    let shared = xen.shared_info();
    shared.wc_sec.store(1_700_000_000, Ordering::Relaxed);
    shared.wc_sec_hi.store(1, Ordering::Relaxed);
    shared.wc_nsec.store(900_000_000, Ordering::Relaxed);
    shared.wc_version.store(4, Ordering::Release);
    let boot = WallClock::boot_time(shared);
    assert_eq!(boot.seconds, (1 << 32) + 1_700_000_000);
    let later = boot.after(2_200_000_000);
    assert_eq!(later, WallClock { seconds: boot.seconds + 3, nanoseconds: 100_000_000 });
}
