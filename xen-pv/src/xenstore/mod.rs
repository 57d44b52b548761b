//! The xenstore client: the guest's side of the configuration database that
//! dom0's xenstored keeps (`docs/misc/xenstore.txt`).
//!
//! Three layers, each usable alone:
//!
//! - [`wire`]: encoding requests and checking the daemon's messages, pure
//!   functions over bytes ([`wire::parse_reply`] is the fuzzing entry point);
//! - [`ring`]: the two 1 KiB byte rings of the shared xenstore page;
//! - [`client`]: [`Xenstore`], blocking operations over the ring and an
//!   event channel: read, write, directory, mkdir, rm, watches (events that
//!   arrive meanwhile are queued) and transactions with `EAGAIN` retry.
//!
//! Contract: everything the daemon sends is untrusted. A malformed reply,
//! an unknown errno name, a reply to the wrong request or ring indices that
//! make no sense come back as a [`XenstoreError`], and the client stays
//! usable whenever the byte stream can still be framed.
//!
//! Never: panic on anything the daemon writes, or read shared memory other
//! than through atomics.

pub mod client;
pub mod error;
pub mod ring;
pub mod wire;

#[cfg(test)]
mod tests;

pub use client::{Transaction, Xenstore};
pub use error::XenstoreError;
pub use wire::{TransactionId, WatchEvent};
