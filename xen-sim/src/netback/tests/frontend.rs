//! A tiny reference frontend, for the simulated netback's own tests.
//!
//! Not netfront: it does the handshake with the real [`Xenstore`] client and
//! [`EventChannels`] over [`SimXen`], grants pages of the simulated guest
//! RAM with the real [`GrantTable`] (or, for a backend with identity
//! addressing, names pages by their frames), and drives the rings the plainest way,
//! with levers to break every rule on purpose (any key, any slot, any
//! request). It trusts nothing it reads and checks nothing: the tests look
//! at what the backend wrote.
//!
//! The ring pages are the guest's own memory, reached the way the guest's
//! CPU would reach it (reads and writes of [`SimMemory`] by frame): the
//! simulation lends no references into its RAM.

use crate::grant_table::SimMemory;
use crate::netback::{Addressing, XenbusState};
use crate::{BACKEND_DOMAIN, SimXen, XENSTORE_PORT};
use std::collections::BTreeMap;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;
use xen_pv::abi::PAGE_SIZE;
use xen_pv::abi::event_channel::Port;
use xen_pv::abi::grant_table::GrantRef;
use xen_pv::abi::netif::{
    NETRXF_MORE_DATA, NETTXF_MORE_DATA, RX_WORDS, RxRequest, RxResponse, TX_WORDS, TxRequest, TxResponse,
};
use xen_pv::event_channel::EventChannels;
use xen_pv::grant_table::{GrantTable, RevokeError};
use xen_pv::ring::RING_SLOTS;
use xen_pv::xenstore::Xenstore;

/// The frontend's directory, relative to the guest's home.
pub const DEVICE: &str = "device/vif/0";

/// The guest's half of a ring, in a page of simulated guest RAM.
pub struct GuestRing<const WORDS: usize> {
    frame: u64,
    request_producer: u32,
    response_consumer: u32,
}

impl<const WORDS: usize> GuestRing<WORDS> {
    /// `SHARED_RING_INIT` on the page at `frame`.
    fn new(memory: &SimMemory, frame: u64) -> Self {
        let ring = Self { frame, request_producer: 0, response_consumer: 0 };
        [(0, 0), (4, 1), (8, 0), (12, 1)].into_iter().for_each(|(offset, value)| ring.set_word(memory, offset, value));
        ring
    }

    pub fn word(&self, memory: &SimMemory, offset: usize) -> u32 {
        let mut bytes = [0; 4];
        memory.read(self.frame, offset, &mut bytes).unwrap();
        u32::from_le_bytes(bytes)
    }

    pub fn set_word(&self, memory: &SimMemory, offset: usize, value: u32) {
        memory.write(self.frame, offset, &value.to_le_bytes()).unwrap();
    }

    fn slot_offset(index: u32) -> usize {
        64 + (index % RING_SLOTS) as usize * WORDS * 4
    }

    /// Writes a request into the next slot, unpublished.
    pub fn push(&mut self, memory: &SimMemory, words: [u32; WORDS]) {
        let base = Self::slot_offset(self.request_producer);
        words.iter().enumerate().for_each(|(index, word)| self.set_word(memory, base + index * 4, *word));
        self.request_producer = self.request_producer.wrapping_add(1);
    }

    /// Publishes; whether `req_event` asks for a notification.
    pub fn publish(&mut self, memory: &SimMemory) -> bool {
        let (old, new) = (self.word(memory, 0), self.request_producer);
        self.set_word(memory, 0, new);
        new.wrapping_sub(self.word(memory, 4)) < new.wrapping_sub(old)
    }

    /// The next response, if the shared producer says there is one.
    pub fn take(&mut self, memory: &SimMemory) -> Option<[u32; WORDS]> {
        if self.word(memory, 8) == self.response_consumer {
            return None;
        }
        let base = Self::slot_offset(self.response_consumer);
        self.response_consumer = self.response_consumer.wrapping_add(1);
        Some(core::array::from_fn(|index| self.word(memory, base + index * 4)))
    }

    /// Asks for a notification at the next response (`rsp_event`).
    pub fn rearm(&self, memory: &SimMemory) {
        self.set_word(memory, 12, self.response_consumer.wrapping_add(1));
    }

    /// The shared `(req_prod, req_event, rsp_prod, rsp_event)`.
    pub fn indices(&self, memory: &SimMemory) -> [u32; 4] {
        [0, 4, 8, 12].map(|offset| self.word(memory, offset))
    }
}

/// One transmit slot to send.
#[derive(Debug, Clone)]
pub enum Slot {
    /// A data slot: `bytes` are written at `offset` of a fresh page granted
    /// read-only; `size` and `flags` go in the request as given.
    Data { bytes: Vec<u8>, offset: u16, size: u16, flags: u16 },
    /// An extra-info slot, raw.
    Extra([u32; TX_WORDS]),
}

/// A data slot holding `bytes` at offset 0, its size theirs.
pub fn data(bytes: &[u8], flags: u16) -> Slot {
    Slot::Data { bytes: bytes.to_vec(), offset: 0, size: bytes.len() as u16, flags }
}

/// The reference frontend.
pub struct TestFrontend<'x> {
    pub xen: &'x SimXen,
    /// How it names pages to the backend: grants, or frames.
    pub addressing: Addressing,
    pub events: &'x EventChannels<'x, SimXen>,
    pub store: Xenstore<'x, SimXen>,
    pub grants: GrantTable<'x>,
    pub port: Port,
    pub transmit: GuestRing<TX_WORDS>,
    pub receive: GuestRing<RX_WORDS>,
    pub transmit_ring_reference: GrantRef,
    pub receive_ring_reference: GrantRef,
    /// Receive id → (reference, frame) of its buffer.
    pub receive_buffers: BTreeMap<u16, (GrantRef, u64)>,
    /// Every transmit slot's reference, in the order sent.
    pub transmit_grants: Vec<GrantRef>,
    next_receive_id: u16,
    next_transmit_id: u16,
}

impl<'x> TestFrontend<'x> {
    /// Ring pages granted to dom0 and a port unbound for it; nothing written.
    pub fn new(xen: &'x SimXen, events: &'x EventChannels<'x, SimXen>) -> Self {
        Self::with_addressing(xen, events, Addressing::Grants)
    }

    /// As [`Self::new`], naming pages as `addressing` says: grants, or
    /// frames (no grant is made then).
    pub fn with_addressing(xen: &'x SimXen, events: &'x EventChannels<'x, SimXen>, addressing: Addressing) -> Self {
        let memory = xen.grants().memory();
        let (transmit_page, receive_page) = (memory.allocate(1).unwrap(), memory.allocate(1).unwrap());
        let mut frontend = Self {
            transmit_ring_reference: 0,
            receive_ring_reference: 0,
            transmit: GuestRing::new(memory, transmit_page.frame()),
            receive: GuestRing::new(memory, receive_page.frame()),
            port: events.alloc_unbound(BACKEND_DOMAIN).unwrap(),
            store: Xenstore::new(events, xen.xenstore_ring(), XENSTORE_PORT, SimXen::clock()),
            grants: GrantTable::new(xen.grants().current_entries()),
            addressing,
            xen,
            events,
            receive_buffers: BTreeMap::new(),
            transmit_grants: Vec::new(),
            next_receive_id: 0,
            next_transmit_id: 0,
        };
        frontend.transmit_ring_reference = frontend.reference(transmit_page.frame(), false);
        frontend.receive_ring_reference = frontend.reference(receive_page.frame(), false);
        frontend
    }

    /// What the backend is told for the page at `frame`: a grant to dom0,
    /// or the frame itself.
    pub fn reference(&mut self, frame: u64, readonly: bool) -> GrantRef {
        match self.addressing {
            Addressing::Grants => self.grants.grant(BACKEND_DOMAIN, frame, readonly).unwrap(),
            Addressing::Identity => GrantRef::try_from(frame).unwrap(),
        }
    }

    pub fn memory(&self) -> &'x SimMemory {
        self.xen.grants().memory()
    }

    /// The keys a well-behaved frontend writes (with checksum offload off,
    /// so that received frames arrive as injected).
    pub fn keys(&self) -> BTreeMap<String, String> {
        let keys = [
            ("tx-ring-ref", self.transmit_ring_reference.to_string()),
            ("rx-ring-ref", self.receive_ring_reference.to_string()),
            ("event-channel", self.port.to_string()),
            ("request-rx-copy", "1".to_string()),
            ("feature-rx-notify", "1".to_string()),
            ("feature-sg", "1".to_string()),
            ("feature-no-csum-offload", "1".to_string()),
        ];
        keys.into_iter().map(|(key, value)| (key.to_string(), value)).collect()
    }

    /// Writes `keys` in one transaction, then `state` = Connected.
    pub fn connect_with(&mut self, keys: &BTreeMap<String, String>) {
        self.store
            .transaction(4, |transaction| {
                keys.iter().try_for_each(|(key, value)| transaction.write(&format!("{DEVICE}/{key}"), value))
            })
            .unwrap();
        self.set_state(XenbusState::Connected);
    }

    /// The well-behaved handshake.
    pub fn connect(&mut self) {
        let keys = self.keys();
        self.connect_with(&keys);
    }

    pub fn set_state(&mut self, state: XenbusState) {
        self.store.write(&format!("{DEVICE}/state"), &state.number().to_string()).unwrap();
    }

    /// What dom0 wrote at `key` of the backend directory.
    pub fn backend_value(&mut self, key: &str) -> Option<String> {
        let backend = self.store.read(&format!("{DEVICE}/backend")).ok()?;
        self.store.read(&format!("{backend}/{key}")).ok()
    }

    pub fn notify(&self) {
        self.events.notify(self.port).unwrap();
    }

    /// Whether the backend raised the port since the last look (and clears it).
    pub fn take_notification(&self) -> bool {
        self.events.take_pending(self.port)
    }

    /// Sends `slots` as published requests, notifying if the ring asks;
    /// returns the data slots' ids.
    pub fn send(&mut self, slots: &[Slot]) -> Vec<u16> {
        let ids = slots.iter().filter_map(|slot| self.push_slot(slot)).collect();
        if self.transmit.publish(self.memory()) {
            self.notify();
        }
        ids
    }

    /// Sends a frame as page-sized slots (the first carrying the whole size).
    pub fn send_frame(&mut self, frame: &[u8]) -> Vec<u16> {
        let chunks: Vec<&[u8]> = frame.chunks(PAGE_SIZE).collect();
        let slots: Vec<Slot> = chunks
            .iter()
            .enumerate()
            .map(|(index, chunk)| {
                let flags = if index + 1 < chunks.len() { NETTXF_MORE_DATA } else { 0 };
                let size = if index == 0 { frame.len() as u16 } else { chunk.len() as u16 };
                Slot::Data { bytes: chunk.to_vec(), offset: 0, size, flags }
            })
            .collect();
        self.send(&slots)
    }

    fn push_slot(&mut self, slot: &Slot) -> Option<u16> {
        match slot {
            Slot::Data { bytes, offset, size, flags } => {
                let gref = self.page_with(bytes, usize::from(*offset), true);
                self.transmit_grants.push(gref);
                let id = self.next_transmit_id;
                self.next_transmit_id = self.next_transmit_id.wrapping_add(1);
                let request = TxRequest { gref, offset: *offset, flags: *flags, id, size: *size };
                self.transmit.push(self.memory(), request.encode());
                Some(id)
            }
            Slot::Extra(words) => {
                self.transmit.push(self.memory(), *words);
                None
            }
        }
    }

    /// A fresh page holding `bytes` at `offset`, granted to dom0 (or named
    /// by its frame).
    pub fn page_with(&mut self, bytes: &[u8], offset: usize, readonly: bool) -> GrantRef {
        let page = self.memory().allocate(1).unwrap();
        self.memory().write(page.frame(), offset, bytes).unwrap();
        self.reference(page.frame(), readonly)
    }

    /// Posts `count` fresh writable buffers; returns their ids.
    pub fn post_receive_buffers(&mut self, count: usize) -> Vec<u16> {
        let ids = (0..count).map(|_| self.push_receive_buffer(false)).collect();
        self.publish_receive();
        ids
    }

    /// Pushes one fresh buffer (read-only if asked), unpublished.
    pub fn push_receive_buffer(&mut self, readonly: bool) -> u16 {
        let page = self.memory().allocate(1).unwrap();
        let gref = self.reference(page.frame(), readonly);
        let id = self.next_receive_id;
        self.next_receive_id = self.next_receive_id.wrapping_add(1);
        self.receive_buffers.insert(id, (gref, page.frame()));
        self.receive.push(self.memory(), RxRequest { id, gref }.encode());
        id
    }

    /// Publishes the receive ring, notifying if it asks.
    pub fn publish_receive(&mut self) {
        if self.receive.publish(self.memory()) {
            self.notify();
        }
    }

    pub fn transmit_responses(&mut self) -> Vec<TxResponse> {
        core::iter::from_fn(|| self.transmit.take(self.memory())).map(TxResponse::decode).collect()
    }

    pub fn receive_responses(&mut self) -> Vec<RxResponse> {
        core::iter::from_fn(|| self.receive.take(self.memory())).map(RxResponse::decode).collect()
    }

    /// The bytes of receive buffer `id` the response describes.
    pub fn buffer_bytes(&self, response: &RxResponse) -> Vec<u8> {
        let (_, frame) = self.receive_buffers[&response.id];
        let mut bytes = std::vec![0; response.status as usize];
        self.memory().read(frame, usize::from(response.offset), &mut bytes).unwrap();
        bytes
    }

    /// Received frames with their first slot's flags (less
    /// `NETRXF_more_data`), joined over `NETRXF_more_data`.
    pub fn receive_frames(&mut self) -> Vec<(Vec<u8>, u16)> {
        let mut frames = Vec::new();
        let mut current: Option<(Vec<u8>, u16)> = None;
        for response in self.receive_responses() {
            let (bytes, _) = current.get_or_insert_with(|| (Vec::new(), response.flags & !NETRXF_MORE_DATA));
            bytes.extend(self.buffer_bytes(&response));
            if response.flags & NETRXF_MORE_DATA == 0 {
                frames.extend(current.take());
            }
        }
        frames
    }

    /// Tries to revoke a grant.
    pub fn revoke(&mut self, reference: GrantRef) -> Result<(), RevokeError> {
        self.grants.revoke(reference)
    }
}
