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
//! Safe code cannot forge or misroute a run: [`PageRun::new`] is `unsafe`
//! (only a source describes memory it hands out), every run carries its
//! source's [`SourceId`], and [`PageSource::free`] is `unsafe` too; the DMA
//! layer gives runs back only through [`give_back`], which checks that the
//! run goes home (`DmaBuffer::free` into another source panics instead of
//! letting one source hand out another's memory).
//!
//! Never: treat a run's address as anything but the source's promise; this
//! module only carries it.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

/// Size of a page, and of a grant: 4 KiB on every architecture xenecho runs on.
pub const PAGE_SIZE: usize = xen_pv::abi::PAGE_SIZE;

/// Which [`PageSource`] a run came from. Two sources with the same id are
/// one allocator (copies of one handle to it); see [`PageSource::id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId(u32);

/// The next [`SourceId::unique`].
static NEXT_SOURCE_ID: AtomicU32 = AtomicU32::new(1);

impl SourceId {
    /// An id no other call returns: for a source made at run time.
    pub fn unique() -> Self {
        Self(NEXT_SOURCE_ID.fetch_add(1, Ordering::Relaxed))
    }
}

/// A run of contiguous pages from a [`PageSource`]: `count` pages starting at
/// CPU address `address`, page `i` being guest frame `first_frame + i`.
///
/// Not `Clone`: a run stands for memory its holder owns, and only its
/// source makes one ([`PageRun::new`] is `unsafe`).
#[derive(Debug, PartialEq, Eq)]
pub struct PageRun {
    address: NonNull<u8>,
    first_frame: u64,
    /// The number of pages: 32 bits, so that the source's id fits beside it
    /// and a handle (which holds a run) stays at 80 bytes.
    count: u32,
    source: SourceId,
}

impl PageRun {
    /// Describes `count` pages at `address`, the first being `first_frame`,
    /// handed out by the source `source`.
    ///
    /// # Safety
    ///
    /// Only a [`PageSource`] whose [`PageSource::id`] is `source` calls it,
    /// in [`PageSource::allocate`], for a run it hands out now and that
    /// keeps the trait's promises; one run value per allocation. (A run
    /// made up for memory someone else owns would let safe code free that
    /// memory, or hold it twice.)
    ///
    /// # Panics
    ///
    /// If `count` does not fit in 32 bits (16 TiB of pages).
    pub unsafe fn new(source: SourceId, address: NonNull<u8>, first_frame: u64, count: usize) -> Self {
        let count = u32::try_from(count).expect("a page run of fewer than 2^32 pages");
        Self { address, first_frame, count, source }
    }

    /// The source the run came from.
    pub fn source(&self) -> SourceId {
        self.source
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
        self.count as usize
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
/// - stays valid until it is freed (the source outlives its runs);
/// - carries [`Self::id`], which is the same for every run and every call,
///   and shared with no other source (but copies of this one, which hand
///   out and take back the same memory).
pub unsafe trait PageSource {
    /// The source's identity, stamped on its runs.
    fn id(&self) -> SourceId;

    /// `count` (at least 1) contiguous zeroed pages, or [`OutOfPages`].
    fn allocate(&self, count: usize) -> Result<PageRun, OutOfPages>;

    /// Takes back a whole run.
    ///
    /// # Safety
    ///
    /// `run` was handed out by this source (`run.source() == self.id()`)
    /// and not given back since; no grant covers it and nothing refers to
    /// its memory any more.
    unsafe fn free(&self, run: PageRun);
}

// SAFETY: forwards to `S`, which keeps the promises.
unsafe impl<S: PageSource + ?Sized> PageSource for &S {
    fn id(&self) -> SourceId {
        (**self).id()
    }

    fn allocate(&self, count: usize) -> Result<PageRun, OutOfPages> {
        (**self).allocate(count)
    }

    unsafe fn free(&self, run: PageRun) {
        // SAFETY: the caller's promise, passed on.
        unsafe { (**self).free(run) }
    }
}

/// Gives `run` back to `source`: the DMA layer's one way to free pages, for
/// runs it owns and no grant covers any more. Panics if the run came from
/// another source (a caller's mistake that would let two sources hand out
/// the same memory).
pub(crate) fn give_back(source: &impl PageSource, run: PageRun) {
    assert!(run.source == source.id(), "DMA pages given back to a page source they did not come from");
    // SAFETY: the run is from this source (just checked), and the DMA layer
    // holds it alone: a run leaves a `DmaBuffer` or a bounce page only here,
    // and those give it back only once no grant covers it (module docs).
    unsafe { source.free(run) }
}
