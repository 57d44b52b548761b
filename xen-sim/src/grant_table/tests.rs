//! Tests of the simulated grant table's backend side and guest RAM.

use super::*;
use xen_pv::grant_table::GrantTable;

const BACKEND: DomainId = 0;

fn flags(sim: &SimGrantTable, grant_reference: GrantRef) -> u16 {
    sim.entries()[grant_reference as usize].flags.load(Ordering::SeqCst)
}

#[test]
fn two_mappings_keep_the_status_bits_until_both_unmap() {
    let sim = SimGrantTable::new(1, 1);
    let page = sim.memory().allocate(1).unwrap();
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let grant_reference = table.grant(BACKEND, page.frame(), false).unwrap();
    let writer = sim.map(BACKEND, grant_reference, true).unwrap();
    let reader = sim.map(BACKEND, grant_reference, false).unwrap();
    assert_eq!(sim.active_mappings(), 2);
    sim.unmap(writer).unwrap();
    assert_eq!(flags(&sim, grant_reference), GTF_PERMIT_ACCESS | GTF_READING, "no writer is left");
    assert!(table.revoke(grant_reference).is_err());
    sim.unmap(reader).unwrap();
    assert_eq!(flags(&sim, grant_reference), GTF_PERMIT_ACCESS);
    assert!(!sim.is_mapped(grant_reference));
    table.revoke(grant_reference).unwrap();
}

#[test]
fn references_beyond_the_current_size_are_refused_until_the_table_grows() {
    let sim = SimGrantTable::new(1, 2);
    let page = sim.memory().allocate(1).unwrap();
    let beyond = ENTRIES_PER_FRAME as GrantRef + 3;
    let entry = &sim.entries()[beyond as usize];
    entry.domid.store(BACKEND, Ordering::SeqCst);
    entry.frame.store(page.frame() as u32, Ordering::SeqCst);
    entry.flags.store(GTF_PERMIT_ACCESS, Ordering::SeqCst);
    assert_eq!(sim.map(BACKEND, beyond, false), Err(SimGrantError::BadReference));
    assert_eq!(sim.map(BACKEND, GrantRef::MAX, false), Err(SimGrantError::BadReference));
    sim.grow_to(2);
    let mapping = sim.map(BACKEND, beyond, false).unwrap();
    sim.unmap(mapping).unwrap();
}

#[test]
fn frames_that_are_not_live_guest_memory_cannot_be_mapped() {
    let sim = SimGrantTable::new(1, 1);
    let page = sim.memory().allocate(1).unwrap();
    let freed = page.frame();
    sim.free_pages(page).unwrap();
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let outside = table.grant(BACKEND, 5, false).unwrap();
    assert_eq!(sim.map(BACKEND, outside, false), Err(SimGrantError::BadFrame(5)));
    let stale = table.grant(BACKEND, freed, false).unwrap();
    assert_eq!(sim.map(BACKEND, stale, true), Err(SimGrantError::BadFrame(freed)));
    assert_eq!(flags(&sim, stale), GTF_PERMIT_ACCESS, "a refused map sets no status bit");
}

#[test]
fn the_backend_reads_and_writes_the_granted_page() {
    let sim = SimGrantTable::new(1, 1);
    let page = sim.memory().allocate(1).unwrap();
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let grant_reference = table.grant(BACKEND, page.frame(), false).unwrap();
    sim.memory().write(page.frame(), PAGE_SIZE - 3, b"end").unwrap();
    let mapping = sim.map(BACKEND, grant_reference, true).unwrap();
    assert_eq!(&sim.read_page(&mapping).unwrap()[PAGE_SIZE - 3..], b"end");
    sim.write(&mapping, 0, b"from the backend").unwrap();
    assert_eq!(sim.write(&mapping, PAGE_SIZE - 2, b"xyz"), Err(SimGrantError::OutOfBounds));
    sim.unmap(mapping).unwrap();
    sim.copy_to_grant(BACKEND, grant_reference, 100, b"copied").unwrap();
    let mut seen = [0; 16];
    sim.memory().read(page.frame(), 0, &mut seen).unwrap();
    assert_eq!(&seen, b"from the backend");
    sim.memory().read(page.frame(), 100, &mut seen[..6]).unwrap();
    assert_eq!(&seen[..6], b"copied");
}

#[test]
fn copies_are_bounded_by_the_page_and_leave_no_mapping_behind() {
    let sim = SimGrantTable::new(1, 1);
    let page = sim.memory().allocate(1).unwrap();
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let grant_reference = table.grant(BACKEND, page.frame(), false).unwrap();
    let mut out = [0; 10];
    assert_eq!(sim.copy_from_grant(BACKEND, grant_reference, PAGE_SIZE - 5, &mut out), Err(SimGrantError::OutOfBounds));
    assert_eq!(sim.copy_to_grant(BACKEND, grant_reference, usize::MAX, b"x"), Err(SimGrantError::OutOfBounds));
    assert_eq!(sim.active_mappings(), 0);
    assert_eq!(flags(&sim, grant_reference), GTF_PERMIT_ACCESS);
    table.revoke(grant_reference).unwrap();
}

#[test]
fn pages_still_granted_or_mapped_are_not_freed() {
    let sim = SimGrantTable::new(1, 1);
    let pages = sim.memory().allocate(2).unwrap();
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let grant_reference = table.grant(BACKEND, pages.frame_at(1).unwrap(), false).unwrap();
    let refused = sim.free_pages(pages).unwrap_err();
    assert_eq!(refused.reason, SimGrantError::StillGranted(grant_reference));
    let mapping = sim.map(BACKEND, grant_reference, false).unwrap();
    assert!(table.revoke(grant_reference).is_err());
    let refused = sim.free_pages(refused.pages).unwrap_err();
    assert_eq!(refused.reason, SimGrantError::StillMapped);
    sim.unmap(mapping).unwrap();
    table.revoke(grant_reference).unwrap();
    sim.free_pages(refused.pages).unwrap();
}

#[test]
fn mappings_and_pages_of_another_table_are_refused() {
    let sim = SimGrantTable::new(1, 1);
    let other = SimGrantTable::new(1, 1);
    let page = sim.memory().allocate(1).unwrap();
    let mut table: GrantTable<'_> = GrantTable::new(sim.current_entries());
    let grant_reference = table.grant(BACKEND, page.frame(), false).unwrap();
    let mapping = sim.map(BACKEND, grant_reference, false).unwrap();
    assert_eq!(other.read_page(&mapping), Err(SimGrantError::BadMapping));
    let mapping = match other.unmap(mapping) {
        Err(SimGrantError::BadMapping) => sim.map(BACKEND, grant_reference, false).unwrap(),
        result => panic!("another table unmapped a mapping it never made: {result:?}"),
    };
    assert_eq!(sim.active_mappings(), 2, "the first mapping was dropped without unmap: it stays");
    sim.unmap(mapping).unwrap();
    let foreign = other.memory().allocate(1).unwrap();
    assert_eq!(sim.free_pages(foreign).unwrap_err().reason, SimGrantError::ForeignPages);
}

#[test]
fn memory_hands_out_zeroed_pages_until_it_runs_out() {
    let memory = SimMemory::new(4);
    let first = memory.allocate(3).unwrap();
    assert_eq!(memory.allocate(2), Err(SimMemoryError::OutOfMemory));
    assert_eq!(memory.allocate(0), Err(SimMemoryError::OutOfMemory));
    let last = memory.allocate(1).unwrap();
    assert_eq!(last.frame(), first.frame() + 3);
    assert_eq!(first.frame_at(3), None);
    assert_eq!(memory.frame_of(last.as_ptr() as usize + 4095), Some(last.frame()));
    assert_eq!(memory.frame_of(last.as_ptr() as usize + 4096), None);
    let offset = memory.direct_map_offset();
    assert_eq!(first.as_ptr() as usize, (first.frame() as usize * PAGE_SIZE).wrapping_add(offset));
    memory.write(last.frame(), 0, &[0xaa; 8]).unwrap();
    let frame = last.frame();
    memory.free(last).unwrap();
    assert_eq!(memory.read(frame, 0, &mut [0; 1]), Err(SimMemoryError::NotLive(frame)));
    let again = memory.allocate(1).unwrap();
    let mut bytes = [1; 8];
    memory.read(again.frame(), 0, &mut bytes).unwrap();
    assert_eq!(bytes, [0; 8], "a page is zeroed when handed out");
}
