//! Hypercalls: the instruction per architecture, and [`Xen`], the
//! [`Hypervisor`] that makes them.
//!
//! The architecture module provides `raw::hypercall2/3` with the Xen calling
//! convention of that architecture; everything here is architecture-neutral.
//! Each call documents what memory the hypervisor reads or writes, which is
//! why the raw calls are `unsafe`. Every hypercall is counted, so the
//! appliance can report hypercalls per request.

#[cfg(target_arch = "x86_64")]
#[path = "x86_64.rs"]
mod raw;
#[cfg(target_arch = "aarch64")]
#[path = "aarch64.rs"]
mod raw;

/// The shared info page's layout on this architecture.
pub use raw::SharedInfo;
#[cfg(target_arch = "x86_64")]
pub use raw::{XenSignature, detect_xen, install_hypercall_page};
#[cfg(target_arch = "aarch64")]
pub use raw::{counter_frequency, system_time};

use crate::abi::event_channel::{
    EVTCHNOP_ALLOC_UNBOUND, EVTCHNOP_BIND_VIRQ, EVTCHNOP_CLOSE, EVTCHNOP_SEND, EVTCHNOP_STATUS, EVTCHNOP_UNMASK,
    EventChannelAllocUnbound, EventChannelBindVirq, EventChannelPort, EventChannelStatus, Port,
};
use crate::abi::grant_table::{GNTTABOP_QUERY_SIZE, GrantTableQuerySize};
use crate::abi::hvm::{HVMOP_GET_PARAM, HvmParam};
use crate::abi::hypercall_number as nr;
use crate::abi::memory::{AddToPhysmap, XENMEM_ADD_TO_PHYSMAP};
use crate::abi::sched::{SCHEDOP_POLL, SCHEDOP_SHUTDOWN, SCHEDOP_YIELD, SchedPoll, SchedShutdown, ShutdownReason};
use crate::abi::{DOMID_SELF, DomainId};
pub use crate::hypervisor::{GrantTableSize, Hypervisor, PortStatus, XenError};
use core::sync::atomic::{AtomicU64, Ordering};

/// The real hypervisor. Zero-sized: all state lives in Xen.
pub struct Xen;

/// The one instance.
pub static XEN: Xen = Xen;

/// Hypercalls made since boot.
pub static HYPERCALLS: AtomicU64 = AtomicU64::new(0);

pub(crate) fn check(ret: isize) -> Result<usize, XenError> {
    if ret < 0 { Err(XenError(-(ret as i64))) } else { Ok(ret as usize) }
}

/// Makes hypercall `number(command, argument)` where `argument` points at a
/// `T` that Xen reads and may write.
///
/// # Safety
/// `T` must be the structure this `number`/`command` pair expects.
unsafe fn call_with<T>(number: usize, command: u32, argument: &mut T) -> Result<usize, XenError> {
    HYPERCALLS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: `argument` is a live, exclusive reference to the structure the
    // caller vouches for; Xen accesses it only during the call.
    let ret = unsafe { raw::hypercall2(number, command as usize, argument as *mut T as usize) };
    check(ret)
}

impl Hypervisor for Xen {
    fn hvm_get_param(&self, index: u32) -> Result<u64, XenError> {
        let mut param = HvmParam { domid: DOMID_SELF, pad: 0, index, value: 0 };
        // SAFETY: HVMOP_get_param takes a `xen_hvm_param`.
        unsafe { call_with(nr::HVM_OP, HVMOP_GET_PARAM, &mut param) }.map(|_| param.value)
    }

    fn add_to_physmap(&self, space: u32, index: u64, gpfn: u64) -> Result<(), XenError> {
        let mut args = AddToPhysmap { domid: DOMID_SELF, size: 0, space, idx: index, gpfn };
        // SAFETY: XENMEM_add_to_physmap takes a `xen_add_to_physmap`.
        unsafe { call_with(nr::MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, &mut args) }.map(drop)
    }

    fn grant_table_query_size(&self) -> Result<GrantTableSize, XenError> {
        let mut args = GrantTableQuerySize { domid: DOMID_SELF, ..Default::default() };
        HYPERCALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: GNTTABOP_query_size takes an array of `count` (1)
        // `gnttab_query_size` structures.
        let ret =
            unsafe { raw::hypercall3(nr::GRANT_TABLE_OP, GNTTABOP_QUERY_SIZE as usize, &raw mut args as usize, 1) };
        check(ret)?;
        if args.status != 0 {
            return Err(XenError::EINVAL);
        }
        Ok(GrantTableSize { frames: args.nr_frames, max_frames: args.max_nr_frames })
    }

    fn event_channel_alloc_unbound(&self, remote: DomainId) -> Result<Port, XenError> {
        let mut args = EventChannelAllocUnbound { dom: DOMID_SELF, remote_dom: remote, port: 0 };
        // SAFETY: EVTCHNOP_alloc_unbound takes an `evtchn_alloc_unbound`.
        unsafe { call_with(nr::EVENT_CHANNEL_OP, EVTCHNOP_ALLOC_UNBOUND, &mut args) }.map(|_| args.port)
    }

    fn event_channel_bind_virq(&self, virq: u32, vcpu: u32) -> Result<Port, XenError> {
        let mut args = EventChannelBindVirq { virq, vcpu, port: 0 };
        // SAFETY: EVTCHNOP_bind_virq takes an `evtchn_bind_virq`.
        unsafe { call_with(nr::EVENT_CHANNEL_OP, EVTCHNOP_BIND_VIRQ, &mut args) }.map(|_| args.port)
    }

    fn event_channel_send(&self, port: Port) -> Result<(), XenError> {
        let mut args = EventChannelPort { port };
        // SAFETY: EVTCHNOP_send takes an `evtchn_send`.
        unsafe { call_with(nr::EVENT_CHANNEL_OP, EVTCHNOP_SEND, &mut args) }.map(drop)
    }

    fn event_channel_close(&self, port: Port) -> Result<(), XenError> {
        let mut args = EventChannelPort { port };
        // SAFETY: EVTCHNOP_close takes an `evtchn_close`.
        unsafe { call_with(nr::EVENT_CHANNEL_OP, EVTCHNOP_CLOSE, &mut args) }.map(drop)
    }

    fn event_channel_status(&self, port: Port) -> Result<PortStatus, XenError> {
        let mut args = EventChannelStatus { dom: DOMID_SELF, port, ..Default::default() };
        // SAFETY: EVTCHNOP_status takes an `evtchn_status`.
        match unsafe { call_with(nr::EVENT_CHANNEL_OP, EVTCHNOP_STATUS, &mut args) } {
            Ok(_) => Ok(PortStatus::from_abi(&args)),
            // A port beyond those the domain has is not in use either.
            Err(XenError::EINVAL) => Ok(PortStatus::Closed),
            Err(error) => Err(error),
        }
    }

    fn event_channel_unmask(&self, port: Port) -> Result<(), XenError> {
        let mut args = EventChannelPort { port };
        // SAFETY: EVTCHNOP_unmask takes an `evtchn_unmask`.
        unsafe { call_with(nr::EVENT_CHANNEL_OP, EVTCHNOP_UNMASK, &mut args) }.map(drop)
    }

    fn set_singleshot_timer(&self, vcpu: u32, deadline: u64) -> Result<(), XenError> {
        raw::set_singleshot_timer(vcpu, deadline)
    }

    fn stop_singleshot_timer(&self, vcpu: u32) -> Result<(), XenError> {
        raw::stop_singleshot_timer(vcpu)
    }

    fn timer_raises_virq(&self) -> bool {
        raw::TIMER_RAISES_VIRQ
    }

    fn poll(&self, ports: &[Port], deadline: Option<u64>) -> Result<(), XenError> {
        // Without a deadline of the caller's, the architecture may add one
        // (aarch64: the safety net behind its virtual timer).
        let timeout = deadline.unwrap_or_else(raw::poll_timeout);
        let mut args = SchedPoll { ports: ports.as_ptr(), nr_ports: ports.len() as u32, pad: 0, timeout };
        // SAFETY: SCHEDOP_poll takes a `sched_poll` whose handle points at
        // `nr_ports` ports, which `ports` provides for the whole call.
        let result = unsafe { call_with(nr::SCHED_OP, SCHEDOP_POLL, &mut args) }.map(drop);
        raw::after_poll();
        result
    }

    fn yield_now(&self) {
        HYPERCALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: SCHEDOP_yield takes no argument memory.
        unsafe { raw::hypercall2(nr::SCHED_OP, SCHEDOP_YIELD as usize, 0) };
    }

    fn shutdown(&self, reason: ShutdownReason) -> Result<(), XenError> {
        let mut args = SchedShutdown { reason: reason as u32 };
        // SAFETY: SCHEDOP_shutdown takes a `sched_shutdown`.
        unsafe { call_with(nr::SCHED_OP, SCHEDOP_SHUTDOWN, &mut args) }.map(drop)
    }

    fn suspend(&self) -> Result<usize, XenError> {
        let mut args = SchedShutdown { reason: ShutdownReason::Suspend as u32 };
        HYPERCALLS.fetch_add(1, Ordering::Relaxed);
        // The third argument is the start info frame a PV guest names for
        // the toolstack; an HVM or PVH guest has none, and Xen and the
        // toolstack read nothing there: 0.
        // SAFETY: SCHEDOP_shutdown takes a `sched_shutdown`, which `args`
        // is for the whole call; Xen reads nothing through the third
        // argument.
        let ret = unsafe { raw::hypercall3(nr::SCHED_OP, SCHEDOP_SHUTDOWN as usize, &raw mut args as usize, 0) };
        check(ret)
    }
}

/// Xen's (major, minor) version (`XENVER_version`).
pub fn xen_version() -> Result<(u32, u32), XenError> {
    HYPERCALLS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: XENVER_version takes no argument memory (the pointer is NULL).
    let ret = unsafe { raw::hypercall2(nr::XEN_VERSION, XENVER_VERSION, 0) };
    let version = check(ret)?;
    Ok(((version >> 16) as u32, (version & 0xffff) as u32))
}

/// `XENVER_version`: the sub-command of `xen_version` that returns the version.
const XENVER_VERSION: usize = 0;

/// Ends this domain. Xen does not return from a successful shutdown; should
/// it ever, this keeps asking.
pub fn shutdown(reason: ShutdownReason) -> ! {
    loop {
        let _ = XEN.shutdown(reason);
        XEN.yield_now();
    }
}
