//! What the types rule out, proven by doc tests that must not compile.
//!
//! Each guarantee is a pair: a `compile_fail` example, and next to it a twin
//! that differs only in the one forbidden thing and does compile, so the
//! failure is known to come from that thing and not from a typo in the
//! setup. The error code on each `compile_fail` fence names the intended
//! error; stable rustdoc ignores it, so run
//! `RUSTC_BOOTSTRAP=1 cargo test -p dma --doc` to have it checked too.
//!
//! Every example starts (hidden) from a simulated grant table, the guest's
//! `GrantTable` over it, a page source over the simulation's guest RAM, a
//! trusted device for backend domain 0, and a 64-byte `buffer`:
//!
//! ```
//! use core::cell::RefCell;
//! use dma::sim::SimPageSource;
//! use dma::*;
//! use xen_pv::grant_table::GrantTable;
//! use xen_sim::grant_table::SimGrantTable;
//! let xen = SimGrantTable::new(1, 1);
//! let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! let source = SimPageSource::new(&xen);
//! let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! # let _ = buffer;
//! ```
//!
//! This module has no items: it is documentation and tests.
//!
//! ## A `FromDevice` buffer cannot be synced for the device
//!
//! The CPU never writes a buffer the device fills, so there is nothing to
//! hand over: `sync_for_device` needs [`CpuWrites`](crate::CpuWrites), which
//! `FromDevice` is not (E0277).
//!
//! ```compile_fail,E0277
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut handle = device.map(buffer, FromDevice).unwrap();
//! device.sync_for_device(&mut handle);
//! ```
//!
//! The same call on a `ToDevice` handle compiles:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut handle = device.map(buffer, ToDevice).unwrap();
//! device.sync_for_device(&mut handle);
//! ```
//!
//! ## A `ToDevice` buffer cannot be synced for the CPU
//!
//! Nothing but the CPU writes a buffer it sends, so there is nothing to pick
//! up: `sync_for_cpu` needs [`DeviceWrites`](crate::DeviceWrites) (E0277).
//!
//! ```compile_fail,E0277
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut handle = device.map(buffer, ToDevice).unwrap();
//! device.sync_for_cpu(&mut handle);
//! ```
//!
//! The same call on a `FromDevice` handle compiles:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut handle = device.map(buffer, FromDevice).unwrap();
//! device.sync_for_cpu(&mut handle);
//! ```
//!
//! ## The CPU cannot write a buffer the device fills
//!
//! `write` (lend `&mut [u8]`, then sync for the device) exists only for
//! directions the CPU writes (E0599 on `FromDevice`).
//!
//! ```compile_fail,E0599
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut handle = device.map(buffer, FromDevice).unwrap();
//! handle.write(&device, |bytes| bytes[0] = 1);
//! ```
//!
//! On a `ToDevice` handle it compiles:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut handle = device.map(buffer, ToDevice).unwrap();
//! handle.write(&device, |bytes| bytes[0] = 1);
//! ```
//!
//! ## The CPU cannot read back a buffer it sends
//!
//! `read` (sync for the CPU, then lend `&[u8]`) exists only for directions the
//! device writes (E0599 on `ToDevice`).
//!
//! ```compile_fail,E0599
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut handle = device.map(buffer, ToDevice).unwrap();
//! let first = handle.read(&device, |bytes| bytes[0]);
//! ```
//!
//! On a `FromDevice` handle it compiles:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut handle = device.map(buffer, FromDevice).unwrap();
//! let first = handle.read(&device, |bytes| bytes[0]);
//! ```
//!
//! ## A handle cannot be used after unmap
//!
//! `unmap` takes the handle by value: using it afterwards is a use of a moved
//! value (E0382), and so is a second unmap.
//!
//! ```compile_fail,E0382
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let handle = device.map(buffer, ToDevice).unwrap();
//! let buffer = device.unmap(handle).unwrap();
//! let address = handle.dma_addr();
//! ```
//!
//! Asking before the unmap compiles:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let handle = device.map(buffer, ToDevice).unwrap();
//! let address = handle.dma_addr();
//! let buffer = device.unmap(handle).unwrap();
//! ```
//!
//! ## A handle cannot be unmapped twice
//!
//! The second `unmap` would revoke grants that may already belong to someone
//! else; it is a use of a moved value (E0382).
//!
//! ```compile_fail,E0382
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let handle = device.map(buffer, ToDevice).unwrap();
//! let buffer = device.unmap(handle).unwrap();
//! let again = device.unmap(handle);
//! ```
//!
//! One unmap compiles:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let handle = device.map(buffer, ToDevice).unwrap();
//! let buffer = device.unmap(handle).unwrap();
//! ```
//!
//! ## A mapped buffer cannot be touched through the buffer
//!
//! `map` takes the buffer by value, so the old name is gone while the device
//! owns it (E0382): the handle's accessors are the only way to the bytes.
//!
//! ```compile_fail,E0382
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut handle = device.map(buffer, ToDevice).unwrap();
//! buffer.as_bytes_mut()[0] = 1;
//! ```
//!
//! Through the sync-bracketed accessor it compiles:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut handle = device.map(buffer, ToDevice).unwrap();
//! handle.write(&device, |bytes| bytes[0] = 1);
//! ```
//!
//! ## A handle does not give out its bytes without a sync
//!
//! The handle has no `Deref`, no `as_bytes`, no indexing (E0599).
//!
//! ```compile_fail,E0599
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let handle = device.map(buffer, FromDevice).unwrap();
//! let first = handle.as_bytes()[0];
//! ```
//!
//! Through `read`, which syncs first, it compiles:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut handle = device.map(buffer, FromDevice).unwrap();
//! let first = handle.read(&device, |bytes| bytes[0]);
//! ```
//!
//! ## Lent bytes cannot outlive the sync bracket
//!
//! The slice `read` lends lives for the closure only: keeping it would let
//! the CPU look at the buffer after the device owns it again. The borrow
//! checker refuses (a lifetime error, which has no error code).
//!
//! ```compile_fail
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut handle = device.map(buffer, FromDevice).unwrap();
//! let kept = handle.read(&device, |bytes| bytes);
//! ```
//!
//! Copying the bytes out compiles:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut handle = device.map(buffer, FromDevice).unwrap();
//! let copied = handle.read(&device, |bytes| bytes.to_vec());
//! ```
//!
//! ## A handle cannot be duplicated
//!
//! Two handles to one mapping would mean two owners and two unmaps:
//! `DmaHandle` is not `Clone` (E0599).
//!
//! ```compile_fail,E0599
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let handle = device.map(buffer, ToDevice).unwrap();
//! let twin = handle.clone();
//! ```
//!
//! Moving it compiles:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let handle = device.map(buffer, ToDevice).unwrap();
//! let moved = handle;
//! ```
//!
//! ## Safe code cannot make up a page run
//!
//! A run stands for memory its holder owns; one made up for a live
//! buffer's page would let safe code free that page, or hold it twice.
//! Only a page source describes its memory: `PageRun::new` is `unsafe`
//! (E0133).
//!
//! ```compile_fail,E0133
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let run = PageRun::new(source.id(), core::ptr::NonNull::dangling(), 0, 1);
//! ```
//!
//! The same call inside `unsafe`, where its contract is the caller's,
//! compiles:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! // SAFETY: the run is dropped unused: never freed, never read.
//! let run = unsafe { PageRun::new(source.id(), core::ptr::NonNull::dangling(), 0, 1) };
//! # drop(run);
//! ```
//!
//! ## Safe code cannot give pages back to a source
//!
//! Giving a run back by hand could free a page that is still granted, or
//! send one source's memory to another: `PageSource::free` is `unsafe`
//! (E0133). Buffers go back with `DmaBuffer::free`, which checks that the
//! pages go home (freeing into another source panics; so does ending a
//! share on a device other than the one that shared the page, as `unmap`
//! does for handles: both are tested in the crate's unit tests).
//!
//! ```compile_fail,E0133
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let run = source.allocate(1).unwrap();
//! source.free(run);
//! ```
//!
//! Inside `unsafe`, with the contract kept, it compiles:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let run = source.allocate(1).unwrap();
//! // SAFETY: the run is this source's, unused and never granted.
//! unsafe { source.free(run) };
//! ```
//!
//! ## A page run cannot be duplicated
//!
//! A copy of a run would be a second owner of its pages: `PageRun` is not
//! `Clone` (E0599).
//!
//! ```compile_fail,E0599
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let run = source.allocate(1).unwrap();
//! let twin = run.clone();
//! ```
//!
//! Moving it compiles:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let run = source.allocate(1).unwrap();
//! let moved = run;
//! # // SAFETY: the run is this source's, unused and never granted.
//! # unsafe { source.free(moved) };
//! ```
//!
//! ## A buffer the device owns cannot be touched
//!
//! Once posted (on a ring, until the device's response), a mapping is a
//! `Posted`: it gives the bus address and segments, not the bytes, so
//! writing a buffer the device may be reading does not compile (E0599).
//!
//! ```compile_fail,E0599
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let posted = device.map(buffer, ToDevice).unwrap().post();
//! posted.write(&device, |bytes| bytes.fill(1));
//! ```
//!
//! Taken back with `complete` (the response came), it can be written again:
//!
//! ```
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let posted = device.map(buffer, ToDevice).unwrap().post();
//! let mut handle = posted.complete();
//! handle.write(&device, |bytes| bytes.fill(1));
//! # device.unmap(handle).unwrap().free(&source);
//! ```
//!
//! Reading one the device may still be writing does not compile either
//! (E0599):
//!
//! ```compile_fail,E0599
//! # use core::cell::RefCell;
//! # use dma::sim::SimPageSource;
//! # use dma::*;
//! # use xen_pv::grant_table::GrantTable;
//! # use xen_sim::grant_table::SimGrantTable;
//! # let xen = SimGrantTable::new(1, 1);
//! # let table: RefCell<GrantTable> = RefCell::new(GrantTable::new(xen.current_entries()));
//! # let source = SimPageSource::new(&xen);
//! # let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
//! # let buffer = DmaBuffer::allocate(&source, 64).unwrap();
//! let mut posted = device.map(buffer, FromDevice).unwrap().post();
//! let first = posted.read(&device, |bytes| bytes[0]);
//! ```
