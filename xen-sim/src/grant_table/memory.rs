//! Simulated guest RAM: the pages a test may grant, with their frame numbers.
//!
//! [`SimMemory`] is one page-aligned host allocation (an arena) cut into
//! 4 KiB pages, each zeroed when it is handed out (not before: tests build
//! thousands of arenas and touch few of their pages). Page `i` is frame
//! [`FIRST_FRAME`]` + i`, so frame and address are related the way a
//! kernel's direct map relates them: `address = frame * 4096 + offset`
//! (wrapping), the offset being
//! [`SimMemory::direct_map_offset`]; a PVH guest's offset is 0. The relation
//! cannot be the identity: host addresses are above 2^44 and a v1 grant
//! entry's frame field has 32 bits.
//!
//! Contract: only pages handed out by [`SimMemory::allocate`] and not yet
//! freed are live; every access by frame is checked against that and
//! against the page's bounds, so the simulated backend can only ever touch
//! live test memory. Every byte is accessed through raw pointers (as another
//! domain's accesses would be), never through a Rust reference, and this
//! file holds the simulation's only raw memory accesses.
//!
//! Never: hand out a page twice, touch memory outside the arena, or form a
//! reference into the arena. Users of [`SimPages::as_ptr`] must not either
//! while the page is granted: the backend writes it concurrently in spirit.

use core::cell::RefCell;
use core::ptr::NonNull;
use std::alloc::Layout;
use std::vec;
use std::vec::Vec;
use xen_pv::abi::PAGE_SIZE;

/// The frame number of the arena's first page.
pub const FIRST_FRAME: u64 = 0x1_0000;

/// Why a memory operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimMemoryError {
    /// No run of free pages is long enough.
    OutOfMemory,
    /// The frame is not a live page of the arena.
    NotLive(u64),
    /// The access crosses the end of the page.
    OutOfBounds,
}

/// A run of pages handed out by [`SimMemory::allocate`]. Not `Clone`: one
/// owner, who gives it back with [`crate::grant_table::SimGrantTable::free_pages`].
#[derive(Debug, PartialEq, Eq)]
pub struct SimPages {
    first_frame: u64,
    count: usize,
    address: NonNull<u8>,
}

impl SimPages {
    /// The frame of the first page.
    pub fn frame(&self) -> u64 {
        self.first_frame
    }

    /// The frame of page `index` of the run, if it has one.
    pub fn frame_at(&self, index: usize) -> Option<u64> {
        (index < self.count).then(|| self.first_frame + index as u64)
    }

    /// How many pages the run has.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The run's first byte, for code that plays the guest's CPU. Valid for
    /// `count() * 4096` bytes while the run is allocated and the memory
    /// lives; create no reference from it while any of its pages is granted.
    pub fn as_ptr(&self) -> *mut u8 {
        self.address.as_ptr()
    }
}

/// The arena of simulated guest pages.
pub struct SimMemory {
    arena: NonNull<u8>,
    layout: Layout,
    live: RefCell<Vec<bool>>,
}

impl SimMemory {
    /// An arena of `pages` pages, all free.
    pub fn new(pages: usize) -> Self {
        let layout = Layout::from_size_align(pages.max(1) * PAGE_SIZE, PAGE_SIZE).expect("arena layout");
        let arena = recycled_arena(layout).unwrap_or_else(|| {
            // SAFETY: `layout` has a non-zero size (at least one page). The
            // bytes start uninitialised; none is read before `allocate`
            // zeroes its page, as only live pages are accessed.
            let arena = unsafe { std::alloc::alloc(layout) };
            NonNull::new(arena).expect("out of memory for the simulated guest RAM")
        });
        Self { arena, layout, live: RefCell::new(vec![false; pages]) }
    }

    /// How many pages the arena holds.
    pub fn pages(&self) -> usize {
        self.live.borrow().len()
    }

    /// `address - frame * 4096` for every page of the arena, in wrapping
    /// arithmetic (the arena may sit below `FIRST_FRAME * 4096`):
    /// `address == (frame * 4096).wrapping_add(offset)`.
    pub fn direct_map_offset(&self) -> usize {
        (self.arena.as_ptr() as usize).wrapping_sub(FIRST_FRAME as usize * PAGE_SIZE)
    }

    /// The frame holding host address `address`, if it is in the arena.
    pub fn frame_of(&self, address: usize) -> Option<u64> {
        let index = address.checked_sub(self.arena.as_ptr() as usize)? / PAGE_SIZE;
        (index < self.pages()).then_some(FIRST_FRAME + index as u64)
    }

    /// Hands out `count` contiguous zeroed pages (first fit).
    pub fn allocate(&self, count: usize) -> Result<SimPages, SimMemoryError> {
        let first = self.find_free_run(count).ok_or(SimMemoryError::OutOfMemory)?;
        self.live.borrow_mut()[first..first + count].fill(true);
        let address = self.arena.as_ptr().wrapping_add(first * PAGE_SIZE);
        let pages = SimPages {
            first_frame: FIRST_FRAME + first as u64,
            count,
            address: NonNull::new(address).expect("arena pointers are non-null"),
        };
        for index in 0..count {
            self.write(FIRST_FRAME + (first + index) as u64, 0, &[0; PAGE_SIZE])?;
        }
        Ok(pages)
    }

    /// Whether `frame` is a live page.
    pub fn is_live(&self, frame: u64) -> bool {
        self.index_of(frame).is_some_and(|index| self.live.borrow()[index])
    }

    /// Copies bytes out of live page `frame` at `offset` (the guest's CPU
    /// reading its own page, or the backend through a grant).
    pub fn read(&self, frame: u64, offset: usize, out: &mut [u8]) -> Result<(), SimMemoryError> {
        let source = self.pointer(frame, offset, out.len())?;
        // SAFETY: `pointer` checked that `[source, source + out.len())` lies
        // inside one live page of the arena, which this value owns and keeps
        // allocated. No reference into the arena exists (this file makes
        // none, and `SimPages::as_ptr` forbids its users to), so `out`
        // cannot overlap it and nothing observes the copy as a conflict.
        unsafe { core::ptr::copy_nonoverlapping(source, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Copies `bytes` into live page `frame` at `offset`.
    pub fn write(&self, frame: u64, offset: usize, bytes: &[u8]) -> Result<(), SimMemoryError> {
        let destination = self.pointer(frame, offset, bytes.len())?;
        // SAFETY: as in `read`: the destination range is inside one live
        // page of the arena, which no reference covers, and `bytes` is a
        // separate allocation.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), destination, bytes.len()) };
        Ok(())
    }

    /// Whether `pages` came from this arena (frame numbers alone do not
    /// tell: every arena starts at [`FIRST_FRAME`]).
    pub fn owns(&self, pages: &SimPages) -> bool {
        self.first_index(pages).is_some()
    }

    /// Returns pages to the arena, or gives them back if they did not come
    /// from it. Checking that no grant or mapping still covers them is the
    /// grant table's job ([`crate::grant_table::SimGrantTable::free_pages`]).
    pub(super) fn free(&self, pages: SimPages) -> Result<(), SimPages> {
        let Some(first) = self.first_index(&pages) else { return Err(pages) };
        self.live.borrow_mut()[first..first + pages.count].fill(false);
        Ok(())
    }

    fn first_index(&self, pages: &SimPages) -> Option<usize> {
        let first = self.index_of(pages.first_frame)?;
        (self.arena.as_ptr().wrapping_add(first * PAGE_SIZE) == pages.as_ptr()).then_some(first)
    }

    fn index_of(&self, frame: u64) -> Option<usize> {
        let index = usize::try_from(frame.checked_sub(FIRST_FRAME)?).ok()?;
        (index < self.pages()).then_some(index)
    }

    fn find_free_run(&self, count: usize) -> Option<usize> {
        let live = self.live.borrow();
        if count == 0 || count > live.len() {
            return None;
        }
        (0..=live.len() - count).find(|&first| live[first..first + count].iter().all(|used| !used))
    }

    /// A pointer to `offset` in live page `frame`, if `len` bytes fit there.
    fn pointer(&self, frame: u64, offset: usize, len: usize) -> Result<*mut u8, SimMemoryError> {
        if !self.is_live(frame) {
            return Err(SimMemoryError::NotLive(frame));
        }
        if offset.checked_add(len).is_none_or(|end| end > PAGE_SIZE) {
            return Err(SimMemoryError::OutOfBounds);
        }
        let index = self.index_of(frame).ok_or(SimMemoryError::NotLive(frame))?;
        Ok(self.arena.as_ptr().wrapping_add(index * PAGE_SIZE + offset))
    }
}

impl Drop for SimMemory {
    fn drop(&mut self) {
        if let Some((arena, layout)) = recycle_arena(self.arena, self.layout) {
            // SAFETY: `arena` was allocated with exactly `layout` (in `new`,
            // or by the arena this one was recycled from) and this value
            // owned it alone; it is freed here once, the recycler having
            // declined it.
            unsafe { std::alloc::dealloc(arena.as_ptr(), layout) };
        }
    }
}

/// Arenas a dropped [`SimMemory`] left for the next one on this thread.
/// Fresh host memory costs a page fault per page touched and an `munmap`
/// at the end, which dominated tests and fuzz targets that build a
/// simulated domain per case; a reused arena's pages are zeroed when handed
/// out like any other. A few arenas are kept, and freed at thread exit.
/// (A sanitizer no longer sees a stale raw pointer into a recycled arena;
/// the live-page checks still catch every access by frame.)
struct ArenaRecycler(Vec<(NonNull<u8>, Layout)>);

/// How many arenas a thread keeps for reuse.
const RECYCLED_ARENAS: usize = 4;

impl Drop for ArenaRecycler {
    fn drop(&mut self) {
        for (arena, layout) in self.0.drain(..) {
            // SAFETY: each arena came from a dropped `SimMemory`, which
            // allocated it with `layout` and gave up ownership to the
            // recycler; nothing else refers to it.
            unsafe { std::alloc::dealloc(arena.as_ptr(), layout) };
        }
    }
}

std::thread_local! {
    static RECYCLER: RefCell<ArenaRecycler> = const { RefCell::new(ArenaRecycler(Vec::new())) };
}

/// A kept arena of exactly `layout`, now the caller's.
fn recycled_arena(layout: Layout) -> Option<NonNull<u8>> {
    RECYCLER
        .try_with(|recycler| {
            let mut kept = recycler.borrow_mut();
            let index = kept.0.iter().position(|(_, kept_layout)| *kept_layout == layout)?;
            Some(kept.0.swap_remove(index).0)
        })
        .ok()
        .flatten()
}

/// Keeps `arena` for reuse; gives it back if there is no room (or the
/// thread is exiting), for the caller to free.
fn recycle_arena(arena: NonNull<u8>, layout: Layout) -> Option<(NonNull<u8>, Layout)> {
    let kept = RECYCLER.try_with(|recycler| {
        let mut recycler = recycler.borrow_mut();
        if recycler.0.len() >= RECYCLED_ARENAS {
            return false;
        }
        recycler.0.push((arena, layout));
        true
    });
    if kept == Ok(true) { None } else { Some((arena, layout)) }
}
