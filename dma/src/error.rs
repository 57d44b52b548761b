//! The DMA layer's errors: values the caller turns into backpressure or a
//! retry, each carrying back whatever the caller owned (Tock's rule: a
//! buffer comes back to its owner in every outcome).
//!
//! Never: drop a buffer or a handle on an error path.

use crate::buffer::DmaBuffer;
use crate::device::{DeviceId, GrantDma};
use crate::direction::Direction;
use crate::grant_list::GrantList;
use crate::grants::Grants;
use crate::page::PageSource;
use alloc::boxed::Box;
use core::fmt;
use core::marker::PhantomData;
use xen_pv::abi::grant_table::GrantRef;
use xen_pv::grant_table::GrantError;

/// Why a buffer could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapFailure {
    /// No grant reference is free for every page: back off, unmap, retry.
    GrantsExhausted,
    /// Bounce mode: not enough idle bounce pages of the right permission.
    BounceExhausted,
    /// Any other refusal of the grant table (a frame too large for a v1 entry).
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
/// handle was is inside: the buffer, still owned, and the grants still held
/// (in the handle's own grant list, shrunk in place: no allocation); give it
/// to `GrantDma::retry_unmap` or `GrantDma::defer`. Grants the backend did
/// not hold are already ended, and it is no longer a handle: no more I/O.
#[must_use = "the buffer is still granted: retry the unmap or defer it"]
pub struct StillInUse<D: Direction> {
    pub(crate) buffer: DmaBuffer,
    pub(crate) held: GrantList,
    pub(crate) device: DeviceId,
    pub(crate) direction: PhantomData<D>,
}

impl<D: Direction> StillInUse<D> {
    /// The grants the backend still held at the last attempt.
    pub fn held_grant_references(&self) -> &[GrantRef] {
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

/// What `GrantDma::unmap_or_defer` did.
#[derive(Debug)]
#[must_use = "a buffer released now must be freed or reused"]
pub enum Released {
    /// Unmapped: the buffer is the caller's again.
    Now(DmaBuffer),
    /// The backend still holds a grant: `GrantDma::reclaim` returns the
    /// buffer once it lets go.
    Deferred,
}

/// Why a device could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupError {
    /// The page source has no page for the bounce pool.
    OutOfPages,
    /// The bounce pool's pages could not be granted.
    Grant(GrantError),
}

/// Why `GrantDma::close` refused.
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
pub struct CloseError<G: Grants, S: PageSource> {
    /// The device, still working.
    pub device: Box<GrantDma<G, S>>,
    /// Why.
    pub refusal: CloseRefusal,
}

impl<G: Grants, S: PageSource> fmt::Debug for CloseError<G, S> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("CloseError").field("refusal", &self.refusal).finish_non_exhaustive()
    }
}
