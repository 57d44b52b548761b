//! [`DmaDevice`]: the DMA device for one backend domain, over a
//! [`Translation`] (the grant table on Xen, or the identity translation).
//!
//! `map` takes a buffer and returns a handle; `sync_for_device`,
//! `sync_for_cpu` and `unmap` take the handle. The device keeps no record of
//! its mappings: it has counters, the bounce pool (bounce mode only) and the
//! deferred-release queue, and nothing else. The handle carries its bus
//! pages (grant references on Xen) and its pages, so unmapping is "revoke
//! the bus pages listed in the handle", never "find the mapping of this
//! address".
//!
//! Ownership is the protocol:
//! - a failed `map` gives the buffer back inside the error;
//! - `unmap` revokes every bus page the handle lists; if the backend still
//!   holds one (a grant with `GTF_reading`/`GTF_writing`), the ones it holds
//!   stay, the buffer stays owned by the [`StillInUse`] value returned, and
//!   the caller either retries or defers it to the queue that `reclaim`
//!   drains (a translation that cannot refuse, the identity one, never gets
//!   here);
//! - no page is freed or reused while a grant covers it (XSA-396);
//! - grant or bounce-page exhaustion is an error value (backpressure).
//!
//! On x86 and ARM the memory Xen shares is coherent: a sync is a fence plus,
//! in bounce mode, a copy. Never: panic because of anything the backend does,
//! or look a mapping up by its bus address.

use crate::bounce::{self, BounceCapacity, BouncePage, BouncePool};
use crate::buffer::DmaBuffer;
use crate::counters::DmaCounters;
use crate::direction::{CpuWrites, DeviceWrites, Direction};
use crate::error::{CloseError, CloseRefusal, MapError, MapFailure, Released, SetupError, StillInUse};
use crate::grant_list::GrantList;
use crate::handle::{Backing, DmaHandle};
use crate::page::PageSource;
use crate::translation::{BusPage, Epoch, Translation};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::marker::PhantomData;
use core::ops::Range;
use core::sync::atomic::{AtomicU32, Ordering, fence};
use xen_pv::abi::DomainId;
use xen_pv::grant_table::{GrantError, RevokeError};

/// How far the guest trusts a backend, chosen per device (the frontend's
/// xenstore `trusted` key, default trusted, or the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendTrust {
    /// Translate (grant) the buffers' own pages (zero copies). The backend
    /// sees exactly the buffers and zeros; a trusted dom0 can read all guest
    /// memory anyway.
    Trusted,
    /// Never translate a buffer's pages: bounce every buffer through
    /// dedicated, persistently translated pages.
    Untrusted(BounceCapacity),
}

/// Tells devices apart, so a handle is only ever used with its own device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeviceId(u32);

static NEXT_DEVICE_ID: AtomicU32 = AtomicU32::new(1);

/// A buffer whose bus pages the backend held at unmap, waiting in the
/// queue (the held ones in the handle's own list: queueing moves it, the
/// queue's growth is the only allocation).
struct DeferredRelease {
    held: GrantList,
    buffer: DmaBuffer,
}

/// The DMA device for one backend domain: maps buffers into handles with
/// bus pages from the translation `T`, takes bounce pages from `S`.
///
/// Single-threaded (`!Sync`): the kernel has one vCPU and no interrupts.
/// Shut it down with [`DmaDevice::close`]; a device dropped instead leaks
/// its bounce pages and queued buffers, which is safe (nothing is freed
/// while the backend may hold it) but wasteful.
pub struct DmaDevice<T: Translation, S: PageSource> {
    translation: Epoch<T>,
    source: S,
    backend: DomainId,
    id: DeviceId,
    bounce: Option<RefCell<BouncePool>>,
    deferred: RefCell<Vec<DeferredRelease>>,
    counters: Cell<DmaCounters>,
}

/// The device over the guest's grant table, as the kernel has it on Xen
/// (its name from before the translation was a parameter): the same type.
pub type GrantDma<G, S> = DmaDevice<G, S>;

impl<T: Translation, S: PageSource> core::fmt::Debug for DmaDevice<T, S> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("DmaDevice")
            .field("backend", &self.backend)
            .field("bouncing", &self.is_bouncing())
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl<T: Translation, S: PageSource> DmaDevice<T, S> {
    /// A device for `backend`, reached through `translation`. An untrusted
    /// backend gets its bounce pages now, zeroed and translated; if that
    /// fails nothing is left behind.
    pub fn new(translation: T, source: S, backend: DomainId, trust: BackendTrust) -> Result<Self, SetupError> {
        let translation = Epoch::new(translation);
        let bounce = match trust {
            BackendTrust::Trusted => None,
            BackendTrust::Untrusted(capacity) => {
                Some(RefCell::new(BouncePool::create(&translation, &source, backend, capacity)?))
            }
        };
        let id = DeviceId(NEXT_DEVICE_ID.fetch_add(1, Ordering::Relaxed));
        let device = Self {
            translation,
            source,
            backend,
            id,
            deferred: RefCell::new(Vec::new()),
            counters: Cell::new(DmaCounters::default()),
            bounce,
        };
        device.count(|counters| counters.grants_in_use = device.bounce_grants() as u64);
        Ok(device)
    }

    /// The backend domain.
    pub fn backend(&self) -> DomainId {
        self.backend
    }

    /// Whether buffers are bounced (the backend is untrusted).
    pub fn is_bouncing(&self) -> bool {
        self.bounce.is_some()
    }

    /// Whether a buffer of `pages` pages can be mapped for `D` now, as far
    /// as the device's own resources go: in bounce mode, whether that many
    /// bounce pages of `D`'s permission are idle (a driver asks before it
    /// promises to send a frame that needs a mapping of its own). A trusted
    /// device translates the buffer's pages; the grant table may still refuse.
    pub fn has_room_for<D: Direction>(&self, pages: usize) -> bool {
        self.bounce.as_ref().is_none_or(|pool| pool.borrow().idle(D::DEVICE_WRITES) >= pages)
    }

    /// The page source, to allocate and free buffers with.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Counters so far.
    pub fn counters(&self) -> DmaCounters {
        self.counters.get()
    }

    pub(crate) fn translation(&self) -> &Epoch<T> {
        &self.translation
    }

    /// Whether the translation was reset since this device was made (on
    /// Xen: the grant table, after a resume in a new domain): every grant it
    /// made is void. Unmapping, unsharing, reclaiming and closing then end
    /// nothing in the table and give every page back at once (no backend can
    /// hold it: the domain it was granted in is gone); mapping and sharing
    /// are refused. The way to drop a device of an earlier domain, without
    /// revoking anything.
    pub fn bus_pages_void(&self) -> bool {
        self.translation.is_void()
    }

    /// Counts the bus pages of shared (ring) pages in `grants_in_use`.
    pub(crate) fn count_shared_grants(&self, change: i64) {
        self.count(|counters| counters.grants_in_use = counters.grants_in_use.saturating_add_signed(change));
    }

    pub(crate) fn id(&self) -> DeviceId {
        self.id
    }

    /// Translates the buffer's pages for the backend (grants them, read-only
    /// for `ToDevice`) and returns the handle; for the directions the CPU writes this is also the
    /// first sync for the device. On failure the buffer comes back in the error.
    pub fn map<D: Direction>(&self, buffer: DmaBuffer, direction: D) -> Result<DmaHandle<D>, MapError> {
        let _: D = direction; // the type is the direction; the value only names it
        if self.bus_pages_void() {
            // Bounce pages too were granted in the old domain.
            self.count(|counters| counters.map_failures += 1);
            return Err(MapError { reason: MapFailure::Grant(GrantError::TableReset), buffer });
        }
        let backing = match &self.bounce {
            None => self.translate_buffer::<D>(&buffer),
            Some(pool) => lend_bounce_pages::<D>(&buffer, &mut pool.borrow_mut()),
        };
        let backing = match backing {
            Ok(backing) => backing,
            Err(reason) => {
                self.count(|counters| counters.map_failures += 1);
                return Err(MapError { reason, buffer });
            }
        };
        let mut handle = DmaHandle { buffer, backing, backend: self.backend, device: self.id, direction: PhantomData };
        if D::CPU_WRITES {
            let whole = 0..handle.buffer.len();
            self.push_to_device(&mut handle, whole);
        }
        self.count(|counters| {
            counters.maps += 1;
            counters.live_handles += 1;
        });
        Ok(handle)
    }

    /// Makes the CPU's writes visible to the device and hands it the buffer.
    pub fn sync_for_device<D: CpuWrites>(&self, handle: &mut DmaHandle<D>) {
        let whole = 0..handle.buffer.len();
        self.sync_range_for_device(handle, whole);
    }

    /// Makes the CPU's writes to bytes `range` of the buffer visible to the
    /// device and hands it the buffer (in bounce mode only those bytes are
    /// copied: a 60-byte frame in a page-sized buffer copies 60 bytes).
    ///
    /// # Panics
    ///
    /// If `range` is not inside the buffer (`start <= end <= len`).
    pub fn sync_range_for_device<D: CpuWrites>(&self, handle: &mut DmaHandle<D>, range: Range<usize>) {
        self.check_owner(handle.device);
        check_range(&range, handle.buffer.len());
        self.push_to_device(handle, range);
        self.count(|counters| counters.syncs_for_device += 1);
    }

    /// Makes the device's writes visible to the CPU.
    pub fn sync_for_cpu<D: DeviceWrites>(&self, handle: &mut DmaHandle<D>) {
        let whole = 0..handle.buffer.len();
        self.sync_range_for_cpu(handle, whole);
    }

    /// Makes the device's writes to bytes `range` of the buffer visible to
    /// the CPU (in bounce mode only those bytes are copied). The rest of
    /// the buffer keeps what the CPU saw before.
    ///
    /// # Panics
    ///
    /// If `range` is not inside the buffer (`start <= end <= len`).
    pub fn sync_range_for_cpu<D: DeviceWrites>(&self, handle: &mut DmaHandle<D>, range: Range<usize>) {
        self.check_owner(handle.device);
        check_range(&range, handle.buffer.len());
        self.pull_from_device(handle, range);
        self.count(|counters| counters.syncs_for_cpu += 1);
    }

    /// Ends the mapping and gives the buffer back, holding what the device
    /// wrote. If the backend still holds a grant, the others are revoked and
    /// the buffer comes back inside [`StillInUse`] with the bus pages held.
    pub fn unmap<D: Direction>(&self, mut handle: DmaHandle<D>) -> Result<DmaBuffer, StillInUse<D>> {
        // Everything to undo is in the handle: its bus pages or bounce
        // pages. No table of mappings is consulted, because there is none.
        self.check_owner(handle.device);
        if D::DEVICE_WRITES {
            let whole = 0..handle.buffer.len();
            self.pull_from_device(&mut handle, whole);
        }
        let DmaHandle { buffer, backing, device, .. } = handle;
        match backing {
            Backing::Bounced(pages) => {
                self.return_bounce_pages::<D>(pages);
                Ok(self.finish(buffer))
            }
            Backing::Direct(held) => self.revoke_held(StillInUse { buffer, held, device, direction: PhantomData }),
        }
    }

    /// Tries again to revoke the bus pages the backend held.
    pub fn retry_unmap<D: Direction>(&self, still_in_use: StillInUse<D>) -> Result<DmaBuffer, StillInUse<D>> {
        self.check_owner(still_in_use.device);
        self.revoke_held(still_in_use)
    }

    /// Revokes what the backend lets go of; the buffer once nothing is held.
    fn revoke_held<D: Direction>(&self, mut still_in_use: StillInUse<D>) -> Result<DmaBuffer, StillInUse<D>> {
        if self.revoke_all(&mut still_in_use.held) {
            return Ok(self.finish(still_in_use.buffer));
        }
        self.count(|counters| counters.unmap_refusals += 1);
        Err(still_in_use)
    }

    /// Unmaps now if the backend lets go, else queues the buffer for
    /// [`Self::reclaim`]: it is never freed or reused while a grant holds it.
    pub fn unmap_or_defer<D: Direction>(&self, handle: DmaHandle<D>) -> Released {
        match self.unmap(handle) {
            Ok(buffer) => Released::Now(buffer),
            Err(still_in_use) => {
                self.defer(still_in_use);
                Released::Deferred
            }
        }
    }

    /// Queues a refused unmap for [`Self::reclaim`].
    pub fn defer<D: Direction>(&self, still_in_use: StillInUse<D>) {
        let StillInUse { buffer, held, device, .. } = still_in_use;
        self.check_owner(device);
        self.deferred.borrow_mut().push(DeferredRelease { held, buffer });
        self.count(|counters| {
            counters.deferred_releases += 1;
            counters.deferred_pending += 1;
            counters.live_handles -= 1;
        });
    }

    /// Retries the deferred queue; returns the buffers the backend has let
    /// go of, oldest first. The others stay queued.
    pub fn reclaim(&self) -> Vec<DmaBuffer> {
        let mut queue = self.deferred.borrow_mut();
        let released: Vec<DmaBuffer> =
            queue.extract_if(.., |pending| self.revoke_all(&mut pending.held)).map(|pending| pending.buffer).collect();
        if !released.is_empty() {
            fence(Ordering::Acquire);
        }
        self.count(|counters| {
            counters.unmaps += released.len() as u64;
            counters.deferred_pending -= released.len() as u64;
        });
        released
    }

    /// Buffers waiting in the deferred queue.
    pub fn deferred_len(&self) -> usize {
        self.deferred.borrow().len()
    }

    /// Shuts the device down: revokes and frees the bounce pages and gives
    /// back the translation and the page source. Refused, with the device given
    /// back, while handles are live, buffers are queued, or the backend still
    /// holds a bounce page (call again later).
    pub fn close(self) -> Result<(T, S), CloseError<T, S>> {
        if let Some(refusal) = self.close_refusal() {
            return Err(CloseError { device: Box::new(self), refusal });
        }
        if let Some(pool) = &self.bounce {
            let held = pool.borrow_mut().release(&self.translation, &self.source);
            self.count(|counters| counters.grants_in_use = held as u64);
            if held > 0 {
                return Err(CloseError { device: Box::new(self), refusal: CloseRefusal::BouncePagesHeld(held) });
            }
        }
        Ok((self.translation.into_inner(), self.source))
    }

    fn close_refusal(&self) -> Option<CloseRefusal> {
        let counters = self.counters();
        if counters.live_handles > 0 {
            return Some(CloseRefusal::HandlesLive(counters.live_handles));
        }
        let queued = self.deferred_len();
        (queued > 0).then_some(CloseRefusal::DeferredPending(queued))
    }

    /// Translates the buffer's own pages, read-only unless the device writes.
    /// Allocates only for a buffer of more than `INLINE_GRANTS` pages.
    fn translate_buffer<D: Direction>(&self, buffer: &DmaBuffer) -> Result<Backing, MapFailure> {
        let pages = buffer.pages();
        let mut references = GrantList::zeroed(pages.count());
        self.translation
            .translate_run(self.backend, pages.first_frame(), !D::DEVICE_WRITES, references.as_mut_slice())
            .map_err(MapFailure::from)?;
        self.count(|counters| counters.grants_in_use += references.len() as u64);
        Ok(Backing::Direct(references))
    }

    fn return_bounce_pages<D: Direction>(&self, pages: Vec<BouncePage>) {
        if let Some(pool) = &self.bounce {
            pool.borrow_mut().give_back(D::DEVICE_WRITES, pages);
        }
    }

    /// Release ordering, and in bounce mode the copy into the bounce pages.
    fn push_to_device<D: Direction>(&self, handle: &mut DmaHandle<D>, range: Range<usize>) {
        if let Backing::Bounced(pages) = &handle.backing {
            let bytes = bounce::copy_to_bounce(&handle.buffer, pages, range);
            self.count_bounce(bytes);
        }
        fence(Ordering::Release);
    }

    /// Acquire ordering, and in bounce mode the copy of `range` out of the
    /// bounce pages.
    fn pull_from_device<D: Direction>(&self, handle: &mut DmaHandle<D>, range: Range<usize>) {
        fence(Ordering::Acquire);
        if let Backing::Bounced(pages) = &handle.backing {
            let bytes = bounce::copy_from_bounce(&mut handle.buffer, pages, range);
            self.count_bounce(bytes);
        }
    }

    /// Revokes every bus page the backend does not hold and drops it from
    /// `references` (in place); true when none is left.
    fn revoke_all(&self, references: &mut GrantList) -> bool {
        references.retain(|bus_page| !self.revoke(bus_page));
        references.is_empty()
    }

    /// Revokes one bus page; false if the backend still holds it.
    fn revoke(&self, bus_page: BusPage) -> bool {
        match self.translation.revoke(bus_page) {
            Ok(()) => {
                self.count(|counters| counters.grants_in_use -= 1);
                true
            }
            Err(RevokeError::StillInUse) => false,
            // Only this device revokes its references: anything else means
            // the guest's own bookkeeping broke, which no backend can cause.
            Err(error) => panic!("bus page {bus_page} of a live DMA handle was ended elsewhere: {error:?}"),
        }
    }

    /// The unmap is complete: the buffer is the caller's again.
    fn finish(&self, buffer: DmaBuffer) -> DmaBuffer {
        self.count(|counters| {
            counters.unmaps += 1;
            counters.live_handles -= 1;
        });
        buffer
    }

    /// A handle of another device would make this one revoke bus pages it
    /// never translated: a bug in the caller, never the backend's doing.
    fn check_owner(&self, device: DeviceId) {
        assert!(device == self.id, "a DMA handle was given to a device other than the one that mapped it");
    }

    fn bounce_grants(&self) -> usize {
        self.bounce.as_ref().map_or(0, |pool| pool.borrow().grants_held())
    }

    fn count_bounce(&self, bytes: usize) {
        self.count(|counters| {
            counters.bounce_copies += 1;
            counters.bounce_bytes += bytes as u64;
        });
    }

    fn count(&self, update: impl FnOnce(&mut DmaCounters)) {
        let mut counters = self.counters.get();
        update(&mut counters);
        self.counters.set(counters);
    }
}

/// Lends bounce pages of the direction's permission, one per buffer page.
fn lend_bounce_pages<D: Direction>(buffer: &DmaBuffer, pool: &mut BouncePool) -> Result<Backing, MapFailure> {
    let pages = pool.take(D::DEVICE_WRITES, buffer.page_count()).ok_or(MapFailure::BounceExhausted)?;
    Ok(Backing::Bounced(pages))
}

/// Panics unless `range` lies inside a buffer of `len` bytes: a caller's
/// bug (like indexing a slice out of bounds), never the backend's doing.
fn check_range(range: &Range<usize>, len: usize) {
    assert!(range.start <= range.end && range.end <= len, "DMA sync of bytes {range:?} of a {len}-byte buffer");
}
