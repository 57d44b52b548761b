//! The shared info page and per-vCPU info (`xen.h`, `arch-x86/xen.h`,
//! `arch-arm.h`).
//!
//! Xen writes time and event state here; the guest reads it and clears the
//! bits it consumed. All fields are atomics of the C field's size.
//!
//! The layout depends on the architecture (`struct arch_vcpu_info`,
//! `struct arch_shared_info` and `XEN_LEGACY_MAX_VCPUS` differ), so both
//! layouts are defined here, each with its size checks, and the
//! architecture-neutral code reaches the fields it needs through
//! [`SharedInfoPage`]. The kernel picks the layout of the machine it runs on
//! (its arch module); the host simulation uses the x86_64 one.

use crate::{assert_abi_offset, assert_abi_size};
use core::sync::atomic::{AtomicI8, AtomicU8, AtomicU32, AtomicU64};

/// Words of the 2-level pending and mask bitmaps (`sizeof(xen_ulong_t) * 8`;
/// `xen_ulong_t` is 64 bits on x86_64 and on ARM).
pub const EVENT_CHANNEL_WORDS: usize = 64;
/// Ports the 2-level ABI can name (`EVTCHN_2L_NR_CHANNELS`).
pub const EVENT_CHANNEL_2L_PORTS: usize = 64 * 64;

/// `struct vcpu_time_info`: the pvclock (maintained by Xen on x86 only).
#[repr(C)]
pub struct VcpuTimeInfo {
    /// Odd while Xen updates the record; changes on every update.
    pub version: AtomicU32,
    /// Padding.
    pub pad0: AtomicU32,
    /// TSC at the last update.
    pub tsc_timestamp: AtomicU64,
    /// System time (ns since boot) at the last update.
    pub system_time: AtomicU64,
    /// TSC-to-nanoseconds multiplier (32.32 fixed point).
    pub tsc_to_system_mul: AtomicU32,
    /// TSC shift applied before multiplying.
    pub tsc_shift: AtomicI8,
    /// `XEN_PVCLOCK_*` flags.
    pub flags: AtomicU8,
    /// Padding.
    pub pad1: [AtomicU8; 2],
}
assert_abi_size!(VcpuTimeInfo, 32);
assert_abi_offset!(VcpuTimeInfo, tsc_timestamp, 8);
assert_abi_offset!(VcpuTimeInfo, system_time, 16);
assert_abi_offset!(VcpuTimeInfo, tsc_to_system_mul, 24);
assert_abi_offset!(VcpuTimeInfo, tsc_shift, 28);

/// The wall-clock fields of the shared info page (`wc_version`, `wc_sec`,
/// `wc_nsec`, `wc_sec_hi`), borrowed from either layout.
pub struct WallClockFields<'a> {
    /// Odd while Xen updates the wall clock.
    pub version: &'a AtomicU32,
    /// Seconds at system time 0, low 32 bits.
    pub seconds: &'a AtomicU32,
    /// Nanoseconds at system time 0.
    pub nanoseconds: &'a AtomicU32,
    /// Seconds, high 32 bits.
    pub seconds_high: &'a AtomicU32,
}

/// What the architecture-neutral code uses of the shared info page: vCPU 0's
/// event flags and pvclock, the event bitmaps, the wall clock.
pub trait SharedInfoPage: Sync {
    /// vCPU 0's `evtchn_upcall_pending`.
    fn upcall_pending(&self) -> &AtomicU8;
    /// vCPU 0's `evtchn_upcall_mask` (padding on ARM, where Xen ignores it).
    fn upcall_mask(&self) -> &AtomicU8;
    /// vCPU 0's `evtchn_pending_sel`.
    fn pending_selector(&self) -> &AtomicU64;
    /// vCPU 0's `time` (the pvclock).
    fn vcpu_time(&self) -> &VcpuTimeInfo;
    /// `evtchn_pending`.
    fn pending_words(&self) -> &[AtomicU64; EVENT_CHANNEL_WORDS];
    /// `evtchn_mask`.
    fn mask_words(&self) -> &[AtomicU64; EVENT_CHANNEL_WORDS];
    /// `wc_version`, `wc_sec`, `wc_nsec`, `wc_sec_hi`.
    fn wall_clock(&self) -> WallClockFields<'_>;
}

macro_rules! shared_info_page {
    ($shared:ty) => {
        impl super::SharedInfoPage for $shared {
            fn upcall_pending(&self) -> &AtomicU8 {
                &self.vcpu_info[0].evtchn_upcall_pending
            }
            fn upcall_mask(&self) -> &AtomicU8 {
                &self.vcpu_info[0].evtchn_upcall_mask
            }
            fn pending_selector(&self) -> &AtomicU64 {
                &self.vcpu_info[0].evtchn_pending_sel
            }
            fn vcpu_time(&self) -> &super::VcpuTimeInfo {
                &self.vcpu_info[0].time
            }
            fn pending_words(&self) -> &[AtomicU64; super::EVENT_CHANNEL_WORDS] {
                &self.evtchn_pending
            }
            fn mask_words(&self) -> &[AtomicU64; super::EVENT_CHANNEL_WORDS] {
                &self.evtchn_mask
            }
            fn wall_clock(&self) -> super::WallClockFields<'_> {
                super::WallClockFields {
                    version: &self.wc_version,
                    seconds: &self.wc_sec,
                    nanoseconds: &self.wc_nsec,
                    seconds_high: &self.wc_sec_hi,
                }
            }
        }
    };
}

/// The x86_64 layout (`arch-x86/xen.h`, `arch-x86/xen-x86_64.h`).
pub mod x86_64 {
    use super::{EVENT_CHANNEL_WORDS, VcpuTimeInfo};
    use crate::{assert_abi_offset, assert_abi_size};
    use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64};

    /// vCPU slots in the shared info page (`XEN_LEGACY_MAX_VCPUS`).
    pub const LEGACY_MAX_VCPUS: usize = 32;

    /// `struct vcpu_info` (x86_64 layout).
    #[repr(C)]
    pub struct VcpuInfo {
        /// Set by Xen when an event is pending for this vCPU.
        pub evtchn_upcall_pending: AtomicU8,
        /// Set by the guest to keep Xen from raising the upcall.
        pub evtchn_upcall_mask: AtomicU8,
        /// Padding.
        pub pad: [AtomicU8; 6],
        /// Which words of `evtchn_pending` have bits for this vCPU.
        pub evtchn_pending_sel: AtomicU64,
        /// `struct arch_vcpu_info`: cr2 and padding.
        pub arch: [AtomicU64; 2],
        /// The pvclock.
        pub time: VcpuTimeInfo,
    }
    assert_abi_size!(VcpuInfo, 64);
    assert_abi_offset!(VcpuInfo, evtchn_upcall_mask, 1);
    assert_abi_offset!(VcpuInfo, evtchn_pending_sel, 8);
    assert_abi_offset!(VcpuInfo, time, 32);

    /// `struct shared_info` (x86_64 layout).
    #[repr(C)]
    pub struct SharedInfo {
        /// Per-vCPU info for the first 32 vCPUs.
        pub vcpu_info: [VcpuInfo; LEGACY_MAX_VCPUS],
        /// 2-level pending bitmap, one bit per port.
        pub evtchn_pending: [AtomicU64; EVENT_CHANNEL_WORDS],
        /// 2-level mask bitmap, one bit per port.
        pub evtchn_mask: [AtomicU64; EVENT_CHANNEL_WORDS],
        /// Odd while Xen updates the wall clock.
        pub wc_version: AtomicU32,
        /// Wall-clock seconds at system time 0 (low 32 bits).
        pub wc_sec: AtomicU32,
        /// Wall-clock nanoseconds at system time 0.
        pub wc_nsec: AtomicU32,
        /// Wall-clock seconds, high 32 bits.
        pub wc_sec_hi: AtomicU32,
        /// `struct arch_shared_info`: max_pfn, p2m list, nmi_reason, padding.
        pub arch: [AtomicU64; 35],
    }
    assert_abi_size!(SharedInfo, 3368);
    assert_abi_offset!(SharedInfo, evtchn_pending, 2048);
    assert_abi_offset!(SharedInfo, evtchn_mask, 2560);
    assert_abi_offset!(SharedInfo, wc_version, 3072);
    assert_abi_offset!(SharedInfo, wc_sec, 3076);
    assert_abi_offset!(SharedInfo, wc_nsec, 3080);
    assert_abi_offset!(SharedInfo, wc_sec_hi, 3084);

    shared_info_page!(SharedInfo);
}

/// The ARM layout (`arch-arm.h`): empty `arch_vcpu_info` and
/// `arch_shared_info`, one legacy vCPU slot, no upcall mask (its byte is
/// padding: Xen on ARM ignores it).
pub mod arm {
    use super::{EVENT_CHANNEL_WORDS, VcpuTimeInfo};
    use crate::{assert_abi_offset, assert_abi_size};
    use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64};

    /// vCPU slots in the shared info page (`XEN_LEGACY_MAX_VCPUS` is 1 on ARM).
    pub const LEGACY_MAX_VCPUS: usize = 1;

    /// `struct vcpu_info` (ARM layout).
    #[repr(C)]
    pub struct VcpuInfo {
        /// Set by Xen when an event is pending for this vCPU.
        pub evtchn_upcall_pending: AtomicU8,
        /// `pad0` on ARM (no `XEN_HAVE_PV_UPCALL_MASK`).
        pub evtchn_upcall_mask: AtomicU8,
        /// Padding to `xen_ulong_t` alignment.
        pub pad: [AtomicU8; 6],
        /// Which words of `evtchn_pending` have bits for this vCPU.
        pub evtchn_pending_sel: AtomicU64,
        /// `struct arch_vcpu_info` (empty) and the pvclock, which Xen on ARM
        /// does not maintain (time comes from the generic timer).
        pub time: VcpuTimeInfo,
    }
    assert_abi_size!(VcpuInfo, 48);
    assert_abi_offset!(VcpuInfo, evtchn_pending_sel, 8);
    assert_abi_offset!(VcpuInfo, time, 16);

    /// `struct shared_info` (ARM layout).
    #[repr(C)]
    pub struct SharedInfo {
        /// Per-vCPU info for vCPU 0 (the others register theirs).
        pub vcpu_info: [VcpuInfo; LEGACY_MAX_VCPUS],
        /// 2-level pending bitmap, one bit per port.
        pub evtchn_pending: [AtomicU64; EVENT_CHANNEL_WORDS],
        /// 2-level mask bitmap, one bit per port.
        pub evtchn_mask: [AtomicU64; EVENT_CHANNEL_WORDS],
        /// Odd while Xen updates the wall clock.
        pub wc_version: AtomicU32,
        /// Wall-clock seconds (low 32 bits).
        pub wc_sec: AtomicU32,
        /// Wall-clock nanoseconds.
        pub wc_nsec: AtomicU32,
        /// Wall-clock seconds, high 32 bits.
        pub wc_sec_hi: AtomicU32,
    }
    assert_abi_size!(SharedInfo, 1088);
    assert_abi_offset!(SharedInfo, evtchn_pending, 48);
    assert_abi_offset!(SharedInfo, evtchn_mask, 560);
    assert_abi_offset!(SharedInfo, wc_version, 1072);
    assert_abi_offset!(SharedInfo, wc_sec, 1076);
    assert_abi_offset!(SharedInfo, wc_nsec, 1080);
    assert_abi_offset!(SharedInfo, wc_sec_hi, 1084);

    shared_info_page!(SharedInfo);
}

/// The `time.flags` bit saying the TSC is stable across vCPUs.
pub const PVCLOCK_TSC_STABLE: u8 = 1;
