//! The memory set-up that touches the machine (Xen guests only): the frame
//! bitmap placed in free RAM, the frame allocator over it, and the heap
//! started on a run of frames.

use super::*;
use spin::Mutex;

/// The frame allocator, once [`init`] has run.
pub static FRAMES: Mutex<Option<FrameAllocator<'static>>> = Mutex::new(None);

/// Why memory could not be set up.
#[derive(Debug, Clone, Copy)]
pub enum MemoryError {
    /// No free RAM large enough for the frame bitmap.
    NoRoomForBitmap,
    /// No contiguous run of frames for the heap.
    NoRoomForHeap,
}

/// Builds the frame allocator over `map`, keeping out of `reserved`, and
/// starts the heap with `heap_bytes` (or the default share).
pub fn init(map: &MemoryMap, reserved: &[Range<u64>], heap_bytes: Option<u64>) -> Result<MemoryLayout, MemoryError> {
    let span = map.ram_span();
    let words = FrameAllocator::bitmap_words(&span);
    let bitmap_bytes = (words * 8) as u64;
    let bitmap_start = map.find_free(bitmap_bytes, FRAME_SIZE, reserved).ok_or(MemoryError::NoRoomForBitmap)?;
    let bitmap_range = bitmap_start..bitmap_start + bitmap_bytes;
    // SAFETY: the range lies in RAM (find_free), overlaps no reserved
    // range (kernel image, boot data, special pages), is identity-mapped,
    // 8-byte aligned, and is reserved in the allocator below so nothing
    // else will ever be given it: this is its only reference.
    let bitmap = unsafe { core::slice::from_raw_parts_mut(bitmap_start as *mut u64, words) };
    let mut frames = FrameAllocator::new(span, bitmap);
    map.ram().for_each(|region| frames.release(region.start..region.end));
    reserved.iter().for_each(|range| frames.reserve(range.clone()));
    frames.reserve(bitmap_range.clone());

    let heap_frames = heap_frames(frames.free_frames(), heap_bytes);
    let heap_start = frames.allocate_contiguous(heap_frames, 1).ok_or(MemoryError::NoRoomForHeap)?;
    let heap = heap_start.address()..heap_start.address() + heap_frames * FRAME_SIZE;
    // SAFETY: the frames were just taken from the allocator, so the heap
    // owns them exclusively, and they are identity-mapped RAM.
    unsafe { heap::init(heap.start as usize, (heap.end - heap.start) as usize) };
    let free_frames = frames.free_frames();
    *FRAMES.lock() = Some(frames);
    Ok(MemoryLayout { heap, bitmap: bitmap_range, free_frames })
}

/// Heap usage now.
pub fn heap_stats() -> HeapStats {
    heap::stats()
}
