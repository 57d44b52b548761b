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
