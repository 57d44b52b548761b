//! Bounce pages for backends that are not trusted (Linux's XSA-403 fix).
//!
//! A device in bounce mode never grants (translates) a buffer's own pages.
//! At setup it takes dedicated pages from the page source, zeroed, and
//! grants them to the backend once and for all: read-only ones for
//! [`crate::ToDevice`] handles, writable ones for the directions the device
//! writes. A handle borrows as
//! many bounce pages as its buffer touches, at the same in-page offsets, and
//! the data crosses by copy: into the bounce pages when the CPU hands the
//! buffer to the device (map, `sync_for_device`), out of them when the device
//! hands it back (`sync_for_cpu`, unmap). A bounce page is zeroed whenever
//! it goes back to the pool, so at any time it holds zeros, the bytes of the
//! one buffer it serves, or what the backend itself wrote: never anything
//! else of the guest's.
//!
//! What this buys against a hostile backend: it never sees a byte outside
//! the buffers it serves; it cannot change data while the CPU looks at it
//! (the CPU reads its own copy, taken at `sync_for_cpu`: no double fetch);
//! it cannot pin the guest's buffers by keeping a grant mapped (persistent
//! grants are never revoked before `close`, so unmap never waits for it); and
//! the guest never forms a Rust reference into memory another domain writes.
//! Over the identity translation bounce mode works the same way and buys
//! none of that (a device without an IOMMU reaches every page anyway): it
//! is then what a software IOTLB is, pages a device can reach standing in
//! for pages it cannot.
//!
//! This file holds the DMA core's other `unsafe` spot: raw copies between a
//! buffer and its bounce pages, and zeroing a bounce page. Never: copy
//! outside the one page span each copy is given, or form a reference into a
//! bounce page.

use crate::buffer::{DmaBuffer, PageSpan};
use crate::error::SetupError;
use crate::page::{PAGE_SIZE, PageRun, PageSource, give_back};
use crate::translation::{BusPage, Translation};
use alloc::vec::Vec;
use core::ops::Range;
use core::ptr;
use xen_pv::abi::DomainId;
use xen_pv::grant_table::RevokeError;

/// How many bounce pages an untrusted-backend device sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BounceCapacity {
    /// Pages granted read-only, lent to `ToDevice` handles.
    pub read_only_pages: usize,
    /// Pages granted writable, lent to `FromDevice` and `Bidirectional` handles.
    pub writable_pages: usize,
}

/// One dedicated page, granted (translated) for the backend for the
/// device's whole life.
#[derive(Debug)]
pub(crate) struct BouncePage {
    pub(crate) bus_page: BusPage,
    page: PageRun,
}

impl BouncePage {
    fn address(&self) -> *mut u8 {
        self.page.address().as_ptr()
    }
}

/// The device's bounce pages not lent to a handle, by permission.
#[derive(Debug, Default)]
pub(crate) struct BouncePool {
    read_only: Vec<BouncePage>,
    writable: Vec<BouncePage>,
    lent: usize,
}

impl BouncePool {
    /// Takes and translates the pages; on failure gives back what it took.
    pub(crate) fn create(
        translation: &impl Translation,
        source: &impl PageSource,
        backend: DomainId,
        capacity: BounceCapacity,
    ) -> Result<Self, SetupError> {
        let mut pool = BouncePool::default();
        let mut result = pool.add(translation, source, backend, capacity.read_only_pages, true);
        if result.is_ok() {
            result = pool.add(translation, source, backend, capacity.writable_pages, false);
        }
        match result {
            Ok(()) => Ok(pool),
            Err(error) => {
                // Never published to the backend, but a hostile one may guess
                // references: pages it holds are leaked, never freed early.
                pool.release(translation, source);
                Err(error)
            }
        }
    }

    fn add(
        &mut self,
        translation: &impl Translation,
        source: &impl PageSource,
        backend: DomainId,
        count: usize,
        readonly: bool,
    ) -> Result<(), SetupError> {
        for _ in 0..count {
            let page = source.allocate(1).map_err(|_| SetupError::OutOfPages)?;
            let mut reference = [0];
            if let Err(error) = translation.translate_run(backend, page.first_frame(), readonly, &mut reference) {
                give_back(source, page);
                return Err(SetupError::Grant(error));
            }
            let pages = if readonly { &mut self.read_only } else { &mut self.writable };
            pages.push(BouncePage { bus_page: reference[0], page });
        }
        Ok(())
    }

    /// Bus pages (grant references) the pool holds (idle and lent pages).
    pub(crate) fn grants_held(&self) -> usize {
        self.read_only.len() + self.writable.len() + self.lent
    }

    /// How many pages of the given permission are idle.
    pub(crate) fn idle(&self, writable: bool) -> usize {
        if writable { self.writable.len() } else { self.read_only.len() }
    }

    /// `count` pages of the given permission, or `None` if fewer are idle.
    pub(crate) fn take(&mut self, writable: bool, count: usize) -> Option<Vec<BouncePage>> {
        let pages = if writable { &mut self.writable } else { &mut self.read_only };
        let first = pages.len().checked_sub(count)?;
        self.lent += count;
        Some(pages.split_off(first))
    }

    /// Zeroes lent pages and puts them back.
    pub(crate) fn give_back(&mut self, writable: bool, lent: Vec<BouncePage>) {
        self.lent -= lent.len();
        let pages = if writable { &mut self.writable } else { &mut self.read_only };
        for page in lent {
            zero_page(&page);
            pages.push(page);
        }
    }

    /// Revokes and frees every idle page it can; returns how many pages the
    /// backend still holds (those stay in the pool, granted, for a retry).
    pub(crate) fn release(&mut self, translation: &impl Translation, source: &impl PageSource) -> usize {
        release_pages(&mut self.read_only, translation, source) + release_pages(&mut self.writable, translation, source)
    }
}

/// Revokes and frees the pages the backend does not hold; keeps the others.
fn release_pages(pages: &mut Vec<BouncePage>, translation: &impl Translation, source: &impl PageSource) -> usize {
    let mut held = Vec::new();
    for page in pages.drain(..) {
        match translation.revoke(page.bus_page) {
            Ok(()) => give_back(source, page.page),
            Err(RevokeError::StillInUse) => held.push(page),
            Err(error) => {
                panic!("bounce page {} was revoked behind the DMA layer: {error:?}", page.bus_page)
            }
        }
    }
    *pages = held;
    pages.len()
}

/// The part of a page's span that lies in `range` (buffer offsets), as a
/// span: where in the page, where in the buffer, how long (0: none).
fn clip(span: PageSpan, range: &Range<usize>) -> PageSpan {
    let start = span.buffer_offset.max(range.start);
    let end = (span.buffer_offset + span.length).min(range.end);
    let length = end.saturating_sub(start);
    PageSpan {
        page_offset: span.page_offset + (start - span.buffer_offset).min(span.length),
        buffer_offset: start,
        length,
    }
}

/// Copies bytes `range` of the buffer (buffer offsets, inside it) into its
/// bounce pages, at the same places; returns the bytes copied.
pub(crate) fn copy_to_bounce(buffer: &DmaBuffer, bounce: &[BouncePage], range: Range<usize>) -> usize {
    debug_assert!(range.end <= buffer.len());
    let mut copied = 0;
    for (index, span) in buffer.spans().enumerate() {
        let part = clip(span, &range);
        if part.length == 0 {
            continue;
        }
        let source = buffer.pages().page_address(index).wrapping_add(part.page_offset);
        let destination = bounce[index].address().wrapping_add(part.page_offset);
        // SAFETY: `part` lies inside page `index` of the buffer's run (it is
        // a piece of that page's span) and at the same offsets inside one
        // bounce page (`page_offset + length <= PAGE_SIZE`); both are live
        // memory from the page source, in different runs (a source never
        // hands out overlapping runs), and no reference to the bounce page
        // exists. The buffer is only read.
        unsafe { ptr::copy_nonoverlapping(source, destination, part.length) };
        copied += part.length;
    }
    copied
}

/// Copies bytes `range` of the buffer back from its bounce pages; returns
/// the bytes copied.
pub(crate) fn copy_from_bounce(buffer: &mut DmaBuffer, bounce: &[BouncePage], range: Range<usize>) -> usize {
    debug_assert!(range.end <= buffer.len());
    let mut copied = 0;
    for (index, page) in bounce.iter().enumerate().take(buffer.page_count()) {
        let part = clip(buffer.span(index), &range);
        if part.length == 0 {
            continue;
        }
        let source = page.address().wrapping_add(part.page_offset);
        let destination = buffer.pages().page_address(index).wrapping_add(part.page_offset);
        // SAFETY: as in `copy_to_bounce`, the other way; `&mut DmaBuffer`
        // means no slice of the buffer is alive while it is written.
        unsafe { ptr::copy_nonoverlapping(source, destination, part.length) };
        copied += part.length;
    }
    copied
}

fn zero_page(page: &BouncePage) {
    // SAFETY: the bounce page is one live page of the source's memory that
    // the pool owns; no reference to it exists.
    unsafe { ptr::write_bytes(page.address(), 0, PAGE_SIZE) };
}
