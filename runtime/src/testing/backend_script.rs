//! The netfront fuzz target's driver on the production event loop: a
//! hostile netback script played against [`crate::run`], not against the
//! driver alone.
//!
//! An input reads as [`netfront::testing`] documents it (byte pairs, each
//! an action of the backend or of dom0 and a size; an input that starts
//! with [`EXTENDED_MARKER`] first picks the vif's configuration with its
//! next byte: bounce buffers, MTU, checksum style, notification rules), so
//! the inputs saved in `fuzz/regressions/` keep their meaning. The world
//! plays one action per wait of the guest's loop; what the old driver did
//! by hand ("send a frame", "take every frame") the production loop does
//! itself, so those actions become dom0 pinging the guest (the guest's
//! stack answers, which sends) and letting the loop run. A transmit stall
//! is the backend not running for a number of the loop's waits while dom0
//! keeps pinging. One action the driver rig cannot play: action 9 with a
//! size byte of 3 modulo 4 moves the vif to another backend domain
//! (detached, then attached again for domain 2, or back to dom0), instead
//! of flapping the backend's state; the runtime must make a new DMA device
//! for it and close the old one.
//!
//! After the script the backend behaves; then the link must come back
//! (the guest answers a ping again), and the guest must hold exactly the
//! pages it held with the link up and idle before the script (rings,
//! pools, bounce pages): nothing leaked, nothing left retired. Any failure
//! panics (a fuzz crash); so does a guest that does not recover within
//! [`RECOVERY_NS`] of simulated time.

extern crate std;

use super::{NoService, SimPlatform, World};
use crate::{NetConfig, RuntimeConfig, ShutdownRequest};
use dma::BackendTrust;
use dma::sim::SimPageSource;
use netfront::testing::{
    CONFIG, EXTENDED_MARKER, frame, ip_frame, mangled_ip_frame, receive_slot_hostility, setup_for,
};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Address,
    Ipv4Cidr, Ipv4Packet, Ipv4Repr,
};
use std::format;
use std::vec;
use std::vec::Vec;
use xen_pv::event_channel::EventChannels;
use xen_sim::SimXen;
use xen_sim::netback::{Attachment, Detach, Hostility, Lasting, NetbackOptions, Ring, SimNetback, XenbusState};
use xen_sim::xenstore::GUEST_HOME;

/// The guest's static address (the one [`ip_frame`]'s frames are sent to).
const GUEST: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
/// The pinging peer's address (the one [`ip_frame`]'s frames come from).
const PEER: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
/// The peer's MAC (the one [`ip_frame`]'s frames come from).
const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);
/// Simulated time the guest has to come back after the script.
pub const RECOVERY_NS: u64 = 60_000_000_000;
/// Most actions read from an input.
const MAX_ACTIONS: usize = 200;

/// Runs a fuzz input against the production loop (see the module
/// documentation); panics if the guest fails. Returns the backend domains
/// the vif had, in order.
pub fn run_input(data: &[u8]) -> Vec<u16> {
    let (setup, script) = match data {
        [EXTENDED_MARKER, selector, script @ ..] => (Some(setup_for(*selector)), script),
        _ => (None, data),
    };
    let extended = setup.is_some();
    let (memory_pages, trust, options) = match setup {
        Some(setup) => (setup.memory_pages, setup.trust, setup.options),
        None => (256, BackendTrust::Trusted, NetbackOptions::default()),
    };
    let actions: Vec<(u8, usize)> = script
        .chunks(2)
        .take(MAX_ACTIONS)
        .map(|pair| (pair[0], usize::from(pair.get(1).copied().unwrap_or(0)) * 36))
        .collect();
    let xen = SimXen::with_memory_pages(1, memory_pages);
    let events = EventChannels::new(&xen, xen.shared_info());
    let pages = SimPageSource::new(xen.grants());
    let mtu = options.mtu.map_or(1500, usize::from);
    let guest_mac = options.mac;
    let world = ScriptWorld {
        netback: SimNetback::new(&xen, options.clone()),
        domains: vec![options.backend_domain],
        options,
        moving: false,
        pages: &pages,
        actions,
        extended,
        mtu,
        guest_mac,
        next: 0,
        phase: Phase::Settling,
        idle_pages: 0,
        stalled: 0,
        pings: 0,
        answered: 0,
        recovery_from: 0,
        recovery_started: 0,
    };
    let platform = SimPlatform::new(&xen, &events, &pages, world);
    let mut config = RuntimeConfig {
        netfront: CONFIG,
        ..RuntimeConfig::new(NetConfig::Static { address: Ipv4Cidr::new(GUEST, 24), gateway: None })
    };
    if let BackendTrust::Untrusted(bounce) = trust {
        config.force_untrusted = true;
        config.bounce = bounce;
    }
    let request = crate::run(&platform, &config, &mut NoService);
    let world = platform.into_world();
    assert_eq!(request, ShutdownRequest::Poweroff, "the run ends on the world's request");
    assert_eq!(world.phase, Phase::Done, "the script ran to its end");
    world.domains
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Until the link is up and answers a ping: then the idle pages are
    /// counted.
    Settling,
    /// Playing the script.
    Script,
    /// The backend behaves; until the guest answers a ping again.
    Recovering,
    /// Answered: until the guest holds its idle pages again.
    Releasing,
    /// Asked the guest to end.
    Done,
}

struct ScriptWorld<'x> {
    netback: SimNetback<'x>,
    /// The vif's configuration (the backend domain changes on a move).
    options: NetbackOptions,
    /// Detaching the vif, to attach it to the other backend domain.
    moving: bool,
    /// The backend domains the vif had, in order.
    domains: Vec<u16>,
    pages: &'x SimPageSource<'x>,
    actions: Vec<(u8, usize)>,
    extended: bool,
    mtu: usize,
    /// The guest's MAC, as the toolstack gave it.
    guest_mac: [u8; 6],
    next: usize,
    phase: Phase,
    idle_pages: usize,
    /// Waits of the loop the backend still sits out.
    stalled: usize,
    pings: u16,
    /// The highest ping sequence number answered.
    answered: u16,
    /// The first ping sent after the script.
    recovery_from: u16,
    recovery_started: u64,
}

impl World for ScriptWorld<'_> {
    fn step(&mut self, xen: &SimXen) {
        if self.stalled > 0 {
            self.stalled -= 1;
            self.ping();
        } else {
            self.netback.step();
        }
        if self.moving && self.netback.attachment() == Attachment::Detached {
            self.options.backend_domain = if self.options.backend_domain == 0 { 2 } else { 0 };
            self.netback.attach_with(self.options.clone());
            self.domains.push(self.options.backend_domain);
            self.moving = false;
        }
        self.collect_answers();
        let now = xen.now();
        match self.phase {
            Phase::Settling if self.answered > 0 => {
                self.idle_pages = self.pages.outstanding_pages();
                self.phase = Phase::Script;
            }
            Phase::Settling | Phase::Recovering => {
                if self.phase == Phase::Recovering {
                    assert!(
                        now < self.recovery_started + RECOVERY_NS,
                        "the link did not come back: backend {:?}, frontend state {:?}, {:?}",
                        self.netback.state(),
                        xen.with_xenstore(|store| store.read_as_dom0(&format!("{GUEST_HOME}/device/vif/0/state"))),
                        self.netback.errors()
                    );
                } else {
                    assert!(now < RECOVERY_NS, "the link never came up: {:?}", self.netback.errors());
                }
                if now % 50_000_000 < 10_000_000 || self.pings == 0 {
                    self.ping();
                }
                if self.phase == Phase::Recovering && self.answered >= self.recovery_from {
                    self.phase = Phase::Releasing;
                }
            }
            Phase::Script => match self.actions.get(self.next).copied() {
                Some((byte, size)) => {
                    self.next += 1;
                    self.act(byte, size);
                }
                None => {
                    self.netback.behave();
                    self.stalled = 0;
                    self.recovery_started = now;
                    // Only an answer to a ping sent from now on counts.
                    self.recovery_from = self.pings + 1;
                    self.phase = Phase::Recovering;
                }
            },
            Phase::Releasing => {
                let held = self.pages.outstanding_pages();
                if held == self.idle_pages {
                    xen.with_xenstore(|store| {
                        store.write_as_dom0(&format!("{GUEST_HOME}/control/shutdown"), "poweroff")
                    });
                    self.phase = Phase::Done;
                } else {
                    assert!(
                        now < self.recovery_started + RECOVERY_NS,
                        "the guest holds {held} pages after recovering, {} with the link idle",
                        self.idle_pages
                    );
                }
            }
            Phase::Done => {}
        }
    }
}

impl ScriptWorld<'_> {
    /// One action of the script: `byte % 12` (or `% 16` in an extended
    /// script) picks it, as [`netfront::testing::act`] and
    /// [`netfront::testing::act_extended`] document.
    fn act(&mut self, byte: u8, size: usize) {
        let action = if self.extended { byte % 16 } else { byte % 12 };
        let netback = &mut self.netback;
        match action {
            0 => drop(netback.inject(&frame(size.clamp(14, 9000), byte))),
            1 => self.ping_sized(size),
            2 | 11 => {} // the loop takes frames and settles on its own
            3 => netback.misbehave(Hostility::UnknownId(Ring::Receive), Lasting::Once),
            4 => netback.misbehave(Hostility::DuplicateId(Ring::Transmit), Lasting::Once),
            5 => netback.misbehave(Hostility::ReceiveStatus((size as i16).wrapping_mul(7)), Lasting::Once),
            6 => netback.misbehave(Hostility::ReceiveOffsetPastPageEnd, Lasting::Once),
            7 => netback.misbehave(Hostility::ProducerAhead(Ring::Transmit, u32::from(byte)), Lasting::Once),
            8 => netback.misbehave(Hostility::Delay(u32::from(byte % 5)), Lasting::Once),
            9 if size / 36 % 4 == 3 => self.move_backend(),
            9 => netback.flap_state(XenbusState::Closing),
            10 => netback.behave(),
            12 => self.stalled = 1 + size / 36 % 64,
            13 => {
                // Frames the stack answers from the receive path (TCP to a
                // closed port: a reset each).
                for index in 0..1 + byte % 4 {
                    let _ = netback.inject(&ip_frame(60 + usize::from(index) * 100, true, byte));
                }
            }
            14 => {
                netback.misbehave(receive_slot_hostility(byte, size), Lasting::Once);
                let _ = netback.inject(&frame(size.clamp(14, 9000), byte));
            }
            _ => drop(netback.inject(&mangled_ip_frame(byte, size))),
        }
    }

    /// Starts moving the vif to the other backend domain: detached now,
    /// attached again once the detach is through.
    fn move_backend(&mut self) {
        if self.netback.attachment() == Attachment::Attached {
            self.netback.detach(Detach::Graceful);
            self.moving = true;
        }
    }

    /// Dom0 pings the guest with a small echo request.
    fn ping(&mut self) {
        self.ping_sized(56);
    }

    /// Dom0 pings the guest with an echo request of about `size` bytes
    /// (within the MTU): the guest's answer is a frame it sends.
    fn ping_sized(&mut self, size: usize) {
        self.pings += 1;
        let payload = vec![0x5a; size.min(self.mtu - 28)];
        let echo = Icmpv4Repr::EchoRequest { ident: 0x7e57, seq_no: self.pings, data: &payload };
        let ip = Ipv4Repr {
            src_addr: PEER,
            dst_addr: GUEST,
            next_header: IpProtocol::Icmp,
            payload_len: echo.buffer_len(),
            hop_limit: 64,
        };
        let ethernet = EthernetRepr {
            src_addr: PEER_MAC,
            dst_addr: EthernetAddress(self.guest_mac),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut bytes = vec![0; ethernet.buffer_len() + ip.buffer_len() + ip.payload_len];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        ethernet.emit(&mut frame);
        let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet, &ChecksumCapabilities::default());
        echo.emit(&mut Icmpv4Packet::new_unchecked(packet.payload_mut()), &ChecksumCapabilities::default());
        let _ = self.netback.inject(&bytes);
    }

    /// Takes what the guest sent: notes the echo replies, and answers the
    /// guest's ARP requests for the peer.
    fn collect_answers(&mut self) {
        for sent in self.netback.take_transmitted() {
            if let Some(seq_no) = echo_reply(&sent) {
                self.answered = self.answered.max(seq_no);
            } else if let Some(reply) = super::arp_reply(&sent, PEER, PEER_MAC) {
                let _ = self.netback.inject(&reply);
            }
        }
    }
}

/// The sequence number of an ICMP echo reply to the peer in `frame`.
fn echo_reply(frame: &[u8]) -> Option<u16> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let packet = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    let ip = Ipv4Repr::parse(&packet, &ChecksumCapabilities::default()).ok()?;
    if ip.next_header != IpProtocol::Icmp || ip.dst_addr != PEER {
        return None;
    }
    let icmp = Icmpv4Packet::new_checked(packet.payload()).ok()?;
    match Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).ok()? {
        Icmpv4Repr::EchoReply { ident: 0x7e57, seq_no, .. } => Some(seq_no),
        _ => None,
    }
}
