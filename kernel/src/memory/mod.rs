//! Guest-physical memory: the memory map, the frame allocator and the heap.
//!
//! At boot `init` copies nothing more than it must: it finds room for the
//! frame bitmap in free RAM, releases RAM into the frame allocator, takes back
//! every reserved range, and gives the heap one contiguous run of frames.
//! All RAM is identity-mapped by the boot page tables (virtual = physical).

pub mod frames;
#[cfg(target_os = "none")]
#[allow(unsafe_code)] // the global allocator over the heap's frames
mod heap;
pub mod map;
#[cfg(target_os = "none")]
#[allow(unsafe_code)] // zeroing DMA pages, the kernel's `unsafe impl dma::PageSource`
pub mod pages;

pub use frames::{FRAME_SIZE, FrameAllocator, FrameNumber};
pub use map::{MemoryMap, Region, RegionKind};

use core::ops::Range;

/// How much of the free memory the heap takes when the command line does not say.
pub const DEFAULT_HEAP_PERCENT: u64 = 50;

/// Heap usage, for logs and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeapStats {
    /// Bytes handed out now.
    pub used: usize,
    /// Bytes still free.
    pub free: usize,
}

/// The heap size to ask for: `heap=` from the command line if given (in
/// bytes, a whole number of frames: `cmdline::heap_bytes_for`), else a
/// share of the free frames; never more than what is free.
pub fn heap_frames(free_frames: u64, requested_bytes: Option<u64>) -> u64 {
    let wanted = match requested_bytes {
        Some(bytes) => bytes / FRAME_SIZE,
        None => free_frames * DEFAULT_HEAP_PERCENT / 100,
    };
    wanted.min(free_frames)
}

/// Address ranges the allocators must never hand out (kernel image, boot
/// data, pages shared with Xen), gathered at boot before any allocator exists.
#[derive(Debug, Clone)]
pub struct ReservedRanges {
    ranges: [Range<u64>; Self::CAPACITY],
    len: usize,
}

impl ReservedRanges {
    /// Most ranges kept.
    pub const CAPACITY: usize = 16;

    /// No ranges.
    pub const fn new() -> Self {
        Self { ranges: [const { 0..0 }; Self::CAPACITY], len: 0 }
    }

    /// Adds a range. Boot code adds a fixed handful, so running out of room
    /// is a bug in the kernel, not a runtime condition.
    pub fn push(&mut self, range: Range<u64>) {
        assert!(self.len < Self::CAPACITY, "too many reserved ranges");
        self.ranges[self.len] = range;
        self.len += 1;
    }

    /// The ranges so far.
    pub fn as_slice(&self) -> &[Range<u64>] {
        &self.ranges[..self.len]
    }
}

impl Default for ReservedRanges {
    fn default() -> Self {
        Self::new()
    }
}

/// What memory set-up produced.
#[derive(Debug, Clone)]
pub struct MemoryLayout {
    /// Where the heap lives.
    pub heap: Range<u64>,
    /// Where the frame bitmap lives.
    pub bitmap: Range<u64>,
    /// Frames left for page-granular users (DMA pages, rings).
    pub free_frames: u64,
}

#[cfg(target_os = "none")]
pub use platform::*;

#[cfg(target_os = "none")]
#[allow(unsafe_code)] // the frame bitmap as a slice, starting the heap
mod platform;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_takes_the_requested_share() {
        assert_eq!(heap_frames(1000, None), 500);
        assert_eq!(heap_frames(1000, Some(1 << 20)), 256);
        assert_eq!(heap_frames(1000, Some(100 << 20)), 1000, "capped by what is free");
        assert_eq!(heap_frames(1000, Some(u64::MAX)), 1000);
    }
}
