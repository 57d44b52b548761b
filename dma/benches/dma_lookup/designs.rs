//! The six designs by name, and how to set each up alone or as a group of
//! threads.

use crate::address_keyed::{AddressIndex, AddressKeyed, Flat, MultiplyHashTable, Radix, SipHashTable, Tree};
use crate::live::{Alone, ByAddress, ByHandle, Device, grant_entries, page};
use crate::measure::Contender;
use crate::threads::{Coordinator, spawn_by_address, spawn_by_handle};
use dma::{DmaHandle, ToDevice};
use std::thread::Scope;

/// The name of the handle design in the tables.
pub const HANDLE: &str = "by handle";

/// What the address-keyed designs keep per mapping in a one-thread index:
/// the handle itself.
type Record = DmaHandle<ToDevice>;

/// A way to find a mapping for sync and unmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    Handle,
    Tree,
    SipHash,
    Multiply,
    Radix,
    Flat,
}

/// Every design, in table order.
pub const ALL: [Design; 6] =
    [Design::Handle, Design::Tree, Design::SipHash, Design::Multiply, Design::Radix, Design::Flat];

impl Design {
    /// The name in the tables (the index's, for an address-keyed design).
    pub fn name(self) -> &'static str {
        match self {
            Design::Handle => HANDLE,
            Design::Tree => <Tree<u32> as AddressIndex<u32>>::NAME,
            Design::SipHash => <SipHashTable<u32> as AddressIndex<u32>>::NAME,
            Design::Multiply => <MultiplyHashTable<u32> as AddressIndex<u32>>::NAME,
            Design::Radix => <Radix<u32> as AddressIndex<u32>>::NAME,
            Design::Flat => <Flat<u32> as AddressIndex<u32>>::NAME,
        }
    }

    /// `live` mappings on `device`, one thread, visited in the order of
    /// `seed`.
    pub fn alone<'d>(self, device: &'d Device<'_, '_>, live: usize, seed: u64) -> Box<dyn Contender + 'd> {
        fn keyed<'d, T: AddressIndex<Record> + 'd>(
            device: &'d Device<'_, '_>,
            live: usize,
            seed: u64,
        ) -> Box<dyn Contender + 'd> {
            let layer = AddressKeyed::<_, _, T>::new(device, grant_entries(live));
            Box::new(Alone::new(ByAddress::new(layer, (0..live).map(|_| page(device))), live, seed))
        }
        match self {
            Design::Handle => Box::new(Alone::new(ByHandle::new(device, live), live, seed)),
            Design::Tree => keyed::<Tree<Record>>(device, live, seed),
            Design::SipHash => keyed::<SipHashTable<Record>>(device, live, seed),
            Design::Multiply => keyed::<MultiplyHashTable<Record>>(device, live, seed),
            Design::Radix => keyed::<Radix<Record>>(device, live, seed),
            Design::Flat => keyed::<Flat<Record>>(device, live, seed),
        }
    }

    /// Starts a group of `threads` threads, each with the coordinator's
    /// share of the live mappings, waiting for `coordinator`.
    pub fn spawn<'scope>(self, scope: &'scope Scope<'scope, '_>, coordinator: &'scope Coordinator, threads: usize) {
        match self {
            Design::Handle => spawn_by_handle(scope, coordinator, threads),
            Design::Tree => spawn_by_address::<Tree<u32>>(scope, coordinator, threads),
            Design::SipHash => spawn_by_address::<SipHashTable<u32>>(scope, coordinator, threads),
            Design::Multiply => spawn_by_address::<MultiplyHashTable<u32>>(scope, coordinator, threads),
            Design::Radix => spawn_by_address::<Radix<u32>>(scope, coordinator, threads),
            Design::Flat => spawn_by_address::<Flat<u32>>(scope, coordinator, threads),
        }
    }
}
