//! Event channel operations (`event_channel.h`).

use crate::abi::DomainId;
use crate::{assert_abi_offset, assert_abi_size};

/// An event channel port number (`evtchn_port_t`).
pub type Port = u32;

/// `EVTCHNOP_bind_virq`
pub const EVTCHNOP_BIND_VIRQ: u32 = 1;
/// `EVTCHNOP_close`
pub const EVTCHNOP_CLOSE: u32 = 3;
/// `EVTCHNOP_send`
pub const EVTCHNOP_SEND: u32 = 4;
/// `EVTCHNOP_alloc_unbound`
pub const EVTCHNOP_ALLOC_UNBOUND: u32 = 6;
/// `EVTCHNOP_unmask`
pub const EVTCHNOP_UNMASK: u32 = 9;

/// `struct evtchn_send`, `evtchn_close` and `evtchn_unmask`: one port.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EventChannelPort {
    /// The local port.
    pub port: Port,
}
assert_abi_size!(EventChannelPort, 4);

/// `struct evtchn_alloc_unbound`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EventChannelAllocUnbound {
    /// IN: the allocating domain (`DOMID_SELF`).
    pub dom: DomainId,
    /// IN: the domain allowed to bind the other end.
    pub remote_dom: DomainId,
    /// OUT: the new local port.
    pub port: Port,
}
assert_abi_size!(EventChannelAllocUnbound, 8);
assert_abi_offset!(EventChannelAllocUnbound, port, 4);

/// `struct evtchn_bind_virq`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EventChannelBindVirq {
    /// IN: the virtual IRQ (`VIRQ_*`).
    pub virq: u32,
    /// IN: the vCPU.
    pub vcpu: u32,
    /// OUT: the new local port.
    pub port: Port,
}
assert_abi_size!(EventChannelBindVirq, 12);
assert_abi_offset!(EventChannelBindVirq, port, 8);
