//! The memory set-up that touches the machine (Xen guests only): the frame
//! bitmap placed in free RAM, the frame allocator over it, and the heap
//! started on a run of frames.

use super::*;
use spin::Mutex;

/// The frame allocator, once [`init`] has run.
pub static FRAMES: Mutex<Option<FrameAllocator<'static>>> = Mutex::new(None);

/// Builds the frame allocator over `map`, keeping out of `reserved`, and
/// starts the heap with `heap_bytes` (or the default share): [`lay_out`]
/// over a bitmap placed in free RAM.
pub fn init(map: &MemoryMap, reserved: &[Range<u64>], heap_bytes: Option<u64>) -> Result<MemoryLayout, MemoryError> {
    let span = map.ram_span();
    let words = FrameAllocator::bitmap_words(&span);
    let bitmap_range = bitmap_range(map, reserved)?;
    // SAFETY: the range lies in RAM (find_free), overlaps no reserved
    // range (kernel image, boot data, special pages), is identity-mapped,
    // 8-byte aligned, and `lay_out` reserves it in the allocator so nothing
    // else will ever be given it: this is its only reference.
    let bitmap = unsafe { core::slice::from_raw_parts_mut(bitmap_range.start as *mut u64, words) };
    let mut frames = FrameAllocator::new(span, bitmap);
    let layout = lay_out(&mut frames, map, reserved, bitmap_range, heap_bytes)?;
    let heap = &layout.heap;
    // SAFETY: the frames were just taken from the allocator, so the heap
    // owns them exclusively, and they are identity-mapped RAM.
    unsafe { heap::init(heap.start as usize, (heap.end - heap.start) as usize) };
    *FRAMES.lock() = Some(frames);
    Ok(layout)
}

/// Heap usage now.
pub fn heap_stats() -> HeapStats {
    heap::stats()
}
