//! Turning a frame held in the backend's pages into tx ring slots, by netback's
//! rules: one slot per page piece (no slot crosses a page boundary), the
//! first slot's size is the whole frame's length, `NETTXF_more_data` on every
//! slot but the last, at most [`LEGACY_SLOTS_MAX`] slots, and a first slot of
//! at least an Ethernet header. netback drops packets that break the soft
//! rules and disables the whole interface for the hard ones, so a frame that
//! cannot be sent by these rules is refused here, before the ring.

use dma::BusPage;
use xen_pv::abi::netif::{LEGACY_SLOTS_MAX, MAX_TX_SIZE, NETTXF_MORE_DATA};

/// Bytes of an Ethernet header: the least a first slot may carry.
pub const ETHERNET_HEADER_LENGTH: usize = 14;
const PAGE_SIZE: usize = 4096;

/// One piece of a buffer inside one page the backend was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The page's bus page (a grant reference, on Xen).
    pub bus_page: BusPage,
    /// Where the piece starts in the page.
    pub offset: usize,
    /// Its length.
    pub length: usize,
}

/// A tx slot to write (the id is added by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxSlotPlan {
    /// The page's bus page: the request's `gref`.
    pub bus_page: BusPage,
    /// Offset in the page.
    pub offset: u16,
    /// `size` field: the frame length in the first slot, else this piece's.
    pub size: u16,
    /// `NETTXF_*` flags.
    pub flags: u16,
}

/// Why a frame cannot go on the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanError {
    /// Empty, or shorter than an Ethernet header.
    TooShort,
    /// Longer than the protocol's 64 KiB limit or than the buffer.
    TooLong,
    /// Needs more than [`LEGACY_SLOTS_MAX`] slots.
    TooManySlots,
    /// A piece crosses its page's end (a broken buffer description).
    CrossesPage,
    /// The first piece is shorter than an Ethernet header.
    FirstSlotTooSmall,
}

/// Plans the slots for the first `frame_length` bytes of `pieces`.
pub fn plan(pieces: impl IntoIterator<Item = Piece>, frame_length: usize) -> Result<Slots, PlanError> {
    if frame_length < ETHERNET_HEADER_LENGTH {
        return Err(PlanError::TooShort);
    }
    if frame_length > MAX_TX_SIZE {
        return Err(PlanError::TooLong);
    }
    let mut slots = Slots::default();
    let mut remaining = frame_length;
    for piece in pieces {
        if remaining == 0 {
            break;
        }
        if piece.offset + piece.length > PAGE_SIZE {
            return Err(PlanError::CrossesPage);
        }
        let length = piece.length.min(remaining);
        if length == 0 {
            continue;
        }
        let size = if slots.is_empty() { frame_length } else { length };
        let slot = TxSlotPlan { bus_page: piece.bus_page, offset: piece.offset as u16, size: size as u16, flags: 0 };
        slots.push(slot).map_err(|()| PlanError::TooManySlots)?;
        remaining -= length;
    }
    if remaining > 0 {
        return Err(PlanError::TooLong);
    }
    if slots.first_piece_length(frame_length) < ETHERNET_HEADER_LENGTH {
        return Err(PlanError::FirstSlotTooSmall);
    }
    slots.mark_more_data();
    Ok(slots)
}

/// Up to [`LEGACY_SLOTS_MAX`] planned slots (no allocation on the hot path).
#[derive(Debug, Clone, Default)]
pub struct Slots {
    slots: [TxSlotPlan; LEGACY_SLOTS_MAX],
    len: usize,
}

impl Slots {
    /// The planned slots, in ring order.
    pub fn as_slice(&self) -> &[TxSlotPlan] {
        &self.slots[..self.len]
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, slot: TxSlotPlan) -> Result<(), ()> {
        *self.slots.get_mut(self.len).ok_or(())? = slot;
        self.len += 1;
        Ok(())
    }

    /// The bytes the first slot itself carries (its `size` field holds the
    /// frame's length).
    fn first_piece_length(&self, frame_length: usize) -> usize {
        let later: usize = self.as_slice().iter().skip(1).map(|slot| usize::from(slot.size)).sum();
        frame_length - later
    }

    fn mark_more_data(&mut self) {
        let last = self.len.saturating_sub(1);
        self.slots[..last].iter_mut().for_each(|slot| slot.flags |= NETTXF_MORE_DATA);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn page(bus_page: BusPage, offset: usize, length: usize) -> Piece {
        Piece { bus_page, offset, length }
    }

    fn slots(pieces: &[Piece], frame_length: usize) -> Result<Vec<TxSlotPlan>, PlanError> {
        plan(pieces.iter().copied(), frame_length).map(|slots| slots.as_slice().to_vec())
    }

    #[test]
    fn a_frame_in_one_page_is_one_slot() {
        let planned = slots(&[page(9, 0, 4096)], 60).unwrap();
        assert_eq!(planned, [TxSlotPlan { bus_page: 9, offset: 0, size: 60, flags: 0 }]);
    }

    #[test]
    fn a_frame_across_pages_gets_one_slot_per_page() {
        let pieces = [page(1, 100, 3996), page(2, 0, 4096), page(3, 0, 4096)];
        let planned = slots(&pieces, 9000).unwrap();
        assert_eq!(planned.len(), 3);
        assert_eq!(planned[0], TxSlotPlan { bus_page: 1, offset: 100, size: 9000, flags: NETTXF_MORE_DATA });
        assert_eq!(planned[1], TxSlotPlan { bus_page: 2, offset: 0, size: 4096, flags: NETTXF_MORE_DATA });
        assert_eq!(planned[2], TxSlotPlan { bus_page: 3, offset: 0, size: 908, flags: 0 });
    }

    #[test]
    fn refuses_what_netback_would_punish() {
        assert_eq!(slots(&[page(1, 0, 4096)], 13), Err(PlanError::TooShort));
        assert_eq!(slots(&[page(1, 0, 4096)], 70_000), Err(PlanError::TooLong));
        assert_eq!(slots(&[page(1, 0, 4096)], 5000), Err(PlanError::TooLong), "buffer shorter than the frame");
        assert_eq!(slots(&[page(1, 4000, 200)], 100), Err(PlanError::CrossesPage));
        assert_eq!(slots(&[page(1, 4090, 6), page(2, 0, 4096)], 100), Err(PlanError::FirstSlotTooSmall));
        let many: Vec<Piece> = (0..19).map(|bus_page| page(bus_page, 0, 100)).collect();
        assert_eq!(slots(&many, 1900), Err(PlanError::TooManySlots));
        assert_eq!(slots(&many, 1800).unwrap().len(), 18);
    }
}
