//! vCPU operations (`vcpu.h`) and virtual IRQs (`xen.h`).

use crate::{assert_abi_offset, assert_abi_size};

/// `VCPUOP_set_singleshot_timer`
pub const VCPUOP_SET_SINGLESHOT_TIMER: u32 = 8;
/// `VCPUOP_stop_singleshot_timer`
pub const VCPUOP_STOP_SINGLESHOT_TIMER: u32 = 9;

/// `VCPU_SSHOTTMR_future`: fail with `ETIME` if the deadline has passed.
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1;

/// `VIRQ_TIMER`: the per-vCPU timer virtual IRQ.
pub const VIRQ_TIMER: u32 = 0;

/// `struct vcpu_set_singleshot_timer`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleshotTimer {
    /// Deadline in system time (ns since boot).
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*` flags.
    pub flags: u32,
    /// Padding.
    pub pad: u32,
}
assert_abi_size!(SingleshotTimer, 16);
assert_abi_offset!(SingleshotTimer, flags, 8);

/// `VCPUOP_register_runstate_memory_area`: Xen keeps a `vcpu_runstate_info`
/// in guest memory up to date.
pub const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u32 = 5;

/// `RUNSTATE_running`: the vCPU is on a physical CPU.
pub const RUNSTATE_RUNNING: i32 = 0;

/// `XEN_RUNSTATE_UPDATE`: set in `state_entry_time` while Xen writes the
/// record (only if the guest asked for it; masked off either way).
pub const RUNSTATE_UPDATE: u64 = 1 << 63;

/// `struct vcpu_runstate_info`, written by Xen.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct RunstateInfo {
    /// `RUNSTATE_*` now.
    pub state: core::sync::atomic::AtomicI32,
    /// Padding before the 64-bit fields (Xen writes it too).
    pub pad: core::sync::atomic::AtomicU32,
    /// Xen system time (ns) when `state` was entered.
    pub state_entry_time: core::sync::atomic::AtomicU64,
    /// Time spent in each state (ns).
    pub time: [core::sync::atomic::AtomicU64; 4],
}
// 48 bytes in C; the alignment (not in C) keeps it inside one page, which Xen requires.
assert_abi_offset!(RunstateInfo, state_entry_time, 8);
assert_abi_offset!(RunstateInfo, time, 16);
const _: () = assert!(core::mem::offset_of!(RunstateInfo, time) + 4 * 8 == 48);

/// `struct vcpu_register_runstate_memory_area`: the area's guest address.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct RegisterRunstateMemoryArea {
    /// Guest (virtual) address of a [`RunstateInfo`].
    pub address: u64,
}
assert_abi_size!(RegisterRunstateMemoryArea, 8);
