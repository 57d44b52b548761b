//! Shared fixture of the DMA tests: the simulated grant table, the guest's
//! `GrantTable` over it, a page source over its guest RAM, one device, and
//! the leak check every test ends with.

#![allow(dead_code, reason = "each test file uses a different part of the fixture")]

use core::cell::RefCell;
use core::sync::atomic::Ordering;
use dma::sim::SimPageSource;
use dma::{BackendTrust, BounceCapacity, DmaBuffer, DmaDevice};
use xen_pv::abi::DomainId;
use xen_pv::grant_table::GrantTable;
use xen_sim::grant_table::{SimGrantTable, SimMapping};

/// The backend domain the simulation plays.
pub const BACKEND: DomainId = 0;

/// The guest's grant table over the simulation's entries.
pub type Table<'x> = RefCell<GrantTable<'x>>;

/// A device over borrowed table and source.
pub type Device<'t, 'x> = DmaDevice<&'t Table<'x>, &'t SimPageSource<'x>>;

/// Bounce capacity used by the untrusted-backend tests.
pub const BOUNCE: BounceCapacity = BounceCapacity { read_only_pages: 16, writable_pages: 16 };

/// What a test works with.
pub struct Fixture<'t, 'x> {
    pub xen: &'x SimGrantTable,
    pub table: &'t Table<'x>,
    pub source: &'t SimPageSource<'x>,
    pub device: Device<'t, 'x>,
}

/// Runs `test` against a fresh simulation of `frames` grant-table frames
/// and `pages` pages of guest RAM, with a device of the given trust.
pub fn with_device<R>(
    trust: BackendTrust,
    frames: u32,
    pages: usize,
    test: impl for<'t, 'x> FnOnce(Fixture<'t, 'x>) -> R,
) -> R {
    let xen = SimGrantTable::with_memory_pages(frames, frames, pages);
    let table: Table<'_> = RefCell::new(GrantTable::new(xen.current_entries()));
    let source = SimPageSource::new(&xen);
    let device = DmaDevice::new(&table, &source, BACKEND, trust).expect("device setup");
    test(Fixture { xen: &xen, table: &table, source: &source, device })
}

/// A trusted device over a 1-frame table (504 usable references) and 256 pages.
pub fn trusted<R>(test: impl for<'t, 'x> FnOnce(Fixture<'t, 'x>) -> R) -> R {
    with_device(BackendTrust::Trusted, 1, 256, test)
}

/// An untrusted device (bounce mode) with [`BOUNCE`] pages.
pub fn untrusted<R>(test: impl for<'t, 'x> FnOnce(Fixture<'t, 'x>) -> R) -> R {
    with_device(BackendTrust::Untrusted(BOUNCE), 1, 256, test)
}

impl Fixture<'_, '_> {
    /// A zeroed buffer from the fixture's source.
    pub fn buffer(&self, offset: usize, len: usize) -> DmaBuffer {
        DmaBuffer::allocate_at(self.source, offset, len).expect("buffer")
    }

    /// The backend maps a grant.
    pub fn backend_map(&self, grant_reference: u32, writable: bool) -> SimMapping {
        self.xen.map(BACKEND, grant_reference, writable).expect("the backend maps the grant")
    }

    /// Whether the backend can map `grant_reference` at all (read-only).
    pub fn backend_can_map(&self, grant_reference: u32) -> bool {
        match self.xen.map(BACKEND, grant_reference, false) {
            Ok(mapping) => {
                self.xen.unmap(mapping).expect("unmap");
                true
            }
            Err(_) => false,
        }
    }

    /// Frames of the grant entries that permit access now.
    pub fn permitted_frames(&self) -> Vec<u64> {
        permitted_frames(self.xen)
    }

    /// Closes the device and checks nothing leaked: no grant in use, no
    /// entry permitting access, no backend mapping, every page back.
    pub fn close_and_check(self) {
        let counters = self.device.counters();
        assert_eq!(counters.live_handles, 0, "every handle unmapped");
        assert_eq!(counters.deferred_pending, 0, "deferred queue drained");
        assert_eq!(
            self.table.borrow().counters().in_use,
            counters.grants_in_use,
            "the device accounts for every grant"
        );
        let Fixture { xen, table, source, device } = self;
        assert!(device.close().is_ok(), "the device closes");
        assert_eq!(table.borrow().counters().in_use, 0, "no grant left in use");
        assert!(permitted_frames(xen).is_empty(), "no entry permits access");
        assert_eq!(xen.active_mappings(), 0, "the backend maps nothing");
        assert_eq!(source.outstanding_pages(), 0, "every page back with the source");
    }
}

/// Frames of the grant entries of `xen` that permit access now.
pub fn permitted_frames(xen: &SimGrantTable) -> Vec<u64> {
    xen.current_entries()
        .iter()
        .filter(|entry| entry.flags.load(Ordering::SeqCst) & 3 == 1)
        .map(|entry| u64::from(entry.frame.load(Ordering::SeqCst)))
        .collect()
}
