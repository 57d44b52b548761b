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

/// The frame at address 0, kept out of every allocator: a buffer there
/// would begin at the null pointer. (On x86_64 the rest of the first MiB is
/// RAM like any other: see `arch::x86_64::boot`.)
pub const NULL_FRAME: Range<u64> = 0..FRAME_SIZE;

/// The heap size to ask for, in frames: `heap=` from the command line if
/// given (in bytes, a whole number of frames: `cmdline::heap_bytes_for`),
/// else a share of the free frames; never more than the longest run of free
/// frames (`largest_run`), since the heap is one run.
pub fn heap_frames(free_frames: u64, largest_run: u64, requested_bytes: Option<u64>) -> u64 {
    let wanted = match requested_bytes {
        Some(bytes) => bytes / FRAME_SIZE,
        None => free_frames * DEFAULT_HEAP_PERCENT / 100,
    };
    wanted.min(free_frames).min(largest_run)
}

/// Why memory could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryError {
    /// No free RAM large enough for the frame bitmap.
    NoRoomForBitmap,
    /// No contiguous run of frames for the heap.
    NoRoomForHeap,
}

/// Where the frame bitmap goes: the lowest page-aligned block of RAM that
/// overlaps none of `reserved`, one bit for each frame of the RAM span.
pub fn bitmap_range(map: &MemoryMap, reserved: &[Range<u64>]) -> Result<Range<u64>, MemoryError> {
    let bytes = (FrameAllocator::bitmap_words(&map.ram_span()) * 8) as u64;
    let start = map.find_free(bytes, FRAME_SIZE, reserved).ok_or(MemoryError::NoRoomForBitmap)?;
    Ok(start..start + bytes)
}

/// Lays memory out as boot does, on `frames` (an allocator over the RAM
/// span of `map`, fresh from [`FrameAllocator::new`], its bitmap living at
/// `bitmap`): the RAM released, `reserved` and the bitmap taken back, then
/// the heap's run of frames taken (`heap_bytes`, or the default share).
/// Boot runs it over the bitmap it placed in RAM; host tests run it over a
/// bitmap of their own, to see the heap a guest of a given map gets.
pub fn lay_out(
    frames: &mut FrameAllocator<'_>,
    map: &MemoryMap,
    reserved: &[Range<u64>],
    bitmap: Range<u64>,
    heap_bytes: Option<u64>,
) -> Result<MemoryLayout, MemoryError> {
    map.ram().for_each(|region| frames.release(region.start..region.end));
    reserved.iter().for_each(|range| frames.reserve(range.clone()));
    frames.reserve(bitmap.clone());
    let heap_frames = heap_frames(frames.free_frames(), frames.largest_free_run(), heap_bytes);
    let heap_start = frames.allocate_contiguous(heap_frames, 1).ok_or(MemoryError::NoRoomForHeap)?;
    let heap = heap_start.address()..heap_start.address() + heap_frames * FRAME_SIZE;
    Ok(MemoryLayout { heap, bitmap, free_frames: frames.free_frames() })
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

/// Where the x86_64 image begins (1 MiB: the linker script's address, and
/// where Xen's PVH loader puts it).
pub const PVH_IMAGE_START: u64 = 0x10_0000;

/// The highest end the x86_64 image may have (`__kernel_end`: its loaded
/// segments and its BSS, the boot stack among them). `tests/check-image.sh`
/// fails an image that ends beyond it, and the host tests size the
/// smallest guests' heaps with an image this large (`pvh_layout`), so an
/// image that grows past it fails a check instead of quietly taking
/// connection slots from a 4 MB guest. The image ended at 0x1be000 when the
/// bound was set.
pub const PVH_IMAGE_END_BOUND: u64 = 0x1e_0000;

/// The layout boot makes of an x86_64 PVH guest with `ram_bytes` of RAM and
/// an image ending at `image_end`, with `heap_bytes` asked for (host builds
/// only: what the tests size a small guest's heap by). The memory map is
/// the one libxl writes for a PVH guest (no device model): RAM from address
/// 0, the ACPI tables at 0xfc000000 and Xen's special pages below
/// 0xff000000, both above RAM. Reserved as boot reserves them: the image
/// from [`PVH_IMAGE_START`], the start info with the command line and the
/// memory map in the page after the image (where libxl's domain builder
/// puts them), and [`NULL_FRAME`].
#[cfg(not(target_os = "none"))]
pub fn pvh_layout(ram_bytes: u64, image_end: u64, heap_bytes: Option<u64>) -> Result<MemoryLayout, MemoryError> {
    pvh_layout_keeping(NULL_FRAME, ram_bytes, image_end, heap_bytes)
}

/// As [`pvh_layout`], with `low` kept out where boot keeps [`NULL_FRAME`].
#[cfg(not(target_os = "none"))]
fn pvh_layout_keeping(
    low: Range<u64>,
    ram_bytes: u64,
    image_end: u64,
    heap_bytes: Option<u64>,
) -> Result<MemoryLayout, MemoryError> {
    use xen_pv::abi::start_info::{MEMMAP_TYPE_ACPI, MEMMAP_TYPE_RAM, MEMMAP_TYPE_RESERVED, MemoryMapEntry};
    let entry = |addr, size, kind| MemoryMapEntry { addr, size, kind, reserved: 0 };
    let entries = [
        entry(0, ram_bytes, MEMMAP_TYPE_RAM),
        entry(0xfc00_0000, 0x8040, MEMMAP_TYPE_ACPI),
        entry(0xfeff_8000, 0x8000, MEMMAP_TYPE_RESERVED),
    ];
    let map = MemoryMap::from_entries(entries).expect("a PVH guest's map");
    let start_info = map::align_up(image_end, FRAME_SIZE).unwrap_or(image_end);
    let reserved = [PVH_IMAGE_START..image_end, start_info..start_info + FRAME_SIZE, low];
    let bitmap = bitmap_range(&map, &reserved)?;
    let mut words = alloc::vec![0; FrameAllocator::bitmap_words(&map.ram_span())];
    let mut frames = FrameAllocator::new(map.ram_span(), &mut words);
    lay_out(&mut frames, &map, &reserved, bitmap, heap_bytes)
}

#[cfg(target_os = "none")]
pub use platform::*;

#[cfg(target_os = "none")]
#[allow(unsafe_code)] // the frame bitmap as a slice, starting the heap
mod platform;

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    /// Where this commit's x86_64 image ends (`nm build/xenecho.elf`).
    const IMAGE_END: u64 = 0x1b_e000;

    #[test]
    fn a_pvh_guest_gets_half_its_free_frames_as_heap_the_first_mib_included() {
        // Frame 0, the image (190 frames), the start-info page and the
        // bitmap are taken: 1024 - 193 frames of a 4 MB guest are free, 254
        // of them below the image and 577 above it.
        let small = pvh_layout(4 * MIB, IMAGE_END, None).unwrap();
        assert_eq!(small.bitmap, 0x1000..0x1000 + 128, "the bitmap goes to the first free page");
        assert_eq!(small.heap, 0x1bf000..0x1bf000 + 415 * FRAME_SIZE, "above the image: the low run is too short");
        assert_eq!(small.free_frames, 416);
        let eight = pvh_layout(8 * MIB, IMAGE_END, None).unwrap();
        assert_eq!((eight.heap.end - eight.heap.start) / FRAME_SIZE, 927);
        let large = pvh_layout(64 * MIB, IMAGE_END, None).unwrap();
        assert_eq!((large.heap.end - large.heap.start) / FRAME_SIZE, 8095);
        assert_eq!(large.free_frames, 8096);
        // The largest image the checks allow leaves a 4 MB guest 398 frames.
        let bound = pvh_layout(4 * MIB, PVH_IMAGE_END_BOUND, None).unwrap();
        assert_eq!((bound.heap.end - bound.heap.start) / FRAME_SIZE, 398);
    }

    #[test]
    fn with_the_whole_first_mib_kept_out_the_layout_is_what_guests_logged() {
        // Before the first MiB was released: the heaps the test host's
        // guests logged (4 MB: `heap 0x1c0000-0x2e0000 (1152 KiB), 288
        // frames left for pages`; 64 MB: 31872 KiB, 7968 frames left).
        let old = |ram| pvh_layout_keeping(0..PVH_IMAGE_START, ram, IMAGE_END, None).unwrap();
        let small = old(4 * MIB);
        assert_eq!((small.heap.clone(), small.free_frames), (0x1c_0000..0x2e_0000, 288));
        assert_eq!((old(8 * MIB).heap.end - 0x1c_0000) / FRAME_SIZE, 800);
        let large = old(64 * MIB);
        assert_eq!((large.heap.end - large.heap.start, large.free_frames), (31872 * 1024, 7968));
    }

    #[test]
    fn a_heap_larger_than_the_longest_free_run_gets_the_run() {
        // heap=3M on a 4 MB guest: 831 frames are free, but in two runs.
        let layout = pvh_layout(4 * MIB, IMAGE_END, Some(3 * MIB)).unwrap();
        assert_eq!(layout.heap, 0x1bf000..0x40_0000);
        assert_eq!(layout.free_frames, 254);
    }

    #[test]
    fn heap_takes_the_requested_share() {
        assert_eq!(heap_frames(1000, 1000, None), 500);
        assert_eq!(heap_frames(1000, 1000, Some(1 << 20)), 256);
        assert_eq!(heap_frames(1000, 1000, Some(100 << 20)), 1000, "capped by what is free");
        assert_eq!(heap_frames(1000, 1000, Some(u64::MAX)), 1000);
        assert_eq!(heap_frames(1000, 700, Some(100 << 20)), 700, "capped by the longest free run");
        assert_eq!(heap_frames(1000, 400, None), 400);
    }
}
