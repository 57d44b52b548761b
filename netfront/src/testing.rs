//! Test support: netfront connected to the simulated netback, driven step
//! by step (feature `test-utils`). The integration tests and the fuzz target use the
//! same rig, so both exercise the real driver against the same backend.

extern crate std;

use crate::{Netfront, NetfrontConfig};
use core::cell::RefCell;
use dma::sim::SimPageSource;
use dma::{BackendTrust, GrantDma};
use smoltcp::phy::{Device, RxToken, TxToken};
use smoltcp::time::Instant;
use std::vec::Vec;
use xen_pv::event_channel::EventChannels;
use xen_pv::grant_table::GrantTable;
use xen_pv::sim::netback::{Hostility, Lasting, NetbackOptions, Ring, SimNetback, XenbusState};
use xen_pv::sim::{SimXen, XENSTORE_PORT};
use xen_pv::xenstore::Xenstore;

/// Small pools keep the simulation quick.
pub const CONFIG: NetfrontConfig = NetfrontConfig { rx_buffers: 32, tx_buffers: 32 };

/// One grant frame (512 entries) holds the rings, both pools and the
/// bounce pages of [`BackendTrust::Untrusted`] tests; it can grow.
const RIG_GRANT_FRAMES: u32 = 1;

/// Guest RAM for the rig: rings, pools, bounce pages and per-packet
/// buffers, with room to spare (a small domain is quick to build, which the
/// fuzz target does for every input).
const RIG_MEMORY_PAGES: usize = 256;

/// The pages of one idle link: two rings and both pools.
const LINK_PAGES: usize = 2 + CONFIG.rx_buffers + CONFIG.tx_buffers;

/// Event-loop rounds a recovering link gets: enough for every response the
/// backend held back (at most 4 steps) to come out, a reconnect, and the
/// handshake's settling.
const RECOVERY_ROUNDS: usize = 40;

/// Event-loop rounds a frame gets to cross a healthy link.
const DELIVERY_ROUNDS: usize = 4;

/// Both ends of one vif.
pub struct Rig<'x, 'a> {
    /// The simulated hypervisor.
    pub xen: &'x SimXen,
    /// The simulated backend.
    pub netback: SimNetback<'x>,
    /// The guest's xenstore client.
    pub store: Xenstore<'a, SimXen>,
    /// The frontend under test.
    pub netfront: Netfront<'a, SimXen, &'a RefCell<GrantTable<'x>>, &'a SimPageSource<'x>>,
    /// The guest RAM the frontend's DMA layer takes its pages from.
    pub pages: &'a SimPageSource<'x>,
}

/// Runs `test` with a connected frontend and backend.
pub fn with_link(trust: BackendTrust, test: impl FnOnce(&mut Rig<'_, '_>)) {
    with_link_in(RIG_MEMORY_PAGES, trust, test);
}

/// As [`with_link`], in a guest of `memory_pages` pages.
pub fn with_link_in(memory_pages: usize, trust: BackendTrust, test: impl FnOnce(&mut Rig<'_, '_>)) {
    with_backend(memory_pages, trust, NetbackOptions::default(), test);
}

/// As [`with_link_in`], with a backend configured by `options`.
pub fn with_backend(
    memory_pages: usize,
    trust: BackendTrust,
    options: NetbackOptions,
    test: impl FnOnce(&mut Rig<'_, '_>),
) {
    let xen = SimXen::with_memory_pages(RIG_GRANT_FRAMES, memory_pages);
    let netback = SimNetback::new(&xen, options);
    let events = EventChannels::new(&xen, xen.shared_info());
    let store = Xenstore::new(&events, xen.xenstore_ring(), XENSTORE_PORT, SimXen::clock());
    let table = RefCell::new(GrantTable::<()>::new(xen.grants().current_entries()));
    let pages = SimPageSource::new(xen.grants());
    let dma = GrantDma::new(&table, &pages, 0, trust).expect("DMA set-up");
    let netfront = Netfront::new(&events, &dma, CONFIG);
    let mut rig = Rig { xen: &xen, netback, store, netfront, pages: &pages };
    rig.netfront.watch(&mut rig.store).expect("watch device/vif");
    let _ = rig.netfront.poll_control(&mut rig.store);
    rig.settle();
    assert!(rig.netfront.is_up(), "handshake: {:?}", rig.netback.errors());
    test(&mut rig);
}

impl Rig<'_, '_> {
    /// Lets both sides run until nothing changes (bounded).
    pub fn settle(&mut self) {
        for _ in 0..20 {
            self.control();
            self.netback.step();
            self.netfront.poll_rings();
            self.netback.step();
        }
    }

    /// Queues a frame through smoltcp's token API; false if there was no room.
    pub fn send(&mut self, frame: &[u8]) -> bool {
        let Some(token) = self.netfront.transmit(Instant::ZERO) else { return false };
        token.consume(frame.len(), |buffer| buffer.copy_from_slice(frame));
        true
    }

    /// The next received frame, through smoltcp's token API.
    pub fn receive(&mut self) -> Option<Vec<u8>> {
        let (token, _) = self.netfront.receive(Instant::ZERO)?;
        Some(token.consume(|bytes| bytes.to_vec()))
    }

    /// One round of the kernel's event loop (`kernel/src/net.rs`): the
    /// backend runs, the stack takes every frame, the rings are tended, and
    /// the handshake moves on (which tears down a link the backend broke).
    /// Returns the frames received.
    pub fn turn(&mut self) -> Vec<Vec<u8>> {
        let received = self.receive_all();
        self.netfront.poll_rings();
        self.control();
        received
    }

    /// Runs the frontend's control half when the kernel's loop does: a
    /// watch event of netfront's arrived, or the data path found a
    /// violation. (Polling it more often would hide a missed watch.)
    pub fn control(&mut self) {
        let mut changed = false;
        while let Ok(Some(event)) = self.store.next_watch_event() {
            changed |= event.token == crate::WATCH_TOKEN;
        }
        if changed || self.netfront.broken_link() {
            let _ = self.netfront.poll_control(&mut self.store);
        }
    }

    /// After any script: once the backend behaves, the event loop brings
    /// the link back (responses the backend mangled before it behaved may
    /// still be on the ring and cost one reconnect), and then a frame
    /// injected reaches the stack (panics otherwise).
    pub fn assert_recovers(&mut self) {
        self.netback.behave();
        for _ in 0..RECOVERY_ROUNDS {
            self.turn();
        }
        assert!(self.netfront.is_up(), "reconnected after the script: {:?}", self.netback.errors());
        assert_eq!(self.netfront.retired_count(), 0, "every piece of the closed links came back");
        assert_eq!(self.pages.outstanding_pages(), LINK_PAGES, "no page leaked: just the live link's");
        let probe = frame(321, 77);
        assert!(self.netback.inject(&probe), "the backend takes the probe");
        let mut received = Vec::new();
        for _ in 0..DELIVERY_ROUNDS {
            received.extend(self.turn());
        }
        assert!(
            received.contains(&probe),
            "frames flow after the script: {:?} {:?} queued {}",
            self.netfront.counters(),
            self.netback.errors(),
            self.netback.queued_for_guest()
        );
    }

    /// Steps the backend and takes every frame it delivered.
    pub fn receive_all(&mut self) -> Vec<Vec<u8>> {
        self.netback.step();
        self.netfront.take_notification();
        std::iter::from_fn(|| self.receive()).collect()
    }
}

/// A test frame of `length` bytes addressed to the guest, with a local
/// experimental EtherType (no checksum for anyone to complete).
pub fn frame(length: usize, seed: u8) -> Vec<u8> {
    let mut frame: Vec<u8> = (0..length).map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    frame[..6].copy_from_slice(&[0x00, 0x16, 0x3e, 0x00, 0x00, 0x01]);
    frame[12..14].copy_from_slice(&[0x88, 0xb5]);
    frame
}

/// Runs a fuzz input as a script: each byte pair is one action (the first
/// byte picks it, the second scales its size), at most 200 of them, then
/// checks that the link recovers. The fuzz target and the regression test
/// of saved inputs share it.
pub fn run_script(rig: &mut Rig<'_, '_>, data: &[u8]) {
    for pair in data.chunks(2).take(200) {
        let size = usize::from(pair.get(1).copied().unwrap_or(0)) * 36;
        act(rig, pair[0], size);
    }
    rig.assert_recovers();
}

/// One step of a random script, from a byte.
pub fn act(rig: &mut Rig<'_, '_>, byte: u8, size: usize) {
    match byte % 12 {
        0 => drop(rig.netback.inject(&frame(size.clamp(14, 9000), byte))),
        1 => drop(rig.send(&frame(size.clamp(14, 1514), byte))),
        2 => drop(rig.receive_all()),
        3 => rig.netback.misbehave(Hostility::UnknownId(Ring::Receive), Lasting::Once),
        4 => rig.netback.misbehave(Hostility::DuplicateId(Ring::Transmit), Lasting::Once),
        5 => rig.netback.misbehave(Hostility::ReceiveStatus((size as i16).wrapping_mul(7)), Lasting::Once),
        6 => rig.netback.misbehave(Hostility::ReceiveOffsetPastPageEnd, Lasting::Once),
        7 => rig.netback.misbehave(Hostility::ProducerAhead(Ring::Transmit, u32::from(byte)), Lasting::Once),
        8 => rig.netback.misbehave(Hostility::Delay(u32::from(byte % 5)), Lasting::Once),
        9 => rig.netback.flap_state(XenbusState::Closing),
        10 => rig.netback.behave(),
        _ => rig.settle(),
    }
    rig.netback.step();
    rig.netfront.poll_rings();
    rig.control();
}
