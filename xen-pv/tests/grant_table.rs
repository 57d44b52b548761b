//! Tests of the guest grant table against the simulated Xen grant table,
//! where the test plays the backend domain.
#![forbid(unsafe_code)]

use core::cell::Cell;
use core::sync::atomic::Ordering;
use std::collections::BTreeMap;
use std::rc::Rc;
use xen_pv::abi::DomainId;
use xen_pv::abi::grant_table::{
    ENTRIES_PER_FRAME, GNTTAB_NR_RESERVED_ENTRIES, GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY, GTF_WRITING, GrantRef,
};
use xen_pv::grant_table::{GrantCounters, GrantError, GrantTable, Release, RevokeError};
use xen_sim::grant_table::{SimGrantError, SimGrantTable, SimMapping};
use xen_sim::random::XorShift;

const BACKEND: DomainId = 0;
const OTHER_DOMAIN: DomainId = 7;
const USABLE: usize = ENTRIES_PER_FRAME - GNTTAB_NR_RESERVED_ENTRIES as usize;

fn flags(sim: &SimGrantTable, grant_reference: GrantRef) -> u16 {
    sim.entries()[grant_reference as usize].flags.load(Ordering::SeqCst)
}

#[test]
fn allocates_until_exhausted_and_reuses_freed_references() {
    let sim = SimGrantTable::new(1, 1);
    let frame = sim.memory().allocate(1).unwrap().frame();
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let references: Vec<GrantRef> = (0..USABLE).map(|_| table.grant(BACKEND, frame, false).unwrap()).collect();
    assert_eq!(table.grant(BACKEND, frame, false), Err(GrantError::Exhausted));
    assert_eq!(table.counters().exhausted, 1);
    table.revoke(references[100]).unwrap();
    assert_eq!(table.grant(BACKEND, frame, true), Ok(references[100]));
    for &grant_reference in &references {
        table.revoke(grant_reference).unwrap();
    }
    let counters = table.counters();
    assert_eq!((counters.in_use, counters.granted, counters.revoked), (0, USABLE as u64 + 1, USABLE as u64 + 1));
}

#[test]
fn reserved_references_are_never_handed_out_or_revoked() {
    let sim = SimGrantTable::new(1, 1);
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let references: Vec<GrantRef> = (0..USABLE).map(|_| table.grant(BACKEND, 1, false).unwrap()).collect();
    assert!(references.iter().all(|&reference| reference >= GNTTAB_NR_RESERVED_ENTRIES));
    let mut sorted = references.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), USABLE, "every reference is handed out once");
    for reserved in 0..GNTTAB_NR_RESERVED_ENTRIES {
        assert_eq!(table.revoke(reserved), Err(RevokeError::Reserved));
    }
}

#[test]
fn freed_references_are_reused_oldest_first() {
    let sim = SimGrantTable::new(1, 1);
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let first = table.grant(BACKEND, 1, false).unwrap();
    table.revoke(first).unwrap();
    assert_ne!(table.grant(BACKEND, 1, false).unwrap(), first, "a revoked reference waits behind the others");
}

#[test]
fn grant_and_revoke_round_trip() {
    let sim = SimGrantTable::new(1, 1);
    let page = sim.memory().allocate(1).unwrap();
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let grant_reference = table.grant(BACKEND, page.frame(), true).unwrap();
    let entry = &sim.entries()[grant_reference as usize];
    assert_eq!(flags(&sim, grant_reference), GTF_PERMIT_ACCESS | GTF_READONLY);
    assert_eq!(entry.domid.load(Ordering::SeqCst), BACKEND);
    assert_eq!(u64::from(entry.frame.load(Ordering::SeqCst)), page.frame());
    sim.memory().write(page.frame(), 10, b"hello").unwrap();
    let mut seen = [0; 5];
    sim.copy_from_grant(BACKEND, grant_reference, 10, &mut seen).unwrap();
    assert_eq!(&seen, b"hello");
    table.revoke(grant_reference).unwrap();
    assert_eq!(flags(&sim, grant_reference), 0);
    assert_eq!(table.counters(), GrantCounters { granted: 1, revoked: 1, ..GrantCounters::default() });
    sim.free_pages(page).unwrap();
}

#[test]
fn revoke_fails_while_the_backend_maps_and_leaves_the_entry() {
    let sim = SimGrantTable::new(1, 1);
    let page = sim.memory().allocate(1).unwrap();
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let grant_reference = table.grant(BACKEND, page.frame(), false).unwrap();
    let mapping = sim.map(BACKEND, grant_reference, true).unwrap();
    let held = GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING;
    assert_eq!(flags(&sim, grant_reference), held);
    assert_eq!(table.revoke(grant_reference), Err(RevokeError::StillInUse));
    assert_eq!(flags(&sim, grant_reference), held, "a failed revoke changes nothing");
    assert_eq!(table.counters().still_in_use, 1);
    assert_eq!(table.counters().in_use, 1);
    sim.write(&mapping, 0, b"still mine").unwrap();
    sim.unmap(mapping).unwrap();
    table.revoke(grant_reference).unwrap();
    assert_eq!(table.counters().in_use, 0);
}

#[test]
fn revoking_what_is_not_granted_is_an_error() {
    let sim = SimGrantTable::new(1, 1);
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    assert_eq!(table.revoke(ENTRIES_PER_FRAME as GrantRef), Err(RevokeError::OutOfRange));
    assert_eq!(table.revoke(GrantRef::MAX), Err(RevokeError::OutOfRange));
    assert_eq!(table.revoke(GNTTAB_NR_RESERVED_ENTRIES), Err(RevokeError::NotGranted));
    let grant_reference = table.grant(BACKEND, 1, false).unwrap();
    table.revoke(grant_reference).unwrap();
    assert_eq!(table.revoke(grant_reference), Err(RevokeError::NotGranted), "no double free");
    assert_eq!(table.counters().revoked, 1);
}

#[test]
fn frames_beyond_32_bits_are_refused() {
    let sim = SimGrantTable::new(1, 1);
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    assert_eq!(table.grant(BACKEND, 1 << 32, false), Err(GrantError::FrameTooLarge));
    assert_eq!(table.counters(), GrantCounters::default());
}

#[test]
fn deferred_release_waits_until_the_backend_unmaps() {
    let sim = SimGrantTable::new(1, 1);
    let pages = sim.memory().allocate(2).unwrap();
    let mut table: GrantTable<'_, &str> = GrantTable::new(sim.current_entries());
    let held = table.grant(BACKEND, pages.frame(), false).unwrap();
    let idle = table.grant(BACKEND, pages.frame() + 1, false).unwrap();
    let mapping = sim.map(BACKEND, held, false).unwrap();
    assert_eq!(table.revoke_or_defer(&[held, idle], "buffer"), Ok(Release::Deferred));
    assert_eq!(flags(&sim, idle), 0, "the idle grant ends at once");
    assert_eq!(table.counters().deferred, 1);
    assert_eq!(table.revoke(held), Err(RevokeError::Deferred), "the queue owns it");
    assert_eq!(table.retry_deferred().count(), 0);
    assert_eq!(sim.free_pages(pages).unwrap_err().reason, SimGrantError::StillMapped);
    sim.unmap(mapping).unwrap();
    assert_eq!(table.retry_deferred().collect::<Vec<_>>(), ["buffer"]);
    let counters = table.counters();
    assert_eq!((counters.deferred, counters.in_use, counters.still_in_use), (0, 0, 2));
    assert_eq!(table.deferred_owners(), 0);
}

#[test]
fn revoke_or_defer_releases_at_once_when_nothing_is_held() {
    let sim = SimGrantTable::new(1, 1);
    let mut table: GrantTable<'_, u32> = GrantTable::new(sim.current_entries());
    let references = [table.grant(BACKEND, 1, false).unwrap(), table.grant(BACKEND, 2, true).unwrap()];
    assert_eq!(table.revoke_or_defer(&references, 42), Ok(Release::Now(42)));
    assert_eq!(table.counters().in_use, 0);
    assert_eq!(table.counters().deferred, 0);
}

#[test]
fn revoke_or_defer_refuses_bad_references_and_returns_the_owner() {
    let sim = SimGrantTable::new(1, 1);
    let mut table: GrantTable<'_, u32> = GrantTable::new(sim.current_entries());
    let granted = table.grant(BACKEND, 1, false).unwrap();
    assert_eq!(table.revoke_or_defer(&[granted, granted], 1), Err((RevokeError::Deferred, 1)));
    assert_eq!(table.revoke_or_defer(&[granted, 3], 2), Err((RevokeError::Reserved, 2)));
    assert_eq!(table.revoke_or_defer(&[granted, 9_999], 3), Err((RevokeError::OutOfRange, 3)));
    assert_eq!(flags(&sim, granted), GTF_PERMIT_ACCESS, "nothing was revoked");
    assert_eq!(table.counters().deferred, 0);
    table.revoke(granted).unwrap();
}

#[test]
fn readonly_grant_cannot_be_mapped_writable() {
    let sim = SimGrantTable::new(1, 1);
    let page = sim.memory().allocate(1).unwrap();
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let grant_reference = table.grant(BACKEND, page.frame(), true).unwrap();
    assert_eq!(sim.map(BACKEND, grant_reference, true), Err(SimGrantError::ReadOnly));
    assert_eq!(sim.copy_to_grant(BACKEND, grant_reference, 0, b"x"), Err(SimGrantError::ReadOnly));
    let mapping = sim.map(BACKEND, grant_reference, false).unwrap();
    assert_eq!(sim.write(&mapping, 0, b"x"), Err(SimGrantError::ReadOnly));
    assert_eq!(flags(&sim, grant_reference), GTF_PERMIT_ACCESS | GTF_READONLY | GTF_READING);
    sim.unmap(mapping).unwrap();
}

#[test]
fn another_domain_cannot_map_the_grant() {
    let sim = SimGrantTable::new(1, 1);
    let page = sim.memory().allocate(1).unwrap();
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let grant_reference = table.grant(BACKEND, page.frame(), false).unwrap();
    assert_eq!(sim.map(OTHER_DOMAIN, grant_reference, false), Err(SimGrantError::WrongDomain));
    assert_eq!(flags(&sim, grant_reference), GTF_PERMIT_ACCESS);
}

#[test]
fn backend_cannot_map_after_revoke() {
    let sim = SimGrantTable::new(1, 1);
    let page = sim.memory().allocate(1).unwrap();
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let grant_reference = table.grant(BACKEND, page.frame(), false).unwrap();
    table.revoke(grant_reference).unwrap();
    assert_eq!(sim.map(BACKEND, grant_reference, false), Err(SimGrantError::NotGranted));
    let mut byte = [0];
    assert_eq!(sim.copy_from_grant(BACKEND, grant_reference, 0, &mut byte), Err(SimGrantError::NotGranted));
    sim.free_pages(page).unwrap();
}

#[test]
fn grow_adds_references_from_newly_mapped_frames() {
    let sim = SimGrantTable::new(1, 2);
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    for _ in 0..USABLE {
        table.grant(BACKEND, 1, false).unwrap();
    }
    assert_eq!(table.grant(BACKEND, 1, false), Err(GrantError::Exhausted));
    assert_eq!(table.grow(&sim.entries()[1..]), Err(GrantError::NotAnExtension));
    sim.grow_to(2);
    table.grow(sim.current_entries()).unwrap();
    assert_eq!(table.capacity(), 2 * ENTRIES_PER_FRAME);
    assert_eq!(table.grant(BACKEND, 1, false), Ok(ENTRIES_PER_FRAME as GrantRef));
}

/// Counts its drops, to see whether the table ever frees a deferred owner.
struct Page(Rc<Cell<u32>>);

impl Drop for Page {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
#[cfg_attr(miri, ignore = "leaks on purpose, which miri reports")]
fn dropping_the_table_leaks_deferred_owners_instead_of_freeing_them() {
    let sim = SimGrantTable::new(1, 1);
    let drops = Rc::new(Cell::new(0));
    let mut table: GrantTable<'_, Page> = GrantTable::new(sim.current_entries());
    let page = sim.memory().allocate(1).unwrap();
    let held = table.grant(BACKEND, page.frame(), false).unwrap();
    let mapping = sim.map(BACKEND, held, false).unwrap();
    assert!(matches!(table.revoke_or_defer(&[held], Page(drops.clone())), Ok(Release::Deferred)));
    drop(table);
    assert_eq!(drops.get(), 0, "the backend may still use the page");
    sim.unmap(mapping).unwrap();
}

/// What the random test expects the table and the simulated Xen to hold.
#[derive(Default)]
struct Model {
    /// Granted references: readonly, and whether the deferred queue owns them.
    in_use: BTreeMap<GrantRef, (bool, bool)>,
    /// Deferred owners and the references they still wait for.
    owners: BTreeMap<u32, Vec<GrantRef>>,
    mappings: Vec<SimMapping>,
    still_in_use: u64,
    exhausted: u64,
    next_owner: u32,
}

impl Model {
    fn mapped(&self, grant_reference: GrantRef) -> bool {
        self.mappings.iter().any(|mapping| mapping.grant_reference() == Some(grant_reference))
    }

    fn expected_revoke(&self, grant_reference: GrantRef, capacity: usize) -> Result<(), RevokeError> {
        match self.in_use.get(&grant_reference) {
            _ if grant_reference as usize >= capacity => Err(RevokeError::OutOfRange),
            _ if grant_reference < GNTTAB_NR_RESERVED_ENTRIES => Err(RevokeError::Reserved),
            None => Err(RevokeError::NotGranted),
            Some((_, true)) => Err(RevokeError::Deferred),
            Some(_) if self.mapped(grant_reference) => Err(RevokeError::StillInUse),
            Some(_) => Ok(()),
        }
    }

    fn expected_map(&self, grant_reference: GrantRef, writable: bool, capacity: usize) -> Result<(), SimGrantError> {
        match self.in_use.get(&grant_reference) {
            _ if grant_reference as usize >= capacity => Err(SimGrantError::BadReference),
            None => Err(SimGrantError::NotGranted),
            Some((true, _)) if writable => Err(SimGrantError::ReadOnly),
            Some(_) => Ok(()),
        }
    }

    /// Ends what the backend no longer maps; returns whether all ended.
    fn end_unmapped(&mut self, references: &mut Vec<GrantRef>) -> bool {
        references.retain(|reference| {
            let held = self.mappings.iter().any(|mapping| mapping.grant_reference() == Some(*reference));
            if held {
                self.still_in_use += 1;
            } else {
                self.in_use.remove(reference);
            }
            held
        });
        references.is_empty()
    }
}

struct Random<'s> {
    sim: &'s SimGrantTable,
    table: GrantTable<'s, u32>,
    model: Model,
    frames: Vec<u64>,
    random: XorShift,
}

impl Random<'_> {
    fn step(&mut self) {
        match self.random.below(100) {
            0..30 => self.grant(),
            30..48 => self.map(),
            48..65 => self.unmap(),
            65..83 => self.revoke(),
            83..92 => self.revoke_or_defer(),
            _ => self.retry(),
        }
        self.check();
    }

    fn any_reference(&mut self) -> GrantRef {
        self.random.below(self.table.capacity() + 4) as GrantRef
    }

    fn grant(&mut self) {
        let frame = self.frames[self.random.below(self.frames.len())];
        let readonly = self.random.below(2) == 0;
        match self.table.grant(BACKEND, frame, readonly) {
            Ok(reference) => {
                assert!(reference >= GNTTAB_NR_RESERVED_ENTRIES && (reference as usize) < self.table.capacity());
                let previous = self.model.in_use.insert(reference, (readonly, false));
                assert!(previous.is_none(), "reference {reference} handed out while in use");
            }
            Err(error) => {
                assert_eq!(error, GrantError::Exhausted);
                assert_eq!(self.model.in_use.len(), self.table.capacity() - GNTTAB_NR_RESERVED_ENTRIES as usize);
                self.model.exhausted += 1;
            }
        }
    }

    fn map(&mut self) {
        let reference = self.any_reference();
        let writable = self.random.below(2) == 0;
        let expected = self.model.expected_map(reference, writable, self.sim.current_entries().len());
        match self.sim.map(BACKEND, reference, writable) {
            Ok(mapping) => self.model.mappings.push(mapping),
            Err(error) => assert_eq!(Err(error), expected),
        }
    }

    fn unmap(&mut self) {
        if !self.model.mappings.is_empty() {
            let index = self.random.below(self.model.mappings.len());
            self.sim.unmap(self.model.mappings.swap_remove(index)).unwrap();
        }
    }

    fn revoke(&mut self) {
        let reference = self.any_reference();
        let expected = self.model.expected_revoke(reference, self.table.capacity());
        assert_eq!(self.table.revoke(reference), expected);
        match expected {
            Ok(()) => drop(self.model.in_use.remove(&reference)),
            Err(RevokeError::StillInUse) => self.model.still_in_use += 1,
            Err(_) => {}
        }
    }

    fn revoke_or_defer(&mut self) {
        let free: Vec<GrantRef> =
            self.model.in_use.iter().filter(|(_, (_, deferred))| !deferred).map(|(reference, _)| *reference).collect();
        let mut references: Vec<GrantRef> = free.into_iter().take(1 + self.random.below(3)).collect();
        let owner = self.model.next_owner;
        self.model.next_owner += 1;
        let result = self.table.revoke_or_defer(&references, owner);
        if self.model.end_unmapped(&mut references) {
            assert_eq!(result, Ok(Release::Now(owner)));
            return;
        }
        assert_eq!(result, Ok(Release::Deferred));
        for reference in &references {
            self.model.in_use.get_mut(reference).unwrap().1 = true;
        }
        self.model.owners.insert(owner, references);
    }

    fn retry(&mut self) {
        let mut released: Vec<u32> = self.table.retry_deferred().collect();
        released.sort_unstable();
        let mut owners = core::mem::take(&mut self.model.owners);
        let waiting: Vec<u32> = owners.keys().copied().collect();
        owners.retain(|_, references| !self.model.end_unmapped(references));
        let expected: Vec<u32> = waiting.into_iter().filter(|owner| !owners.contains_key(owner)).collect();
        self.model.owners = owners;
        assert_eq!(released, expected);
    }

    fn check(&self) {
        let counters = self.table.counters();
        assert_eq!(counters.in_use, self.model.in_use.len() as u64);
        assert_eq!(counters.granted - counters.revoked, counters.in_use);
        assert_eq!(counters.deferred, self.model.owners.values().map(Vec::len).sum::<usize>() as u64);
        assert_eq!(counters.still_in_use, self.model.still_in_use);
        assert_eq!(counters.exhausted, self.model.exhausted);
        assert_eq!(self.table.deferred_owners(), self.model.owners.len());
        for reference in 0..self.table.capacity() as GrantRef {
            self.check_entry(reference);
        }
    }

    fn check_entry(&self, reference: GrantRef) {
        let writers =
            self.model.mappings.iter().filter(|m| m.grant_reference() == Some(reference) && m.writable()).count();
        let mut expected = match self.model.in_use.get(&reference) {
            Some((true, _)) => GTF_PERMIT_ACCESS | GTF_READONLY,
            Some((false, _)) => GTF_PERMIT_ACCESS,
            None => 0,
        };
        if self.model.mapped(reference) {
            expected |= GTF_READING;
        }
        if writers > 0 {
            expected |= GTF_WRITING;
        }
        assert_eq!(flags(self.sim, reference), expected, "flags of reference {reference}");
    }
}

#[test]
fn random_grant_map_unmap_revoke_sequences_keep_every_invariant() {
    let sim = SimGrantTable::new(1, 1);
    let pages = sim.memory().allocate(8).unwrap();
    let frames = (0..8).map(|index| pages.frame_at(index).unwrap()).collect();
    // A 24-entry prefix of the table (16 usable references), so exhaustion happens.
    let table = GrantTable::new(&sim.current_entries()[..24]);
    let mut random =
        Random { sim: &sim, table, model: Model::default(), frames, random: XorShift(0x9e37_79b9_7f4a_7c15) };
    let mut most_deferred = 0;
    let steps = if cfg!(miri) { 1_000 } else { 20_000 };
    for _ in 0..steps {
        random.step();
        most_deferred = most_deferred.max(random.table.deferred_owners());
    }
    let edges = (random.model.exhausted, random.model.still_in_use, most_deferred);
    assert!(edges.0 > 0 && edges.1 > 0 && edges.2 > 1, "the sequence reaches the edge cases: {edges:?}");
    for mapping in core::mem::take(&mut random.model.mappings) {
        sim.unmap(mapping).unwrap();
    }
    random.retry();
    assert_eq!(random.table.deferred_owners(), 0);
    let granted: Vec<GrantRef> = random.model.in_use.keys().copied().collect();
    for reference in granted {
        random.table.revoke(reference).unwrap();
    }
    assert_eq!(random.table.counters().in_use, 0);
    drop(random);
    sim.free_pages(pages).unwrap();
}
