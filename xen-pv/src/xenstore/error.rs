//! What can go wrong talking to xenstore, as one value type.
//!
//! The daemon reports failures as an `XS_ERROR` reply whose payload is the
//! name of a POSIX errno (`"ENOENT\0"`, the `xsd_errors` table of
//! `io/xs_wire.h`); [`XenstoreError::from_wire_name`] maps those names, and
//! [`XenstoreError::wire_name`] gives them back (the simulated daemon uses
//! it). Everything else that can fail (a reply that breaks the protocol, a
//! daemon that does not answer in time, an event-channel hypercall) has its
//! own variant.
//!
//! Never: panic on a name the daemon sends, or lose the text of one it
//! does not know.

use crate::hypervisor::XenError;
use alloc::string::String;

/// A failed xenstore operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XenstoreError {
    /// `ENOENT`: no such node (or transaction).
    NotFound,
    /// `EACCES`: the node's permissions forbid it.
    PermissionDenied,
    /// `EAGAIN`: the transaction conflicted with another change; retry it.
    TryAgain,
    /// `EINVAL`: a malformed path, token or request.
    InvalidInput,
    /// `EEXIST`: the watch is already registered.
    AlreadyExists,
    /// `EISDIR`
    IsADirectory,
    /// `ENOSPC`
    NoSpace,
    /// `EIO`
    InputOutput,
    /// `ENOTEMPTY`
    DirectoryNotEmpty,
    /// `ENOSYS`: the daemon does not implement the request.
    Unsupported,
    /// `EROFS`
    ReadOnlyFilesystem,
    /// `EBUSY`
    Busy,
    /// `EISCONN`
    AlreadyConnected,
    /// `E2BIG`: a request or a quota is too large (also returned, without
    /// asking the daemon, for a request over `XENSTORE_PAYLOAD_MAX`).
    TooBig,
    /// `ENOMEM`
    OutOfMemory,
    /// `EPERM`
    NotPermitted,
    /// An `XS_ERROR` whose name is not in the table above (kept as sent,
    /// lossily decoded).
    Unknown(String),
    /// The daemon broke the protocol: what it got wrong.
    Protocol(&'static str),
    /// The daemon did not answer within the request timeout, or has sent
    /// nothing since a request timed out (the request was then not sent).
    /// Whether a request that was sent took effect is unknown.
    TimedOut,
    /// An event-channel hypercall failed.
    Xen(XenError),
}

/// The errno names of `xsd_errors`, paired with their variants.
const WIRE_NAMES: [(&str, XenstoreError); 16] = [
    ("EINVAL", XenstoreError::InvalidInput),
    ("EACCES", XenstoreError::PermissionDenied),
    ("EEXIST", XenstoreError::AlreadyExists),
    ("EISDIR", XenstoreError::IsADirectory),
    ("ENOENT", XenstoreError::NotFound),
    ("ENOMEM", XenstoreError::OutOfMemory),
    ("ENOSPC", XenstoreError::NoSpace),
    ("EIO", XenstoreError::InputOutput),
    ("ENOTEMPTY", XenstoreError::DirectoryNotEmpty),
    ("ENOSYS", XenstoreError::Unsupported),
    ("EROFS", XenstoreError::ReadOnlyFilesystem),
    ("EBUSY", XenstoreError::Busy),
    ("EAGAIN", XenstoreError::TryAgain),
    ("EISCONN", XenstoreError::AlreadyConnected),
    ("E2BIG", XenstoreError::TooBig),
    ("EPERM", XenstoreError::NotPermitted),
];

impl XenstoreError {
    /// The error an `XS_ERROR` payload names (without its terminating NUL).
    pub fn from_wire_name(name: &[u8]) -> Self {
        WIRE_NAMES
            .iter()
            .find(|(known, _)| known.as_bytes() == name)
            .map(|(_, error)| error.clone())
            .unwrap_or_else(|| XenstoreError::Unknown(String::from_utf8_lossy(name).into_owned()))
    }

    /// The errno name the daemon sends for this error, if it has one.
    pub fn wire_name(&self) -> Option<&'static str> {
        WIRE_NAMES.iter().find(|(_, error)| error == self).map(|(name, _)| *name)
    }
}

impl From<XenError> for XenstoreError {
    fn from(error: XenError) -> Self {
        XenstoreError::Xen(error)
    }
}

impl core::fmt::Display for XenstoreError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            XenstoreError::Unknown(name) => write!(formatter, "xenstore error {name}"),
            XenstoreError::Protocol(what) => write!(formatter, "xenstore protocol error: {what}"),
            XenstoreError::TimedOut => write!(formatter, "xenstore request timed out"),
            XenstoreError::Xen(error) => write!(formatter, "hypercall failed with errno {}", error.0),
            known => write!(formatter, "xenstore error {}", known.wire_name().unwrap_or("?")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_maps_both_ways() {
        for (name, error) in WIRE_NAMES.iter() {
            assert_eq!(XenstoreError::from_wire_name(name.as_bytes()), *error);
            assert_eq!(error.wire_name(), Some(*name));
        }
    }

    #[test]
    fn unknown_names_are_kept_even_when_not_utf8() {
        assert_eq!(XenstoreError::from_wire_name(b"EWHAT"), XenstoreError::Unknown("EWHAT".into()));
        assert_eq!(XenstoreError::from_wire_name(b"\xffX"), XenstoreError::Unknown("\u{fffd}X".into()));
        assert_eq!(XenstoreError::Protocol("x").wire_name(), None);
        assert_eq!(XenstoreError::TimedOut.wire_name(), None);
    }
}
