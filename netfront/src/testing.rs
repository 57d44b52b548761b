//! Test support: netfront connected to the simulated netback, driven step
//! by step (feature `test-utils`), for tests of the driver itself: its
//! handshake, its rings and its defences, one call at a time. It is not the
//! event loop: the loop the guest runs is `runtime::run`, which
//! `runtime::testing` drives on the same simulation, and the netfront fuzz
//! target plays its scripts there (`runtime::testing::backend_script`).
//!
//! A script ([`run_input`]) is a list of actions, two bytes each (the
//! first picks the action, the second scales its size), run against a
//! connected link, after which the link must recover ([`Rig::assert_recovers`]).
//! An input that starts with [`EXTENDED_MARKER`] takes its next byte as the
//! vif's configuration ([`setup_for`]: bounce buffers, an MTU up to 9000,
//! how received checksums look, notification rules) and has four more
//! actions ([`act_extended`]): long transmit stalls, transmit tokens taken
//! on the receive path, extra-info and flag-mangled receive slots, IPv4
//! TCP/UDP frames whose checksums the backend may leave partial. Any other
//! input is read as before the marker existed (the marker, 0xfb, used to be
//! a settle), so the saved inputs keep their meaning. The same inputs run
//! on the production loop read the same way.
//!
//! The rig runs over either of the DMA layer's translations, chosen by the
//! simulated backend's [`Addressing`]: the grant table (what the guest has
//! on Xen; the backend maps grants) or the identity translation of bare
//! metal (the backend reaches frames directly, and nothing can be
//! revoked). netfront is the same code over both; [`ADDRESSINGS`] lists
//! them for tests that run over each.
//!
//! Never: hide a frontend failure (every check panics), or let the rig
//! itself depend on what the input says beyond the documented actions.

extern crate std;

use crate::{Netfront, NetfrontConfig};
use core::cell::RefCell;
use dma::sim::SimPageSource;
use dma::{BackendTrust, BounceCapacity, BusPage, DmaDevice, IdentityTranslation, Translation};
use smoltcp::phy::{Device, RxToken, TxToken};
use smoltcp::time::Instant;
use std::vec::Vec;
use xen_pv::abi::DomainId;
use xen_pv::abi::netif::{NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED, NETRXF_EXTRA_INFO, NETRXF_MORE_DATA};
use xen_pv::event_channel::EventChannels;
use xen_pv::grant_table::{GrantError, GrantTable, RevokeError};
use xen_pv::xenstore::Xenstore;
pub use xen_sim::netback::Addressing;
use xen_sim::netback::{GsoFault, Hostility, Lasting, NetbackOptions, ReceiveChecksum, Ring, SimNetback, XenbusState};
use xen_sim::{SimXen, XENSTORE_PORT};

/// Small pools keep the simulation quick.
pub const CONFIG: NetfrontConfig =
    NetfrontConfig { rx_buffers: 32, tx_buffers: 32, large_segments: true, tx_large_segments: true };

/// One grant frame (512 entries) holds the rings, both pools and the
/// bounce pages of [`BackendTrust::Untrusted`] tests; it can grow.
const RIG_GRANT_FRAMES: u32 = 1;

/// Guest RAM for the rig: rings, pools, bounce pages and per-packet
/// buffers, with room to spare (a small domain is quick to build, which the
/// fuzz target does for every input).
const RIG_MEMORY_PAGES: usize = 256;

/// Event-loop rounds a recovering link gets: enough for every response the
/// backend held back (at most 4 steps) to come out, a reconnect, and the
/// handshake's settling.
const RECOVERY_ROUNDS: usize = 40;

/// Event-loop rounds a frame gets to cross a healthy link.
const DELIVERY_ROUNDS: usize = 4;

/// Both addressings, for tests that run over each: grants first.
pub const ADDRESSINGS: [Addressing; 2] = [Addressing::Grants, Addressing::Identity];

/// The rig's DMA translation, the one the backend's [`Addressing`] reads:
/// the guest's grant table, or the identity translation. (One type for
/// both, so that every test body serves both; netfront itself is generic
/// over `dma::Translation` and knows neither.)
pub enum RigTranslation<'a, 'x> {
    /// The grant table: a bus page is a grant reference to the backend.
    Grants(&'a RefCell<GrantTable<'x>>),
    /// Bus address = physical address: a bus page is the frame.
    Identity(IdentityTranslation),
}

impl Translation for RigTranslation<'_, '_> {
    fn translate_run(
        &self,
        domain: DomainId,
        first_frame: u64,
        readonly: bool,
        bus_pages: &mut [BusPage],
    ) -> Result<(), GrantError> {
        match self {
            RigTranslation::Grants(table) => table.translate_run(domain, first_frame, readonly, bus_pages),
            RigTranslation::Identity(identity) => identity.translate_run(domain, first_frame, readonly, bus_pages),
        }
    }

    fn revoke(&self, bus_page: BusPage) -> Result<(), RevokeError> {
        match self {
            RigTranslation::Grants(table) => table.revoke(bus_page),
            RigTranslation::Identity(identity) => identity.revoke(bus_page),
        }
    }
}

/// Both ends of one vif.
pub struct Rig<'x, 'a> {
    /// The simulated hypervisor.
    pub xen: &'x SimXen,
    /// The simulated backend.
    pub netback: SimNetback<'x>,
    /// The guest's xenstore client.
    pub store: Xenstore<'a, SimXen>,
    /// The frontend under test.
    pub netfront: Netfront<'a, SimXen, RigTranslation<'a, 'x>, &'a SimPageSource<'x>>,
    /// How the backend reads the frontend's references, and so which
    /// translation the frontend's DMA device uses.
    pub addressing: Addressing,
    /// The guest RAM the frontend's DMA layer takes its pages from.
    pub pages: &'a SimPageSource<'x>,
    /// The pages the guest holds with the link up and idle (rings, pools,
    /// bounce pages), counted once the handshake settled: what it must hold
    /// again after any recovery.
    pub idle_pages: usize,
}

/// Runs `test` with a connected frontend and backend, over grants.
pub fn with_link(trust: BackendTrust, test: impl FnOnce(&mut Rig<'_, '_>)) {
    with_link_in(RIG_MEMORY_PAGES, trust, test);
}

/// As [`with_link`], over `addressing`.
pub fn with_link_over(addressing: Addressing, trust: BackendTrust, test: impl FnOnce(&mut Rig<'_, '_>)) {
    let options = NetbackOptions { addressing, ..NetbackOptions::default() };
    with_backend(RIG_MEMORY_PAGES, trust, options, test);
}

/// Runs `test` over each of [`ADDRESSINGS`] in turn, each time with a
/// fresh connected link (as [`with_link_over`]).
pub fn with_each_link(trust: BackendTrust, mut test: impl FnMut(&mut Rig<'_, '_>)) {
    for addressing in ADDRESSINGS {
        with_link_over(addressing, trust, &mut test);
    }
}

/// As [`with_backend`], over each of [`ADDRESSINGS`] in turn (whatever
/// `options.addressing` says).
pub fn with_each_backend(
    memory_pages: usize,
    trust: BackendTrust,
    options: NetbackOptions,
    mut test: impl FnMut(&mut Rig<'_, '_>),
) {
    for addressing in ADDRESSINGS {
        let options = NetbackOptions { addressing, ..options.clone() };
        with_backend(memory_pages, trust, options, &mut test);
    }
}

/// As [`with_link`], in a guest of `memory_pages` pages.
pub fn with_link_in(memory_pages: usize, trust: BackendTrust, test: impl FnOnce(&mut Rig<'_, '_>)) {
    with_backend(memory_pages, trust, NetbackOptions::default(), test);
}

/// As [`with_link_in`], with a backend configured by `options`; the
/// frontend's translation follows `options.addressing`.
pub fn with_backend(
    memory_pages: usize,
    trust: BackendTrust,
    options: NetbackOptions,
    test: impl FnOnce(&mut Rig<'_, '_>),
) {
    with_config(memory_pages, trust, options, CONFIG, test);
}

/// As [`with_backend`], with the frontend configured by `config`.
pub fn with_config(
    memory_pages: usize,
    trust: BackendTrust,
    options: NetbackOptions,
    config: NetfrontConfig,
    test: impl FnOnce(&mut Rig<'_, '_>),
) {
    let addressing = options.addressing;
    // Shown with a failing test's output: which translation it ran over.
    std::eprintln!("netfront rig: {addressing:?} addressing, {trust:?}");
    let xen = SimXen::with_memory_pages(RIG_GRANT_FRAMES, memory_pages);
    let netback = SimNetback::new(&xen, options);
    let events = EventChannels::new(&xen, xen.shared_info());
    let store = Xenstore::new(&events, xen.xenstore_ring(), XENSTORE_PORT, SimXen::clock());
    let table = RefCell::new(GrantTable::<()>::new(xen.grants().current_entries()));
    let translation = match addressing {
        Addressing::Grants => RigTranslation::Grants(&table),
        Addressing::Identity => RigTranslation::Identity(IdentityTranslation),
    };
    let pages = SimPageSource::new(xen.grants());
    let dma = DmaDevice::new(translation, &pages, 0, trust).expect("DMA set-up");
    let netfront = Netfront::new(&events, dma, true, config);
    let mut rig = Rig { xen: &xen, netback, store, netfront, addressing, pages: &pages, idle_pages: 0 };
    crate::watch_vifs(&mut rig.store).expect("watch device/vif");
    let _ = rig.netfront.poll_control(&mut rig.store);
    rig.settle();
    assert!(rig.netfront.is_up(), "handshake: {:?}", rig.netback.errors());
    rig.idle_pages = rig.pages.outstanding_pages();
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

    /// The largest frame the link carries: its MTU and the Ethernet header.
    pub fn max_frame(&self) -> usize {
        usize::from(self.netfront.device().map_or(1500, |device| device.mtu)) + 14
    }

    /// The next received frame, through smoltcp's token API.
    pub fn receive(&mut self) -> Option<Vec<u8>> {
        let (token, _) = self.netfront.receive(Instant::ZERO)?;
        Some(token.consume(|bytes| bytes.to_vec()))
    }

    /// One step of the driver: the backend runs, every frame is taken, the
    /// rings are tended, and the handshake moves on (which tears down a link
    /// the backend broke). Returns the frames received.
    pub fn turn(&mut self) -> Vec<Vec<u8>> {
        let received = self.receive_all();
        self.netfront.poll_rings();
        self.control();
        received
    }

    /// Runs the frontend's control half when `runtime::run` does: a watch
    /// event of netfront's arrived, or the data path found a violation.
    /// (Polling it more often would hide a missed watch.)
    pub fn control(&mut self) {
        let mut changed = false;
        while let Ok(Some(event)) = self.store.next_watch_event() {
            if event.token == crate::WATCH_TOKEN {
                self.netfront.watch_event(&event.path);
                changed = true;
            }
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
        assert_eq!(self.pages.outstanding_pages(), self.idle_pages, "no page leaked: just the live link's");
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

/// The Ethernet addresses of [`ip_frame`]'s frames: the guest's MAC, then
/// the sender's.
const ETHERNET_ADDRESSES: [u8; 12] = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

/// An IPv4 frame of `length` bytes (at least 14) to the guest carrying TCP
/// (`tcp`) or UDP with correct checksums, its payload a pattern from
/// `seed`; cut short if `length` leaves no room for the headers.
pub fn ip_frame(length: usize, tcp: bool, seed: u8) -> Vec<u8> {
    let length = length.max(14);
    let mut frame = frame(length, seed);
    frame[..12].copy_from_slice(&ETHERNET_ADDRESSES);
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    let transport_header = if tcp { 20 } else { 8 };
    if length < 14 + 20 + transport_header {
        return frame;
    }
    let ip_length = (length - 14).min(usize::from(u16::MAX)) as u16;
    let ip = &mut frame[14..34];
    ip.copy_from_slice(&[0x45, 0, 0, 0, 0, 1, 0, 0, 64, if tcp { 6 } else { 17 }, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1]);
    ip[2..4].copy_from_slice(&ip_length.to_be_bytes());
    let header_sum = internet_checksum(&frame[14..34], 0);
    frame[24..26].copy_from_slice(&header_sum.to_be_bytes());
    let segment_end = 14 + usize::from(ip_length);
    let pseudo = [10, 0, 0, 2, 10, 0, 0, 1, 0, if tcp { 6 } else { 17 }];
    fill_transport(&mut frame[34..segment_end], tcp, &pseudo);
    frame
}

/// Writes a TCP (`tcp`) or UDP header at the start of `segment` (ports
/// 12345 to 80) and its checksum over the pseudo-header's addresses and
/// protocol `pseudo` (an even number of bytes; the segment's length is
/// added here) and the segment.
fn fill_transport(segment: &mut [u8], tcp: bool, pseudo: &[u8]) {
    let segment_length = segment.len() as u16;
    segment[..4].copy_from_slice(&[0x30, 0x39, 0x00, 0x50]);
    if tcp {
        segment[12] = 5 << 4; // data offset: 20 bytes
        segment[16..18].fill(0);
    } else {
        segment[4..6].copy_from_slice(&segment_length.to_be_bytes());
        segment[6..8].fill(0);
    }
    let field = if tcp { 16 } else { 6 };
    let pseudo_sum = pseudo.chunks(2).map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]]))).sum::<u32>()
        + u32::from(segment_length);
    let mut sum = internet_checksum(segment, pseudo_sum);
    if !tcp && sum == 0 {
        sum = 0xffff;
    }
    segment[field..field + 2].copy_from_slice(&sum.to_be_bytes());
}

/// The IPv6 addresses of [`ipv6_frame`]'s frames: the sender's (fd00::2),
/// then the guest's (fd00::216:3eff:fe00:1, from its MAC).
pub const IPV6_ADDRESSES: [[u8; 16]; 2] = [
    [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
    [0xfd, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x16, 0x3e, 0xff, 0xfe, 0, 0, 1],
];

/// An IPv6 frame of `length` bytes (at least 14) to the guest carrying TCP
/// (`tcp`) or UDP with correct checksums, behind a hop-by-hop options
/// header of 8 bytes (padding only) if `hop_by_hop`, its payload a pattern
/// from `seed`; cut short if `length` leaves no room for the headers, and
/// its IPv6 payload held to 65 535 bytes.
pub fn ipv6_frame(length: usize, tcp: bool, hop_by_hop: bool, seed: u8) -> Vec<u8> {
    let length = length.max(14);
    let mut frame = frame(length, seed);
    frame[..12].copy_from_slice(&ETHERNET_ADDRESSES);
    frame[12..14].copy_from_slice(&[0x86, 0xdd]);
    let protocol = if tcp { 6 } else { 17 };
    let extension = if hop_by_hop { 8 } else { 0 };
    let transport_header = if tcp { 20 } else { 8 };
    if length < 14 + 40 + extension + transport_header {
        return frame;
    }
    let payload_length = (length - 54).min(usize::from(u16::MAX)) as u16;
    frame.truncate(54 + usize::from(payload_length));
    let header = &mut frame[14..54];
    header[..4].copy_from_slice(&[0x60, 0, 0, 0]);
    header[4..6].copy_from_slice(&payload_length.to_be_bytes());
    header[6..8].copy_from_slice(&[if hop_by_hop { 0 } else { protocol }, 64]);
    header[8..24].copy_from_slice(&IPV6_ADDRESSES[0]);
    header[24..40].copy_from_slice(&IPV6_ADDRESSES[1]);
    if hop_by_hop {
        // Next header, length 0 (8 bytes), then a PadN option of 4 bytes.
        frame[54..62].copy_from_slice(&[protocol, 0, 1, 4, 0, 0, 0, 0]);
    }
    let mut pseudo = IPV6_ADDRESSES.as_flattened().to_vec();
    pseudo.extend_from_slice(&[0, protocol]);
    fill_transport(&mut frame[54 + extension..], tcp, &pseudo);
    frame
}

/// The Internet checksum of `bytes`, starting from `sum`.
fn internet_checksum(bytes: &[u8], mut sum: u32) -> u16 {
    for pair in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Runs a fuzz input over grants: see the module documentation. The
/// regression test of saved inputs uses it.
pub fn run_input(data: &[u8]) {
    run_input_over(Addressing::Grants, data);
}

/// As [`run_input`], over `addressing` (the input's configuration byte
/// does not choose it: the production loop the same inputs run on has
/// grants only).
pub fn run_input_over(addressing: Addressing, data: &[u8]) {
    match data {
        [EXTENDED_MARKER, selector, script @ ..] => {
            let setup = setup_for(*selector);
            let options = NetbackOptions { addressing, ..setup.options };
            with_backend(setup.memory_pages, setup.trust, options, |rig| run_extended_script(rig, script));
        }
        _ => with_link_over(addressing, BackendTrust::Trusted, |rig| run_script(rig, data)),
    }
}

/// The first byte of an input with a configuration and the extended
/// actions.
pub const EXTENDED_MARKER: u8 = 0xfb;

/// A vif's configuration for an extended input.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Whether buffers are bounced.
    pub trust: BackendTrust,
    /// The simulated backend's options.
    pub options: NetbackOptions,
    /// Guest RAM, in pages.
    pub memory_pages: usize,
}

/// The configuration a selector byte picks: bit 0, bounce buffers
/// (`BackendTrust::Untrusted`); bits 1 and 2, the MTU (the default 1500,
/// 9000, 4000 or an explicit 1500); bits 3 and 4, how received checksums
/// look ([`ReceiveChecksum`]: as dom0's traffic, partial even though the
/// frontend asked for complete ones, validated, unflagged); bit 5, a
/// backend that serves its rings without waiting for notifications. The
/// other bits are kept for later.
pub fn setup_for(selector: u8) -> Setup {
    let bounce = BounceCapacity { read_only_pages: 160, writable_pages: 160 };
    let trust = if selector & 1 != 0 { BackendTrust::Untrusted(bounce) } else { BackendTrust::Trusted };
    let mtu = [None, Some(9000), Some(4000), Some(1500)][usize::from((selector >> 1) & 3)];
    let receive_checksum = [
        ReceiveChecksum::PartialLikeDom0,
        ReceiveChecksum::PartialRegardless,
        ReceiveChecksum::Validated,
        ReceiveChecksum::Unflagged,
    ][usize::from((selector >> 3) & 3)];
    let options = NetbackOptions {
        mtu,
        receive_checksum,
        notifications_required: selector & 0x20 == 0,
        ..NetbackOptions::default()
    };
    Setup { trust, options, memory_pages: 1024 }
}

/// Runs an extended script (after the marker and the configuration byte):
/// byte pairs as in [`run_script`], each read by [`act_extended`].
pub fn run_extended_script(rig: &mut Rig<'_, '_>, data: &[u8]) {
    for pair in data.chunks(2).take(200) {
        let size = usize::from(pair.get(1).copied().unwrap_or(0)) * 36;
        act_extended(rig, pair[0], size);
    }
    rig.assert_recovers();
}

/// One step of an extended script: `byte % 16` picks the action; the first
/// twelve are [`act`]'s, then:
/// - 12: a transmit stall: the stack sends for `1 + size % 64` rounds of
///   the loop while the backend does not run at all;
/// - 13: frames arrive and the stack answers each through the transmit
///   token handed out with it, with a frame of about `size` bytes (tokens
///   that promise nothing: the link must check for room itself);
/// - 14: the next received frame (about `size` bytes) comes with extra-info
///   slots (a chain of 1 to 4; with bit 7 of `byte` set too, a broken GSO
///   slot) or, if bit 4 of `byte` is clear, with stray `NETRXF_*` flags
///   taken from `size`;
/// - 15: an IPv4 TCP or UDP frame of about `size` bytes arrives, its
///   headers sometimes broken (the backend makes a good one's checksum
///   partial when the configuration says so).
pub fn act_extended(rig: &mut Rig<'_, '_>, byte: u8, size: usize) {
    let action = byte % 16;
    match action {
        12 => return stall_transmit(rig, byte, size),
        13 => transmit_on_the_receive_path(rig, byte, size),
        14 => {
            rig.netback.misbehave(receive_slot_hostility(byte, size), Lasting::Once);
            let _ = rig.netback.inject(&frame(size.clamp(14, 9000), byte));
        }
        15 => drop(rig.netback.inject(&mangled_ip_frame(byte, size))),
        _ => return act_as(rig, action, byte, size),
    }
    rig.netback.step();
    rig.netfront.poll_rings();
    rig.control();
}

/// Extended action 14's misbehaviour: extra-info slots (a chain of 1 to
/// 4), or, if bit 7 of `byte` is set too, a broken GSO slot
/// ([`GsoFault`], picked by `size`), or, if bit 4 of `byte` is clear, stray
/// `NETRXF_*` flags from `size`.
pub fn receive_slot_hostility(byte: u8, size: usize) -> Hostility {
    if byte & 0x90 == 0x90 {
        let faults = [
            GsoFault::OnAnyFrame,
            GsoFault::UnknownType,
            GsoFault::SizeZero,
            GsoFault::SizeHuge,
            GsoFault::TypeTcpv6,
            GsoFault::DuplicateType,
            GsoFault::ChainTooLong,
            GsoFault::MissingExtraSlot,
            GsoFault::NotOnFirstSlot,
            GsoFault::TooLong,
        ];
        Hostility::BadGso(faults[(size / 36) % faults.len()])
    } else if byte & 0x10 != 0 {
        Hostility::ReceiveExtraInfo(1 + (byte >> 5) % 4)
    } else {
        let flags = [NETRXF_EXTRA_INFO, NETRXF_MORE_DATA, NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED];
        Hostility::ReceiveFlags(flags[(size / 36) % 4] | flags[(size / 144) % 4])
    }
}

/// Extended action 15's frame: an IPv4 TCP or UDP frame of about `size`
/// bytes, its headers sometimes broken (by bits 5 to 7 of `byte`).
pub fn mangled_ip_frame(byte: u8, size: usize) -> Vec<u8> {
    let mut frame = ip_frame(size.clamp(14, 9000), byte & 0x10 != 0, byte);
    match (byte >> 5) & 7 {
        0 if frame.len() > 14 => frame[14] = 0x4f, // a header length past the data
        1 if frame.len() > 17 => frame[16..18].copy_from_slice(&[0xff, 0xff]), // a length past the frame
        2 if frame.len() > 21 => frame[20] = 0x20, // a fragment
        _ => {}
    }
    frame
}

/// Every input the fuzzer saved for the netfront target
/// (`fuzz/regressions/netfront_backend-*`), by file name, with its name;
/// there is at least one.
pub fn saved_inputs() -> Vec<(std::string::String, Vec<u8>)> {
    let inputs = xen_sim::regressions::saved_inputs("netfront_backend-");
    assert!(!inputs.is_empty(), "no saved netfront inputs in fuzz/regressions");
    inputs
}

/// The stack keeps sending (and the rings are tended) for `1 + size % 64`
/// rounds while the backend does not run.
fn stall_transmit(rig: &mut Rig<'_, '_>, byte: u8, size: usize) {
    let rounds = 1 + size / 36 % 64;
    let longest = rig.max_frame();
    for round in 0..rounds {
        let length = (60 + round * 997 + size) % longest;
        let _ = rig.send(&frame(length.max(14), byte.wrapping_add(round as u8)));
        rig.netfront.poll_rings();
        rig.control();
    }
}

/// Frames arrive; the stack answers each one through the transmit token
/// handed out with it.
fn transmit_on_the_receive_path(rig: &mut Rig<'_, '_>, byte: u8, size: usize) {
    for index in 0..1 + byte % 4 {
        let _ = rig.netback.inject(&frame(60 + usize::from(index) * 100, byte));
    }
    rig.netback.step();
    rig.netfront.take_notification();
    let reply = frame(size.clamp(14, rig.max_frame()), byte);
    for _ in 0..8 {
        let Some((received, transmit)) = rig.netfront.receive(Instant::ZERO) else { break };
        received.consume(|bytes| assert!(!bytes.is_empty(), "an empty frame handed to the stack"));
        transmit.consume(reply.len(), |buffer| buffer.copy_from_slice(&reply));
    }
}

/// Runs a fuzz input as a script: each byte pair is one action (the first
/// byte picks it, the second scales its size), at most 200 of them, then
/// checks that the link recovers.
pub fn run_script(rig: &mut Rig<'_, '_>, data: &[u8]) {
    for pair in data.chunks(2).take(200) {
        let size = usize::from(pair.get(1).copied().unwrap_or(0)) * 36;
        act(rig, pair[0], size);
    }
    rig.assert_recovers();
}

/// One step of a random script, from a byte: `byte % 12` picks the action
/// (inject a frame, send one, take frames, one of six misbehaviours, a
/// state flap, behave, settle), then the backend and the frontend run once.
pub fn act(rig: &mut Rig<'_, '_>, byte: u8, size: usize) {
    act_as(rig, byte % 12, byte, size);
}

/// Action `action` (0 to 11, see [`act`]), with `byte` seeding it.
fn act_as(rig: &mut Rig<'_, '_>, action: u8, byte: u8, size: usize) {
    match action {
        0 => drop(rig.netback.inject(&frame(size.clamp(14, 9000), byte))),
        1 => drop(rig.send(&frame(size.clamp(14, rig.max_frame()), byte))),
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
