//! The design the handle replaces: `map` gives the caller only a bus
//! address, and `sync` and `unmap` are given only that address, so the DMA
//! layer must find the mapping again in an index of live mappings keyed by
//! address. It is built on the same device as the handle design, so the
//! index is the only difference measured.
//!
//! Five indexes, the kinds real backends keep:
//! - an ordered tree (`BTreeMap`): Linux's IOVA allocator and the Xen-on-ARM
//!   foreign-mapping table are red-black trees keyed by address;
//! - a hash table with std's default hasher (SipHash, seeded at random);
//! - a hash table with a one-multiply hasher, the best a hash table does
//!   here (the crate adds no hashing dependency for it);
//! - a two-level radix table indexed by page number, 512 entries a level,
//!   the shape of an IOMMU's (and the CPU's) page tables;
//! - a flat array indexed by page number, the way Linux's swiotlb finds a
//!   slot from its address: the cheapest index there is, for an address
//!   space small and dense enough to be an array.
//!
//! On Xen the page number of a bus address is its grant reference
//! (`reference << 12 | offset`), so the arrays are indexed by grant
//! reference and sized by the grant table.
//!
//! [`AddressKeyed`] is that layer over one device, its index holding the
//! handles themselves (the best case: the record is where the lookup ends).
//! [`SharedAddressKeyed`] is the same with the index shared by several
//! threads behind a lock: each thread maps on its own device (a `GrantDma`
//! is single-threaded) and keeps its records in its own slab, and the shared
//! index maps addresses to slab slots. The addresses of thread `t` are
//! offset by `t` grant tables, as if the threads shared one grant space.

use dma::{DmaBuffer, DmaHandle, GrantDma, Grants, PageSource, ToDevice};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher, RandomState};
use std::sync::RwLock;

/// The bits of a bus address below its page number (the offset in a page).
const PAGE_SHIFT: u32 = 12;

/// The page number of a bus address: on Xen, its grant reference.
fn page_number(address: u64) -> usize {
    (address >> PAGE_SHIFT) as usize
}

/// An index of live mappings by bus address.
pub trait AddressIndex<V>: Sized {
    /// The design's name in the tables.
    const NAME: &'static str;
    /// An empty index for addresses in pages `0..pages` (the arrays size
    /// themselves by it; the tree and hash tables ignore it).
    fn new(pages: usize) -> Self;
    /// Records a new mapping at `address` (none may be there).
    fn insert(&mut self, address: u64, value: V);
    /// Finds the mapping at `address`.
    fn get(&self, address: u64) -> Option<&V>;
    /// Finds the mapping at `address`, to change it.
    fn get_mut(&mut self, address: u64) -> Option<&mut V>;
    /// Forgets the mapping at `address` and gives it back.
    fn remove(&mut self, address: u64) -> Option<V>;
}

/// Fails loudly if an insert replaced a live mapping: the benchmark's own
/// bookkeeping went wrong.
fn check_vacant<V>(previous: Option<V>) {
    assert!(previous.is_none(), "two live mappings at one bus address");
}

/// A BTreeMap by address.
pub type Tree<V> = BTreeMap<u64, V>;

/// A hash table with std's default hasher (SipHash-1-3, randomly keyed).
pub type SipHashTable<V> = HashMap<u64, V, RandomState>;

/// A hash table with [`MultiplyHasher`].
pub type MultiplyHashTable<V> = HashMap<u64, V, BuildHasherDefault<MultiplyHasher>>;

/// The index over one of std's maps (`$map` names the map type; its own
/// `insert`, `get`, `get_mut` and `remove` do the work).
macro_rules! std_map_index {
    ($map:ident, $std:ident, $name:literal) => {
        impl<V> AddressIndex<V> for $map<V> {
            const NAME: &'static str = $name;
            fn new(_pages: usize) -> Self {
                $map::default()
            }
            fn insert(&mut self, address: u64, value: V) {
                check_vacant($std::insert(self, address, value));
            }
            fn get(&self, address: u64) -> Option<&V> {
                $std::get(self, &address)
            }
            fn get_mut(&mut self, address: u64) -> Option<&mut V> {
                $std::get_mut(self, &address)
            }
            fn remove(&mut self, address: u64) -> Option<V> {
                $std::remove(self, &address)
            }
        }
    };
}

std_map_index!(Tree, BTreeMap, "BTreeMap");
std_map_index!(SipHashTable, HashMap, "hash table, SipHash");
std_map_index!(MultiplyHashTable, HashMap, "hash table, multiply");

/// One multiply and a fold: the cheapest hasher that still spreads
/// addresses (multiples of 4096) over the table (the shape of rustc's
/// FxHash). std's SipHash could only make the address-keyed side slower.
#[derive(Default)]
pub struct MultiplyHasher(u64);

impl Hasher for MultiplyHasher {
    fn finish(&self) -> u64 {
        // Fold the high bits down: the table picks buckets by the low bits,
        // and a multiple of 4096 times anything still ends in 12 zero bits.
        self.0 ^ (self.0 >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&byte| self.write_u64(u64::from(byte)));
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0 ^ value).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Page numbers one radix leaf covers, as bits: 512 entries, a level of an
/// x86-64 or ARM64 page table.
const LEAF_BITS: u32 = 9;
const LEAF_ENTRIES: usize = 1 << LEAF_BITS;

/// A two-level radix table by page number: a directory of leaves of 512
/// entries, a leaf made when its first entry is. (A 48-bit IOMMU walks four
/// levels; a grant reference, 20 bits here, needs two.)
pub struct Radix<V> {
    directory: Vec<Option<Box<[Option<V>]>>>,
}

impl<V> Radix<V> {
    fn split(address: u64) -> (usize, usize) {
        let page = page_number(address);
        (page >> LEAF_BITS, page & (LEAF_ENTRIES - 1))
    }
}

impl<V> AddressIndex<V> for Radix<V> {
    const NAME: &'static str = "radix table, two levels";
    fn new(pages: usize) -> Self {
        Self { directory: (0..pages.div_ceil(LEAF_ENTRIES)).map(|_| None).collect() }
    }
    fn insert(&mut self, address: u64, value: V) {
        let (high, low) = Self::split(address);
        if high >= self.directory.len() {
            self.directory.resize_with(high + 1, || None);
        }
        let leaf = self.directory[high].get_or_insert_with(|| (0..LEAF_ENTRIES).map(|_| None).collect());
        check_vacant(leaf[low].replace(value));
    }
    fn get(&self, address: u64) -> Option<&V> {
        let (high, low) = Self::split(address);
        self.directory.get(high)?.as_deref()?[low].as_ref()
    }
    fn get_mut(&mut self, address: u64) -> Option<&mut V> {
        let (high, low) = Self::split(address);
        self.directory.get_mut(high)?.as_deref_mut()?[low].as_mut()
    }
    fn remove(&mut self, address: u64) -> Option<V> {
        let (high, low) = Self::split(address);
        self.directory.get_mut(high)?.as_deref_mut()?[low].take()
    }
}

/// A flat array by page number, one entry per page of the address space.
pub struct Flat<V> {
    entries: Vec<Option<V>>,
}

impl<V> AddressIndex<V> for Flat<V> {
    const NAME: &'static str = "flat array";
    fn new(pages: usize) -> Self {
        Self { entries: (0..pages).map(|_| None).collect() }
    }
    fn insert(&mut self, address: u64, value: V) {
        let page = page_number(address);
        if page >= self.entries.len() {
            self.entries.resize_with(page + 1, || None);
        }
        check_vacant(self.entries[page].replace(value));
    }
    fn get(&self, address: u64) -> Option<&V> {
        self.entries.get(page_number(address))?.as_ref()
    }
    fn get_mut(&mut self, address: u64) -> Option<&mut V> {
        self.entries.get_mut(page_number(address))?.as_mut()
    }
    fn remove(&mut self, address: u64) -> Option<V> {
        self.entries.get_mut(page_number(address))?.take()
    }
}

/// DMA by bus address: all an address-keyed layer gives its caller.
pub trait AddressLayer {
    /// Maps the buffer and records it; the caller keeps only the address.
    fn map(&mut self, buffer: DmaBuffer) -> u64;
    /// Syncs the mapping found at `address` for the device; returns its
    /// length.
    fn sync_for_device(&mut self, address: u64) -> usize;
    /// Unmaps the mapping found at `address`.
    fn unmap(&mut self, address: u64) -> DmaBuffer;
}

/// DMA by bus address over one device: the index holds the handles.
pub struct AddressKeyed<'d, G: Grants, S: PageSource, T: AddressIndex<DmaHandle<ToDevice>>> {
    device: &'d GrantDma<G, S>,
    index: T,
}

impl<'d, G: Grants, S: PageSource, T: AddressIndex<DmaHandle<ToDevice>>> AddressKeyed<'d, G, S, T> {
    /// No live mapping yet; addresses up to `pages` grant references.
    pub fn new(device: &'d GrantDma<G, S>, pages: usize) -> Self {
        Self { device, index: T::new(pages) }
    }
}

impl<G: Grants, S: PageSource, T: AddressIndex<DmaHandle<ToDevice>>> AddressLayer for AddressKeyed<'_, G, S, T> {
    fn map(&mut self, buffer: DmaBuffer) -> u64 {
        let handle = self.device.map(buffer, ToDevice).expect("map");
        let address = handle.dma_addr().encoded();
        self.index.insert(address, handle);
        address
    }

    fn sync_for_device(&mut self, address: u64) -> usize {
        let handle = self.index.get_mut(address).expect("a live mapping at this address");
        self.device.sync_for_device(handle);
        handle.len()
    }

    fn unmap(&mut self, address: u64) -> DmaBuffer {
        let handle = self.index.remove(address).expect("a live mapping at this address");
        self.device.unmap(handle).expect("no backend holds a grant in the benchmark")
    }
}

/// DMA by bus address with the index shared between threads behind a lock.
/// This thread's handles are in its own slab; the index gives the slot.
pub struct SharedAddressKeyed<'a, 'd, G: Grants, S: PageSource, T: AddressIndex<u32>> {
    device: &'d GrantDma<G, S>,
    index: &'a RwLock<T>,
    /// Added to this thread's bus addresses: its share of the address space.
    base: u64,
    records: Vec<Option<DmaHandle<ToDevice>>>,
    vacant: Vec<u32>,
}

impl<'a, 'd, G: Grants, S: PageSource, T: AddressIndex<u32>> SharedAddressKeyed<'a, 'd, G, S, T> {
    /// No live mapping of this thread's yet; its addresses start `base_page`
    /// pages in.
    pub fn new(device: &'d GrantDma<G, S>, index: &'a RwLock<T>, base_page: usize) -> Self {
        Self { device, index, base: (base_page as u64) << PAGE_SHIFT, records: Vec::new(), vacant: Vec::new() }
    }
}

impl<G: Grants, S: PageSource, T: AddressIndex<u32>> AddressLayer for SharedAddressKeyed<'_, '_, G, S, T> {
    /// Maps the buffer, keeps its handle in a slot and records the slot in
    /// the shared index.
    fn map(&mut self, buffer: DmaBuffer) -> u64 {
        let handle = self.device.map(buffer, ToDevice).expect("map");
        let address = self.base + handle.dma_addr().encoded();
        let slot = match self.vacant.pop() {
            Some(slot) => {
                self.records[slot as usize] = Some(handle);
                slot
            }
            None => {
                self.records.push(Some(handle));
                u32::try_from(self.records.len() - 1).expect("fewer than 2^32 mappings")
            }
        };
        self.index.write().expect("index lock").insert(address, slot);
        address
    }

    fn sync_for_device(&mut self, address: u64) -> usize {
        let slot = *self.index.read().expect("index lock").get(address).expect("a live mapping at this address");
        let handle = self.records[slot as usize].as_mut().expect("a live record in the slot");
        self.device.sync_for_device(handle);
        handle.len()
    }

    fn unmap(&mut self, address: u64) -> DmaBuffer {
        let slot = self.index.write().expect("index lock").remove(address).expect("a live mapping at this address");
        let handle = self.records[slot as usize].take().expect("a live record in the slot");
        self.vacant.push(slot);
        self.device.unmap(handle).expect("no backend holds a grant in the benchmark")
    }
}
