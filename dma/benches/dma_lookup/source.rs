//! A page source for the benchmark: one zeroed, page-aligned host
//! allocation, pages handed out from a free list, frame = first frame +
//! page index (as a direct map would relate them). No backend ever maps
//! anything, so the simulation's checks are not needed here and its linear
//! first-fit allocator would dominate the setup of 64 k buffers.

use core::cell::RefCell;
use core::ptr::NonNull;
use dma::{OutOfPages, PAGE_SIZE, PageRun, PageSource, SourceId};
use std::alloc::{Layout, alloc_zeroed, dealloc};

/// The frame number of the arena's first page (fits a v1 grant entry).
const FIRST_FRAME: u64 = 0x10_0000;

/// Single pages from one arena.
pub struct BenchSource {
    id: SourceId,
    arena: NonNull<u8>,
    layout: Layout,
    free: RefCell<Vec<usize>>,
}

impl BenchSource {
    /// An arena of `pages` zeroed pages, all free.
    pub fn new(pages: usize) -> Self {
        let layout = Layout::from_size_align(pages.max(1) * PAGE_SIZE, PAGE_SIZE).expect("arena layout");
        // SAFETY: the layout has a non-zero size.
        let arena = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("out of memory for the benchmark arena");
        Self { id: SourceId::unique(), arena, layout, free: RefCell::new((0..pages).rev().collect()) }
    }

    fn page(&self, index: usize) -> *mut u8 {
        self.arena.as_ptr().wrapping_add(index * PAGE_SIZE)
    }
}

// SAFETY: every run is one page of the arena, handed out at most once until
// freed (the free list holds each index once), zeroed (the arena starts
// zeroed and `free` zeroes a page before it goes back on the list),
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
        unsafe { dealloc(self.arena.as_ptr(), self.layout) };
    }
}
