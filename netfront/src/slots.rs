//! Bookkeeping of the buffers lent to the backend, per ring.
//!
//! Both tables are generic over the buffer type, so the rules are tested
//! with plain values and the driver stores DMA handles in them.
//!
//! - **rx**: a request's id is its ring position (`index % 256`), and
//!   netback answers each request in the slot it was posted in, so the
//!   response at position `p` returns the buffer posted at `p`. That also
//!   covers extra-info responses, which carry no id. A response whose id
//!   differs from its position, or that arrives for a position with no
//!   buffer, is a protocol violation.
//! - **tx**: ids come from a free list; the response's id names the
//!   request. An id out of range or not outstanding is a violation.
//!
//! Never: hand a buffer back twice, or index outside the tables, whatever
//! the backend writes.

use alloc::vec::Vec;
use xen_pv::ring::RING_SLOTS;

/// What the backend did wrong in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// An rx response's id is not the id posted at its position.
    RxIdMismatch {
        /// The response's id.
        id: u16,
        /// The id posted at that position.
        expected: u16,
    },
    /// A response for a slot with no outstanding buffer.
    NotOutstanding {
        /// The id (tx) or position (rx).
        id: u16,
    },
    /// A tx response id beyond the ring.
    IdOutOfRange {
        /// The id.
        id: u16,
    },
    /// Received data that does not fit the posted page.
    OutOfPage {
        /// Offset in the page.
        offset: u16,
        /// Length claimed.
        length: u16,
    },
    /// A status no response may carry.
    BadStatus {
        /// The status.
        status: i16,
    },
    /// The ring's producer index ran ahead of what was posted.
    ProducerOverflow,
    /// A frame made of more slots than were ever posted, or too long.
    FrameTooLong,
}

/// Buffers posted on the rx ring, by ring position.
pub struct RxTable<B> {
    posted: Vec<Option<B>>,
}

impl<B> Default for RxTable<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B> RxTable<B> {
    /// An empty table.
    pub fn new() -> Self {
        Self { posted: (0..RING_SLOTS).map(|_| None).collect() }
    }

    /// Records `buffer` as posted at ring index `index`; returns the id to
    /// write in the request, or gives the buffer back if the slot is taken.
    pub fn post(&mut self, index: u32, buffer: B) -> Result<u16, B> {
        let position = (index % RING_SLOTS) as usize;
        match &self.posted[position] {
            Some(_) => Err(buffer),
            None => {
                self.posted[position] = Some(buffer);
                Ok(position as u16)
            }
        }
    }

    /// Takes the buffer the response at ring index `index` answers,
    /// checking the response's `id` (`None` for an extra-info slot).
    pub fn complete(&mut self, index: u32, id: Option<u16>) -> Result<B, Violation> {
        let position = (index % RING_SLOTS) as u16;
        if let Some(id) = id
            && id != position
        {
            return Err(Violation::RxIdMismatch { id, expected: position });
        }
        self.posted[usize::from(position)].take().ok_or(Violation::NotOutstanding { id: position })
    }

    /// Buffers posted now.
    pub fn outstanding(&self) -> usize {
        self.posted.iter().filter(|slot| slot.is_some()).count()
    }

    /// Takes every posted buffer (teardown, after the rings are gone).
    pub fn drain(&mut self) -> impl Iterator<Item = B> + '_ {
        self.posted.iter_mut().filter_map(Option::take)
    }
}

/// What a tx id stands for while it is in flight.
enum TxSlot<B> {
    /// Not in flight.
    Free,
    /// The first slot of a packet: it holds the packet's buffer.
    Buffer(B),
    /// A later slot of a multi-slot packet.
    Continuation,
}

/// Buffers in flight on the tx ring, by request id.
pub struct TxTable<B> {
    slots: Vec<TxSlot<B>>,
    free_ids: Vec<u16>,
}

impl<B> Default for TxTable<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B> TxTable<B> {
    /// An empty table with every id free.
    pub fn new() -> Self {
        Self {
            slots: (0..RING_SLOTS).map(|_| TxSlot::Free).collect(),
            free_ids: (0..RING_SLOTS as u16).rev().collect(),
        }
    }

    /// Ids free now.
    pub fn free(&self) -> usize {
        self.free_ids.len()
    }

    /// An id for a later slot of a multi-slot packet.
    pub fn insert_continuation(&mut self) -> Option<u16> {
        let id = self.free_ids.pop()?;
        self.slots[usize::from(id)] = TxSlot::Continuation;
        Some(id)
    }

    /// Records a frame of `slots` requests: `buffer` under the first id,
    /// continuations under the rest. All or nothing: if fewer ids are free,
    /// nothing changes and `buffer` comes back.
    pub fn insert_frame(&mut self, buffer: B, slots: usize) -> Result<Vec<u16>, B> {
        if slots == 0 || self.free_ids.len() < slots {
            return Err(buffer);
        }
        let split = self.free_ids.len() - slots;
        let ids: Vec<u16> = self.free_ids.drain(split..).rev().collect();
        let mut buffer = Some(buffer);
        for &id in &ids {
            // Ids come from this table's own free list: always in range.
            self.slots[usize::from(id)] = match buffer.take() {
                Some(first) => TxSlot::Buffer(first),
                None => TxSlot::Continuation,
            };
        }
        Ok(ids)
    }

    /// Records `buffer` under a fresh id, or gives it back if none is free.
    pub fn insert(&mut self, buffer: B) -> Result<u16, B> {
        let Some(id) = self.free_ids.pop() else { return Err(buffer) };
        self.slots[usize::from(id)] = TxSlot::Buffer(buffer);
        Ok(id)
    }

    /// Ends request `id`: frees it and returns its buffer (`None` for a
    /// continuation slot).
    pub fn complete(&mut self, id: u16) -> Result<Option<B>, Violation> {
        let slot = self.slots.get_mut(usize::from(id)).ok_or(Violation::IdOutOfRange { id })?;
        let buffer = match core::mem::replace(slot, TxSlot::Free) {
            TxSlot::Free => return Err(Violation::NotOutstanding { id }),
            TxSlot::Buffer(buffer) => Some(buffer),
            TxSlot::Continuation => None,
        };
        self.free_ids.push(id);
        Ok(buffer)
    }

    /// Requests in flight.
    pub fn outstanding(&self) -> usize {
        RING_SLOTS as usize - self.free_ids.len()
    }

    /// Takes every pending buffer and frees every id (teardown).
    pub fn drain(&mut self) -> Vec<B> {
        self.free_ids = (0..RING_SLOTS as u16).rev().collect();
        self.slots
            .iter_mut()
            .filter_map(|slot| match core::mem::replace(slot, TxSlot::Free) {
                TxSlot::Buffer(buffer) => Some(buffer),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_buffers_come_back_by_position_once() {
        let mut table = RxTable::new();
        assert_eq!(table.post(300, "a"), Ok(44));
        assert_eq!(table.post(44, "b"), Err("b"), "position taken");
        assert_eq!(table.complete(300, Some(43)), Err(Violation::RxIdMismatch { id: 43, expected: 44 }));
        assert_eq!(table.complete(300, Some(44)), Ok("a"));
        assert_eq!(table.complete(300, Some(44)), Err(Violation::NotOutstanding { id: 44 }));
        assert_eq!(table.post(45, "c"), Ok(45));
        assert_eq!(table.complete(45, None), Ok("c"), "extra-info slots carry no id");
        assert_eq!(table.outstanding(), 0);
    }

    #[test]
    fn tx_ids_are_unique_until_completed() {
        let mut table = TxTable::new();
        let ids: Vec<u16> = (0..256).map(|n| table.insert(n).unwrap()).collect();
        assert_eq!(table.insert(999), Err(999));
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
        assert_eq!(table.complete(ids[7]), Ok(Some(7)));
        assert_eq!(table.complete(ids[7]), Err(Violation::NotOutstanding { id: ids[7] }));
        assert_eq!(table.complete(256), Err(Violation::IdOutOfRange { id: 256 }));
        assert_eq!(table.complete(u16::MAX), Err(Violation::IdOutOfRange { id: u16::MAX }));
        assert_eq!(table.outstanding(), 255);
        assert_eq!(table.drain().len(), 255);
        assert_eq!(table.free(), 256);
    }

    #[test]
    fn continuation_ids_complete_without_a_buffer() {
        let mut table: TxTable<u8> = TxTable::new();
        let id = table.insert_continuation().unwrap();
        assert_eq!(table.complete(id), Ok(None));
        assert_eq!(table.complete(id), Err(Violation::NotOutstanding { id }));
        assert_eq!(table.outstanding(), 0);
    }
}
