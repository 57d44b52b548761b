//! The translation seam: how a device is given a run of guest pages, what
//! it is told for each one, and how that ends.
//!
//! A device never sees CPU addresses. What it is told for a page, its
//! [`BusPage`], depends on what stands between the device and memory:
//! - on Xen, the guest's grant table: the bus page is a grant reference,
//!   made when the page is mapped and revoked at unmap (the implementation
//!   for `RefCell<GrantTable>` below, which the kernel uses);
//! - on bare metal without an IOMMU, nothing: the bus page is the page's
//!   frame number, so the bus address is the physical address
//!   ([`IdentityTranslation`](crate::IdentityTranslation)).
//!
//! Either way the bus address of byte `offset` of a page is
//! `bus_page << 12 | offset` ([`DmaAddress::encoded`](crate::DmaAddress::encoded)),
//! and the DMA layer keeps one bus page per page in each handle, so an
//! unmap hands back exactly what the map was given. [`Translation`] is the
//! little a device needs: translate a run of frames all-or-none, and revoke
//! one bus page. On Xen one guest has one grant table, shared by every
//! device (one per backend domain) and by the drivers' own shared pages
//! (ring pages); the trait is implemented for `RefCell<GrantTable>` (the
//! single-vCPU kernel and the tests) and for references to any
//! implementation; a kernel with several vCPUs would implement it over its
//! lock.
//!
//! Contract: `translate_run` translates every frame or none (so a failed map
//! has nothing to undo and the buffer goes straight back to its owner), and
//! `revoke` has `GrantTable::revoke`'s rules: a bus page the device still
//! holds stays translated and the page stays the caller's (XSA-396). A
//! translation that cannot take access back (the identity translation)
//! revokes by doing nothing and says so with `Ok`: the driver's protocol is
//! then all that keeps the device off a page after unmap.
//!
//! The errors are the grant table's, and they fit the other translations
//! too: `GrantError::Exhausted` (no bus page free: grant references, or
//! an IOMMU's address space), `GrantError::FrameTooLarge` (a frame no
//! 32-bit bus page can name), `RevokeError::StillInUse` (the device holds
//! the page).
//!
//! Never: translate part of a run and report failure.

use core::cell::RefCell;
use xen_pv::abi::DomainId;
use xen_pv::abi::grant_table::{GNTTAB_NR_RESERVED_ENTRIES, GrantRef};
use xen_pv::grant_table::{GrantError, GrantTable, RevokeError};

/// The number a device is told for one page of a mapping: a grant
/// reference under the grant table, the page's frame number under the
/// identity translation (an IOMMU would give an I/O virtual page number).
/// The bus address of byte `offset` of the page is `bus_page << 12 | offset`.
///
/// 32 bits, as Xen's grant references and ring requests have it.
pub type BusPage = u32;

/// A grant reference is a bus page as it is: the names differ, the type
/// does not.
const _: () = assert!(size_of::<GrantRef>() == size_of::<BusPage>());

/// What a DMA device needs from whatever translates guest pages for it.
///
/// Named `Grants` too, the name it had when the grant table was the only
/// translation.
pub trait Translation {
    /// Gives domain `domain`'s device access to frames `first_frame ..
    /// first_frame + bus_pages.len()` (read-only if `readonly`, where the
    /// translation can enforce that) and writes their bus pages into
    /// `bus_pages`, in order; or translates nothing, leaves `bus_pages` as it
    /// was, and says why.
    fn translate_run(
        &self,
        domain: DomainId,
        first_frame: u64,
        readonly: bool,
        bus_pages: &mut [BusPage],
    ) -> Result<(), GrantError>;

    /// Ends one page's translation, unless the device still holds it
    /// ([`RevokeError::StillInUse`]: nothing changed, the page is still the
    /// caller's).
    fn revoke(&self, bus_page: BusPage) -> Result<(), RevokeError>;

    /// How many times the translation was reset wholesale: on Xen, the grant
    /// table after a resume in a new domain (`GrantTable::reset_after_resume`),
    /// which voids every grant made before. A device made in an earlier
    /// epoch knows its bus pages are void. Translations that are never reset
    /// stay at 0.
    fn epoch(&self) -> u64 {
        0
    }
}

/// The grant table: a bus page is a grant reference to the backend domain.
impl<Owner> Translation for RefCell<GrantTable<'_, Owner>> {
    fn translate_run(
        &self,
        domain: DomainId,
        first_frame: u64,
        readonly: bool,
        bus_pages: &mut [BusPage],
    ) -> Result<(), GrantError> {
        if bus_pages.is_empty() {
            return Ok(());
        }
        let mut table = self.borrow_mut();
        check_room(&table, first_frame, bus_pages.len())?;
        for (frame, grant_reference) in (first_frame..).zip(bus_pages.iter_mut()) {
            *grant_reference =
                table.grant(domain, frame, readonly).expect("the grant table had room for the run: checked above");
        }
        Ok(())
    }

    fn revoke(&self, grant_reference: BusPage) -> Result<(), RevokeError> {
        self.borrow_mut().revoke(grant_reference)
    }

    fn epoch(&self) -> u64 {
        self.borrow().epoch()
    }
}

impl<T: Translation + ?Sized> Translation for &T {
    fn translate_run(
        &self,
        domain: DomainId,
        first_frame: u64,
        readonly: bool,
        bus_pages: &mut [BusPage],
    ) -> Result<(), GrantError> {
        (**self).translate_run(domain, first_frame, readonly, bus_pages)
    }

    fn revoke(&self, bus_page: BusPage) -> Result<(), RevokeError> {
        (**self).revoke(bus_page)
    }

    fn epoch(&self) -> u64 {
        (**self).epoch()
    }
}

/// A device's view of its translation, stamped with the translation's epoch
/// when the device was made. Once the translation has been reset (on Xen:
/// the grant table, after a resume in a new domain), every bus page the
/// device was given is void: a revoke succeeds without touching the table
/// (the reference may be another device's by now, and ending it would cut
/// that device off), and translating is refused ([`GrantError::TableReset`]):
/// the new domain's grants belong to devices made in its epoch.
#[derive(Debug)]
pub(crate) struct Epoch<T> {
    inner: T,
    epoch: u64,
}

impl<T: Translation> Epoch<T> {
    /// `inner`, in its current epoch.
    pub(crate) fn new(inner: T) -> Self {
        let epoch = inner.epoch();
        Self { inner, epoch }
    }

    /// Whether the translation was reset since: every bus page given
    /// through this view is void.
    pub(crate) fn is_void(&self) -> bool {
        self.inner.epoch() != self.epoch
    }

    /// The translation, for whoever made the device.
    pub(crate) fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: Translation> Translation for Epoch<T> {
    fn translate_run(
        &self,
        domain: DomainId,
        first_frame: u64,
        readonly: bool,
        bus_pages: &mut [BusPage],
    ) -> Result<(), GrantError> {
        if self.is_void() {
            return Err(GrantError::TableReset);
        }
        self.inner.translate_run(domain, first_frame, readonly, bus_pages)
    }

    fn revoke(&self, bus_page: BusPage) -> Result<(), RevokeError> {
        if self.is_void() {
            // The reset table no longer has this grant: nothing to end.
            return Ok(());
        }
        self.inner.revoke(bus_page)
    }

    fn epoch(&self) -> u64 {
        self.inner.epoch()
    }
}

/// Whether `table` can grant the whole run now: every frame fits a v1 entry
/// and enough references are free (usable entries minus those in use).
fn check_room<Owner>(table: &GrantTable<'_, Owner>, first_frame: u64, count: usize) -> Result<(), GrantError> {
    let last_frame = first_frame.checked_add(count as u64 - 1).ok_or(GrantError::FrameTooLarge)?;
    if u32::try_from(last_frame).is_err() {
        return Err(GrantError::FrameTooLarge);
    }
    let usable = table.capacity().saturating_sub(GNTTAB_NR_RESERVED_ENTRIES as usize);
    let free = usable.saturating_sub(table.counters().in_use as usize);
    if free < count {
        return Err(GrantError::Exhausted);
    }
    Ok(())
}
