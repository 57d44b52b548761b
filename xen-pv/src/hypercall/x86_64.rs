//! x86_64: Xen detection through CPUID, the hypercall page, and the calls.
//!
//! An HVM/PVH guest asks Xen to fill a page of its own memory with one 32-byte
//! stub per hypercall (the stub uses `vmcall` or `vmmcall`, whichever this CPU
//! has), by writing the page's physical address to an MSR that CPUID names.
//! Arguments go in rdi, rsi, rdx, r10, r8; the result comes back in rax.

use super::{HYPERCALLS, check};
use crate::abi::hypercall_number as nr;
use crate::abi::vcpu::{
    SingleshotTimer, VCPU_SSHOTTMR_FUTURE, VCPUOP_SET_SINGLESHOT_TIMER, VCPUOP_STOP_SINGLESHOT_TIMER,
};
use crate::hypervisor::XenError;
use core::arch::{asm, global_asm};
use core::sync::atomic::Ordering;
use x86_64::registers::model_specific::Msr;

/// The shared info page's x86_64 layout.
pub use crate::abi::shared_info::x86_64::SharedInfo;

/// Xen's one-shot timer raises `VIRQ_TIMER` when it expires.
pub const TIMER_RAISES_VIRQ: bool = true;

/// Arms Xen's one-shot timer (`VCPUOP_set_singleshot_timer`); `ETIME` if
/// the deadline (Xen system time, ns) has passed.
pub fn set_singleshot_timer(vcpu: u32, deadline: u64) -> Result<(), XenError> {
    let mut args = SingleshotTimer { timeout_abs_ns: deadline, flags: VCPU_SSHOTTMR_FUTURE, pad: 0 };
    HYPERCALLS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: VCPUOP_set_singleshot_timer(vcpu, arg) reads a
    // `vcpu_set_singleshot_timer`, which `args` is for the whole call.
    let ret =
        unsafe { hypercall3(nr::VCPU_OP, VCPUOP_SET_SINGLESHOT_TIMER as usize, vcpu as usize, &raw mut args as usize) };
    check(ret).map(drop)
}

/// No timeout of its own for a poll: Xen's one-shot timer raises a port.
pub fn poll_timeout() -> u64 {
    0
}

/// Nothing to do after a poll.
pub fn after_poll() {}

/// Stops Xen's one-shot timer (`VCPUOP_stop_singleshot_timer`).
pub fn stop_singleshot_timer(vcpu: u32) -> Result<(), XenError> {
    HYPERCALLS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: VCPUOP_stop_singleshot_timer takes no argument memory.
    let ret = unsafe { hypercall3(nr::VCPU_OP, VCPUOP_STOP_SINGLESHOT_TIMER as usize, vcpu as usize, 0) };
    check(ret).map(drop)
}

// The hypercall page: 4 KiB of executable memory that Xen overwrites. It is
// filled with `int3` so that a call made before installation traps visibly.
global_asm!(
    ".pushsection .text.hypercall_page, \"ax\", @progbits",
    ".balign 4096",
    ".globl xen_hypercall_page",
    "xen_hypercall_page:",
    ".fill 4096, 1, 0xcc",
    ".popsection",
);

unsafe extern "C" {
    static xen_hypercall_page: [u8; 4096];
}

/// What CPUID said about the hypervisor.
#[derive(Debug, Clone, Copy)]
pub struct XenSignature {
    /// First CPUID leaf of Xen's range (0x40000000 + n * 0x100).
    pub base_leaf: u32,
    /// Xen's major version.
    pub major: u32,
    /// Xen's minor version.
    pub minor: u32,
}

/// Looks for Xen's CPUID leaves ("XenVMMXenVMM"). Xen may sit above another
/// signature (Viridian), so every 0x100-spaced base up to 0x40010000 is tried.
pub fn detect_xen() -> Option<XenSignature> {
    (0x4000_0000u32..0x4001_0000).step_by(0x100).find_map(|base| {
        let id = core::arch::x86_64::__cpuid(base);
        let is_xen = id.ebx == 0x566e_6558 && id.ecx == 0x65584d4d && id.edx == 0x4d4d_566e;
        if !is_xen || id.eax < base + 2 {
            return None;
        }
        let version = core::arch::x86_64::__cpuid(base + 1).eax;
        Some(XenSignature { base_leaf: base, major: version >> 16, minor: version & 0xffff })
    })
}

/// Asks Xen to write its hypercall stubs into our hypercall page.
///
/// # Safety
/// Must run once, before any hypercall, on a CPU where `signature` came from
/// [`detect_xen`], with the kernel image identity-mapped (virtual address of
/// the page = its physical address).
pub unsafe fn install_hypercall_page(signature: XenSignature) {
    let mut msr = Msr::new(core::arch::x86_64::__cpuid(signature.base_leaf + 2).ebx);
    let page = (&raw const xen_hypercall_page) as u64;
    // SAFETY: writing the hypercall MSR only makes Xen fill the page we own
    // and that nothing else uses; the caller guarantees identity mapping so
    // the physical address is the virtual one.
    unsafe { msr.write(page) };
}

/// Calls hypercall `number` with three arguments.
///
/// # Safety
/// The hypercall page must be installed, and the arguments must satisfy the
/// contract of that hypercall (valid pointers to structures it reads/writes).
pub unsafe fn hypercall3(number: usize, arg1: usize, arg2: usize, arg3: usize) -> isize {
    let ret: isize;
    let entry = (&raw const xen_hypercall_page) as usize + number * 32;
    // SAFETY: `entry` is the stub for `number` in the installed page; the
    // stubs preserve every register but rax (and rcx/r11, declared clobbered
    // for safety). The caller vouches for the argument memory.
    unsafe {
        asm!(
            "call {entry}",
            entry = in(reg) entry,
            inlateout("rdi") arg1 => _,
            inlateout("rsi") arg2 => _,
            inlateout("rdx") arg3 => _,
            lateout("rax") ret,
            lateout("rcx") _,
            lateout("r11") _,
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
