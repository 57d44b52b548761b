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
