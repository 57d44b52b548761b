//! Hypercalls: the instruction per architecture, and typed wrappers.
//!
//! The architecture module provides `raw::hypercall{1,2,3,5}` with the Xen
//! calling convention of that architecture; everything here above it is
//! architecture-neutral. Each wrapper documents what memory the hypervisor
//! reads or writes, which is why the raw calls are `unsafe`.

#[cfg(target_arch = "x86_64")]
#[path = "x86_64.rs"]
mod raw;

pub use raw::{XenSignature, detect_xen, install_hypercall_page};

use crate::abi::DOMID_SELF;
use crate::abi::event_channel::{EVTCHNOP_SEND, EventChannelSend, Port};
use crate::abi::hvm::{HVMOP_GET_PARAM, HvmParam};
use crate::abi::hypercall_number as nr;
use crate::abi::sched::{SCHEDOP_SHUTDOWN, SCHEDOP_YIELD, SchedShutdown, ShutdownReason};

/// A hypercall's negative return value: a Xen errno (`errno.h`), positive here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XenError(pub i64);

impl XenError {
    /// `EAGAIN`
    pub const EAGAIN: XenError = XenError(11);
    /// `ENOMEM`
    pub const ENOMEM: XenError = XenError(12);
    /// `EINVAL`
    pub const EINVAL: XenError = XenError(22);
    /// `ENOSYS`
    pub const ENOSYS: XenError = XenError(38);
}

fn check(ret: isize) -> Result<usize, XenError> {
    if ret < 0 { Err(XenError(-(ret as i64))) } else { Ok(ret as usize) }
}

/// Reads an HVM parameter of this domain (`HVMOP_get_param`).
pub fn hvm_get_param(index: u32) -> Result<u64, XenError> {
    let mut param = HvmParam { domid: DOMID_SELF, pad: 0, index, value: 0 };
    // SAFETY: `param` is a valid, live `xen_hvm_param`; Xen reads it and
    // writes only its `value` field before returning.
    let ret = unsafe { raw::hypercall2(nr::HVM_OP, HVMOP_GET_PARAM as usize, &raw mut param as usize) };
    check(ret).map(|_| param.value)
}

/// Notifies the other end of an event channel (`EVTCHNOP_send`).
pub fn event_channel_send(port: Port) -> Result<(), XenError> {
    let mut send = EventChannelSend { port };
    // SAFETY: `send` is a valid `evtchn_send` that Xen only reads.
    let ret = unsafe { raw::hypercall2(nr::EVENT_CHANNEL_OP, EVTCHNOP_SEND as usize, &raw mut send as usize) };
    check(ret).map(|_| ())
}

/// Gives the CPU to another vCPU or domain for a moment (`SCHEDOP_yield`).
pub fn sched_yield() {
    // SAFETY: `SCHEDOP_yield` takes no argument memory.
    unsafe { raw::hypercall2(nr::SCHED_OP, SCHEDOP_YIELD as usize, 0) };
}

/// Ends this domain (`SCHEDOP_shutdown`). Xen does not return from a
/// successful shutdown; should it ever, this spins on yield.
pub fn shutdown(reason: ShutdownReason) -> ! {
    let mut args = SchedShutdown { reason: reason as u32 };
    loop {
        // SAFETY: `args` is a valid `sched_shutdown` that Xen only reads.
        unsafe { raw::hypercall2(nr::SCHED_OP, SCHEDOP_SHUTDOWN as usize, &raw mut args as usize) };
        sched_yield();
    }
}
