//! The live mappings an operation picks one of, by handle and by address,
//! and the device they are mapped on.
//!
//! Every mapping is a one-page `ToDevice` buffer of the benchmark's arena.
//! The two operations measured, on mapping number `n`:
//! - `sync`: sync it for the device (the steady state of persistent
//!   mappings: a ring slot's buffer is written and handed to the device);
//! - `cycle`: unmap it, map its buffer again (a fresh grant, so a new bus
//!   address) and sync it for the device: map + sync + unmap while the
//!   other mappings stay live.
//!
//! Neither writes the buffer's bytes: what the CPU writes is the same work
//! for every design, and leaving the pages untouched is what lets a million
//! of them fit in memory (see `source.rs`). In trusted mode a sync is a
//! fence (a compiler barrier on x86) and a counter, so the measured time is
//! the layer's own work: finding the mapping and the grant-table updates.

use crate::address_keyed::AddressLayer;
use crate::measure::{Contender, Order, Pace, per_operation};
use crate::source::BenchSource;
use core::cell::RefCell;
use core::sync::atomic::{AtomicU16, AtomicU32};
use dma::{BackendTrust, DmaBuffer, DmaHandle, GrantDma, Grants, PAGE_SIZE, PageSource, ToDevice};
use std::time::Duration;
use xen_pv::abi::grant_table::{GNTTAB_NR_RESERVED_ENTRIES, GrantEntryV1};
use xen_pv::grant_table::GrantTable;

/// Grant references free beyond the live mappings: a cycle's fresh grant
/// comes from the head of the table's FIFO free list, so its address is not
/// the one just unmapped.
const SPARE_GRANTS: usize = 64;

/// The grant table of a device over the benchmark's arena.
pub type Table<'e> = RefCell<GrantTable<'e>>;
/// A device over a [`Table`] and a [`BenchSource`].
pub type Device<'t, 'e> = GrantDma<&'t Table<'e>, &'t BenchSource>;

/// Grant-table entries (reserved ones included) for `live` mappings: also
/// the page numbers the arrays of the address-keyed side must cover.
pub fn grant_entries(live: usize) -> usize {
    live + SPARE_GRANTS + GNTTAB_NR_RESERVED_ENTRIES as usize
}

/// Grant-table entries for a device for `live` mappings, all free.
pub fn grant_table_entries(live: usize) -> Vec<GrantEntryV1> {
    (0..grant_entries(live)).map(|_| empty_entry()).collect()
}

/// A trusted device over `table` and `source` (made for the same live
/// count), for backend domain 0.
pub fn device<'t, 'e>(table: &'t Table<'e>, source: &'t BenchSource) -> Device<'t, 'e> {
    GrantDma::new(table, source, 0, BackendTrust::Trusted).expect("device")
}

/// Runs `body` with a trusted device that can map `live` one-page buffers,
/// over its own grant table and arena; closes the device afterwards (`body`
/// must leave nothing mapped).
pub fn with_device<R>(live: usize, body: impl FnOnce(&Device<'_, '_>) -> R) -> R {
    let entries = grant_table_entries(live);
    let table: Table<'_> = RefCell::new(GrantTable::new(&entries));
    let source = BenchSource::new(live);
    let device = device(&table, &source);
    let result = body(&device);
    device.close().expect("the benchmark unmapped everything");
    result
}

fn empty_entry() -> GrantEntryV1 {
    GrantEntryV1 { flags: AtomicU16::new(0), domid: AtomicU16::new(0), frame: AtomicU32::new(0) }
}

/// A zeroed one-page buffer.
pub fn page<G: Grants, S: PageSource>(device: &GrantDma<G, S>) -> DmaBuffer {
    DmaBuffer::allocate(device.source(), PAGE_SIZE).expect("page")
}

/// Lets a buffer go without freeing its page: the arena is freed whole when
/// its source is dropped, and freeing page by page would zero (and so bring
/// into memory) pages the benchmark never wrote.
pub fn discard(buffer: DmaBuffer) {
    drop(buffer);
}

/// What a timing is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A sync of one live mapping, operations independent (throughput).
    Sync,
    /// The same, each operation after the last one's reads (latency).
    SyncChained,
    /// Unmap, map again and sync one live mapping.
    Cycle,
}

/// Live mappings and the operations on one of them.
pub trait Live {
    /// Syncs mapping `number` for the device; returns its length, read from
    /// the handle afterwards (see `measure::Pace::Chained`).
    fn sync(&mut self, number: usize) -> usize;
    /// Unmaps mapping `number`, maps its buffer again and syncs it.
    fn cycle(&mut self, number: usize);
    /// Unmaps everything.
    fn finish(self);
}

/// One thread's live mappings and their random order, as a [`Contender`].
pub struct Alone<L: Live> {
    live: L,
    count: usize,
    order: Order,
}

impl<L: Live> Alone<L> {
    /// `live`'s mappings (`count` of them), visited in the order of `seed`.
    pub fn new(live: L, count: usize, seed: u64) -> Self {
        Self { live, count, order: Order::new(count, seed) }
    }
}

impl<L: Live> Contender for Alone<L> {
    fn live(&self) -> usize {
        self.count
    }

    fn run(&mut self, operation: Operation, iterations: usize) -> f64 {
        per_operation(run(&mut self.live, &mut self.order, operation, iterations), iterations)
    }

    fn finish(self: Box<Self>) {
        self.live.finish();
    }
}

/// Times `iterations` of `operation` on `live`, in `order`.
pub fn run(live: &mut impl Live, order: &mut Order, operation: Operation, iterations: usize) -> Duration {
    match operation {
        Operation::Sync => order.time(iterations, Pace::Independent, |number| live.sync(number)),
        Operation::SyncChained => order.time(iterations, Pace::Chained, |number| live.sync(number)),
        Operation::Cycle => order.time(iterations, Pace::Independent, |number| {
            live.cycle(number);
            0
        }),
    }
}

/// The handle design: the caller keeps the handles; an operation touches
/// its own handle and the device, nothing shared.
pub struct ByHandle<'d, G: Grants, S: PageSource> {
    device: &'d GrantDma<G, S>,
    handles: Vec<Option<DmaHandle<ToDevice>>>,
}

impl<'d, G: Grants, S: PageSource> ByHandle<'d, G, S> {
    /// `live` mappings.
    pub fn new(device: &'d GrantDma<G, S>, live: usize) -> Self {
        let handles = (0..live).map(|_| Some(device.map(page(device), ToDevice).expect("map"))).collect();
        Self { device, handles }
    }
}

impl<G: Grants, S: PageSource> Live for ByHandle<'_, G, S> {
    fn sync(&mut self, number: usize) -> usize {
        let handle = self.handles[number].as_mut().expect("a live handle");
        self.device.sync_for_device(handle);
        handle.len()
    }

    fn cycle(&mut self, number: usize) {
        let handle = self.handles[number].take().expect("a live handle");
        let buffer = self.device.unmap(handle).expect("no backend holds a grant in the benchmark");
        let mut handle = self.device.map(buffer, ToDevice).expect("map");
        self.device.sync_for_device(&mut handle);
        self.handles[number] = Some(handle);
    }

    fn finish(self) {
        for handle in self.handles.into_iter().flatten() {
            discard(self.device.unmap(handle).expect("unmap"));
        }
    }
}

/// An address-keyed design: the caller keeps bus addresses; the layer
/// finds the handle in its index for every sync and unmap.
pub struct ByAddress<L: AddressLayer> {
    layer: L,
    addresses: Vec<u64>,
}

impl<L: AddressLayer> ByAddress<L> {
    /// `buffers` mapped through `layer`.
    pub fn new(mut layer: L, buffers: impl IntoIterator<Item = DmaBuffer>) -> Self {
        let addresses = buffers.into_iter().map(|buffer| layer.map(buffer)).collect();
        Self { layer, addresses }
    }
}

impl<L: AddressLayer> Live for ByAddress<L> {
    fn sync(&mut self, number: usize) -> usize {
        self.layer.sync_for_device(self.addresses[number])
    }

    fn cycle(&mut self, number: usize) {
        let buffer = self.layer.unmap(self.addresses[number]);
        let address = self.layer.map(buffer);
        self.layer.sync_for_device(address);
        self.addresses[number] = address;
    }

    fn finish(mut self) {
        for &address in &self.addresses {
            discard(self.layer.unmap(address));
        }
    }
}
