//! The xenstore wire protocol (`io/xs_wire.h`).
//!
//! Requests and replies are a 16-byte [`MessageHeader`] followed by `len`
//! payload bytes (zero-terminated strings), carried over two 1 KiB byte
//! rings in one shared page ([`XenstoreInterface`]).

use crate::{assert_abi_offset, assert_abi_size};
use core::sync::atomic::{AtomicU8, AtomicU32};

/// Size of each ring (`XENSTORE_RING_SIZE`).
pub const XENSTORE_RING_SIZE: usize = 1024;
/// Largest payload of one message (`XENSTORE_PAYLOAD_MAX`).
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// Longest absolute path (`XENSTORE_ABS_PATH_MAX`).
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;

/// `enum xsd_sockmsg_type`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum MessageType {
    Debug = 0,
    Directory = 1,
    Read = 2,
    GetPerms = 3,
    Watch = 4,
    Unwatch = 5,
    TransactionStart = 6,
    TransactionEnd = 7,
    Introduce = 8,
    Release = 9,
    GetDomainPath = 10,
    Write = 11,
    Mkdir = 12,
    Rm = 13,
    SetPerms = 14,
    WatchEvent = 15,
    Error = 16,
    IsDomainIntroduced = 17,
    Resume = 18,
    SetTarget = 19,
    Restrict = 20,
    ResetWatches = 21,
    DirectoryPart = 22,
}

impl MessageType {
    /// The type with this wire value, if there is one.
    pub fn from_wire(value: u32) -> Option<Self> {
        use MessageType::*;
        const ALL: [MessageType; 23] = [
            Debug,
            Directory,
            Read,
            GetPerms,
            Watch,
            Unwatch,
            TransactionStart,
            TransactionEnd,
            Introduce,
            Release,
            GetDomainPath,
            Write,
            Mkdir,
            Rm,
            SetPerms,
            WatchEvent,
            Error,
            IsDomainIntroduced,
            Resume,
            SetTarget,
            Restrict,
            ResetWatches,
            DirectoryPart,
        ];
        ALL.get(value as usize).copied()
    }
}

/// `struct xsd_sockmsg`, in host byte order (little-endian on every target).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageHeader {
    /// A [`MessageType`] value.
    pub kind: u32,
    /// Request identifier, echoed in the reply.
    pub request_id: u32,
    /// Transaction identifier, 0 outside transactions.
    pub transaction_id: u32,
    /// Payload length.
    pub len: u32,
}
assert_abi_size!(MessageHeader, 16);

impl MessageHeader {
    /// Size on the wire.
    pub const SIZE: usize = 16;

    /// The header as wire bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut bytes = [0; 16];
        for (chunk, value) in bytes.chunks_exact_mut(4).zip([self.kind, self.request_id, self.transaction_id, self.len])
        {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        bytes
    }

    /// Reads a header from wire bytes.
    pub fn from_bytes(bytes: &[u8; 16]) -> Self {
        let word = |index: usize| u32::from_le_bytes(bytes[index * 4..index * 4 + 4].try_into().unwrap_or_default());
        Self { kind: word(0), request_id: word(1), transaction_id: word(2), len: word(3) }
    }
}

/// `struct xenstore_domain_interface`.
#[repr(C)]
pub struct XenstoreInterface {
    /// Requests to the xenstore daemon.
    pub request: [AtomicU8; XENSTORE_RING_SIZE],
    /// Replies and watch events.
    pub response: [AtomicU8; XENSTORE_RING_SIZE],
    /// Consumer index of `request` (daemon-owned).
    pub req_cons: AtomicU32,
    /// Producer index of `request` (guest-owned).
    pub req_prod: AtomicU32,
    /// Consumer index of `response` (guest-owned).
    pub rsp_cons: AtomicU32,
    /// Producer index of `response` (daemon-owned).
    pub rsp_prod: AtomicU32,
    /// Feature bits of the server.
    pub server_features: AtomicU32,
    /// Connection state (`XENSTORE_CONNECTED`, `XENSTORE_RECONNECT`).
    pub connection: AtomicU32,
}
assert_abi_size!(XenstoreInterface, 2072);
assert_abi_offset!(XenstoreInterface, response, 1024);
assert_abi_offset!(XenstoreInterface, req_cons, 2048);
assert_abi_offset!(XenstoreInterface, req_prod, 2052);
assert_abi_offset!(XenstoreInterface, rsp_cons, 2056);
assert_abi_offset!(XenstoreInterface, rsp_prod, 2060);
assert_abi_offset!(XenstoreInterface, server_features, 2064);
assert_abi_offset!(XenstoreInterface, connection, 2068);

impl XenstoreInterface {
    /// A zeroed interface in ordinary memory, for host tests and simulations.
    pub fn new_zeroed() -> Self {
        Self {
            request: [const { AtomicU8::new(0) }; XENSTORE_RING_SIZE],
            response: [const { AtomicU8::new(0) }; XENSTORE_RING_SIZE],
            req_cons: AtomicU32::new(0),
            req_prod: AtomicU32::new(0),
            rsp_cons: AtomicU32::new(0),
            rsp_prod: AtomicU32::new(0),
            server_features: AtomicU32::new(0),
            connection: AtomicU32::new(0),
        }
    }
}
