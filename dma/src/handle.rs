//! [`DmaHandle`]: a mapped buffer, and everything needed to sync and unmap it.
//!
//! `DmaDevice::map` moves a buffer into a handle; the handle is the only key
//! to the mapping. It holds the buffer (CPU address, frames, offset,
//! length), the backend domain, the device it belongs to, and one bus page
//! per page the buffer touches (what the translation gave for its own
//! pages, grant references on Xen, or in bounce mode the bounce pages').
//! Every operation reads those fields: none ever goes from a bus address
//! back to a mapping, and there is no table of mappings to look one up in.
//!
//! The bus pages of a buffer of up to five pages are stored in the
//! handle itself (a [`GrantList`]), so mapping and unmapping such a buffer
//! allocates nothing; a larger one keeps them in one heap allocation. The
//! handle is 80 bytes on 64-bit targets either way (a test holds it to that):
//! it is moved on every map, pool take and put, and unmap.
//!
//! The handle is not `Clone` and does not dereference to the bytes. The CPU
//! reaches them only through [`DmaHandle::read`], [`DmaHandle::write`] and
//! [`DmaHandle::update`], which sync on the way in or out, and which exist
//! only for the directions that allow them. `unmap` consumes the handle, so
//! nothing can use it afterwards.
//!
//! Never: expose the buffer's bytes outside a sync bracket, or let a handle
//! be duplicated.

use crate::bounce::BouncePage;
use crate::buffer::DmaBuffer;
use crate::device::{DeviceId, DmaDevice};
use crate::direction::{CpuWrites, DeviceWrites, Direction};
use crate::grant_list::GrantList;
use crate::page::PageSource;
use crate::translation::{BusPage, Translation};
use alloc::vec::Vec;
use core::marker::PhantomData;
use core::ops::Range;
use xen_pv::abi::DomainId;

/// The bus address of a mapping: what the backend is told, the bus page of
/// the buffer's first page and the offset of the data in it. On Xen the
/// bus page is a grant reference; under the identity translation it is the
/// frame, and the address is the physical address.
///
/// It is an output only: nothing in this crate accepts one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DmaAddress {
    /// The bus page of the buffer's first page (its grant reference on Xen).
    pub bus_page: BusPage,
    /// Where the buffer starts in that page (below 4096).
    pub offset: u16,
}

impl DmaAddress {
    /// The address as one number, `bus_page << 12 | offset`: under the
    /// identity translation the physical address; under the grant table
    /// the shape Linux's grant DMA ops give a `dma_addr_t`, without their
    /// tag bit.
    pub fn encoded(self) -> u64 {
        (u64::from(self.bus_page) << 12) | u64::from(self.offset)
    }
}

/// One page's share of a mapped buffer: the scatter-gather entry a ring
/// request needs (netfront's tx slot: grant reference, offset, size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The bus page the backend uses for this page (its grant reference on
    /// Xen).
    pub bus_page: BusPage,
    /// Where the data starts in the page.
    pub offset: u16,
    /// How many bytes of the page are the buffer's (1 to 4096); the segment
    /// never crosses the page's end.
    pub length: u16,
}

/// Which pages the backend was given for a handle.
#[derive(Debug)]
pub(crate) enum Backing {
    /// The buffer's own pages, one bus page each, in order.
    Direct(GrantList),
    /// Bounce pages lent by the device, one per buffer page, in order.
    Bounced(Vec<BouncePage>),
}

/// A buffer mapped for a backend, typed by its direction. Not `Clone`: the
/// one owner syncs it, lends its bytes, and finally gives it to `unmap`.
#[derive(Debug)]
#[must_use = "a mapped buffer stays translated (granted) until it is given to unmap"]
pub struct DmaHandle<D: Direction> {
    pub(crate) buffer: DmaBuffer,
    pub(crate) backing: Backing,
    pub(crate) backend: DomainId,
    pub(crate) device: DeviceId,
    pub(crate) direction: PhantomData<D>,
}

impl<D: Direction> DmaHandle<D> {
    /// The bus address: the first page's bus page and the buffer's offset
    /// in it.
    pub fn dma_addr(&self) -> DmaAddress {
        DmaAddress { bus_page: self.bus_page(0), offset: self.buffer.offset() as u16 }
    }

    /// The buffer's length in bytes.
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Always false: a DMA buffer has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// The backend domain the pages are translated (granted) for.
    pub fn backend(&self) -> DomainId {
        self.backend
    }

    /// How many pages (and bus pages) the mapping spans.
    pub fn page_count(&self) -> usize {
        self.buffer.page_count()
    }

    /// Whether the backend sees bounce pages rather than the buffer's own.
    pub fn is_bounced(&self) -> bool {
        matches!(self.backing, Backing::Bounced(_))
    }

    /// The scatter-gather list: one segment per page, in buffer order.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = Segment> + '_ {
        self.buffer.spans().enumerate().map(|(index, span)| Segment {
            bus_page: self.bus_page(index),
            offset: span.page_offset as u16,
            length: span.length as u16,
        })
    }

    /// The bus page of page `index` of the buffer.
    fn bus_page(&self, index: usize) -> BusPage {
        match &self.backing {
            Backing::Direct(bus_pages) => bus_pages[index],
            Backing::Bounced(pages) => pages[index].bus_page,
        }
    }
}

impl<D: Direction> DmaHandle<D> {
    /// Hands the buffer to the device (the driver is about to put its
    /// address on a ring): until [`Posted::complete`] nothing reaches its
    /// bytes. Sync first what the CPU wrote; posting copies nothing.
    pub fn post(self) -> Posted<D> {
        Posted(self)
    }
}

/// A mapping the device owns now: posted on a ring until the device's
/// response for it comes back. It gives the bus address and segments a
/// ring request needs, and no way to the bytes, so code that holds it
/// cannot read a buffer the device may still be writing, nor write one it
/// may be reading: that does not compile (`dma::guarantees`). The driver
/// takes the handle back with [`Posted::complete`] when the response
/// arrives, or when the ring is gone (unmap then finds out whether the
/// backend still holds it).
#[derive(Debug)]
#[must_use = "a posted buffer stays translated (granted): take it back with `complete` when the device answers"]
pub struct Posted<D: Direction>(DmaHandle<D>);

impl<D: Direction> Posted<D> {
    /// The bus address (as [`DmaHandle::dma_addr`]).
    pub fn dma_addr(&self) -> DmaAddress {
        self.0.dma_addr()
    }

    /// The buffer's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a DMA buffer has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scatter-gather list (as [`DmaHandle::segments`]).
    pub fn segments(&self) -> impl ExactSizeIterator<Item = Segment> + '_ {
        self.0.segments()
    }

    /// The device is done with the buffer (its response came, or its ring
    /// is gone): the CPU's handle again.
    pub fn complete(self) -> DmaHandle<D> {
        self.0
    }
}

impl<D: DeviceWrites> DmaHandle<D> {
    /// Syncs for the CPU, then lends the bytes the device wrote.
    pub fn read<R, T: Translation, S: PageSource>(
        &mut self,
        device: &DmaDevice<T, S>,
        reader: impl FnOnce(&[u8]) -> R,
    ) -> R {
        device.sync_for_cpu(self);
        reader(self.buffer.as_bytes())
    }

    /// Syncs bytes `range` for the CPU, then lends them (only those are
    /// copied in bounce mode: a received frame, not its whole page).
    ///
    /// # Panics
    ///
    /// If `range` is not inside the buffer.
    pub fn read_range<R, T: Translation, S: PageSource>(
        &mut self,
        device: &DmaDevice<T, S>,
        range: Range<usize>,
        reader: impl FnOnce(&[u8]) -> R,
    ) -> R {
        device.sync_range_for_cpu(self, range.clone());
        reader(&self.buffer.as_bytes()[range])
    }
}

impl<D: CpuWrites> DmaHandle<D> {
    /// Lends the bytes for writing, then syncs for the device.
    ///
    /// For a `Bidirectional` handle the bytes are the CPU's view as of its
    /// last sync; use [`DmaHandle::update`] to change what the device wrote.
    pub fn write<R, T: Translation, S: PageSource>(
        &mut self,
        device: &DmaDevice<T, S>,
        writer: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        let result = writer(self.buffer.as_bytes_mut());
        device.sync_for_device(self);
        result
    }

    /// Lends bytes `range` for writing, then syncs them for the device
    /// (only those are copied in bounce mode: a frame, not its whole page).
    ///
    /// # Panics
    ///
    /// If `range` is not inside the buffer.
    pub fn write_range<R, T: Translation, S: PageSource>(
        &mut self,
        device: &DmaDevice<T, S>,
        range: Range<usize>,
        writer: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        let result = writer(&mut self.buffer.as_bytes_mut()[range.clone()]);
        device.sync_range_for_device(self, range);
        result
    }
}

impl<D: CpuWrites + DeviceWrites> DmaHandle<D> {
    /// Syncs for the CPU, lends the bytes for changing, then syncs for the
    /// device: read-modify-write of a buffer both sides write.
    pub fn update<R, T: Translation, S: PageSource>(
        &mut self,
        device: &DmaDevice<T, S>,
        updater: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        device.sync_for_cpu(self);
        let result = updater(self.buffer.as_bytes_mut());
        device.sync_for_device(self);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direction::{Bidirectional, FromDevice, ToDevice};
    use crate::error::{MapError, StillInUse};

    /// The most a handle may take on a 64-bit target: the buffer (40 bytes),
    /// the grant list or bounce pages (32: five references inline, or a
    /// heap list), the backend and the device (8).
    const MAX_HANDLE_SIZE: usize = 80;

    /// A handle is moved by value on every map, pool take and put, and
    /// unmap, so it must stay small; so must what map and unmap return.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_handle_is_at_most_80_bytes() {
        let sizes = [
            ("DmaHandle<ToDevice>", size_of::<DmaHandle<ToDevice>>()),
            ("DmaHandle<FromDevice>", size_of::<DmaHandle<FromDevice>>()),
            ("DmaHandle<Bidirectional>", size_of::<DmaHandle<Bidirectional>>()),
            ("map's Result", size_of::<Result<DmaHandle<ToDevice>, MapError>>()),
            ("unmap's Result", size_of::<Result<DmaBuffer, StillInUse<ToDevice>>>()),
        ];
        for (what, size) in sizes {
            assert!(size <= MAX_HANDLE_SIZE, "{what} is {size} bytes, more than {MAX_HANDLE_SIZE}");
        }
    }
}
