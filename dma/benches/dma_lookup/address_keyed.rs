//! The design the handle replaces: `map` returns only a bus address, and
//! `sync` and `unmap` are given only that address, so they must find the
//! mapping again in a table of live mappings keyed by address (Linux's
//! rbtree of IOVAs, or the Xen-on-ARM p2m tree). It is built on the same
//! device, so the only difference measured is the lookup.

use dma::{DmaBuffer, DmaHandle, GrantDma, Grants, PageSource, ToDevice};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// A table of live mappings by bus address.
pub trait MappingTable: Default {
    /// Records a new mapping.
    fn insert(&mut self, address: u64, handle: DmaHandle<ToDevice>);
    /// Finds a live mapping.
    fn find(&mut self, address: u64) -> Option<&mut DmaHandle<ToDevice>>;
    /// Forgets a mapping and gives it back.
    fn remove(&mut self, address: u64) -> Option<DmaHandle<ToDevice>>;
    /// Forgets every mapping and gives them back.
    fn take_all(&mut self) -> Vec<DmaHandle<ToDevice>>;
}

impl MappingTable for BTreeMap<u64, DmaHandle<ToDevice>> {
    fn insert(&mut self, address: u64, handle: DmaHandle<ToDevice>) {
        BTreeMap::insert(self, address, handle);
    }
    fn find(&mut self, address: u64) -> Option<&mut DmaHandle<ToDevice>> {
        self.get_mut(&address)
    }
    fn remove(&mut self, address: u64) -> Option<DmaHandle<ToDevice>> {
        BTreeMap::remove(self, &address)
    }
    fn take_all(&mut self) -> Vec<DmaHandle<ToDevice>> {
        std::mem::take(self).into_values().collect()
    }
}

/// A cheap multiplicative hasher: the hash table's best case (std's SipHash
/// would only make the address-keyed side slower).
#[derive(Default)]
pub struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        // Fold the high bits down: addresses are multiples of 4096, and the
        // table indexes buckets by the low bits.
        self.0 ^ (self.0 >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&byte| self.write_u64(u64::from(byte)));
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0 ^ value).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A hash table of mappings by address.
pub type HashTable = HashMap<u64, DmaHandle<ToDevice>, BuildHasherDefault<MixHasher>>;

impl MappingTable for HashTable {
    fn insert(&mut self, address: u64, handle: DmaHandle<ToDevice>) {
        HashMap::insert(self, address, handle);
    }
    fn find(&mut self, address: u64) -> Option<&mut DmaHandle<ToDevice>> {
        self.get_mut(&address)
    }
    fn remove(&mut self, address: u64) -> Option<DmaHandle<ToDevice>> {
        HashMap::remove(self, &address)
    }
    fn take_all(&mut self) -> Vec<DmaHandle<ToDevice>> {
        std::mem::take(self).into_values().collect()
    }
}

/// DMA by bus address over a device and a table of live mappings.
pub struct AddressKeyed<'d, G: Grants, S: PageSource, T: MappingTable> {
    device: &'d GrantDma<G, S>,
    live: T,
}

impl<'d, G: Grants, S: PageSource, T: MappingTable> AddressKeyed<'d, G, S, T> {
    /// No live mapping yet.
    pub fn new(device: &'d GrantDma<G, S>) -> Self {
        Self { device, live: T::default() }
    }

    /// Maps the buffer and records it; the caller keeps only the address.
    pub fn map(&mut self, buffer: DmaBuffer) -> u64 {
        let handle = self.device.map(buffer, ToDevice).expect("map");
        let address = handle.dma_addr().encoded();
        self.live.insert(address, handle);
        address
    }

    /// Lets the CPU write the mapping found at `address`, then syncs it.
    pub fn write(&mut self, address: u64, writer: impl FnOnce(&mut [u8])) {
        let handle = self.live.find(address).expect("a live mapping at this address");
        handle.write(self.device, writer);
    }

    /// Unmaps the mapping found at `address`.
    pub fn unmap(&mut self, address: u64) -> DmaBuffer {
        let handle = self.live.remove(address).expect("a live mapping at this address");
        self.device.unmap(handle).expect("no backend holds a grant in the benchmark")
    }

    /// Unmaps every live mapping and gives the buffers back.
    pub fn unmap_all(&mut self) -> Vec<DmaBuffer> {
        let handles = self.live.take_all();
        handles.into_iter().map(|handle| self.device.unmap(handle).expect("unmap")).collect()
    }
}
