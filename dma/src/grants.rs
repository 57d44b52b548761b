//! The grant-table seam: how a device grants and revokes pages.
//!
//! One guest has one grant table, shared by every device (one per backend
//! domain) and by the drivers' own shared pages (ring pages). [`Grants`] is
//! the little a device needs from it: grant a run of frames all-or-none, and
//! revoke one reference. It is implemented for `RefCell<GrantTable>` (the
//! single-vCPU kernel and the tests) and for references to any
//! implementation; a kernel with several vCPUs would implement it over its
//! lock.
//!
//! Contract: `grant_run` grants every frame or none (so a failed map has
//! nothing to undo and the buffer goes straight back to its owner), and
//! `revoke` has `GrantTable::revoke`'s rules: a reference the backend still
//! holds stays granted and the page stays the caller's (XSA-396).
//!
//! Never: grant part of a run and report failure.

use core::cell::RefCell;
use xen_pv::abi::DomainId;
use xen_pv::abi::grant_table::{GNTTAB_NR_RESERVED_ENTRIES, GrantRef};
use xen_pv::grant_table::{GrantError, GrantTable, RevokeError};

/// What a DMA device needs from the guest's grant table.
pub trait Grants {
    /// Grants `domain` access to frames `first_frame .. first_frame +
    /// references.len()` (read-only if `readonly`) and writes their
    /// references into `references`, in order; or grants nothing, leaves
    /// `references` as it was, and says why.
    fn grant_run(
        &self,
        domain: DomainId,
        first_frame: u64,
        readonly: bool,
        references: &mut [GrantRef],
    ) -> Result<(), GrantError>;

    /// Ends a grant, unless the backend still holds it
    /// ([`RevokeError::StillInUse`]: nothing changed, the page is still the
    /// caller's).
    fn revoke(&self, grant_reference: GrantRef) -> Result<(), RevokeError>;

    /// How many times the table was reset after a resume in a new domain
    /// (`GrantTable::reset_after_resume`): a device made in an earlier
    /// epoch knows its grants are void.
    fn epoch(&self) -> u64 {
        0
    }
}

impl<Owner> Grants for RefCell<GrantTable<'_, Owner>> {
    fn grant_run(
        &self,
        domain: DomainId,
        first_frame: u64,
        readonly: bool,
        references: &mut [GrantRef],
    ) -> Result<(), GrantError> {
        if references.is_empty() {
            return Ok(());
        }
        let mut table = self.borrow_mut();
        check_room(&table, first_frame, references.len())?;
        for (frame, grant_reference) in (first_frame..).zip(references.iter_mut()) {
            *grant_reference =
                table.grant(domain, frame, readonly).expect("the grant table had room for the run: checked above");
        }
        Ok(())
    }

    fn revoke(&self, grant_reference: GrantRef) -> Result<(), RevokeError> {
        self.borrow_mut().revoke(grant_reference)
    }

    fn epoch(&self) -> u64 {
        self.borrow().epoch()
    }
}

impl<T: Grants + ?Sized> Grants for &T {
    fn grant_run(
        &self,
        domain: DomainId,
        first_frame: u64,
        readonly: bool,
        references: &mut [GrantRef],
    ) -> Result<(), GrantError> {
        (**self).grant_run(domain, first_frame, readonly, references)
    }

    fn revoke(&self, grant_reference: GrantRef) -> Result<(), RevokeError> {
        (**self).revoke(grant_reference)
    }

    fn epoch(&self) -> u64 {
        (**self).epoch()
    }
}

/// A device's view of the grant table, stamped with the table's epoch when
/// the device was made. Once the table has been reset after a resume in a
/// new domain (a later epoch), every grant the device made is void: a
/// revoke succeeds without touching the table (the reference may be
/// another device's by now, and ending it would cut that device off), and
/// granting is refused ([`GrantError::TableReset`]): the new domain's
/// grants belong to devices made in its epoch.
#[derive(Debug)]
pub(crate) struct EpochGrants<G> {
    inner: G,
    epoch: u64,
}

impl<G: Grants> EpochGrants<G> {
    /// `inner`, in its current epoch.
    pub(crate) fn new(inner: G) -> Self {
        let epoch = inner.epoch();
        Self { inner, epoch }
    }

    /// Whether the table was reset since: every grant made through this
    /// view is void.
    pub(crate) fn is_void(&self) -> bool {
        self.inner.epoch() != self.epoch
    }

    /// The table, for whoever made the device.
    pub(crate) fn into_inner(self) -> G {
        self.inner
    }
}

impl<G: Grants> Grants for EpochGrants<G> {
    fn grant_run(
        &self,
        domain: DomainId,
        first_frame: u64,
        readonly: bool,
        references: &mut [GrantRef],
    ) -> Result<(), GrantError> {
        if self.is_void() {
            return Err(GrantError::TableReset);
        }
        self.inner.grant_run(domain, first_frame, readonly, references)
    }

    fn revoke(&self, grant_reference: GrantRef) -> Result<(), RevokeError> {
        if self.is_void() {
            // Xen's table no longer has this grant: nothing to end.
            return Ok(());
        }
        self.inner.revoke(grant_reference)
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
