//! The guest side of grant table v1: handing out references, granting
//! frames to another domain, and taking the grants back safely.
//!
//! [`GrantTable`] works over the mapped grant-table frames, a plain
//! `&[GrantEntryV1]` (on Xen the kernel maps them with
//! `XENMEM_add_to_physmap(XENMAPSPACE_grant_table)`; in tests they are the
//! current entries of the simulation's `xen_sim::grant_table::SimGrantTable`,
//! see `tests/grant_table.rs`). It needs no hypercall: granting and revoking
//! are writes to shared memory.
//!
//! # Contract
//! - **Allocation.** References below [`GNTTAB_NR_RESERVED_ENTRIES`] belong
//!   to the toolstack and are never handed out. Free references form a FIFO
//!   list threaded through one `u32` per entry (O(1) allocate and free, 4
//!   bytes per entry); FIFO reuse keeps a revoked reference unused for as
//!   long as possible, so a backend holding a stale reference finds nothing.
//!   Exhaustion is [`GrantError::Exhausted`], which callers turn into
//!   backpressure.
//! - **Grant** writes `domid` and `frame`, then a release fence (Xen's
//!   `wmb`), then `flags`: the other side never sees a permitted entry with
//!   stale contents.
//! - **Revoke** follows the XSA-396 rules: the flags are compare-and-swapped
//!   to 0 only while neither `GTF_reading` nor `GTF_writing` is set. While
//!   they are, [`RevokeError::StillInUse`] leaves the entry and the
//!   reference untouched, and **the caller still owns the page**: it must
//!   neither free nor reuse it. A revoked reference goes back to the
//!   allocator exactly once; revoking anything not granted is an error.
//! - **Deferred release.** [`GrantTable::revoke_or_defer`] takes the
//!   references of one buffer and its `Owner` (whatever keeps the page
//!   alive); if the backend still holds one of them, the table keeps the
//!   owner and those references until [`GrantTable::retry_deferred`] ends
//!   them all, and only then gives the owner back. References in the queue
//!   belong to it: [`GrantTable::revoke`] refuses them. Dropping the table
//!   leaks deferred owners rather than free a page the backend may hold.
//!
//! - **Resume.** After the domain was restored in a new domain, Xen's
//!   grant table is a new, empty one: every reference granted before is
//!   void. [`GrantTable::reset_after_resume`] makes every reference free
//!   again without revoking anything, gives back the deferred owners (no
//!   backend holds their pages any more), and counts a new epoch
//!   ([`GrantTable::epoch`]), by which the DMA devices made before it know
//!   their grants are void. It refuses while Xen's entries still show one
//!   of the old grants (the same domain after all): forgetting a live grant
//!   would let a backend reach a page the guest frees.
//!
//! Never: panic or index out of bounds because of a reference value or a
//! backend's behaviour; loop without bound on a flags word another domain
//! can change; hand out a reference that is still granted.
//!
//! The table takes `&mut self`: the one owner (the DMA layer) serialises
//! access, behind a lock if several contexts share it.

use crate::abi::DomainId;
use crate::abi::grant_table::{
    GNTTAB_NR_RESERVED_ENTRIES, GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY, GTF_WRITING, GrantEntryV1, GrantRef,
};
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};

/// Why a grant could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantError {
    /// Every usable reference is in use: back off and retry after a revoke.
    Exhausted,
    /// The frame number does not fit the 32-bit `frame` field of a v1 entry.
    FrameTooLarge,
    /// [`GrantTable::grow`] was given entries that do not extend the current ones.
    NotAnExtension,
    /// The table was reset after a resume since the caller's device was
    /// made: it may grant no more (a device of the new epoch must).
    TableReset,
}

/// Why [`GrantTable::reset_after_resume`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetRefused {
    /// A reference still granted in Xen's entries.
    pub still_granted: GrantRef,
}

/// Why a reference could not be revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeError {
    /// The backend still has the frame mapped (`GTF_reading`/`GTF_writing`):
    /// the entry is unchanged and the caller still owns the page.
    StillInUse,
    /// The reference is beyond the end of the table.
    OutOfRange,
    /// The reference is one of the toolstack's reserved entries.
    Reserved,
    /// The reference is free: it was never granted or is already revoked.
    NotGranted,
    /// The reference belongs to the deferred-release queue.
    Deferred,
}

/// What [`GrantTable::revoke_or_defer`] did with the owner.
#[derive(Debug, PartialEq, Eq)]
pub enum Release<Owner> {
    /// Every reference was revoked: the owner is the caller's again.
    Now(Owner),
    /// The backend still holds at least one reference: the table keeps the
    /// owner until [`GrantTable::retry_deferred`] releases it.
    Deferred,
}

/// Grant-table counters, for metrics and leak checks.
///
/// `granted - revoked - forgotten == in_use` at all times, and
/// `deferred <= in_use`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrantCounters {
    /// References granted now (including those in the deferred queue).
    pub in_use: u64,
    /// Grants made so far.
    pub granted: u64,
    /// Grants revoked so far.
    pub revoked: u64,
    /// Revoke attempts refused because the backend still held the grant.
    pub still_in_use: u64,
    /// References waiting in the deferred-release queue now.
    pub deferred: u64,
    /// Grant attempts that found no free reference.
    pub exhausted: u64,
    /// Grants made void by resumes in a new domain (forgotten, not
    /// revoked): `granted - revoked - forgotten == in_use`.
    pub forgotten: u64,
}

/// The state of one reference, as the allocator records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Free, followed in the free list by `next`.
    Free { next: Option<GrantRef> },
    /// Granted to another domain.
    Granted,
    /// Granted, and owned by the deferred-release queue.
    Deferred,
    /// Reserved for the toolstack.
    Reserved,
}

const LAST_FREE: u32 = u32::MAX;
const GRANTED: u32 = u32::MAX - 1;
const DEFERRED: u32 = u32::MAX - 2;
const RESERVED: u32 = u32::MAX - 3;
/// References at or beyond this are not used (the values above are markers).
const REFERENCE_LIMIT: usize = RESERVED as usize;

impl Slot {
    fn decode(link: u32) -> Slot {
        match link {
            GRANTED => Slot::Granted,
            DEFERRED => Slot::Deferred,
            RESERVED => Slot::Reserved,
            LAST_FREE => Slot::Free { next: None },
            next => Slot::Free { next: Some(next) },
        }
    }

    fn encode(self) -> u32 {
        match self {
            Slot::Granted => GRANTED,
            Slot::Deferred => DEFERRED,
            Slot::Reserved => RESERVED,
            Slot::Free { next } => next.unwrap_or(LAST_FREE),
        }
    }
}

/// The reference allocator: one link per entry, free ones in a FIFO list.
struct References {
    links: Vec<u32>,
    head: Option<GrantRef>,
    tail: Option<GrantRef>,
}

impl References {
    fn new() -> Self {
        Self { links: Vec::new(), head: None, tail: None }
    }

    /// Extends the allocator to `count` entries; the new usable ones are free.
    fn extend_to(&mut self, count: usize) {
        for reference in self.links.len()..count {
            self.links.push(RESERVED);
            if reference >= GNTTAB_NR_RESERVED_ENTRIES as usize {
                self.push_free(reference as GrantRef);
            }
        }
    }

    fn slot(&self, reference: GrantRef) -> Result<Slot, RevokeError> {
        let link = self.links.get(reference as usize).ok_or(RevokeError::OutOfRange)?;
        Ok(Slot::decode(*link))
    }

    fn set(&mut self, reference: GrantRef, slot: Slot) {
        self.links[reference as usize] = slot.encode();
    }

    /// Takes the oldest free reference and marks it granted.
    fn allocate(&mut self) -> Option<GrantRef> {
        let reference = self.head?;
        let Ok(Slot::Free { next }) = self.slot(reference) else {
            unreachable!("grant reference {reference} is on the free list but not free");
        };
        self.head = next;
        if next.is_none() {
            self.tail = None;
        }
        self.set(reference, Slot::Granted);
        Some(reference)
    }

    /// Appends `reference` (granted or deferred until now) to the free list.
    fn push_free(&mut self, reference: GrantRef) {
        self.set(reference, Slot::Free { next: None });
        match self.tail {
            Some(tail) => self.set(tail, Slot::Free { next: Some(reference) }),
            None => self.head = Some(reference),
        }
        self.tail = Some(reference);
    }
}

/// One buffer waiting for the backend to let go of its grants.
struct DeferredRelease<Owner> {
    grant_references: Vec<GrantRef>,
    owner: Owner,
}

/// How many times a revoke retries its compare-and-swap when the backend
/// changes the flags under it, before it reports the grant as still in use.
const REVOKE_ATTEMPTS: u32 = 8;

/// Ends foreign access to `entry` unless the backend holds it (XSA-396).
fn end_access(entry: &GrantEntryV1) -> bool {
    let mut flags = entry.flags.load(Ordering::SeqCst);
    for _ in 0..REVOKE_ATTEMPTS {
        if flags & (GTF_READING | GTF_WRITING) != 0 {
            return false;
        }
        match entry.flags.compare_exchange(flags, 0, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return true,
            Err(now) => flags = now,
        }
    }
    false
}

/// The guest's grant table v1: reference allocator, grants, revokes and the
/// deferred-release queue for buffers whose grants the backend still holds.
///
/// `Owner` is what the deferred queue keeps alive (a page, a DMA buffer);
/// tables that never defer can leave it as `()`.
pub struct GrantTable<'a, Owner = ()> {
    entries: &'a [GrantEntryV1],
    references: References,
    deferred: Vec<DeferredRelease<Owner>>,
    counters: GrantCounters,
    epoch: u64,
}

impl<'a, Owner> GrantTable<'a, Owner> {
    /// A table over the mapped entries, every usable reference free. Entries
    /// past 2^32 - 4 are ignored (the allocator uses those values as markers).
    pub fn new(entries: &'a [GrantEntryV1]) -> Self {
        let entries = &entries[..entries.len().min(REFERENCE_LIMIT)];
        let mut references = References::new();
        references.extend_to(entries.len());
        Self { entries, references, deferred: Vec::new(), counters: GrantCounters::default(), epoch: 0 }
    }

    /// How many times the table was reset after a resume in a new domain.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// After a resume in a new domain, whose grant table Xen made anew:
    /// takes `entries` (the new table's mapped entries, mapped where the
    /// old ones were or elsewhere), makes every reference free without
    /// revoking it, and starts a new [`Self::epoch`]. Returns the deferred
    /// owners: no backend holds their pages any more.
    ///
    /// Refused, changing nothing, while one of the references granted now
    /// still reads as granted in `entries` (`GTF_permit_access`): then the
    /// table was not made anew (the same domain ran on) and its grants are
    /// live.
    pub fn reset_after_resume(&mut self, entries: &'a [GrantEntryV1]) -> Result<Vec<Owner>, ResetRefused> {
        let entries = &entries[..entries.len().min(REFERENCE_LIMIT)];
        let granted = (0..self.references.links.len() as GrantRef)
            .filter(|&reference| matches!(self.references.slot(reference), Ok(Slot::Granted | Slot::Deferred)));
        for reference in granted {
            let live = entries
                .get(reference as usize)
                .is_some_and(|entry| entry.flags.load(Ordering::SeqCst) & GTF_PERMIT_ACCESS != 0);
            if live {
                return Err(ResetRefused { still_granted: reference });
            }
        }
        let owners = self.deferred.drain(..).map(|pending| pending.owner).collect();
        self.entries = entries;
        self.references = References::new();
        self.references.extend_to(entries.len());
        self.counters.forgotten += self.counters.in_use;
        self.counters.in_use = 0;
        self.counters.deferred = 0;
        self.epoch += 1;
        Ok(owners)
    }

    /// Takes a longer view of the same table after more frames were mapped.
    /// `entries` must start where the current entries start.
    pub fn grow(&mut self, entries: &'a [GrantEntryV1]) -> Result<(), GrantError> {
        let entries = &entries[..entries.len().min(REFERENCE_LIMIT)];
        if entries.as_ptr() != self.entries.as_ptr() || entries.len() < self.entries.len() {
            return Err(GrantError::NotAnExtension);
        }
        self.entries = entries;
        self.references.extend_to(entries.len());
        Ok(())
    }

    /// How many entries the table has (reserved ones included).
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Counters so far.
    pub fn counters(&self) -> GrantCounters {
        self.counters
    }

    /// Grants `domid` access to `frame`, read-only if `readonly`.
    pub fn grant(&mut self, domid: DomainId, frame: u64, readonly: bool) -> Result<GrantRef, GrantError> {
        let frame = u32::try_from(frame).map_err(|_| GrantError::FrameTooLarge)?;
        let Some(grant_reference) = self.references.allocate() else {
            self.counters.exhausted += 1;
            return Err(GrantError::Exhausted);
        };
        let entry = &self.entries[grant_reference as usize];
        entry.domid.store(domid, Ordering::Relaxed);
        entry.frame.store(frame, Ordering::Relaxed);
        // Xen's wmb(): domid and frame are visible before the flags permit access.
        fence(Ordering::Release);
        let flags = if readonly { GTF_PERMIT_ACCESS | GTF_READONLY } else { GTF_PERMIT_ACCESS };
        entry.flags.store(flags, Ordering::Relaxed);
        self.counters.granted += 1;
        self.counters.in_use += 1;
        Ok(grant_reference)
    }

    /// Ends the grant and frees the reference, unless the backend still
    /// holds it: then [`RevokeError::StillInUse`], nothing changes, and the
    /// caller keeps the page (retry later, or use [`Self::revoke_or_defer`]).
    pub fn revoke(&mut self, grant_reference: GrantRef) -> Result<(), RevokeError> {
        match self.check(grant_reference)? {
            Slot::Granted => {}
            Slot::Deferred => return Err(RevokeError::Deferred),
            Slot::Reserved => return Err(RevokeError::Reserved),
            Slot::Free { .. } => return Err(RevokeError::NotGranted),
        }
        if self.try_end(grant_reference) { Ok(()) } else { Err(RevokeError::StillInUse) }
    }

    /// Revokes every reference of one buffer. If all end now, gives `owner`
    /// back at once; otherwise keeps `owner` and the references the backend
    /// still holds in the deferred queue (those already ended are freed).
    ///
    /// If any reference is not granted (or repeats), nothing is revoked and
    /// the error comes back with the owner.
    pub fn revoke_or_defer(
        &mut self,
        grant_references: &[GrantRef],
        owner: Owner,
    ) -> Result<Release<Owner>, (RevokeError, Owner)> {
        if let Err(error) = self.claim(grant_references) {
            return Err((error, owner));
        }
        let mut pending = DeferredRelease { grant_references: grant_references.to_vec(), owner };
        if self.retry_one(&mut pending) {
            return Ok(Release::Now(pending.owner));
        }
        self.deferred.push(pending);
        Ok(Release::Deferred)
    }

    /// Retries the deferred queue and yields the owners whose references
    /// have all been revoked now, oldest first. Owners not yielded stay
    /// queued (also when the iterator is dropped before its end).
    pub fn retry_deferred(&mut self) -> impl Iterator<Item = Owner> + '_ {
        let entries = self.entries;
        let references = &mut self.references;
        let counters = &mut self.counters;
        self.deferred
            .extract_if(.., move |pending| end_all(entries, references, counters, pending))
            .map(|pending| pending.owner)
    }

    /// Buffers waiting in the deferred queue.
    pub fn deferred_owners(&self) -> usize {
        self.deferred.len()
    }

    /// The slot of `grant_reference`, checked against the table's bounds.
    fn check(&self, grant_reference: GrantRef) -> Result<Slot, RevokeError> {
        self.references.slot(grant_reference)
    }

    /// Moves granted references to the deferred state, all or none.
    fn claim(&mut self, grant_references: &[GrantRef]) -> Result<(), RevokeError> {
        for (index, &grant_reference) in grant_references.iter().enumerate() {
            let error = match self.check(grant_reference) {
                Ok(Slot::Granted) => {
                    self.references.set(grant_reference, Slot::Deferred);
                    continue;
                }
                Ok(Slot::Deferred) => RevokeError::Deferred,
                Ok(Slot::Reserved) => RevokeError::Reserved,
                Ok(Slot::Free { .. }) => RevokeError::NotGranted,
                Err(error) => error,
            };
            self.unclaim(&grant_references[..index]);
            return Err(error);
        }
        self.counters.deferred += grant_references.len() as u64;
        Ok(())
    }

    fn unclaim(&mut self, grant_references: &[GrantRef]) {
        for &grant_reference in grant_references {
            self.references.set(grant_reference, Slot::Granted);
        }
    }

    fn retry_one(&mut self, pending: &mut DeferredRelease<Owner>) -> bool {
        end_all(self.entries, &mut self.references, &mut self.counters, pending)
    }

    /// Ends one granted reference and frees it; counts a refusal otherwise.
    fn try_end(&mut self, grant_reference: GrantRef) -> bool {
        end_and_free(self.entries, &mut self.references, &mut self.counters, grant_reference)
    }
}

/// Ends and frees what it can of `pending`; true when nothing is left.
fn end_all<Owner>(
    entries: &[GrantEntryV1],
    references: &mut References,
    counters: &mut GrantCounters,
    pending: &mut DeferredRelease<Owner>,
) -> bool {
    pending.grant_references.retain(|&grant_reference| {
        let ended = end_and_free(entries, references, counters, grant_reference);
        if ended {
            counters.deferred -= 1;
        }
        !ended
    });
    pending.grant_references.is_empty()
}

fn end_and_free(
    entries: &[GrantEntryV1],
    references: &mut References,
    counters: &mut GrantCounters,
    grant_reference: GrantRef,
) -> bool {
    if !end_access(&entries[grant_reference as usize]) {
        counters.still_in_use += 1;
        return false;
    }
    references.push_free(grant_reference);
    counters.revoked += 1;
    counters.in_use -= 1;
    true
}

impl<Owner> Drop for GrantTable<'_, Owner> {
    /// Leaks the owners still deferred: the backend may hold their pages, so
    /// freeing them would hand its memory back to the allocator (XSA-396).
    fn drop(&mut self) {
        for pending in self.deferred.drain(..) {
            core::mem::forget(pending.owner);
        }
    }
}
