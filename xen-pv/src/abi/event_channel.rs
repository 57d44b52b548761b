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
/// `EVTCHNOP_status`
pub const EVTCHNOP_STATUS: u32 = 5;
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

/// `EVTCHNSTAT_closed`: the port is not in use.
pub const EVTCHNSTAT_CLOSED: u32 = 0;
/// `EVTCHNSTAT_unbound`: waiting for a remote domain to bind.
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
/// `EVTCHNSTAT_interdomain`: connected to a remote domain's port.
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
/// `EVTCHNSTAT_pirq`: bound to a physical IRQ.
pub const EVTCHNSTAT_PIRQ: u32 = 3;
/// `EVTCHNSTAT_virq`: bound to a virtual IRQ.
pub const EVTCHNSTAT_VIRQ: u32 = 4;
/// `EVTCHNSTAT_ipi`: bound to an inter-vCPU interrupt.
pub const EVTCHNSTAT_IPI: u32 = 5;

/// `struct evtchn_status`: what a port is bound to. The union's members
/// overlap at offset 16; [`EventChannelStatus::detail`] holds its bytes as
/// two words (`unbound.dom` or `interdomain.dom` in the low 16 bits of the
/// first, `interdomain.port` in the second; `pirq` and `virq` in the first).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EventChannelStatus {
    /// IN: the domain (`DOMID_SELF`).
    pub dom: DomainId,
    /// Padding in the C layout.
    pub pad: u16,
    /// IN: the port asked about.
    pub port: Port,
    /// OUT: an `EVTCHNSTAT_*` value.
    pub status: u32,
    /// OUT: the vCPU notified.
    pub vcpu: u32,
    /// OUT: the union's two words.
    pub detail: [u32; 2],
}
assert_abi_size!(EventChannelStatus, 24);
assert_abi_offset!(EventChannelStatus, port, 4);
assert_abi_offset!(EventChannelStatus, status, 8);
assert_abi_offset!(EventChannelStatus, vcpu, 12);
assert_abi_offset!(EventChannelStatus, detail, 16);
