//! DMA pages from the frame allocator: the kernel's [`dma::PageSource`].
//!
//! Every page is identity-mapped RAM (virtual address = physical address =
//! frame × 4096), so a run's frames are exactly its memory, which is what
//! granting requires. Runs are zeroed before they are handed out, so a
//! granted page never shows a backend what an earlier user left there.

use super::frames::{FRAME_SIZE, FrameNumber};
use core::ptr::NonNull;
use dma::{OutOfPages, PageRun, PageSource, SourceId};

/// The kernel's page source (zero-sized: the state is the frame allocator,
/// and every copy is the same source).
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelPages;

/// The frame allocator's identity as a page source.
static KERNEL_SOURCE: spin::Once<SourceId> = spin::Once::new();

// SAFETY: runs come from the frame allocator, which hands each frame out
// once until it is freed and manages only identity-mapped RAM outside the
// kernel image, boot data, heap and special pages; they are zeroed here,
// page-aligned (frame × 4096), and page `i` is frame `first + i`. The
// allocator lives for the kernel's life; every `KernelPages` is it, so all
// share one id, which no other source has.
unsafe impl PageSource for KernelPages {
    fn id(&self) -> SourceId {
        *KERNEL_SOURCE.call_once(SourceId::unique)
    }

    fn allocate(&self, count: usize) -> Result<PageRun, OutOfPages> {
        let first = super::FRAMES.lock().as_mut().ok_or(OutOfPages)?.allocate_contiguous(count as u64, 1);
        let first = first.ok_or(OutOfPages)?;
        let address = first.address() as *mut u8;
        // SAFETY: the frames were just handed to us alone; they are mapped,
        // writable RAM of `count` pages starting at `address`.
        unsafe { core::ptr::write_bytes(address, 0, count * FRAME_SIZE as usize) };
        let address = NonNull::new(address).ok_or(OutOfPages)?;
        // SAFETY: the frames are this source's, handed out now (above).
        Ok(unsafe { PageRun::new(self.id(), address, first.0, count) })
    }

    unsafe fn free(&self, run: PageRun) {
        let mut frames = super::FRAMES.lock();
        let Some(frames) = frames.as_mut() else { return };
        for frame in run.first_frame()..run.first_frame() + run.count() as u64 {
            if let Err(error) = frames.free(FrameNumber(frame)) {
                log::error!("freeing DMA page: {error:?}");
            }
        }
    }
}
