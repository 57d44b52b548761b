//! The simulated grant table (to be written: see the helper's task).

use crate::abi::grant_table::{ENTRIES_PER_FRAME, GrantEntryV1};
use crate::hypervisor::GrantTableSize;
use core::cell::Cell;
use core::sync::atomic::{AtomicU16, AtomicU32};
use std::boxed::Box;
use std::vec::Vec;

/// The grant table as Xen holds it, with the backend's side of it.
pub struct SimGrantTable {
    entries: Box<[GrantEntryV1]>,
    frames: Cell<u32>,
    max_frames: u32,
}

impl SimGrantTable {
    /// A table of `frames` frames that may grow to `max_frames`.
    pub fn new(frames: u32, max_frames: u32) -> Self {
        let entries: Vec<GrantEntryV1> = (0..max_frames as usize * ENTRIES_PER_FRAME)
            .map(|_| GrantEntryV1 { flags: AtomicU16::new(0), domid: AtomicU16::new(0), frame: AtomicU32::new(0) })
            .collect();
        Self { entries: entries.into_boxed_slice(), frames: Cell::new(frames), max_frames }
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
}
