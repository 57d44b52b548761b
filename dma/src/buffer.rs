//! [`DmaBuffer`]: memory the DMA layer may grant, owned by whoever holds it.
//!
//! A buffer is `len` bytes at `offset` in the first of a run of whole pages
//! from a [`PageSource`]: it owns every page it touches, and the bytes of
//! those pages outside the buffer stay zero forever (they came zeroed and no
//! accessor reaches them). So granting the buffer's pages shows the backend
//! the buffer and zeros, never a neighbour's data (XSA-403).
//!
//! While the CPU holds the buffer it uses it freely (`as_bytes`,
//! `as_bytes_mut`); mapping it moves it into a `DmaHandle`, which lends the
//! bytes only between syncs. [`DmaBuffer::free`] gives the pages back; a
//! dropped buffer leaks them, which is safe (memory is never freed early)
//! but wasteful.
//!
//! This file holds one of the DMA core's two `unsafe` spots: turning the
//! run's address into a slice. Never: hand out a slice that reaches outside
//! `offset .. offset + len`, or split or share the run.

use crate::page::{OutOfPages, PAGE_SIZE, PageRun, PageSource, give_back};
use core::ops::Range;
use core::slice;

/// Why a buffer could not be allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocateError {
    /// A DMA buffer has at least one byte.
    Empty,
    /// The offset is not inside the first page (`offset < PAGE_SIZE`).
    OffsetOutsidePage,
    /// `offset + len` does not fit in memory.
    TooLarge,
    /// The page source has no run that long: back off.
    OutOfPages,
}

impl From<OutOfPages> for AllocateError {
    fn from(_: OutOfPages) -> Self {
        AllocateError::OutOfPages
    }
}

/// Where one page's share of a buffer lies: bytes `page_offset ..
/// page_offset + length` of the page are bytes `buffer_offset ..` of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageSpan {
    pub(crate) page_offset: usize,
    pub(crate) buffer_offset: usize,
    pub(crate) length: usize,
}

/// DMA-able memory: whole pages from a [`PageSource`], of which the buffer
/// is `len` bytes at `offset` in the first page. Not `Clone`: one owner.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a buffer's pages go back to their source with `free`; a dropped buffer leaks them"]
pub struct DmaBuffer {
    pages: PageRun,
    offset: usize,
    len: usize,
}

impl DmaBuffer {
    /// A zeroed buffer of `len` bytes at the start of its first page.
    pub fn allocate(source: &impl PageSource, len: usize) -> Result<Self, AllocateError> {
        Self::allocate_at(source, 0, len)
    }

    /// A zeroed buffer of `len` bytes starting `offset` bytes into its first
    /// page (as a packet inside a page would), on as many pages as it touches.
    pub fn allocate_at(source: &impl PageSource, offset: usize, len: usize) -> Result<Self, AllocateError> {
        let pages = Self::pages_needed(offset, len)?;
        let run = source.allocate(pages)?;
        Ok(Self { pages: run, offset, len })
    }

    /// How many pages a buffer of `len` bytes at `offset` touches.
    fn pages_needed(offset: usize, len: usize) -> Result<usize, AllocateError> {
        if len == 0 {
            return Err(AllocateError::Empty);
        }
        if offset >= PAGE_SIZE {
            return Err(AllocateError::OffsetOutsidePage);
        }
        let end = offset.checked_add(len).ok_or(AllocateError::TooLarge)?;
        Ok(end.div_ceil(PAGE_SIZE))
    }

    /// The buffer's length in bytes (at least 1).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a DMA buffer has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the buffer starts in its first page.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// How many pages the buffer touches (and owns).
    pub fn page_count(&self) -> usize {
        self.pages.count()
    }

    /// The guest frames of the buffer's pages.
    pub fn frames(&self) -> Range<u64> {
        self.pages.first_frame()..self.pages.first_frame() + self.pages.count() as u64
    }

    /// The buffer's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: the run is `count * PAGE_SIZE` bytes of memory the source
        // gave this buffer alone (the `PageSource` contract), and
        // `offset + len <= count * PAGE_SIZE` by construction. The buffer
        // owns the run and is not `Clone`, so the only other way to its bytes
        // is `as_bytes_mut`, which `&self` excludes for this borrow's life.
        // The backend sees the pages only while a handle owns the buffer; a
        // handle reaches the bytes through these methods only between syncs,
        // when a backend that keeps the protocol does not touch them (an
        // untrusted one never sees these pages: bounce mode grants copies).
        unsafe { slice::from_raw_parts(self.first_byte(), self.len) }
    }

    /// The buffer's bytes, for writing.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_bytes`, and `&mut self` makes this the only
        // reference to the bytes for its life.
        unsafe { slice::from_raw_parts_mut(self.first_byte(), self.len) }
    }

    /// Gives the pages back to `source`.
    ///
    /// # Panics
    ///
    /// If the pages came from another source (freeing them there would let
    /// two sources hand out the same memory).
    pub fn free(self, source: &impl PageSource) {
        give_back(source, self.pages);
    }

    fn first_byte(&self) -> *mut u8 {
        self.pages.address().as_ptr().wrapping_add(self.offset)
    }

    /// The run of pages the buffer owns.
    pub(crate) fn pages(&self) -> &PageRun {
        &self.pages
    }

    /// The buffer's share of each of its pages, in order.
    pub(crate) fn spans(&self) -> impl ExactSizeIterator<Item = PageSpan> + '_ {
        (0..self.pages.count()).map(|index| self.span(index))
    }

    /// The buffer's share of page `index`.
    pub(crate) fn span(&self, index: usize) -> PageSpan {
        let page_offset = if index == 0 { self.offset } else { 0 };
        let buffer_offset = (index * PAGE_SIZE + page_offset) - self.offset;
        let length = (PAGE_SIZE - page_offset).min(self.len - buffer_offset);
        PageSpan { page_offset, buffer_offset, length }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr::NonNull;

    /// (page offset, buffer offset, length) of each page of a buffer; the
    /// memory is never touched, so a dangling run will do.
    fn geometry(offset: usize, len: usize) -> Vec<(usize, usize, usize)> {
        let pages = DmaBuffer::pages_needed(offset, len).unwrap();
        // SAFETY: the run is never dereferenced nor freed: only its geometry is read.
        let pages = unsafe { PageRun::new(crate::page::SourceId::unique(), NonNull::dangling(), 0, pages) };
        let buffer = DmaBuffer { pages, offset, len };
        buffer.spans().map(|span| (span.page_offset, span.buffer_offset, span.length)).collect()
    }

    #[test]
    fn spans_cover_the_buffer_once_and_never_cross_a_page() {
        assert_eq!(geometry(0, 1), [(0, 0, 1)]);
        assert_eq!(geometry(4095, 2), [(4095, 0, 1), (0, 1, 1)]);
        assert_eq!(geometry(4000, 5000), [(4000, 0, 96), (0, 96, 4096), (0, 4192, 808)]);
        for (offset, len) in [(0, 4096), (1, 4096), (123, 70_000), (4095, 8193)] {
            let spans = geometry(offset, len);
            assert_eq!(spans.iter().map(|span| span.2).sum::<usize>(), len);
            assert!(spans.iter().all(|&(page_offset, _, length)| page_offset + length <= PAGE_SIZE));
            assert!(spans.windows(2).all(|pair| pair[0].1 + pair[0].2 == pair[1].1), "contiguous in the buffer");
        }
    }

    #[cfg(feature = "test-utils")]
    #[test]
    #[should_panic(expected = "DMA pages given back to a page source they did not come from")]
    fn a_buffer_cannot_be_freed_into_another_source() {
        let xen = xen_sim::SimXen::new(1);
        let (home, elsewhere) =
            (crate::sim::SimPageSource::new(xen.grants()), crate::sim::SimPageSource::new(xen.grants()));
        let buffer = DmaBuffer::allocate(&home, 64).unwrap();
        buffer.free(&elsewhere);
    }

    #[test]
    fn page_count_covers_every_page_touched() {
        assert_eq!(DmaBuffer::pages_needed(0, 1), Ok(1));
        assert_eq!(DmaBuffer::pages_needed(0, PAGE_SIZE), Ok(1));
        assert_eq!(DmaBuffer::pages_needed(1, PAGE_SIZE), Ok(2));
        assert_eq!(DmaBuffer::pages_needed(PAGE_SIZE - 1, 2), Ok(2));
        assert_eq!(DmaBuffer::pages_needed(100, 3 * PAGE_SIZE), Ok(4));
        assert_eq!(DmaBuffer::pages_needed(0, 0), Err(AllocateError::Empty));
        assert_eq!(DmaBuffer::pages_needed(PAGE_SIZE, 1), Err(AllocateError::OffsetOutsidePage));
        assert_eq!(DmaBuffer::pages_needed(1, usize::MAX), Err(AllocateError::TooLarge));
    }
}
