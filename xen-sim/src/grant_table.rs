//! The simulated grant table: the table Xen keeps for the guest, and the
//! backend domain's side of it, with Xen's permission rules.
//!
//! The guest writes entries in [`SimGrantTable::entries`] exactly as it
//! would on Xen. A test playing the backend then calls
//! [`SimGrantTable::map`] (`GNTTABOP_map_grant_ref`), which checks what Xen
//! checks — the reference is inside the table's current size, the entry
//! permits access, to this domain, and not for writing if it is read-only,
//! and the frame is live guest memory — and sets `GTF_reading` (and
//! `GTF_writing`) the way Xen does, so the guest's revoke then fails.
//! Per-entry pin counts, like Xen's active entries, keep the bits set until
//! the last mapping is unmapped. [`SimGrantTable::copy_from_grant`] and
//! [`SimGrantTable::copy_to_grant`] play `GNTTABOP_copy` (a transient pin).
//!
//! The granted frames are pages of [`SimMemory`], an arena of simulated guest
//! RAM the table owns: the backend can only ever touch pages the test
//! allocated there and has not freed, and [`SimGrantTable::free_pages`]
//! refuses to free a page that is still granted or mapped (the XSA-396
//! mistake), giving the pages back with the reason.
//!
//! A device without a grant table, one on bare metal with no IOMMU, reaches
//! memory by frame number: [`SimGrantTable::map_frame`] plays that (no
//! grant, no domain, no permission: only the frame must be live guest RAM),
//! and its mappings hold their frames as grant mappings do, so
//! `free_pages` refuses a page such a device still uses. On bare metal
//! nothing would refuse: here the refusal shows a driver freeing memory its
//! device has not let go of.
//!
//! Stricter than Xen in one respect: every map re-checks the shared entry,
//! where Xen trusts its active entry once a grant is pinned. Never: let a
//! mapping outlive its `unmap`, or access a byte through a read-only mapping
//! for writing.

#[allow(unsafe_code)] // the simulated guest RAM: raw accesses to its arena
mod memory;

pub use memory::{FIRST_FRAME, SimMemory, SimMemoryError, SimPages};

use core::cell::{Cell, RefCell};
use core::ops::Range;
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::boxed::Box;
use std::collections::{BTreeMap, BTreeSet};
use std::vec;
use std::vec::Vec;
use xen_pv::abi::DomainId;
use xen_pv::abi::PAGE_SIZE;
use xen_pv::abi::grant_table::{
    ENTRIES_PER_FRAME, GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY, GTF_WRITING, GrantEntryV1, GrantRef,
};
use xen_pv::hypervisor::GrantTableSize;

/// Pages of simulated guest RAM a table gets from [`SimGrantTable::new`].
pub const DEFAULT_MEMORY_PAGES: usize = 1024;

/// `GTF_type_mask`: the entry-type bits of `flags`.
const GTF_TYPE_MASK: u16 = 3;

/// Why the simulated Xen refused a backend's (or the guest's) request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimGrantError {
    /// The reference is beyond the table's current size (`GNTST_bad_gntref`).
    BadReference,
    /// The entry does not permit access (`GNTST_general_error`).
    NotGranted,
    /// The entry grants access to another domain.
    WrongDomain,
    /// A write, or a writable mapping, of a read-only grant.
    ReadOnly,
    /// The frame (granted, or mapped directly) is not a live page of the
    /// simulated guest RAM.
    BadFrame(u64),
    /// The mapping is not a live mapping of this table (`GNTST_bad_handle`).
    BadMapping,
    /// The access crosses the end of the page.
    OutOfBounds,
    /// `free_pages`: a grant entry still permits access to one of the pages.
    StillGranted(GrantRef),
    /// `free_pages`: the backend still maps one of the pages.
    StillMapped,
    /// `free_pages`: the pages come from another table's memory.
    ForeignPages,
}

impl From<SimMemoryError> for SimGrantError {
    fn from(error: SimMemoryError) -> Self {
        match error {
            SimMemoryError::NotLive(frame) => SimGrantError::BadFrame(frame),
            SimMemoryError::OutOfBounds | SimMemoryError::OutOfMemory => SimGrantError::OutOfBounds,
        }
    }
}

/// Pages [`SimGrantTable::free_pages`] refused to free, given back.
#[derive(Debug)]
pub struct FreeError {
    /// The pages, still allocated and still the caller's.
    pub pages: SimPages,
    /// Why they were not freed.
    pub reason: SimGrantError,
}

/// A backend's mapping of one grant, or a device's direct mapping of one
/// frame ([`SimGrantTable::map_frame`]). Not `Clone`:
/// [`SimGrantTable::unmap`] consumes it, so a mapping cannot be used or
/// unmapped after its unmap.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a mapping that is never unmapped keeps the grant in use forever"]
pub struct SimMapping {
    id: u64,
    grant_reference: Option<GrantRef>,
    frame: u64,
    writable: bool,
}

impl SimMapping {
    /// The grant this mapping holds (none for a direct mapping of a frame).
    pub fn grant_reference(&self) -> Option<GrantRef> {
        self.grant_reference
    }

    /// The guest frame it maps.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// Whether the backend may write through it.
    pub fn writable(&self) -> bool {
        self.writable
    }
}

/// Mapping ids are unique across every table, so a mapping of one table is
/// never mistaken for a mapping of another.
static NEXT_MAPPING_ID: AtomicU64 = AtomicU64::new(1);

/// Xen's active entry: the pinned frame and how many mappings hold it.
struct ActiveGrant {
    frame: u64,
    readers: u32,
    writers: u32,
}

/// The backend side: pinned grants, frames mapped directly (with how many
/// mappings hold each), and live mappings.
#[derive(Default)]
struct BackendState {
    active: BTreeMap<GrantRef, ActiveGrant>,
    direct: BTreeMap<u64, u32>,
    mappings: BTreeSet<u64>,
}

/// The grant table as Xen holds it, with the backend's side of it.
pub struct SimGrantTable {
    entries: Box<[GrantEntryV1]>,
    frames: Cell<u32>,
    max_frames: u32,
    memory: SimMemory,
    backend: RefCell<BackendState>,
}

impl SimGrantTable {
    /// A table of `frames` frames that may grow to `max_frames`, with
    /// [`DEFAULT_MEMORY_PAGES`] pages of guest RAM.
    pub fn new(frames: u32, max_frames: u32) -> Self {
        Self::with_memory_pages(frames, max_frames, DEFAULT_MEMORY_PAGES)
    }

    /// A table as [`Self::new`] makes, with `pages` pages of guest RAM.
    pub fn with_memory_pages(frames: u32, max_frames: u32, pages: usize) -> Self {
        let entries: Vec<GrantEntryV1> = (0..max_frames as usize * ENTRIES_PER_FRAME)
            .map(|_| GrantEntryV1 { flags: AtomicU16::new(0), domid: AtomicU16::new(0), frame: AtomicU32::new(0) })
            .collect();
        Self {
            entries: entries.into_boxed_slice(),
            frames: Cell::new(frames.min(max_frames)),
            max_frames,
            memory: SimMemory::new(pages),
            backend: RefCell::default(),
        }
    }

    /// The domain was restored in a new one: Xen's grant table is new and
    /// empty (every entry zero), and no backend maps anything of the old
    /// domain (its backends went with it). Guest RAM keeps its contents.
    /// Mappings handed out before are void: unmapping one is an error.
    pub fn wipe(&self) {
        for entry in self.entries.iter() {
            entry.flags.store(0, Ordering::SeqCst);
            entry.domid.store(0, Ordering::SeqCst);
            entry.frame.store(0, Ordering::SeqCst);
        }
        *self.backend.borrow_mut() = BackendState::default();
    }

    /// Current and maximum size.
    pub fn size(&self) -> GrantTableSize {
        GrantTableSize { frames: self.frames.get(), max_frames: self.max_frames }
    }

    /// Grows the table (as mapping frame `frames - 1` does on Xen).
    pub fn grow_to(&self, frames: u32) {
        self.frames.set(self.frames.get().max(frames).min(self.max_frames));
    }

    /// Every entry the table can ever have; the guest maps the first
    /// `size().frames * 512` of them.
    pub fn entries(&self) -> &[GrantEntryV1] {
        &self.entries
    }

    /// The entries inside the current size: what the guest has mapped.
    pub fn current_entries(&self) -> &[GrantEntryV1] {
        &self.entries[..self.frames.get() as usize * ENTRIES_PER_FRAME]
    }

    /// The simulated guest RAM whose pages the guest grants.
    pub fn memory(&self) -> &SimMemory {
        &self.memory
    }

    /// Maps grant `grant_reference` for domain `backend`, with Xen's checks,
    /// and sets `GTF_reading` (and `GTF_writing` if `writable`).
    pub fn map(
        &self,
        backend: DomainId,
        grant_reference: GrantRef,
        writable: bool,
    ) -> Result<SimMapping, SimGrantError> {
        let entry = self.current_entry(grant_reference)?;
        let (flags, frame) = self.check_entry(entry, backend, writable)?;
        let status = if writable { GTF_READING | GTF_WRITING } else { GTF_READING };
        // Like Xen's cmpxchg on the entry: fails if the guest changed it since the check.
        entry
            .flags
            .compare_exchange(flags, flags | status, Ordering::SeqCst, Ordering::SeqCst)
            .map_err(|_| SimGrantError::NotGranted)?;
        Ok(self.pin(grant_reference, frame, writable))
    }

    /// A device's access to guest frame `frame` with no grant, as a device
    /// on bare metal without an IOMMU reaches memory by physical address.
    /// Refused only if the frame is not live guest RAM
    /// ([`SimGrantError::BadFrame`]): no domain, no permission is checked
    /// (`writable` only says what the mapping may do). The frame stays held,
    /// and [`Self::free_pages`] refuses it, until the mapping is unmapped.
    pub fn map_frame(&self, frame: u64, writable: bool) -> Result<SimMapping, SimGrantError> {
        if !self.memory.is_live(frame) {
            return Err(SimGrantError::BadFrame(frame));
        }
        let mut backend = self.backend.borrow_mut();
        *backend.direct.entry(frame).or_default() += 1;
        let id = NEXT_MAPPING_ID.fetch_add(1, Ordering::Relaxed);
        backend.mappings.insert(id);
        Ok(SimMapping { id, grant_reference: None, frame, writable })
    }

    /// Copies `bytes` into live frame `frame` at `offset` through a direct
    /// mapping (a bare-metal device's write by physical address).
    pub fn copy_to_frame(&self, frame: u64, offset: usize, bytes: &[u8]) -> Result<(), SimGrantError> {
        let mapping = self.map_frame(frame, true)?;
        let result = self.write(&mapping, offset, bytes);
        self.unmap(mapping)?;
        result
    }

    /// Copies bytes out of live frame `frame` at `offset` through a direct
    /// mapping (a bare-metal device's read by physical address).
    pub fn copy_from_frame(&self, frame: u64, offset: usize, out: &mut [u8]) -> Result<(), SimGrantError> {
        let mapping = self.map_frame(frame, false)?;
        let result = self.read(&mapping, offset, out);
        self.unmap(mapping)?;
        result
    }

    /// Ends a mapping; the last one of a grant clears `GTF_writing` (when no
    /// writable mapping is left) and `GTF_reading` (when none is left); the
    /// last one of a frame mapped directly lets it be freed.
    pub fn unmap(&self, mapping: SimMapping) -> Result<(), SimGrantError> {
        let mut backend = self.backend.borrow_mut();
        if !backend.mappings.remove(&mapping.id) {
            return Err(SimGrantError::BadMapping);
        }
        let Some(grant_reference) = mapping.grant_reference else {
            let holds = backend.direct.get_mut(&mapping.frame).expect("a live direct mapping holds its frame");
            *holds -= 1;
            if *holds == 0 {
                backend.direct.remove(&mapping.frame);
            }
            return Ok(());
        };
        let active = backend.active.get_mut(&grant_reference).expect("a live mapping has an active grant");
        if mapping.writable {
            active.writers -= 1;
        } else {
            active.readers -= 1;
        }
        let (readers, writers) = (active.readers, active.writers);
        let flags = &self.entries[grant_reference as usize].flags;
        if writers == 0 {
            flags.fetch_and(!GTF_WRITING, Ordering::SeqCst);
        }
        if readers + writers == 0 {
            flags.fetch_and(!GTF_READING, Ordering::SeqCst);
            backend.active.remove(&grant_reference);
        }
        Ok(())
    }

    /// The backend reads the mapped page at `offset`.
    pub fn read(&self, mapping: &SimMapping, offset: usize, out: &mut [u8]) -> Result<(), SimGrantError> {
        self.check_mapping(mapping)?;
        Ok(self.memory.read(mapping.frame, offset, out)?)
    }

    /// The backend writes the mapped page at `offset`; refused through a
    /// read-only mapping.
    pub fn write(&self, mapping: &SimMapping, offset: usize, bytes: &[u8]) -> Result<(), SimGrantError> {
        self.check_mapping(mapping)?;
        if !mapping.writable {
            return Err(SimGrantError::ReadOnly);
        }
        Ok(self.memory.write(mapping.frame, offset, bytes)?)
    }

    /// The whole mapped page, as the backend sees it.
    pub fn read_page(&self, mapping: &SimMapping) -> Result<Vec<u8>, SimGrantError> {
        let mut page = vec![0; PAGE_SIZE];
        self.read(mapping, 0, &mut page)?;
        Ok(page)
    }

    /// `GNTTABOP_copy` from a grant: what the guest exposes at `offset`.
    pub fn copy_from_grant(
        &self,
        backend: DomainId,
        grant_reference: GrantRef,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), SimGrantError> {
        let mapping = self.map(backend, grant_reference, false)?;
        let result = self.read(&mapping, offset, out);
        self.unmap(mapping)?;
        result
    }

    /// `GNTTABOP_copy` into a grant (as netback fills receive buffers).
    pub fn copy_to_grant(
        &self,
        backend: DomainId,
        grant_reference: GrantRef,
        offset: usize,
        bytes: &[u8],
    ) -> Result<(), SimGrantError> {
        let mapping = self.map(backend, grant_reference, true)?;
        let result = self.write(&mapping, offset, bytes);
        self.unmap(mapping)?;
        result
    }

    /// Live mappings, over every grant and every frame mapped directly.
    pub fn active_mappings(&self) -> usize {
        self.backend.borrow().mappings.len()
    }

    /// Whether the backend maps `grant_reference` now.
    pub fn is_mapped(&self, grant_reference: GrantRef) -> bool {
        self.backend.borrow().active.contains_key(&grant_reference)
    }

    /// The guest frees pages of its RAM: refused, with the pages given back,
    /// while a grant entry permits access to one of them or the backend maps
    /// it (through a grant or directly).
    pub fn free_pages(&self, pages: SimPages) -> Result<(), FreeError> {
        if !self.memory.owns(&pages) {
            return Err(FreeError { pages, reason: SimGrantError::ForeignPages });
        }
        if let Err(reason) = self.check_unshared(&pages) {
            return Err(FreeError { pages, reason });
        }
        self.memory.free(pages).map_err(|pages| FreeError { pages, reason: SimGrantError::ForeignPages })
    }

    fn current_entry(&self, grant_reference: GrantRef) -> Result<&GrantEntryV1, SimGrantError> {
        self.current_entries().get(grant_reference as usize).ok_or(SimGrantError::BadReference)
    }

    /// Xen's checks of the shared entry; returns the flags seen and the frame.
    fn check_entry(
        &self,
        entry: &GrantEntryV1,
        backend: DomainId,
        writable: bool,
    ) -> Result<(u16, u64), SimGrantError> {
        let flags = entry.flags.load(Ordering::SeqCst);
        if flags & GTF_TYPE_MASK != GTF_PERMIT_ACCESS {
            return Err(SimGrantError::NotGranted);
        }
        if entry.domid.load(Ordering::SeqCst) != backend {
            return Err(SimGrantError::WrongDomain);
        }
        if writable && flags & GTF_READONLY != 0 {
            return Err(SimGrantError::ReadOnly);
        }
        let frame = u64::from(entry.frame.load(Ordering::SeqCst));
        if !self.memory.is_live(frame) {
            return Err(SimGrantError::BadFrame(frame));
        }
        Ok((flags, frame))
    }

    /// Counts a new mapping in the grant's active entry.
    fn pin(&self, grant_reference: GrantRef, frame: u64, writable: bool) -> SimMapping {
        let mut backend = self.backend.borrow_mut();
        let active = backend.active.entry(grant_reference).or_insert(ActiveGrant { frame, readers: 0, writers: 0 });
        if writable {
            active.writers += 1;
        } else {
            active.readers += 1;
        }
        let frame = active.frame;
        let id = NEXT_MAPPING_ID.fetch_add(1, Ordering::Relaxed);
        backend.mappings.insert(id);
        SimMapping { id, grant_reference: Some(grant_reference), frame, writable }
    }

    fn check_mapping(&self, mapping: &SimMapping) -> Result<(), SimGrantError> {
        if self.backend.borrow().mappings.contains(&mapping.id) { Ok(()) } else { Err(SimGrantError::BadMapping) }
    }

    fn check_unshared(&self, pages: &SimPages) -> Result<(), SimGrantError> {
        let frames: Range<u64> = pages.frame()..pages.frame() + pages.count() as u64;
        let backend = self.backend.borrow();
        let direct = backend.direct.keys().any(|frame| frames.contains(frame));
        if direct || backend.active.values().any(|active| frames.contains(&active.frame)) {
            return Err(SimGrantError::StillMapped);
        }
        drop(backend);
        let granted = self.current_entries().iter().position(|entry| {
            let permits = entry.flags.load(Ordering::SeqCst) & GTF_TYPE_MASK == GTF_PERMIT_ACCESS;
            permits && frames.contains(&u64::from(entry.frame.load(Ordering::SeqCst)))
        });
        match granted {
            Some(index) => Err(SimGrantError::StillGranted(index as GrantRef)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
