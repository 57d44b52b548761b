//! [`DmaPool`]: persistent mappings, granted once and reused per packet.
//!
//! A pool maps N page-sized buffers when it is made and keeps the handles.
//! `take` lends one, `put` takes it back; between the two the user reads or
//! writes it through the handle's sync-bracketed accessors. In steady state
//! a packet costs syncs (fences, plus copies in bounce mode) and no grant
//! operation at all: the grant references stay the same for the pool's life,
//! which is what netfront's rx and tx rings want.
//!
//! Contract: an empty pool is [`PoolEmpty`], an error value (backpressure).
//! `close` refuses while handles are out; it unmaps the idle ones, frees
//! their buffers, and defers to the device's queue any the backend still
//! holds. Never: hand the same handle out twice (a handle is a value: it is
//! either in the pool or with its user).

use crate::buffer::DmaBuffer;
use crate::device::{DeviceId, DmaDevice};
use crate::direction::Direction;
use crate::error::{MapFailure, Released};
use crate::handle::DmaHandle;
use crate::page::{PAGE_SIZE, PageSource};
use crate::translation::Translation;
use alloc::vec::Vec;

/// Taking from a pool whose handles are all out: back off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolEmpty;

/// Why a pool could not be made; whatever it had mapped is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// The page source ran out of pages.
    OutOfPages,
    /// A buffer could not be mapped.
    Map(MapFailure),
}

/// N page-sized buffers mapped once for one device, typed by direction.
#[derive(Debug)]
pub struct DmaPool<D: Direction> {
    idle: Vec<DmaHandle<D>>,
    taken: usize,
    device: DeviceId,
}

impl<D: Direction> DmaPool<D> {
    /// Maps `buffers` zeroed page-sized buffers for `device`.
    pub fn new<T: Translation, S: PageSource>(device: &DmaDevice<T, S>, buffers: usize) -> Result<Self, PoolError> {
        let mut pool = Self { idle: Vec::with_capacity(buffers), taken: 0, device: device.id() };
        for _ in 0..buffers {
            if let Err(error) = pool.add_one(device) {
                pool.release_idle(device);
                return Err(error);
            }
        }
        Ok(pool)
    }

    fn add_one<T: Translation, S: PageSource>(&mut self, device: &DmaDevice<T, S>) -> Result<(), PoolError> {
        let buffer = DmaBuffer::allocate(device.source(), PAGE_SIZE).map_err(|_| PoolError::OutOfPages)?;
        match device.map(buffer, D::default()) {
            Ok(handle) => {
                self.idle.push(handle);
                Ok(())
            }
            Err(error) => {
                error.buffer.free(device.source());
                Err(PoolError::Map(error.reason))
            }
        }
    }
}

impl<D: Direction> DmaPool<D> {
    /// Lends an idle handle, or [`PoolEmpty`].
    pub fn take(&mut self) -> Result<DmaHandle<D>, PoolEmpty> {
        let handle = self.idle.pop().ok_or(PoolEmpty)?;
        self.taken += 1;
        Ok(handle)
    }

    /// Takes a lent handle back. Refuses (giving it back) a handle of
    /// another device, one not page-sized, or one more than were taken.
    pub fn put(&mut self, handle: DmaHandle<D>) -> Result<(), DmaHandle<D>> {
        let fits = handle.device == self.device && handle.len() == PAGE_SIZE && handle.page_count() == 1;
        if !fits || self.taken == 0 {
            return Err(handle);
        }
        self.taken -= 1;
        self.idle.push(handle);
        Ok(())
    }

    /// Handles ready to take.
    pub fn available(&self) -> usize {
        self.idle.len()
    }

    /// Handles out with users.
    pub fn taken(&self) -> usize {
        self.taken
    }

    /// Unmaps and frees every buffer. Refused (the pool comes back) while
    /// handles are out. Buffers the backend still holds go to the device's
    /// deferred queue; `DmaDevice::reclaim` returns them later.
    pub fn close<T: Translation, S: PageSource>(mut self, device: &DmaDevice<T, S>) -> Result<(), Self> {
        if self.taken > 0 {
            return Err(self);
        }
        self.release_idle(device);
        Ok(())
    }

    fn release_idle<T: Translation, S: PageSource>(&mut self, device: &DmaDevice<T, S>) {
        for handle in self.idle.drain(..) {
            if let Released::Now(buffer) = device.unmap_or_defer(handle) {
                buffer.free(device.source());
            }
        }
    }
}
