//! The guest-physical memory map, as Xen describes it: the start info's
//! memory map on x86_64, the device tree's memory nodes on ARM64.
//!
//! The map is copied out of guest memory into a fixed-size table at boot,
//! checked (no wrapping ranges), sorted, and from then on trusted. It answers
//! where RAM is and where a block of free RAM can be found before any
//! allocator exists.

use core::fmt;
use core::ops::Range;
use xen_pv::abi::start_info::{
    MEMMAP_TYPE_ACPI, MEMMAP_TYPE_NVS, MEMMAP_TYPE_RAM, MEMMAP_TYPE_RESERVED, MEMMAP_TYPE_UNUSABLE, MemoryMapEntry,
};

/// Most regions kept; a PVH guest's map has a handful.
pub const MAX_REGIONS: usize = 64;

/// What a region of guest-physical space holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionKind {
    /// Usable RAM.
    Ram,
    /// Reserved (special pages, firmware).
    Reserved,
    /// ACPI tables, reclaimable after they are read.
    Acpi,
    /// ACPI non-volatile storage.
    Nvs,
    /// Broken memory.
    Unusable,
    /// A type this kernel does not know (Xen's OEM types among them).
    Other(u32),
}

impl From<u32> for RegionKind {
    fn from(kind: u32) -> Self {
        match kind {
            MEMMAP_TYPE_RAM => Self::Ram,
            MEMMAP_TYPE_RESERVED => Self::Reserved,
            MEMMAP_TYPE_ACPI => Self::Acpi,
            MEMMAP_TYPE_NVS => Self::Nvs,
            MEMMAP_TYPE_UNUSABLE => Self::Unusable,
            other => Self::Other(other),
        }
    }
}

/// One region: `[start, end)` of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// What it holds.
    pub kind: RegionKind,
}

impl Region {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#014x}-{:#014x} {:>8} KiB {:?}", self.start, self.end, self.len() / 1024, self.kind)
    }
}

/// Why a memory map was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// An entry's base plus size overflows 64 bits.
    Wraps {
        /// The entry's base address.
        addr: u64,
    },
    /// More entries than [`MAX_REGIONS`].
    TooManyRegions,
    /// No RAM at all.
    NoRam,
}

/// The checked, sorted memory map.
#[derive(Clone)]
pub struct MemoryMap {
    regions: [Region; MAX_REGIONS],
    len: usize,
}

impl MemoryMap {
    /// Builds the map from Xen's entries: empty entries are dropped, the rest
    /// must not wrap, and the result is sorted by start address.
    pub fn from_entries(entries: impl IntoIterator<Item = MemoryMapEntry>) -> Result<Self, MapError> {
        let empty = Region { start: 0, end: 0, kind: RegionKind::Reserved };
        let mut map = Self { regions: [empty; MAX_REGIONS], len: 0 };
        for entry in entries.into_iter().filter(|entry| entry.size != 0) {
            let end = entry.addr.checked_add(entry.size).ok_or(MapError::Wraps { addr: entry.addr })?;
            let slot = map.regions.get_mut(map.len).ok_or(MapError::TooManyRegions)?;
            *slot = Region { start: entry.addr, end, kind: entry.kind.into() };
            map.len += 1;
        }
        map.regions[..map.len].sort_unstable_by_key(|region| region.start);
        if map.ram().next().is_none() {
            return Err(MapError::NoRam);
        }
        Ok(map)
    }

    /// Every region, sorted by start.
    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.len]
    }

    /// The RAM regions, sorted by start.
    pub fn ram(&self) -> impl Iterator<Item = &Region> {
        self.regions().iter().filter(|region| region.kind == RegionKind::Ram)
    }

    /// Total bytes of RAM.
    pub fn ram_bytes(&self) -> u64 {
        self.ram().map(Region::len).sum()
    }

    /// The span from the lowest RAM byte to one past the highest.
    pub fn ram_span(&self) -> Range<u64> {
        let start = self.ram().map(|region| region.start).min().unwrap_or(0);
        let end = self.ram().map(|region| region.end).max().unwrap_or(0);
        start..end
    }

    /// The lowest `align`-aligned address of a block of `bytes` bytes that
    /// lies inside RAM and overlaps none of `reserved`.
    pub fn find_free(&self, bytes: u64, align: u64, reserved: &[Range<u64>]) -> Option<u64> {
        self.ram().find_map(|region| {
            let mut start = align_up(region.start, align)?;
            loop {
                let end = start.checked_add(bytes)?;
                if end > region.end {
                    return None;
                }
                match reserved.iter().find(|range| range.start < end && start < range.end) {
                    None => return Some(start),
                    Some(range) => start = align_up(range.end, align)?,
                }
            }
        })
    }
}

impl MemoryMap {
    /// The lowest `align`-aligned block of `bytes` bytes above all RAM and
    /// below `limit` that no region of the map touches: guest-physical space
    /// where Xen can be asked to place pages (shared info, grant frames).
    pub fn find_hole(&self, bytes: u64, align: u64, limit: u64) -> Option<u64> {
        let mut start = align_up(self.ram_span().end, align)?;
        loop {
            let end = start.checked_add(bytes)?;
            if end > limit {
                return None;
            }
            match self.regions().iter().find(|region| region.start < end && start < region.end) {
                None => return Some(start),
                Some(region) => start = align_up(region.end, align)?,
            }
        }
    }
}

/// Rounds `value` up to a multiple of `align` (a power of two).
pub fn align_up(value: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    Some(value.checked_add(align - 1)? & !(align - 1))
}

/// Rounds `value` down to a multiple of `align` (a power of two).
pub fn align_down(value: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    value & !(align - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(addr: u64, size: u64, kind: u32) -> MemoryMapEntry {
        MemoryMapEntry { addr, size, kind, reserved: 0 }
    }

    /// What libxl gives a 64 MiB PVH guest, in the order it gives it.
    fn pvh_map() -> MemoryMap {
        MemoryMap::from_entries([
            entry(0xfc00_0000, 0x100_0000, MEMMAP_TYPE_RESERVED),
            entry(0, 0x400_0000, MEMMAP_TYPE_RAM),
            entry(0xfeff_8000, 0x8000, MEMMAP_TYPE_RESERVED),
            entry(0x1000, 0, MEMMAP_TYPE_RAM),
        ])
        .unwrap()
    }

    #[test]
    fn sorts_and_drops_empty_entries() {
        let map = pvh_map();
        let starts: Vec<u64> = map.regions().iter().map(|region| region.start).collect();
        assert_eq!(starts, [0, 0xfc00_0000, 0xfeff_8000]);
        assert_eq!(map.ram_bytes(), 64 << 20);
        assert_eq!(map.ram_span(), 0..64 << 20);
    }

    #[test]
    fn refuses_wrapping_and_ramless_maps() {
        let wraps = MemoryMap::from_entries([entry(u64::MAX - 10, 100, MEMMAP_TYPE_RAM)]);
        assert_eq!(wraps.err(), Some(MapError::Wraps { addr: u64::MAX - 10 }));
        let ramless = MemoryMap::from_entries([entry(0, 4096, MEMMAP_TYPE_RESERVED)]);
        assert_eq!(ramless.err(), Some(MapError::NoRam));
        let too_many = MemoryMap::from_entries((0..65).map(|i| entry(i * 4096, 4096, MEMMAP_TYPE_RAM)));
        assert_eq!(too_many.err(), Some(MapError::TooManyRegions));
    }

    #[test]
    fn finds_free_space_around_reservations() {
        let map = pvh_map();
        let reserved = [0..0x10_0000, 0x10_0000..0x18_3000, 0x20_0000..0x20_1000];
        assert_eq!(map.find_free(0x1000, 0x1000, &reserved), Some(0x18_3000));
        assert_eq!(map.find_free(0x7d000, 0x1000, &reserved), Some(0x18_3000));
        assert_eq!(map.find_free(0x7e000, 0x1000, &reserved), Some(0x20_1000));
        assert_eq!(map.find_free(0x1000, 0x10_0000, &reserved), Some(0x30_0000));
        assert_eq!(map.find_free(64 << 20, 0x1000, &[]), Some(0));
        assert_eq!(map.find_free((64 << 20) + 1, 0x1000, &[]), None);
    }

    #[test]
    fn finds_holes_above_ram_and_around_reserved_regions() {
        let map = pvh_map();
        assert_eq!(map.find_hole(0x1000, 0x20_0000, 1 << 32), Some(64 << 20));
        let crowded = MemoryMap::from_entries([
            entry(0, 0x400_0000, MEMMAP_TYPE_RAM),
            entry(0x400_0000, 0x10_0000, MEMMAP_TYPE_RESERVED),
        ])
        .unwrap();
        assert_eq!(crowded.find_hole(0x1000, 0x20_0000, 1 << 32), Some(0x420_0000));
        assert_eq!(crowded.find_hole(0x1000, 0x20_0000, 0x420_0000), None);
        assert_eq!(map.find_hole(0xfc00_0000, 0x1000, 1 << 32), None, "no gap that large");
    }

    #[test]
    fn kinds_map_from_xen_types() {
        assert_eq!(RegionKind::from(1), RegionKind::Ram);
        assert_eq!(RegionKind::from(3), RegionKind::Acpi);
        assert_eq!(RegionKind::from(0xf000_0001), RegionKind::Other(0xf000_0001));
    }
}
