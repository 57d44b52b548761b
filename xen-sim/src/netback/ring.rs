//! The backend's half of a shared ring, reached through its grant mapping.
//!
//! [`crate::ring::BackRing`] works on a `&SharedRing`; the simulated guest
//! RAM never lends references to its pages
//! ([`crate::grant_table::SimMemory`]), so this back ring reads and
//! writes the ring page word by word through the backend's [`SimMapping`],
//! as a real backend's accesses go through its mapping (each access checked
//! against the mapping being live). The index rules are `BackRing`'s, from
//! ring.h: `BACK_RING_ATTACH` at the shared response producer,
//! `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`, `RING_FINAL_CHECK_FOR_REQUESTS`,
//! plus the look-ahead netback does while counting a packet's slots.
//!
//! Contract: the shared indices are untrusted; [`MappedRing::unconsumed`]
//! refuses a producer more than a ring ahead, and slots are always read at
//! masked indices. Never: touch the page after [`MappedRing::detach`] gave
//! the mapping back.

use crate::grant_table::{SimGrantTable, SimMapping};
use xen_pv::ring::{RING_SLOTS, event_crossed};

/// Byte offsets in the shared page (`struct *_sring`).
const REQUEST_PRODUCER: usize = 0;
const REQUEST_EVENT: usize = 4;
const RESPONSE_PRODUCER: usize = 8;
const RESPONSE_EVENT: usize = 12;
const FIRST_SLOT: usize = 64;

/// A back ring over a mapped ring page, with `WORDS` 32-bit words a slot.
pub(super) struct MappedRing<const WORDS: usize> {
    mapping: SimMapping,
    request_consumer: u32,
    response_producer: u32,
}

impl<const WORDS: usize> MappedRing<WORDS> {
    /// `BACK_RING_ATTACH` at the page's response producer; gives the mapping
    /// back if the request producer is more than a ring ahead of it (the
    /// check of `xenvif_map_frontend_data_rings`).
    pub(super) fn attach(grants: &SimGrantTable, mapping: SimMapping) -> Result<Self, SimMapping> {
        let producer = read_word(grants, &mapping, RESPONSE_PRODUCER);
        let ring = Self { mapping, request_consumer: producer, response_producer: producer };
        if ring.request_producer(grants).wrapping_sub(producer) > RING_SLOTS {
            return Err(ring.detach());
        }
        Ok(ring)
    }

    /// Gives the mapping back, for unmapping.
    pub(super) fn detach(self) -> SimMapping {
        self.mapping
    }

    /// The shared `req_prod`.
    pub(super) fn request_producer(&self, grants: &SimGrantTable) -> u32 {
        self.word(grants, REQUEST_PRODUCER)
    }

    /// The next request to take (`req_cons`).
    pub(super) fn request_consumer(&self) -> u32 {
        self.request_consumer
    }

    /// The private response producer (`rsp_prod_pvt`).
    pub(super) fn response_producer(&self) -> u32 {
        self.response_producer
    }

    /// Requests published and not yet taken, or `None` when the producer
    /// claims more than a ring holds.
    pub(super) fn unconsumed(&self, grants: &SimGrantTable) -> Option<u32> {
        let available = self.request_producer(grants).wrapping_sub(self.request_consumer);
        (available <= RING_SLOTS).then_some(available)
    }

    /// A copy of the request `ahead` slots after the next one, not taken.
    pub(super) fn peek(&self, grants: &SimGrantTable, ahead: u32) -> [u32; WORDS] {
        self.slot(grants, self.request_consumer.wrapping_add(ahead))
    }

    /// A copy of the request at ring index `index` (taken or not).
    pub(super) fn request_at(&self, grants: &SimGrantTable, index: u32) -> [u32; WORDS] {
        self.slot(grants, index)
    }

    /// A copy of the next request, taken. The caller checked [`Self::unconsumed`].
    pub(super) fn take(&mut self, grants: &SimGrantTable) -> [u32; WORDS] {
        let words = self.peek(grants, 0);
        self.skip(1);
        words
    }

    /// Takes `count` requests already looked at with [`Self::peek`].
    pub(super) fn skip(&mut self, count: u32) {
        self.request_consumer = self.request_consumer.wrapping_add(count);
    }

    /// Writes the next response, computed from what the slot holds now
    /// (netback writes only some fields of a response).
    pub(super) fn push_with(&mut self, grants: &SimGrantTable, answer: impl FnOnce([u32; WORDS]) -> [u32; WORDS]) {
        let index = self.response_producer;
        let words = answer(self.slot(grants, index));
        self.set_slot(grants, index, words);
        self.response_producer = index.wrapping_add(1);
    }

    /// Publishes the pushed responses; returns whether the front end asked
    /// to be notified of them (`rsp_event` crossed).
    pub(super) fn publish(&mut self, grants: &SimGrantTable) -> bool {
        let old = self.word(grants, RESPONSE_PRODUCER);
        let new = self.response_producer;
        self.set_word(grants, RESPONSE_PRODUCER, new);
        event_crossed(old, new, self.word(grants, RESPONSE_EVENT))
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`: whether requests are waiting, after
    /// asking (through `req_event`) to be notified of the next one.
    pub(super) fn final_check(&self, grants: &SimGrantTable) -> bool {
        if self.request_producer(grants) != self.request_consumer {
            return true;
        }
        self.set_word(grants, REQUEST_EVENT, self.request_consumer.wrapping_add(1));
        self.request_producer(grants) != self.request_consumer
    }

    /// The shared `req_event`.
    pub(super) fn request_event(&self, grants: &SimGrantTable) -> u32 {
        self.word(grants, REQUEST_EVENT)
    }

    /// Asks to be notified when `req_prod` reaches `event`.
    pub(super) fn set_request_event(&self, grants: &SimGrantTable, event: u32) {
        self.set_word(grants, REQUEST_EVENT, event);
    }

    /// Writes a raw response producer, for hostile tests (as
    /// [`crate::ring::BackRing::force_response_producer`]).
    pub(super) fn force_response_producer(&mut self, grants: &SimGrantTable, producer: u32) {
        self.response_producer = producer;
        self.set_word(grants, RESPONSE_PRODUCER, producer);
    }

    fn slot_offset(index: u32) -> usize {
        FIRST_SLOT + (index % RING_SLOTS) as usize * WORDS * 4
    }

    fn slot(&self, grants: &SimGrantTable, index: u32) -> [u32; WORDS] {
        let base = Self::slot_offset(index);
        core::array::from_fn(|word| self.word(grants, base + word * 4))
    }

    fn set_slot(&self, grants: &SimGrantTable, index: u32, words: [u32; WORDS]) {
        let base = Self::slot_offset(index);
        words.iter().enumerate().for_each(|(word, value)| self.set_word(grants, base + word * 4, *value));
    }

    fn word(&self, grants: &SimGrantTable, offset: usize) -> u32 {
        read_word(grants, &self.mapping, offset)
    }

    fn set_word(&self, grants: &SimGrantTable, offset: usize, value: u32) {
        grants
            .write(&self.mapping, offset, &value.to_le_bytes())
            .expect("the ring mapping is live, writable, and the offset inside the page");
    }
}

fn read_word(grants: &SimGrantTable, mapping: &SimMapping, offset: usize) -> u32 {
    let mut bytes = [0; 4];
    grants.read(mapping, offset, &mut bytes).expect("the ring mapping is live and the offset inside the page");
    u32::from_le_bytes(bytes)
}

const _: () = assert!(MappedRing::<3>::LAST_SLOT_END <= 4096 && MappedRing::<2>::LAST_SLOT_END <= 4096);

impl<const WORDS: usize> MappedRing<WORDS> {
    /// Where the last slot ends: inside the page for netif's rings.
    const LAST_SLOT_END: usize = FIRST_SLOT + RING_SLOTS as usize * WORDS * 4;
}
