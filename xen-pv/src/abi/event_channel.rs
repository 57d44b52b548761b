//! Event channel operations (`event_channel.h`).

use crate::assert_abi_size;

/// An event channel port number (`evtchn_port_t`).
pub type Port = u32;

/// `EVTCHNOP_send`
pub const EVTCHNOP_SEND: u32 = 4;

/// `struct evtchn_send`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EventChannelSend {
    /// The local port to notify through.
    pub port: Port,
}
assert_abi_size!(EventChannelSend, 4);
