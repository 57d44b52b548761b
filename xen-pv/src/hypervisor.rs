//! The one seam between Xen logic and the hypervisor.
//!
//! Every service in this crate (event channels, timers, xenstore, grant
//! tables) reaches Xen only through [`Hypervisor`]. On a Xen guest the
//! implementation is `hypercall::Xen` (a module built for Xen guests only),
//! which makes the hypercalls; in host tests it is `xen_sim::SimXen` (crate
//! `xen-sim`), a simulation with Xen's semantics (and a xenstore daemon and
//! backends on the other side).
//!
//! Memory that Xen shares with the guest (shared info, rings, grant-table
//! frames) is not behind the trait: services get plain references to it,
//! which on Xen point at the mapped pages and in tests at ordinary memory.

use crate::abi::DomainId;
use crate::abi::event_channel::{
    EVTCHNSTAT_CLOSED, EVTCHNSTAT_INTERDOMAIN, EVTCHNSTAT_UNBOUND, EVTCHNSTAT_VIRQ, EventChannelStatus, Port,
};
use crate::abi::sched::ShutdownReason;

/// A hypercall's negative return value: a Xen errno (`errno.h`), positive here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XenError(pub i64);

impl XenError {
    /// `EPERM`
    pub const EPERM: XenError = XenError(1);
    /// `ENOENT`
    pub const ENOENT: XenError = XenError(2);
    /// `EAGAIN`
    pub const EAGAIN: XenError = XenError(11);
    /// `ENOMEM`
    pub const ENOMEM: XenError = XenError(12);
    /// `EFAULT`
    pub const EFAULT: XenError = XenError(14);
    /// `EBUSY`
    pub const EBUSY: XenError = XenError(16);
    /// `EINVAL`
    pub const EINVAL: XenError = XenError(22);
    /// `ENOSPC`
    pub const ENOSPC: XenError = XenError(28);
    /// `ENOSYS`
    pub const ENOSYS: XenError = XenError(38);
    /// `ETIME`
    pub const ETIME: XenError = XenError(62);
}

/// What `GNTTABOP_query_size` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantTableSize {
    /// Frames the table has now.
    pub frames: u32,
    /// Frames it may grow to.
    pub max_frames: u32,
}

/// What a port is bound to (`EVTCHNOP_status`), as far as xenecho asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortStatus {
    /// Not in use (or beyond the ports the domain has).
    Closed,
    /// Waiting for `remote` to bind.
    Unbound {
        /// The domain allowed to bind.
        remote: DomainId,
    },
    /// Connected to another domain's port.
    Interdomain {
        /// The other domain.
        remote: DomainId,
    },
    /// Bound to virtual IRQ `virq` on `vcpu`.
    Virq {
        /// The `VIRQ_*` number.
        virq: u32,
        /// The vCPU.
        vcpu: u32,
    },
    /// A physical IRQ or an inter-vCPU interrupt (xenecho binds neither).
    Other(u32),
}

impl PortStatus {
    /// Reads what `EVTCHNOP_status` wrote.
    pub fn from_abi(raw: &EventChannelStatus) -> Self {
        match raw.status {
            EVTCHNSTAT_CLOSED => Self::Closed,
            EVTCHNSTAT_UNBOUND => Self::Unbound { remote: raw.detail[0] as DomainId },
            EVTCHNSTAT_INTERDOMAIN => Self::Interdomain { remote: raw.detail[0] as DomainId },
            EVTCHNSTAT_VIRQ => Self::Virq { virq: raw.detail[0], vcpu: raw.vcpu },
            other => Self::Other(other),
        }
    }
}

/// The hypercalls xenecho makes, one method each.
pub trait Hypervisor {
    /// `HVMOP_get_param` for this domain.
    fn hvm_get_param(&self, index: u32) -> Result<u64, XenError>;

    /// `XENMEM_add_to_physmap`: makes Xen's page `index` of `space` (shared
    /// info, grant-table frame) appear at guest frame `gpfn`.
    fn add_to_physmap(&self, space: u32, index: u64, gpfn: u64) -> Result<(), XenError>;

    /// `GNTTABOP_query_size` for this domain.
    fn grant_table_query_size(&self) -> Result<GrantTableSize, XenError>;

    /// `EVTCHNOP_alloc_unbound`: a new port that `remote` may bind to.
    fn event_channel_alloc_unbound(&self, remote: DomainId) -> Result<Port, XenError>;

    /// `EVTCHNOP_bind_virq`: a new port for virtual IRQ `virq` on `vcpu`.
    fn event_channel_bind_virq(&self, virq: u32, vcpu: u32) -> Result<Port, XenError>;

    /// `EVTCHNOP_send`: notifies the other end of `port`.
    fn event_channel_send(&self, port: Port) -> Result<(), XenError>;

    /// `EVTCHNOP_close`.
    fn event_channel_close(&self, port: Port) -> Result<(), XenError>;

    /// `EVTCHNOP_status`: what `port` is bound to. A port the domain does
    /// not have reads as [`PortStatus::Closed`].
    fn event_channel_status(&self, port: Port) -> Result<PortStatus, XenError>;

    /// `EVTCHNOP_unmask`: clears the mask and re-raises a pending event.
    fn event_channel_unmask(&self, port: Port) -> Result<(), XenError>;

    /// `VCPUOP_set_singleshot_timer`: `VIRQ_TIMER` fires at `deadline`
    /// (system time, ns). Fails with `ETIME` if the deadline has passed.
    fn set_singleshot_timer(&self, vcpu: u32, deadline: u64) -> Result<(), XenError>;

    /// `VCPUOP_stop_singleshot_timer`.
    fn stop_singleshot_timer(&self, vcpu: u32) -> Result<(), XenError>;

    /// Whether the one-shot timer announces its expiry on the `VIRQ_TIMER`
    /// port, so that a timer armed once stays armed until that port fires
    /// (Xen on x86). Xen on ARM has no one-shot timer hypercall: there the
    /// guest's own generic timer wakes the poll, no port fires, and the
    /// timer is armed again on every wait (cheap: no hypercall), which is
    /// also how a passed deadline is noticed.
    fn timer_raises_virq(&self) -> bool {
        true
    }

    /// `SCHEDOP_poll`: sleeps until one of `ports` is pending or, with a
    /// deadline, until system time reaches it. Returns at once if a port is
    /// already pending.
    fn poll(&self, ports: &[Port], deadline: Option<u64>) -> Result<(), XenError>;

    /// `SCHEDOP_yield`.
    fn yield_now(&self);

    /// `SCHEDOP_shutdown`. Xen does not return from it; the simulation does.
    fn shutdown(&self, reason: ShutdownReason) -> Result<(), XenError>;

    /// `SCHEDOP_shutdown(SHUTDOWN_suspend)`: the domain stops until the
    /// toolstack has saved it, and then either runs again where it was (the
    /// suspend was cancelled) or is restored into a new domain. Returns the
    /// hypercall's value: 1 when Xen was told the suspend was cancelled,
    /// 0 otherwise (a new domain, or a cancellation Xen did not report; see
    /// `crate::suspend`).
    fn suspend(&self) -> Result<usize, XenError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::event_channel::EVTCHNSTAT_IPI;

    #[test]
    fn port_status_reads_the_union_by_status() {
        let raw = |status, vcpu, detail| EventChannelStatus { status, vcpu, detail, ..Default::default() };
        assert_eq!(PortStatus::from_abi(&raw(EVTCHNSTAT_CLOSED, 0, [7, 7])), PortStatus::Closed);
        assert_eq!(PortStatus::from_abi(&raw(EVTCHNSTAT_UNBOUND, 0, [0, 0])), PortStatus::Unbound { remote: 0 });
        assert_eq!(
            PortStatus::from_abi(&raw(EVTCHNSTAT_INTERDOMAIN, 0, [3, 9])),
            PortStatus::Interdomain { remote: 3 }
        );
        assert_eq!(PortStatus::from_abi(&raw(EVTCHNSTAT_VIRQ, 0, [0, 0])), PortStatus::Virq { virq: 0, vcpu: 0 });
        assert_eq!(PortStatus::from_abi(&raw(EVTCHNSTAT_IPI, 1, [0, 0])), PortStatus::Other(EVTCHNSTAT_IPI));
    }
}
