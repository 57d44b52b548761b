//! The shared info page and per-vCPU info (`xen.h`, `arch-x86/xen.h`).
//!
//! Xen writes time and event state here; the guest reads it and clears the
//! bits it consumed. All fields are atomics of the C field's size.

use crate::{assert_abi_offset, assert_abi_size};
use core::sync::atomic::{AtomicI8, AtomicU8, AtomicU32, AtomicU64};

/// vCPU slots in the shared info page (`XEN_LEGACY_MAX_VCPUS`).
pub const LEGACY_MAX_VCPUS: usize = 32;
/// Words of the 2-level pending and mask bitmaps (`sizeof(xen_ulong_t) * 8`).
pub const EVENT_CHANNEL_WORDS: usize = 64;
/// Ports the 2-level ABI can name (`EVTCHN_2L_NR_CHANNELS`).
pub const EVENT_CHANNEL_2L_PORTS: usize = 64 * 64;

/// `struct vcpu_time_info`: the pvclock.
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

/// The `time.flags` bit saying the TSC is stable across vCPUs.
pub const PVCLOCK_TSC_STABLE: u8 = 1;
