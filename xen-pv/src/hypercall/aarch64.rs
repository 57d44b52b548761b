//! aarch64: the hypercall instruction, and time from the generic timer.
//!
//! A hypercall is `hvc #0xEA1` (`XEN_HYPERCALL_TAG`) with the number in x16,
//! arguments in x0..x4 and the result in x0; Xen clobbers x16 and the
//! argument registers the call uses (`arch-arm.h`): the one instruction
//! here written by hand. There is no hypercall page and no detection step:
//! the device tree's `hypervisor` node says Xen is there. The generic
//! timer's registers and the `isb` barrier come from the `aarch64-cpu`
//! crate.
//!
//! Xen on ARM offers no one-shot timer hypercall (`VCPUOP_set_singleshot_timer`
//! is not among the vCPU operations it supports). Time is the generic
//! timer's virtual counter (`CNTVCT_EL0`, which Xen starts near zero when
//! the domain is created), and the one-shot timer is the virtual timer
//! (`CNTV_CVAL_EL0`): the guest keeps IRQs masked at the CPU and never
//! enables the timer's interrupt in the GIC, but when the timer fires Xen
//! still injects its PPI into the vGIC and kicks the vCPU, which wakes it
//! from `SCHEDOP_poll`. No event-channel port fires
//! ([`TIMER_RAISES_VIRQ`] is false), so the timer is armed again on every
//! wait, which costs two register writes.
//!
//! A safety net covers the one window where that wake-up can be lost (the
//! timer firing after the last counter check but before Xen marks the vCPU
//! blocked: Xen then masks the timer and kicks a vCPU that is still
//! running): every poll with an armed timer also carries a `SCHEDOP_poll`
//! timeout, in Xen system time, [`SAFETY_MARGIN_NS`] after the deadline.
//! Xen's time is the virtual counter's plus an offset the guest cannot read;
//! the runstate area gives a lower bound of it (`state_entry_time` is Xen's
//! time when the vCPU last started running, read while it runs), sampled
//! right after every poll, so the timeout never fires before the deadline
//! by more than the sampling error, and normally after the virtual timer.

use super::{HYPERCALLS, check};
use crate::abi::hypercall_number as nr;
use crate::abi::vcpu::{
    RUNSTATE_RUNNING, RUNSTATE_UPDATE, RegisterRunstateMemoryArea, RunstateInfo, VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA,
};
use crate::hypervisor::XenError;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTVCT_EL0, Readable, Writeable};
use core::arch::asm;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// The shared info page's ARM layout.
pub use crate::abi::shared_info::arm::SharedInfo;

/// The virtual timer wakes the poll through the vGIC, not through a port.
pub const TIMER_RAISES_VIRQ: bool = false;

/// `XEN_HYPERCALL_TAG`, the immediate of `hvc`.
const HYPERCALL_TAG: u16 = 0xea1;

/// Calls hypercall `number` with three arguments.
///
/// # Safety
/// The arguments must satisfy the contract of that hypercall (valid pointers
/// to the structures it reads and writes, mapped as Normal memory).
pub unsafe fn hypercall3(number: usize, arg1: usize, arg2: usize, arg3: usize) -> isize {
    let ret: isize;
    // SAFETY: `hvc` enters Xen, which reads and writes only the memory the
    // caller vouches for, and clobbers x16 and the argument registers.
    unsafe {
        asm!(
            "hvc #{tag}",
            tag = const HYPERCALL_TAG,
            inlateout("x0") arg1 => ret,
            inlateout("x1") arg2 => _,
            inlateout("x2") arg3 => _,
            inlateout("x16") number => _,
            options(nostack),
        );
    }
    ret
}

/// Calls hypercall `number` with two arguments (the third register is 0,
/// which two-argument hypercalls ignore).
///
/// # Safety
/// As for [`hypercall3`].
pub unsafe fn hypercall2(number: usize, arg1: usize, arg2: usize) -> isize {
    // SAFETY: forwarded from this function's contract.
    unsafe { hypercall3(number, arg1, arg2, 0) }
}

/// The generic timer's frequency (`CNTFRQ_EL0`), in Hz.
pub fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// The virtual counter (`CNTVCT_EL0`), read in program order.
fn counter() -> u64 {
    // `isb` keeps the read from being taken early.
    barrier::isb(barrier::SY);
    CNTVCT_EL0.get()
}

/// System time: nanoseconds of the virtual counter (since the domain was
/// created, give or take Xen's set-up).
pub fn system_time() -> u64 {
    ticks_to_nanoseconds(counter(), counter_frequency())
}

fn ticks_to_nanoseconds(ticks: u64, frequency: u64) -> u64 {
    if frequency == 0 {
        return 0;
    }
    (u128::from(ticks) * 1_000_000_000 / u128::from(frequency)).min(u128::from(u64::MAX)) as u64
}

/// The first counter value at or after `nanoseconds`.
fn nanoseconds_to_ticks(nanoseconds: u64, frequency: u64) -> u64 {
    (u128::from(nanoseconds) * u128::from(frequency)).div_ceil(1_000_000_000).min(u128::from(u64::MAX)) as u64
}

/// How long after a deadline the poll's own timeout (the safety net) fires.
pub const SAFETY_MARGIN_NS: u64 = 2_000_000;

const NO_DEADLINE: u64 = u64::MAX;
/// The deadline the virtual timer is armed for (system time, ns).
static ARMED_DEADLINE: AtomicU64 = AtomicU64::new(NO_DEADLINE);
/// Xen system time minus ours, a lower bound (0: not known yet).
static OFFSET_ESTIMATE: AtomicU64 = AtomicU64::new(0);
/// Runstate area registration: 0 not tried, 1 registered, 2 refused.
static RUNSTATE_REGISTRATION: AtomicU8 = AtomicU8::new(0);
/// vCPU 0's runstate, kept up to date by Xen.
static RUNSTATE: RunstateInfo = RunstateInfo {
    state: core::sync::atomic::AtomicI32::new(-1),
    pad: core::sync::atomic::AtomicU32::new(0),
    state_entry_time: AtomicU64::new(0),
    time: [const { AtomicU64::new(0) }; 4],
};

/// The `SCHEDOP_poll` timeout (Xen system time) for a poll while the
/// virtual timer is armed; 0 (none) when nothing is armed or Xen's time is
/// not known yet.
pub fn poll_timeout() -> u64 {
    register_runstate();
    sample_offset();
    let deadline = ARMED_DEADLINE.load(Ordering::Relaxed);
    let offset = OFFSET_ESTIMATE.load(Ordering::Relaxed);
    if deadline == NO_DEADLINE || offset == 0 {
        return 0;
    }
    deadline.saturating_add(offset).saturating_add(SAFETY_MARGIN_NS)
}

/// Right after a poll returns (the vCPU has just been scheduled in): the
/// best moment to sample Xen's time.
pub fn after_poll() {
    sample_offset();
}

fn register_runstate() {
    if RUNSTATE_REGISTRATION.load(Ordering::Relaxed) != 0 {
        return;
    }
    let mut args = RegisterRunstateMemoryArea { address: (&raw const RUNSTATE) as u64 };
    HYPERCALLS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: VCPUOP_register_runstate_memory_area(0, arg) reads a
    // `vcpu_register_runstate_memory_area` naming RUNSTATE, a static that
    // lives forever in Normal memory, fits in one page (64-byte aligned,
    // 48 bytes) and is only read, through atomics, by this module.
    let ret =
        unsafe { hypercall3(nr::VCPU_OP, VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA as usize, 0, &raw mut args as usize) };
    RUNSTATE_REGISTRATION.store(if check(ret).is_ok() { 1 } else { 2 }, Ordering::Relaxed);
}

/// Raises the offset estimate with the runstate area: while this vCPU runs,
/// `state_entry_time` is Xen's time at a moment before now, so Xen's time
/// minus ours, read in that order, never exceeds the true offset.
fn sample_offset() {
    if RUNSTATE_REGISTRATION.load(Ordering::Relaxed) != 1 || RUNSTATE.state.load(Ordering::Acquire) != RUNSTATE_RUNNING
    {
        return;
    }
    let entered = RUNSTATE.state_entry_time.load(Ordering::Acquire) & !RUNSTATE_UPDATE;
    let now = system_time();
    if entered > now {
        OFFSET_ESTIMATE.fetch_max(entered - now, Ordering::Relaxed);
    }
}

/// Arms the virtual timer for `deadline` (system time, ns); `ETIME` (and
/// the timer off) if the deadline has passed by the time it is armed.
pub fn set_singleshot_timer(_vcpu: u32, deadline: u64) -> Result<(), XenError> {
    let compare = nanoseconds_to_ticks(deadline, counter_frequency());
    // The compare value, then the control register: enabled, interrupt not
    // masked by IMASK (it is masked at the CPU, DAIF.I, and disabled in the
    // GIC, so it never enters the guest); `isb` makes both take effect
    // before the counter is checked.
    CNTV_CVAL_EL0.set(compare);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET);
    barrier::isb(barrier::SY);
    if counter() >= compare {
        stop_timer();
        return Err(XenError::ETIME);
    }
    ARMED_DEADLINE.store(deadline, Ordering::Relaxed);
    Ok(())
}

/// Stops the virtual timer.
pub fn stop_singleshot_timer(_vcpu: u32) -> Result<(), XenError> {
    stop_timer();
    Ok(())
}

fn stop_timer() {
    ARMED_DEADLINE.store(NO_DEADLINE, Ordering::Relaxed);
    // Disabled (every bit clear); `isb` makes that take effect at once.
    CNTV_CTL_EL0.set(0);
    barrier::isb(barrier::SY);
}
