//! The DMA layer's errors: values the caller turns into backpressure or a
//! retry, each carrying back whatever the caller owned (Tock's rule: a
//! buffer comes back to its owner in every outcome).
//!
//! Never: drop a buffer or a handle on an error path.

use crate::buffer::DmaBuffer;
use crate::device::{DeviceId, DmaDevice};
use crate::direction::Direction;
use crate::grant_list::GrantList;
use crate::page::PageSource;
use crate::translation::{BusPage, Translation};
use alloc::boxed::Box;
use core::fmt;
use core::marker::PhantomData;
use xen_pv::grant_table::GrantError;

/// Why a buffer could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapFailure {
    /// No grant reference (no bus page of the translation) is free for
    /// every page: back off, unmap, retry.
    GrantsExhausted,
    /// Bounce mode: not enough idle bounce pages of the right permission.
    BounceExhausted,
    /// Any other refusal of the translation (a frame too large for a v1
    /// grant entry, or for a 32-bit bus page).
    Grant(GrantError),
}

impl From<GrantError> for MapFailure {
    fn from(error: GrantError) -> Self {
        match error {
            GrantError::Exhausted => MapFailure::GrantsExhausted,
            other => MapFailure::Grant(other),
        }
    }
}

/// A refused map, with the buffer given back untouched.
#[derive(Debug)]
pub struct MapError {
    /// Why.
    pub reason: MapFailure,
    /// The buffer, the caller's again.
    pub buffer: DmaBuffer,
}

/// A refused unmap: the backend still holds at least one grant. What the
/// handle was is inside: the buffer, still owned, and the bus pages still
/// held (in the handle's own list, shrunk in place: no allocation); give it
/// to `DmaDevice::retry_unmap` or `DmaDevice::defer`. Bus pages the backend
/// did not hold are already revoked, and it is no longer a handle: no more
/// I/O. (Only a translation that can refuse, the grant table, makes one.)
#[must_use = "the buffer is still granted: retry the unmap or defer it"]
pub struct StillInUse<D: Direction> {
    pub(crate) buffer: DmaBuffer,
    pub(crate) held: GrantList,
    pub(crate) device: DeviceId,
    pub(crate) direction: PhantomData<D>,
}

impl<D: Direction> StillInUse<D> {
    /// The bus pages (grant references) the backend still held at the last
    /// attempt.
    pub fn held_bus_pages(&self) -> &[BusPage] {
        &self.held
    }

    /// The length of the buffer still owned.
    pub fn buffer_len(&self) -> usize {
        self.buffer.len()
    }
}

impl<D: Direction> fmt::Debug for StillInUse<D> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("StillInUse").field("held", &&*self.held).finish_non_exhaustive()
    }
}

/// What `DmaDevice::unmap_or_defer` did.
#[derive(Debug)]
#[must_use = "a buffer released now must be freed or reused"]
pub enum Released {
    /// Unmapped: the buffer is the caller's again.
    Now(DmaBuffer),
    /// The backend still holds a grant: `DmaDevice::reclaim` returns the
    /// buffer once it lets go.
    Deferred,
}

/// Why a device could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupError {
    /// The page source has no page for the bounce pool.
    OutOfPages,
    /// The bounce pool's pages could not be translated (granted).
    Grant(GrantError),
}

/// Why `DmaDevice::close` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseRefusal {
    /// Handles are still mapped: unmap them first.
    HandlesLive(u64),
    /// Buffers are queued for deferred release: `reclaim` them first.
    DeferredPending(usize),
    /// The backend still maps bounce pages; the others are freed. Retry later.
    BouncePagesHeld(usize),
}

/// A refused close, with the device given back (boxed: a device is large,
/// and this path runs once).
pub struct CloseError<T: Translation, S: PageSource> {
    /// The device, still working.
    pub device: Box<DmaDevice<T, S>>,
    /// Why.
    pub refusal: CloseRefusal,
}

impl<T: Translation, S: PageSource> fmt::Debug for CloseError<T, S> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("CloseError").field("refusal", &self.refusal).finish_non_exhaustive()
    }
}
