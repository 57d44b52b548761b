//! A [`PageSource`] over the simulated guest RAM of `xen-sim` (feature
//! `test-utils`), for this crate's tests and for other crates' (netfront's).
//!
//! [`SimPageSource`] hands out pages of a [`SimGrantTable`]'s memory and
//! gives them back through [`SimGrantTable::free_pages`], which refuses to
//! free a page still granted or mapped by the simulated backend. Such a
//! refusal means the DMA layer freed a page early (XSA-396), so it fails the
//! test with a panic. The source keeps each run's `SimPages` token by first
//! frame: test scaffolding, not part of the DMA path (the kernel's frame
//! allocator frees by frame number).
//!
//! Never: hand out memory that is not the simulation's live guest RAM.

use crate::page::{OutOfPages, PageRun, PageSource, SourceId};
use alloc::collections::BTreeMap;
use core::cell::RefCell;
use core::ptr::NonNull;
use xen_sim::grant_table::{SimGrantTable, SimPages};

/// Pages of simulated guest RAM, as a DMA page source.
pub struct SimPageSource<'a> {
    id: SourceId,
    table: &'a SimGrantTable,
    runs: RefCell<BTreeMap<u64, SimPages>>,
}

impl<'a> SimPageSource<'a> {
    /// A source over `table`'s guest RAM.
    pub fn new(table: &'a SimGrantTable) -> Self {
        Self { id: SourceId::unique(), table, runs: RefCell::new(BTreeMap::new()) }
    }

    /// Pages handed out and not given back: zero once everything is freed.
    pub fn outstanding_pages(&self) -> usize {
        self.runs.borrow().values().map(SimPages::count).sum()
    }

    /// Whether `frame` is a page of a run handed out and not given back.
    pub fn is_outstanding(&self, frame: u64) -> bool {
        self.runs.borrow().values().any(|run| (run.frame()..run.frame() + run.count() as u64).contains(&frame))
    }
}

// SAFETY: `SimMemory::allocate` hands out live, zeroed, page-aligned runs of
// its arena, never the same page twice until freed, with page `i` being
// frame `frame() + i` at `as_ptr() + i * 4096`; the arena lives as long as
// the table, which outlives this source. Only the simulated backend touches
// the pages besides their owner, and only through grants the owner made. The
// id is this source's alone.
unsafe impl PageSource for SimPageSource<'_> {
    fn id(&self) -> SourceId {
        self.id
    }

    fn allocate(&self, count: usize) -> Result<PageRun, OutOfPages> {
        let pages = self.table.memory().allocate(count).map_err(|_| OutOfPages)?;
        let address = NonNull::new(pages.as_ptr()).ok_or(OutOfPages)?;
        // SAFETY: this source's run, handed out now (the impl's promises above).
        let run = unsafe { PageRun::new(self.id, address, pages.frame(), pages.count()) };
        self.runs.borrow_mut().insert(pages.frame(), pages);
        Ok(run)
    }

    unsafe fn free(&self, run: PageRun) {
        let pages = self.runs.borrow_mut().remove(&run.first_frame());
        let pages = pages.expect("a run given back to the simulated page source that it never handed out");
        assert_eq!(pages.count(), run.count(), "a run given back with another length than it was handed out");
        if let Err(error) = self.table.free_pages(pages) {
            panic!("the DMA layer freed pages the backend can still reach (XSA-396): {:?}", error.reason);
        }
    }
}
