//! The page-source seam: where DMA memory comes from and goes back to.
//!
//! DMA memory is handed out in whole 4 KiB pages because page granularity is
//! a security boundary (XSA-403): the backend is granted whole frames, so a
//! granted page must hold nothing but the buffer it was granted for. A
//! [`PageSource`] hands out runs of zeroed pages and takes them back; the DMA
//! layer never splits a run, never hands one back while a grant covers it,
//! and never touches a byte outside the runs it holds.
//!
//! On Xen the kernel implements the trait over its frame allocator (the PVH
//! guest is identity-mapped: the address of frame `f` is `f << 12`); the
//! host tests implement it over the simulation's guest RAM
//! (`dma::sim::SimPageSource`, feature `test-utils`).
//!
//! Never: treat a run's address as anything but the source's promise; this
//! module only carries it.

use core::ptr::NonNull;

/// Size of a page, and of a grant: 4 KiB on every architecture xenecho runs on.
pub const PAGE_SIZE: usize = xen_pv::abi::PAGE_SIZE;

/// A run of contiguous pages from a [`PageSource`]: `count` pages starting at
/// CPU address `address`, page `i` being guest frame `first_frame + i`.
///
/// Plain data: holding a run is not owning memory. Only a run a source
/// handed out (and that is not back with it) stands for memory.
#[derive(Debug, PartialEq, Eq)]
pub struct PageRun {
    address: NonNull<u8>,
    first_frame: u64,
    count: usize,
}

impl PageRun {
    /// Describes `count` pages at `address`, the first being `first_frame`.
    /// For [`PageSource`] implementations.
    pub fn new(address: NonNull<u8>, first_frame: u64, count: usize) -> Self {
        Self { address, first_frame, count }
    }

    /// The CPU address of the first page.
    pub fn address(&self) -> NonNull<u8> {
        self.address
    }

    /// The guest frame of the first page.
    pub fn first_frame(&self) -> u64 {
        self.first_frame
    }

    /// How many pages the run has.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The CPU address of page `index` (in the run for `index < count`).
    pub(crate) fn page_address(&self, index: usize) -> *mut u8 {
        self.address.as_ptr().wrapping_add(index * PAGE_SIZE)
    }
}

/// No run of the requested length is free: back off (backpressure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfPages;

/// Where DMA pages come from.
///
/// Methods take `&self`: a source is shared by the buffers' owners and the
/// device (bounce and pool pages), single-threaded; implementations keep
/// their state behind a `RefCell` or a lock.
///
/// # Safety
///
/// The DMA layer turns a run's address into byte slices and grants its
/// frames to another domain, on the strength of these promises. A run
/// returned by [`PageSource::allocate`]:
/// - is `count * PAGE_SIZE` bytes of ordinary memory at `address`, aligned to
///   `PAGE_SIZE`, readable and writable by the CPU, and zeroed;
/// - belongs to the caller alone until it comes back through
///   [`PageSource::free`]: the source hands none of it out again, and nothing
///   else reads or writes it meanwhile (apart from a domain the caller grants
///   it to);
/// - is guest frames `first_frame .. first_frame + count`, page `i` being
///   frame `first_frame + i`: granting that frame shares exactly the memory
///   at `address + i * PAGE_SIZE`;
/// - stays valid until it is freed (the source outlives its runs).
pub unsafe trait PageSource {
    /// `count` (at least 1) contiguous zeroed pages, or [`OutOfPages`].
    fn allocate(&self, count: usize) -> Result<PageRun, OutOfPages>;

    /// Takes back a whole run this source handed out. The DMA layer calls it
    /// only once no grant covers the run and nothing refers to its memory.
    fn free(&self, run: PageRun);
}

// SAFETY: forwards to `S`, which keeps the promises.
unsafe impl<S: PageSource + ?Sized> PageSource for &S {
    fn allocate(&self, count: usize) -> Result<PageRun, OutOfPages> {
        (**self).allocate(count)
    }

    fn free(&self, run: PageRun) {
        (**self).free(run)
    }
}
