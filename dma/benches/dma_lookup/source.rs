//! A page source for the benchmark: one zeroed host allocation, pages
//! handed out from a free list, frame = first frame + page index (as a
//! direct map would relate them). No backend ever maps anything, so the
//! simulation's checks are not needed here and its linear first-fit
//! allocator would dominate the setup of a million buffers.
//!
//! The arena is asked of the allocator as zeroed memory with a small
//! alignment, so that a large one comes straight from the kernel (glibc's
//! `calloc` maps fresh zero pages and writes nothing) and a page costs
//! memory only once something writes it. The benchmark's syncs, maps and
//! unmaps never write a buffer's bytes, so a million one-page buffers (4 GiB
//! of address space) take almost no memory. Page alignment is done here, on
//! a page more than the arena needs.

use core::cell::RefCell;
use core::ptr::NonNull;
use dma::{OutOfPages, PAGE_SIZE, PageRun, PageSource, SourceId};
use std::alloc::{Layout, alloc_zeroed, dealloc};

/// The frame number of the arena's first page (fits a v1 grant entry with
/// room for millions of pages after it).
const FIRST_FRAME: u64 = 0x10_0000;

/// The alignment asked of the allocator: no more than what it gives any
/// block, so that zeroed memory is `calloc`'s (a larger alignment makes
/// Rust's allocator write the zeros itself, touching every page).
const ALLOCATION_ALIGN: usize = 16;

/// Single pages from one arena.
pub struct BenchSource {
    id: SourceId,
    /// What the allocator returned (freed as such).
    allocation: NonNull<u8>,
    layout: Layout,
    /// The first page boundary in the allocation: page 0 of the arena.
    arena: *mut u8,
    free: RefCell<Vec<usize>>,
}

impl BenchSource {
    /// An arena of `pages` zeroed pages, all free.
    pub fn new(pages: usize) -> Self {
        let size = (pages.max(1) + 1) * PAGE_SIZE;
        let layout = Layout::from_size_align(size, ALLOCATION_ALIGN).expect("arena layout");
        // SAFETY: the layout has a non-zero size.
        let allocation = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("out of memory for the benchmark arena");
        let arena = allocation.as_ptr().wrapping_add(allocation.as_ptr().align_offset(PAGE_SIZE));
        Self { id: SourceId::unique(), allocation, layout, arena, free: RefCell::new((0..pages).rev().collect()) }
    }

    fn page(&self, index: usize) -> *mut u8 {
        self.arena.wrapping_add(index * PAGE_SIZE)
    }
}

// SAFETY: every run is one page of the arena (page `index` starts at the
// first page boundary of the allocation plus `index` pages, and the
// allocation has a page to spare for that rounding), handed out at most once
// until freed (the free list holds each index once), zeroed (the allocation
// starts zeroed and `free` zeroes a page before it goes back on the list),
// page-aligned, and frame `FIRST_FRAME + index` is the page at `index`. The
// arena lives as long as the source, which outlives the device and buffers.
unsafe impl PageSource for BenchSource {
    fn id(&self) -> SourceId {
        self.id
    }

    fn allocate(&self, count: usize) -> Result<PageRun, OutOfPages> {
        assert_eq!(count, 1, "the benchmark maps single pages");
        let index = self.free.borrow_mut().pop().ok_or(OutOfPages)?;
        let address = NonNull::new(self.page(index)).ok_or(OutOfPages)?;
        // SAFETY: this source's page, handed out now (the promises above).
        Ok(unsafe { PageRun::new(self.id, address, FIRST_FRAME + index as u64, 1) })
    }

    unsafe fn free(&self, run: PageRun) {
        let index = (run.first_frame() - FIRST_FRAME) as usize;
        // SAFETY: the page is one of the arena's, just given back by its only
        // owner; nothing refers to it any more.
        unsafe { core::ptr::write_bytes(self.page(index), 0, PAGE_SIZE) };
        self.free.borrow_mut().push(index);
    }
}

impl Drop for BenchSource {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout, freed once.
        unsafe { dealloc(self.allocation.as_ptr(), self.layout) };
    }
}
