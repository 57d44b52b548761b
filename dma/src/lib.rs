//! The handle-based DMA layer: `map` returns a handle; `sync` and `unmap`
//! take it.
//!
//! A device is told where a buffer is by a bus address, which depends on
//! what stands between it and memory. A Xen frontend shares memory with its
//! backend by granting pages: the backend is told a grant reference and an
//! offset, and maps or copies through it. On bare metal without an IOMMU the
//! device is told the physical address. This crate is the layer between
//! drivers (netfront) and that translation, built the way the 2014 Linux
//! discussion asked for and Linux never merged: [`DmaDevice::map`] moves a
//! [`DmaBuffer`] into a [`DmaHandle`] that holds everything the mapping is
//! (device domain, one bus page per page, frames, CPU address, offset,
//! length, bounce pages), and every later operation takes that handle.
//! [`DmaHandle::dma_addr`] derives the bus address from it; nothing goes the
//! other way. There is no map from bus addresses to mappings, no lookup and
//! no tree walk anywhere in the crate: the handle is the key. (`docs/dma.md`
//! tells the story and the alternatives; the `dma_lookup` benchmark measures
//! the difference.)
//!
//! # The pieces
//! - [`PageSource`]: where DMA pages come from (the kernel's frame allocator
//!   on Xen, the simulation's guest RAM in tests). Buffers own whole pages,
//!   zeroed outside the buffer: a granted page never shows the backend
//!   anything else (XSA-403).
//! - [`Translation`]: how the device is given pages and what it is told for
//!   each, a [`BusPage`]: the guest's grant table on Xen (a grant reference,
//!   revoked at unmap), or [`IdentityTranslation`] (the frame number: bus
//!   address = physical address, nothing to revoke).
//! - Directions [`ToDevice`], [`FromDevice`], [`Bidirectional`] are types;
//!   [`CpuWrites`] and [`DeviceWrites`] say which syncs and which accessors
//!   exist, so a wrong-direction sync does not compile.
//! - [`DmaDevice`]: the device for one backend domain, over any translation:
//!   map, sync, unmap, deferred release, counters;
//!   [`BackendTrust::Untrusted`] bounces every buffer through persistently
//!   translated pages. ([`GrantDma`] is its name over the grant table.)
//! - [`DmaPool`]: persistent mappings reused per packet (no translation work
//!   in steady state).
//! - [`guarantees`]: what the types rule out, as compile-fail doc tests.
//!
//! # Contract
//! Ownership is the protocol. The CPU reaches a mapped buffer's bytes only
//! through [`DmaHandle::read`] / [`DmaHandle::write`] / [`DmaHandle::update`],
//! which sync around the access. `unmap` consumes the handle and returns the
//! buffer; a grant the backend still holds makes it fail with the buffer
//! still owned ([`StillInUse`]), and a deferred-release queue retries. Every
//! error hands back what the caller owned. Grant and bounce-page exhaustion
//! are error values (backpressure). A driver that is correct over the
//! identity translation, which cannot refuse an unmap, unmaps a buffer only
//! once the device has answered for every page of it.
//!
//! Never: free or reuse a page a grant still covers (XSA-396); panic because
//! of anything a backend does; grant a page holding bytes outside the buffer.
//!
//! Unsafe code is denied but in five modules: turning a run's address into a
//! slice (`buffer.rs`), copying to and from bounce pages (`bounce.rs`), a
//! shared page as a reference (`shared.rs`, with the [`SharedMemory`]
//! contract), the [`PageSource`] contract that makes them sound (`page.rs`),
//! and the simulated page source (`sim.rs`, feature `test-utils`).
#![cfg_attr(target_os = "none", no_std)]
#![deny(unsafe_code)]

extern crate alloc;

#[allow(unsafe_code)] // copies to and from bounce pages
mod bounce;
#[allow(unsafe_code)] // a page run's address as a slice
mod buffer;
mod counters;
mod device;
mod direction;
mod error;
mod grant_list;
pub mod guarantees;
mod handle;
mod identity;
#[allow(unsafe_code)] // the `unsafe trait PageSource` contract, the one call of its `unsafe fn free`
mod page;
mod pool;
#[allow(unsafe_code)] // the `unsafe trait SharedMemory` contract, a shared page as a reference
mod shared;
#[cfg(feature = "test-utils")]
#[allow(unsafe_code)] // the simulated page source's `unsafe impl PageSource`
pub mod sim;
mod translation;

pub use bounce::BounceCapacity;
pub use buffer::{AllocateError, DmaBuffer};
pub use counters::DmaCounters;
pub use device::{BackendTrust, DmaDevice, GrantDma};
pub use direction::{Bidirectional, CpuWrites, DeviceWrites, Direction, FromDevice, ToDevice};
pub use error::{CloseError, CloseRefusal, MapError, MapFailure, Released, SetupError, StillInUse};
pub use handle::{DmaAddress, DmaHandle, Posted, Segment};
pub use identity::IdentityTranslation;
pub use page::{OutOfPages, PAGE_SIZE, PageRun, PageSource, SourceId};
pub use pool::{DmaPool, PoolEmpty, PoolError};
pub use shared::{ShareError, SharedMemory, SharedPage, StillShared};
pub use translation::{BusPage, Translation, Translation as Grants};
