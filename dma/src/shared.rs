//! Pages shared with a backend for as long as a connection lasts: the
//! drivers' ring pages (Linux calls such memory "coherent").
//!
//! A [`SharedPage<T>`] is one zeroed page from the device's page source,
//! translated writable for the backend (granted, on Xen) and never bounced (it holds nothing but
//! `T`, so XSA-403 is satisfied by construction), and seen by the CPU as a
//! `&T`. `T` must be made for sharing: plain atomics that any bit pattern
//! the other domain writes leaves valid ([`SharedMemory`]).
//!
//! Ending the share follows the same rule as `unmap`: only the device that
//! shared the page ends the share (another device would revoke a reference
//! that is not its own and free the page into its own source: it panics, as
//! `unmap` does), the bus page is revoked first, and while the backend still
//! maps the page the page stays owned ([`StillShared`]), to be retried
//! later; it is freed only once revoked. (Over the identity translation the
//! revoke cannot refuse: the driver ends a share only once the backend has
//! let go of the ring, which netfront does by waiting for it to close.)

use crate::buffer::DmaBuffer;
use crate::device::{DeviceId, DmaDevice};
use crate::page::{PAGE_SIZE, PageSource};
use crate::translation::{BusPage, Translation};
use core::marker::PhantomData;
use xen_pv::grant_table::GrantError;
use xen_pv::ring::SharedRing;

/// Types that may live in a page shared with another domain.
///
/// # Safety
/// Implementors promise that the type fits in a page and needs no more than
/// page alignment, that all-zero bytes are a valid value, and that every
/// field is an atomic (or an array of atomics), so that the other domain
/// writing any bytes at any time leaves a valid value and is not a data race.
pub unsafe trait SharedMemory {}

// SAFETY: `SharedRing` is `repr(C)` and made only of `AtomicU32`s (all-zero
// valid, any bit pattern valid); its size is checked to fit a page in
// xen-pv and its alignment is 4.
unsafe impl<const WORDS: usize> SharedMemory for SharedRing<WORDS> {}

const _: () = assert!(size_of::<SharedRing<3>>() <= PAGE_SIZE && align_of::<SharedRing<3>>() <= PAGE_SIZE);

/// Why a page could not be shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareError {
    /// The page source is empty.
    OutOfPages,
    /// The translation refused (e.g. the grant table is exhausted).
    Grant(GrantError),
}

/// A page of `T` translated (granted) writable for the device's backend.
#[must_use = "a shared page goes back with `DmaDevice::unshare`; a dropped one leaks its page and grant"]
pub struct SharedPage<T: SharedMemory> {
    page: DmaBuffer,
    bus_page: BusPage,
    /// The device that shared it.
    device: DeviceId,
    _contents: PhantomData<T>,
}

impl<T: SharedMemory> SharedPage<T> {
    /// The shared value.
    pub fn get(&self) -> &T {
        // SAFETY: the page is PAGE_SIZE bytes, page-aligned and zeroed when
        // allocated (PageSource contract), owned by this value alone on the
        // CPU side; `T: SharedMemory` fits and aligns in it, is valid when
        // zeroed and under any concurrent writes by the backend (atomics
        // only), so a shared reference for `&self`'s life is sound.
        unsafe { &*(self.page.pages().address().as_ptr() as *const T) }
    }

    /// The bus page the backend reaches the page by: the grant reference
    /// it maps on Xen (a ring's `tx-ring-ref`), the frame under the
    /// identity translation.
    pub fn bus_page(&self) -> BusPage {
        self.bus_page
    }
}

impl<T: SharedMemory> core::ops::Deref for SharedPage<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.get()
    }
}

/// A page the backend still maps: it stays owned until a retry succeeds.
#[must_use = "retry with `DmaDevice::unshare_retry` later; dropping it leaks the page (safely)"]
pub struct StillShared<T: SharedMemory>(SharedPage<T>);

impl<X: Translation, S: PageSource> DmaDevice<X, S> {
    /// Allocates a zeroed page for a `T` and translates it writable for the
    /// backend (grants it, on Xen).
    pub fn share<T: SharedMemory>(&self) -> Result<SharedPage<T>, ShareError> {
        let page = DmaBuffer::allocate(self.source(), PAGE_SIZE).map_err(|_| ShareError::OutOfPages)?;
        let mut reference = [0];
        let first_frame = page.frames().start;
        if let Err(error) = self.translation().translate_run(self.backend(), first_frame, false, &mut reference) {
            page.free(self.source());
            return Err(ShareError::Grant(error));
        }
        self.count_shared_grants(1);
        Ok(SharedPage { page, bus_page: reference[0], device: self.id(), _contents: PhantomData })
    }

    /// Revokes the page's bus page (its grant) and frees it; if the backend
    /// still maps the page, nothing changes and the page comes back as
    /// [`StillShared`].
    ///
    /// # Panics
    ///
    /// If another device shared the page.
    pub fn unshare<T: SharedMemory>(&self, page: SharedPage<T>) -> Result<(), StillShared<T>> {
        assert!(page.device == self.id(), "a shared page was given to a device other than the one that shared it");
        match self.translation().revoke(page.bus_page) {
            Ok(()) => {
                self.count_shared_grants(-1);
                page.page.free(self.source());
                Ok(())
            }
            Err(_) => Err(StillShared(page)),
        }
    }

    /// Tries again to end a share the backend held.
    pub fn unshare_retry<T: SharedMemory>(&self, still: StillShared<T>) -> Result<(), StillShared<T>> {
        self.unshare(still.0)
    }
}

#[cfg(all(test, feature = "test-utils"))]
mod tests {
    use super::*;
    use crate::BackendTrust;
    use crate::sim::SimPageSource;
    use core::cell::RefCell;
    use core::sync::atomic::Ordering;
    use xen_pv::grant_table::GrantTable;
    use xen_sim::SimXen;

    #[test]
    fn a_ring_page_is_shared_writable_and_revoked_only_when_released() {
        let xen = SimXen::new(1);
        let table = RefCell::new(GrantTable::<()>::new(xen.grants().current_entries()));
        let source = SimPageSource::new(xen.grants());
        let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
        let ring: SharedPage<SharedRing<2>> = device.share().unwrap();
        ring.get().req_prod.store(7, Ordering::Release);
        let mapping = xen.grants().map(0, ring.bus_page(), true).expect("backend maps the ring writable");
        let mut header = [0u8; 4];
        xen.grants().read(&mapping, 0, &mut header).unwrap();
        assert_eq!(u32::from_le_bytes(header), 7);
        xen.grants().write(&mapping, 8, &9u32.to_le_bytes()).unwrap();
        assert_eq!(ring.get().rsp_prod.load(Ordering::Acquire), 9);
        assert_eq!(device.counters().grants_in_use, 1);
        let Err(still) = device.unshare(ring) else { panic!("the backend still maps it") };
        assert_eq!(source.outstanding_pages(), 1);
        xen.grants().unmap(mapping).unwrap();
        assert!(device.unshare_retry(still).is_ok());
        assert_eq!(source.outstanding_pages(), 0);
        assert_eq!(device.counters().grants_in_use, 0);
    }

    #[test]
    #[should_panic(expected = "a shared page was given to a device other than the one that shared it")]
    fn another_device_cannot_end_a_share() {
        let xen = SimXen::new(1);
        let table = RefCell::new(GrantTable::<()>::new(xen.grants().current_entries()));
        let source = SimPageSource::new(xen.grants());
        let device = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
        let other = DmaDevice::new(&table, &source, 0, BackendTrust::Trusted).unwrap();
        let ring: SharedPage<SharedRing<2>> = device.share().unwrap();
        let _ = other.unshare(ring);
    }
}
