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
//!   request. An id out of range or not outstanding is a violation. A
//!   packet of several requests gives its buffer back only when every one
//!   of them has been answered, in whatever order: the backend may answer
//!   the first while it still reads the later pages, and over a
//!   translation that cannot refuse an unmap (bare metal's identity) that
//!   is the only thing that keeps the buffer from being freed under it.
//!   The first request's id names the packet, so it stays taken until the
//!   packet is done.
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
    /// A chain of extra-info slots longer than there are extra types (its
    /// end, and so the frame's, cannot be found).
    ExtraInfoChainTooLong,
    /// A large segment's first tx response not followed at once by the
    /// `NETIF_RSP_NULL` of its GSO extra-info slot (netback writes the two
    /// together).
    ExtraResponseMissing,
    /// A tx response `NETIF_RSP_NULL` where no extra-info slot's is due.
    UnexpectedNullResponse,
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

/// What a tx id stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxSlot {
    /// Not in flight.
    Free,
    /// A request not answered yet, of the packet whose first request has
    /// id `head`.
    Waiting {
        /// The id that names the packet.
        head: u16,
    },
    /// A packet's first request, answered while later ones are not: the id
    /// still names the packet, so it stays taken until they are.
    HeadAnswered,
}

/// A packet on the tx ring: its buffer, and how many of its requests are
/// not answered yet.
struct InFlight<B> {
    buffer: B,
    unanswered: usize,
}

/// Buffers in flight on the tx ring, by request id.
pub struct TxTable<B> {
    slots: Vec<TxSlot>,
    /// Packets in flight, by their first request's id.
    packets: Vec<Option<InFlight<B>>>,
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
            packets: (0..RING_SLOTS).map(|_| None).collect(),
            free_ids: (0..RING_SLOTS as u16).rev().collect(),
        }
    }

    /// Ids free now.
    pub fn free(&self) -> usize {
        self.free_ids.len()
    }

    /// Records a packet of `slots` requests holding `buffer`; returns their
    /// ids, the first naming the packet. All or nothing: if fewer ids are
    /// free, nothing changes and `buffer` comes back.
    pub fn insert_frame(&mut self, buffer: B, slots: usize) -> Result<Vec<u16>, B> {
        if slots == 0 || self.free_ids.len() < slots {
            return Err(buffer);
        }
        let split = self.free_ids.len() - slots;
        let ids: Vec<u16> = self.free_ids.drain(split..).rev().collect();
        let head = ids[0];
        for &id in &ids {
            // Ids come from this table's own free list: always in range.
            self.slots[usize::from(id)] = TxSlot::Waiting { head };
        }
        self.packets[usize::from(head)] = Some(InFlight { buffer, unanswered: slots });
        Ok(ids)
    }

    /// Records a packet of one request holding `buffer`, or gives it back if
    /// no id is free.
    pub fn insert(&mut self, buffer: B) -> Result<u16, B> {
        self.insert_frame(buffer, 1).map(|ids| ids[0])
    }

    /// Ends request `id`: returns its packet's buffer if it was the
    /// packet's last unanswered request, else `None`.
    pub fn complete(&mut self, id: u16) -> Result<Option<B>, Violation> {
        let slot = *self.slots.get(usize::from(id)).ok_or(Violation::IdOutOfRange { id })?;
        let TxSlot::Waiting { head } = slot else { return Err(Violation::NotOutstanding { id }) };
        let Some(packet) = self.packets[usize::from(head)].as_mut() else {
            // Cannot happen: a waiting request's packet is in flight. Had
            // the table broken, refusing the response is still safe.
            return Err(Violation::NotOutstanding { id });
        };
        packet.unanswered -= 1;
        let done = packet.unanswered == 0;
        if id == head && !done {
            self.slots[usize::from(id)] = TxSlot::HeadAnswered;
            return Ok(None);
        }
        self.release(id);
        if !done {
            return Ok(None);
        }
        if head != id {
            self.release(head);
        }
        Ok(self.packets[usize::from(head)].take().map(|packet| packet.buffer))
    }

    /// Frees id `id`.
    fn release(&mut self, id: u16) {
        self.slots[usize::from(id)] = TxSlot::Free;
        self.free_ids.push(id);
    }

    /// Ids taken: requests in flight, and first requests of packets still
    /// partly in flight.
    pub fn outstanding(&self) -> usize {
        RING_SLOTS as usize - self.free_ids.len()
    }

    /// Takes every pending buffer and frees every id (teardown).
    pub fn drain(&mut self) -> Vec<B> {
        self.free_ids = (0..RING_SLOTS as u16).rev().collect();
        self.slots.iter_mut().for_each(|slot| *slot = TxSlot::Free);
        self.packets.iter_mut().filter_map(Option::take).map(|packet| packet.buffer).collect()
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
    fn a_packet_s_buffer_comes_back_with_its_last_answer_in_any_order() {
        let mut table = TxTable::new();
        let ids = table.insert_frame("jumbo", 3).unwrap();
        assert_eq!(table.outstanding(), 3);
        assert_eq!(table.complete(ids[0]), Ok(None), "the first answer alone gives nothing back");
        assert_eq!(table.complete(ids[0]), Err(Violation::NotOutstanding { id: ids[0] }), "answered twice");
        assert_eq!(table.outstanding(), 3, "the first id names the packet until it is done");
        assert_eq!(table.complete(ids[2]), Ok(None));
        assert_eq!(table.outstanding(), 2);
        assert_eq!(table.complete(ids[1]), Ok(Some("jumbo")), "the last answer gives the buffer back");
        assert_eq!(table.outstanding(), 0);
        assert_eq!(table.complete(ids[1]), Err(Violation::NotOutstanding { id: ids[1] }));

        let ids = table.insert_frame("again", 2).unwrap();
        assert_eq!(table.complete(ids[1]), Ok(None), "a later request answered first");
        assert_eq!(table.complete(ids[0]), Ok(Some("again")));
        assert_eq!(table.free(), 256);
    }

    #[test]
    fn draining_gives_back_every_packet_once() {
        let mut table = TxTable::new();
        let first = table.insert_frame(1, 3).unwrap();
        table.insert_frame(2, 1).unwrap();
        assert_eq!(table.complete(first[0]), Ok(None));
        let mut drained = table.drain();
        drained.sort_unstable();
        assert_eq!(drained, [1, 2]);
        assert_eq!(table.free(), 256);
        assert_eq!(table.complete(first[1]), Err(Violation::NotOutstanding { id: first[1] }));
    }
}
