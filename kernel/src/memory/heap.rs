//! The kernel heap: `linked_list_allocator` over one run of frames.
//!
//! Allocation failure returns null to `alloc`, which ends in the panic path;
//! code that must turn exhaustion into backpressure uses `try_reserve`.

use super::HeapStats;
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Gives the heap its memory.
///
/// # Safety
/// `[start, start + size)` must be mapped, writable, unused by anything else
/// for the rest of the kernel's life, and this must be called once.
pub unsafe fn init(start: usize, size: usize) {
    // SAFETY: forwarded from this function's contract.
    unsafe { HEAP.lock().init(start as *mut u8, size) };
}

/// Heap usage now.
pub fn stats() -> HeapStats {
    let heap = HEAP.lock();
    HeapStats { used: heap.used(), free: heap.free() }
}
