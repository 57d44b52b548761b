//! The xenstore client: the guest's side of the configuration database that
//! dom0's xenstored keeps (`docs/misc/xenstore.txt`).
//!
//! Four parts, each usable alone:
//!
//! - [`wire`]: encoding requests and checking the daemon's messages, pure
//!   functions over bytes ([`wire::parse_reply`] is the fuzzing entry point);
//! - [`ring`]: the two 1 KiB byte rings of the shared xenstore page;
//! - [`client`]: [`Xenstore`], blocking operations over the ring and an
//!   event channel: read, write, directory, mkdir, rm, watches (events that
//!   arrive meanwhile are queued, boundedly) and transactions with `EAGAIN`
//!   retry;
//! - [`deadline`]: the [`Clock`] every request's deadline is measured in,
//!   and the circuit breaker that makes a stalled daemon cost one timeout.
//!
//! The simulated daemon they are tested against, and the hostile-daemon
//! driver of the `xenstore_client` fuzz target, are in the `xen-sim` crate
//! (`xen_sim::xenstore`, `xen_sim::xenstore::exercise`); the tests are in
//! `tests/xenstore.rs`.
//!
//! Contract: everything the daemon sends is untrusted, and so is its
//! promptness. A malformed reply, an unknown errno name, a reply to the
//! wrong request or ring indices that make no sense come back as a
//! [`XenstoreError`], and the client stays usable whenever the byte stream
//! can still be framed; a daemon that does not answer costs a request its
//! deadline (`TimedOut`), and later requests nothing until it answers again.
//!
//! Never: panic on anything the daemon writes, wait for it past a
//! request's deadline, or read shared memory other than through atomics.

pub mod client;
pub mod deadline;
pub mod error;
pub mod ring;
pub mod wire;

pub use client::{Transaction, WATCH_EVENT_QUEUE_LIMIT, Xenstore};
pub use deadline::{Clock, DEFAULT_REQUEST_TIMEOUT_NS, STALLED_PROBE_INTERVAL_NS};
pub use error::XenstoreError;
pub use wire::{TransactionId, WatchEvent};
