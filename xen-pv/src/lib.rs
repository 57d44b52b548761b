//! Xen ABI and hypercall bindings for xenecho, and the guest-side services
//! over them.
//!
//! This crate is the lowest layer above the hardware: it knows how the Xen
//! public headers lay out their structures and how to ask the hypervisor for
//! something. The bindings are two modules:
//!
//! - [`abi`]: `#[repr(C)]` mirrors of the structures in Xen's public headers
//!   (`xen/include/public/...`), each with compile-time size and offset checks
//!   whose numbers come from those headers, and the constants that go with
//!   them. Pure data: it builds and is tested on the host.
//! - `hypercall` (Xen guests only): the instruction that enters the
//!   hypervisor on each architecture, and thin typed wrappers over the
//!   hypercalls xenecho uses.
//!
//! Over them, the guest-side services, each reaching Xen only through the
//! [`Hypervisor`] seam: [`event_channel`], [`time`], [`timer`],
//! [`xenstore`], [`grant_table`], the front half of the shared [`ring`]s, and
//! [`suspend`] (suspending the domain and telling how it came back).
//! This crate is the bindings and those services, nothing else: the host
//! simulation of Xen they are tested against (hypervisor, grant table,
//! xenstored, netback, the back half of a ring) is the `xen-sim` crate, and
//! this crate's tests that need it are integration tests (`tests/`), with
//! `xen-sim` as a dev-dependency.
//!
//! Unsafe code is denied but in `hypercall`: the hypercall instruction and
//! page, and the timer registers on ARM64.
//!
//! Shared memory (rings, shared info) is described with atomic field types of
//! the same size as the C ones, so that safe code can read what another domain
//! writes concurrently without data races.
//!
//! Never: trust a value that another domain can change (every consumer
//! validates), or hide a hypercall's error code (they come back as
//! [`XenError`]).
#![cfg_attr(target_os = "none", no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod abi;
pub mod event_channel;
pub mod grant_table;
#[cfg(target_os = "none")]
#[allow(unsafe_code)] // the hypercall instruction, the hypercall page and its MSR
pub mod hypercall;
pub mod hypervisor;
pub mod ring;
pub mod suspend;
pub mod time;
pub mod timer;
pub mod xenstore;

pub use hypervisor::{Hypervisor, PortStatus, XenError};
pub use suspend::SuspendOutcome;
