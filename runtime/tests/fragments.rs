//! IPv4 fragments through the production event loop ([`runtime::run`]) on
//! the simulated Xen: dom0 sends ICMP echo requests of 8 000 bytes in
//! fragments (in order, out of order and overlapping, two datagrams at
//! once), and the guest answers each with a fragmented reply that
//! reassembles to the same data. The reassembly slots are bounded: four
//! datagrams missing a fragment hold them, a fifth is dropped and counted,
//! and ten seconds later the four are given up (counted) and a new
//! datagram is answered. A fragment beyond the size bound is dropped and
//! counted. The counters are the ones the metrics page shows.
#![forbid(unsafe_code)]

use dma::sim::SimPageSource;
use netfront::NetfrontConfig;
use runtime::fragments::{FragmentCounters, MAX_REASSEMBLED_PAYLOAD, REASSEMBLY_SLOTS};
use runtime::testing::{DOM0_ADDRESS, DOM0_MAC, Dom0, GUEST_ADDRESS, SimPlatform, World};
use runtime::{NetConfig, RuntimeConfig, Service, ShutdownRequest, Stats};
use smoltcp::iface::SocketSet;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet,
    Icmpv4Repr, IpProtocol, Ipv4Packet,
};
use std::cell::Cell;
use std::collections::BTreeMap;
use xen_pv::event_channel::EventChannels;
use xen_sim::SimXen;
use xen_sim::netback::NetbackOptions;

const SECOND: u64 = 1_000_000_000;
/// The ICMP data of each echo request.
const DATA: usize = 8_000;
/// Data bytes per fragment (a multiple of 8 that fits a 1500-byte MTU).
const PER_FRAGMENT: usize = 1_480;

thread_local! {
    /// The fragment counters as the service last saw them.
    static COUNTERS: Cell<FragmentCounters> = Cell::new(FragmentCounters::default());
}

/// A service that serves nothing and notes the fragment counters.
struct Watcher;

impl Service for Watcher {
    fn start(&mut self, _: runtime::InterfaceId, _: &mut SocketSet<'static>) {}
    fn poll(
        &mut self,
        _: runtime::InterfaceId,
        _: &mut SocketSet<'static>,
        _: Instant,
        stats: &dyn Fn() -> Stats,
    ) -> Option<Instant> {
        COUNTERS.with(|counters| counters.set(stats().fragments));
        None
    }
}

/// An ICMP echo request's IPv4 payload: identifier and sequence `seq`,
/// DATA bytes that depend on `seq`.
fn echo_request(seq: u16) -> Vec<u8> {
    let data: Vec<u8> = (0..DATA).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seq as u8)).collect();
    let repr = Icmpv4Repr::EchoRequest { ident: 0x4242, seq_no: seq, data: &data };
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes[..]), &ChecksumCapabilities::default());
    bytes
}

/// The frame carrying `payload[offset..offset + length]` of IPv4 datagram
/// `ident` from dom0 to the guest (`mac`); `last` clears more-fragments.
fn fragment(mac: EthernetAddress, ident: u16, payload: &[u8], offset: usize, length: usize, last: bool) -> Vec<u8> {
    let data = &payload[offset..offset + length];
    let mut bytes = vec![0; 14 + 20 + data.len()];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    frame.set_dst_addr(mac);
    frame.set_src_addr(DOM0_MAC);
    frame.set_ethertype(EthernetProtocol::Ipv4);
    let mut ip = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.set_version(4);
    ip.set_header_len(20);
    ip.set_total_len(u16::try_from(20 + data.len()).unwrap());
    ip.set_ident(ident);
    ip.clear_flags();
    ip.set_more_frags(!last);
    ip.set_frag_offset(u16::try_from(offset).unwrap());
    ip.set_hop_limit(64);
    ip.set_next_header(IpProtocol::Icmp);
    ip.set_src_addr(DOM0_ADDRESS);
    ip.set_dst_addr(GUEST_ADDRESS);
    ip.fill_checksum();
    ip.payload_mut().copy_from_slice(data);
    bytes
}

/// Dom0's ARP request for the guest's address, to the guest (`mac`).
fn arp_request(mac: EthernetAddress) -> Vec<u8> {
    let request = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: DOM0_MAC,
        source_protocol_addr: DOM0_ADDRESS,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: GUEST_ADDRESS,
    };
    let header = EthernetRepr { src_addr: DOM0_MAC, dst_addr: mac, ethertype: EthernetProtocol::Arp };
    let mut bytes = vec![0; header.buffer_len() + request.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    header.emit(&mut frame);
    request.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    bytes
}

/// The fragments of datagram `ident` carrying `payload`, in order.
fn fragments(mac: EthernetAddress, ident: u16, payload: &[u8]) -> Vec<Vec<u8>> {
    (0..payload.len())
        .step_by(PER_FRAGMENT)
        .map(|offset| {
            let length = PER_FRAGMENT.min(payload.len() - offset);
            fragment(mac, ident, payload, offset, length, offset + length == payload.len())
        })
        .collect()
}

/// The ICMP echo replies the guest sent among `frames`, reassembled from
/// their fragments (IPv4 identification, offset), by sequence number. A
/// reply's checksum must hold.
fn echo_replies(frames: &[Vec<u8>]) -> BTreeMap<u16, Vec<u8>> {
    /// A datagram's pieces by offset, and where it ends once known.
    type Pieces = (BTreeMap<usize, Vec<u8>>, Option<usize>);
    let mut datagrams: BTreeMap<u16, Pieces> = BTreeMap::new();
    for frame in frames {
        let Ok(ethernet) = EthernetFrame::new_checked(&frame[..]) else { continue };
        if ethernet.ethertype() != EthernetProtocol::Ipv4 {
            continue;
        }
        let ip = Ipv4Packet::new_checked(ethernet.payload()).expect("the guest's IPv4 packets are well formed");
        if ip.next_header() != IpProtocol::Icmp || ip.src_addr() != GUEST_ADDRESS {
            continue;
        }
        assert!(ip.verify_checksum(), "the guest's IPv4 header checksums hold");
        let offset = usize::from(ip.frag_offset());
        let entry = datagrams.entry(ip.ident()).or_default();
        entry.0.insert(offset, ip.payload().to_vec());
        if !ip.more_frags() {
            entry.1 = Some(offset + ip.payload().len());
        }
    }
    let mut replies = BTreeMap::new();
    for (pieces, end) in datagrams.values() {
        let Some(end) = *end else { continue };
        let mut whole = Vec::new();
        for (offset, piece) in pieces {
            assert_eq!(*offset, whole.len(), "the guest's fragments neither overlap nor leave holes");
            whole.extend_from_slice(piece);
        }
        assert_eq!(whole.len(), end);
        let packet = Icmpv4Packet::new_checked(&whole[..]).expect("a whole ICMP message");
        assert!(packet.verify_checksum(), "the reply's ICMP checksum holds");
        let repr = Icmpv4Repr::parse(&packet, &ChecksumCapabilities::default()).expect("an ICMP message");
        if let Icmpv4Repr::EchoReply { seq_no, data, .. } = repr {
            replies.insert(seq_no, data.to_vec());
        }
    }
    replies
}

/// What dom0 does, from the moment the guest has its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Lease,
    /// Sends the in-order, shuffled and paired requests (seq 1 to 4).
    Send {
        at: u64,
    },
    /// Four datagrams missing their last fragments (seq 10 to 13), a fifth
    /// whole (seq 14), a fragment beyond the bound.
    Hold {
        at: u64,
    },
    /// Past the reassembly timeout: a new request (seq 15).
    AfterTimeout {
        at: u64,
    },
    Done {
        at: u64,
    },
    /// Asked the guest to end.
    Ended,
}

struct Pinger<'x> {
    dom0: Dom0<'x>,
    phase: Phase,
    /// The guest's MAC, from its first frame.
    mac: Option<EthernetAddress>,
    /// Counters seen after the hold phase, before the timeout.
    before_timeout: Option<FragmentCounters>,
}

impl Pinger<'_> {
    fn send(&mut self, frames: &[Vec<u8>]) {
        for frame in frames {
            assert!(self.dom0.netback.inject(frame), "the backend takes the frame");
        }
    }
}

impl World for Pinger<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        let now = xen.now();
        if self.mac.is_none() {
            self.mac = self
                .dom0
                .capture
                .as_ref()
                .and_then(|frames| frames.first())
                .map(|frame| EthernetFrame::new_checked(&frame[..]).expect("an Ethernet frame").src_addr());
        }
        match self.phase {
            Phase::Lease if self.dom0.leases > 0 && self.dom0.published_address(xen).is_some() => {
                // As a pinging host does first: ask for the guest's MAC
                // (the guest learns dom0's from the request).
                let mac = self.mac.expect("the guest has sent frames");
                self.send(&[arp_request(mac)]);
                self.phase = Phase::Send { at: now + SECOND };
            }
            Phase::Send { at } if now >= at => {
                let mac = self.mac.expect("the guest has sent frames");
                // In order.
                self.send(&fragments(mac, 1, &echo_request(1)));
                // Last first, then the rest backwards, one of them twice.
                let mut shuffled = fragments(mac, 2, &echo_request(2));
                shuffled.reverse();
                shuffled.insert(3, shuffled[1].clone());
                self.send(&shuffled);
                // Overlapping: the first 4 000 bytes, then 2 000.. to the end.
                let three = echo_request(3);
                let half = 4_000;
                self.send(&[
                    fragment(mac, 3, &three, 0, half, false),
                    fragment(mac, 3, &three, 2_000, three.len() - 2_000, true),
                ]);
                // Two datagrams whose last fragments arrive together.
                let (mut four, mut five) = (fragments(mac, 4, &echo_request(4)), fragments(mac, 5, &echo_request(5)));
                let (last_four, last_five) = (four.pop().unwrap(), five.pop().unwrap());
                self.send(&four);
                self.send(&five);
                self.send(&[last_four, last_five]);
                self.phase = Phase::Hold { at: now + SECOND };
            }
            Phase::Hold { at } if now >= at => {
                let mac = self.mac.expect("the guest has sent frames");
                for seq in 10..10 + REASSEMBLY_SLOTS as u16 {
                    let mut held = fragments(mac, seq, &echo_request(seq));
                    held.pop();
                    self.send(&held);
                }
                self.send(&fragments(mac, 14, &echo_request(14)));
                // Beyond the bound: data ending one byte past it.
                let offset = MAX_REASSEMBLED_PAYLOAD / 8 * 8;
                let big = vec![0u8; MAX_REASSEMBLED_PAYLOAD + 1];
                self.send(&[fragment(mac, 99, &big, offset, big.len() - offset, true)]);
                self.phase = Phase::AfterTimeout { at: now + SECOND };
            }
            Phase::AfterTimeout { at } if now >= at && self.before_timeout.is_none() => {
                self.before_timeout = Some(COUNTERS.with(Cell::get));
                self.phase = Phase::AfterTimeout { at: now + 11 * SECOND };
            }
            Phase::AfterTimeout { at } if now >= at => {
                let mac = self.mac.expect("the guest has sent frames");
                self.send(&fragments(mac, 15, &echo_request(15)));
                self.phase = Phase::Done { at: now + SECOND };
            }
            Phase::Done { at } if now >= at => {
                self.dom0.request_shutdown(xen);
                self.phase = Phase::Ended;
            }
            _ => {}
        }
        if now > 300 * SECOND && now.is_multiple_of(SECOND) {
            self.dom0.request_shutdown(xen);
        }
    }
}

#[test]
fn fragmented_echo_requests_are_answered_and_reassembly_stays_bounded() {
    let xen: &'static SimXen = Box::leak(Box::new(SimXen::new(4)));
    let events = Box::leak(Box::new(EventChannels::new(xen, xen.shared_info())));
    let pages = Box::leak(Box::new(SimPageSource::new(xen.grants())));
    let mut dom0 = Dom0::new(xen, NetbackOptions::default());
    dom0.capture = Some(Vec::new());
    let world = Pinger { dom0, phase: Phase::Lease, mac: None, before_timeout: None };
    let platform = SimPlatform::new(xen, events, pages, world);
    let config = RuntimeConfig {
        netfront: NetfrontConfig { rx_buffers: 64, tx_buffers: 64, ..NetfrontConfig::default() },
        ..RuntimeConfig::new(NetConfig::Dhcp)
    };
    assert_eq!(runtime::run(&platform, &config, &mut Watcher), ShutdownRequest::Poweroff);
    let world = platform.into_world();
    assert_eq!(world.phase, Phase::Ended, "the script ran to its end");

    let replies = echo_replies(world.dom0.capture.as_deref().unwrap());
    for seq in [1, 2, 3, 4, 5, 15] {
        let request = echo_request(seq);
        let Icmpv4Repr::EchoRequest { data, .. } =
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&request[..]).unwrap(), &ChecksumCapabilities::default())
                .unwrap()
        else {
            unreachable!("built as an echo request")
        };
        let reply = replies.get(&seq).map(Vec::as_slice);
        assert!(
            reply == Some(data),
            "echo {seq} answered with its data; replies {:?}, counters {:?}",
            replies.iter().map(|(seq, data)| (*seq, data.len())).collect::<Vec<_>>(),
            COUNTERS.with(Cell::get)
        );
    }
    for seq in 10..15 {
        assert!(!replies.contains_key(&seq), "echo {seq} (held, or without a slot) not answered");
    }

    let held = world.before_timeout.expect("counters seen before the timeout");
    // 8 008 bytes of ICMP (header and data): 6 fragments.
    let per_request = (DATA + 8).div_ceil(PER_FRAGMENT) as u64;
    assert_eq!(held.oversized, 1);
    assert_eq!(held.reassembled, 5, "seq 1 to 5");
    assert_eq!(held.no_slot, per_request, "every fragment of the fifth held datagram");
    assert_eq!(held.timed_out, 0);
    let end = COUNTERS.with(Cell::get);
    assert_eq!(end.timed_out, REASSEMBLY_SLOTS as u64, "the four held datagrams given up");
    assert_eq!(end.reassembled, 6);
    assert_eq!(end.received, held.received + per_request);
}
