//! Large transmitted segments against the simulated netback: the stack's
//! TCP segments merged zero-copy into GSO packets (one slot per segment,
//! a GSO extra-info slot after the first), what may and may not be merged,
//! the limits, the flush, the backend's features and the configuration,
//! a backend that answers the extra slot wrongly, every page back in the
//! pool; and smoltcp sending bulk data through it to a smoltcp peer, which
//! gets, after the backend cut the large segments as Linux does, the very
//! segments smoltcp made.
#![forbid(unsafe_code)]

use core::cell::RefCell;
use dma::{BackendTrust, BounceCapacity};
use netfront::testing::{ADDRESSINGS, CONFIG, Rig, frame, with_config};
use netfront::tx_merge::TxRules;
use netfront::{NetfrontConfig, NetfrontCounters};
use smoltcp::wire::{IpProtocol, Ipv4Address, Ipv6Address, checksum};
use xen_sim::netback::{Hostility, Lasting, NetbackOptions, NullFault, TransmittedFrame};

/// Guest RAM for these tests: the pools and bounce pages.
const MEMORY_PAGES: usize = 1024;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;
/// The guest's MAC (the rig's vif) and its peer's.
const GUEST_MAC: [u8; 6] = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

/// Both trusts: pages granted to the backend, and bounce buffers.
fn trusts() -> [BackendTrust; 2] {
    [BackendTrust::Trusted, BackendTrust::Untrusted(BounceCapacity { read_only_pages: 160, writable_pages: 160 })]
}

/// Runs `test` over both trusts and both addressings.
fn each_rig(options: NetbackOptions, config: NetfrontConfig, mut test: impl FnMut(&mut Rig<'_, '_>)) {
    for trust in trusts() {
        for addressing in ADDRESSINGS {
            let options = NetbackOptions { addressing, ..options.clone() };
            with_config(MEMORY_PAGES, trust, options, config, &mut test);
        }
    }
}

/// Runs `test` once, over grants, without bouncing.
fn one_rig(options: NetbackOptions, config: NetfrontConfig, test: impl FnOnce(&mut Rig<'_, '_>)) {
    with_config(MEMORY_PAGES, BackendTrust::Trusted, options, config, test);
}

/// A TCP segment the guest sends, as a stack would build it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seg {
    ipv6: bool,
    port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    /// The timestamp option's value (every segment carries the option).
    tsval: u32,
    payload: usize,
    /// The IPv4 ID.
    id: u16,
}

impl Seg {
    /// A full segment over IPv4 or IPv6 at MTU 1500: 1448 or 1428 bytes of
    /// payload behind 32 bytes of TCP header.
    fn full(ipv6: bool) -> Self {
        let payload = if ipv6 { 1428 } else { 1448 };
        Seg { ipv6, port: 80, seq: 1_000_000, ack: 7777, flags: ACK, window: 0x2000, tsval: 1, payload, id: 0 }
    }

    /// The `count` segments of a burst from this one on: contiguous, IDs
    /// counting up, PSH on the last if `push`.
    fn burst(self, count: usize, push: bool) -> Vec<Seg> {
        (0..count)
            .map(|index| Seg {
                seq: self.seq.wrapping_add((index * self.payload) as u32),
                id: self.id.wrapping_add(index as u16),
                flags: if push && index + 1 == count { ACK | PSH } else { ACK },
                ..self
            })
            .collect()
    }

    /// The segment that follows this one (the same flow, contiguous, the
    /// next ID).
    fn next(self) -> Seg {
        Seg { seq: self.seq.wrapping_add(self.payload as u32), id: self.id.wrapping_add(1), ..self }
    }

    fn tcp_start(&self) -> usize {
        if self.ipv6 { 54 } else { 34 }
    }

    /// Its frame, checksums complete; the payload is a pattern of the
    /// sequence numbers it covers.
    fn frame(&self) -> Vec<u8> {
        let tcp_length = 32 + self.payload;
        let mut frame = PEER_MAC.to_vec();
        frame.extend_from_slice(&GUEST_MAC);
        if self.ipv6 {
            frame.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            frame.extend_from_slice(&(tcp_length as u16).to_be_bytes());
            frame.extend_from_slice(&[6, 64]);
            frame.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            frame.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        } else {
            frame.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            frame.extend_from_slice(&((20 + tcp_length) as u16).to_be_bytes());
            frame.extend_from_slice(&self.id.to_be_bytes());
            frame.extend_from_slice(&[0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            let sum = !checksum::data(&frame[14..34]);
            frame[24..26].copy_from_slice(&sum.to_be_bytes());
        }
        let tcp_start = frame.len();
        frame.extend_from_slice(&self.port.to_be_bytes());
        frame.extend_from_slice(&40_000u16.to_be_bytes());
        frame.extend_from_slice(&self.seq.to_be_bytes());
        frame.extend_from_slice(&self.ack.to_be_bytes());
        frame.extend_from_slice(&[0x80, self.flags]);
        frame.extend_from_slice(&self.window.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0, 1, 1, 8, 10]);
        frame.extend_from_slice(&self.tsval.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 9]);
        frame.extend((0..self.payload).map(|index| self.seq.wrapping_add(index as u32).wrapping_mul(13) as u8));
        let pseudo = pseudo_header(&frame, tcp_start, tcp_length);
        let sum = !checksum::combine(&[pseudo, checksum::data(&frame[tcp_start..])]);
        frame[tcp_start + 16..tcp_start + 18].copy_from_slice(&sum.to_be_bytes());
        frame
    }
}

/// The pseudo-header sum of `frame`'s TCP segment (at `tcp_start`) as if
/// it were `tcp_length` bytes long.
fn pseudo_header(frame: &[u8], tcp_start: usize, tcp_length: usize) -> u16 {
    if tcp_start == 54 {
        let address = |at: usize| Ipv6Address::from(<[u8; 16]>::try_from(&frame[at..at + 16]).unwrap());
        checksum::pseudo_header_v6(&address(22), &address(38), IpProtocol::Tcp, tcp_length as u32)
    } else {
        let address = |at: usize| Ipv4Address::new(frame[at], frame[at + 1], frame[at + 2], frame[at + 3]);
        checksum::pseudo_header_v4(&address(26), &address(30), IpProtocol::Tcp, tcp_length as u32)
    }
}

/// The large segment `segments` make, as the guest must put it on the
/// ring: the first one's headers with the whole's IP length (and IPv4
/// header checksum), the last one's flags, the pseudo-header sum of the
/// whole in the TCP checksum field; then every payload.
fn large_segment(segments: &[Seg]) -> Vec<u8> {
    let first = segments[0];
    let header_length = first.tcp_start() + 32;
    let mut whole = first.frame()[..header_length].to_vec();
    for segment in segments {
        whole.extend_from_slice(&segment.frame()[header_length..]);
    }
    let tcp_start = first.tcp_start();
    let tcp_length = whole.len() - tcp_start;
    if first.ipv6 {
        whole[18..20].copy_from_slice(&(tcp_length as u16).to_be_bytes());
    } else {
        let total = (whole.len() - 14) as u16;
        whole[16..18].copy_from_slice(&total.to_be_bytes());
        whole[24..26].fill(0);
        let sum = !checksum::data(&whole[14..34]);
        whole[24..26].copy_from_slice(&sum.to_be_bytes());
    }
    whole[tcp_start + 13] = segments[segments.len() - 1].flags;
    let pseudo = pseudo_header(&whole, tcp_start, tcp_length);
    whole[tcp_start + 16..tcp_start + 18].copy_from_slice(&pseudo.to_be_bytes());
    whole
}

/// Sends `frames` through smoltcp's token API (each must find room).
fn send_all(rig: &mut Rig<'_, '_>, frames: &[Vec<u8>]) {
    for frame in frames {
        assert!(rig.send(frame), "room to send");
    }
}

/// Lets the driver flush what it holds and the backend take it (and the
/// driver the completions); returns the packets the backend took, as the
/// slots held them.
fn packets(rig: &mut Rig<'_, '_>) -> Vec<TransmittedFrame> {
    rig.netfront.poll_rings();
    rig.netback.step();
    rig.netfront.poll_rings();
    rig.netback.take_transmitted_frames()
}

/// A packet's data slots, and whether it had a GSO extra.
type Shape = (usize, bool);

/// A case: its name, the frames sent, the packets they must go as.
type Case = (&'static str, Vec<Vec<u8>>, Vec<Shape>);

/// Each packet's shape.
fn shapes(packets: &[TransmittedFrame]) -> Vec<Shape> {
    packets.iter().map(|packet| (packet.slots, packet.gso.is_some())).collect()
}

/// What leaves the vif for `packets`: large segments cut as Linux cuts them.
fn on_the_wire(packets: Vec<TransmittedFrame>) -> Vec<Vec<u8>> {
    packets.into_iter().flat_map(TransmittedFrame::into_wire_frames).collect()
}

/// After some turns of the loop: no frame in flight, every tx page idle.
fn assert_all_pages_back(rig: &mut Rig<'_, '_>) {
    for _ in 0..4 {
        rig.turn();
    }
    assert_eq!(rig.netfront.tx_in_flight(), 0);
    assert_eq!(rig.netfront.tx_held(), 0);
    assert_eq!(rig.netfront.idle_tx_buffers(), CONFIG.tx_buffers, "every tx page back in the pool");
    assert_eq!(rig.pages.outstanding_pages(), rig.idle_pages);
}

#[test]
fn contiguous_segments_leave_as_one_large_segment_and_arrive_as_they_were() {
    each_rig(NetbackOptions::default(), CONFIG, |rig| {
        assert_eq!(rig.netfront.tx_rules(), Some(TxRules { tcpv4: true, tcpv6: true }));
        for ipv6 in [false, true] {
            let segments = Seg::full(ipv6).burst(5, true);
            let frames: Vec<Vec<u8>> = segments.iter().map(Seg::frame).collect();
            let before = rig.netfront.counters();
            let requests_before = rig.netback.counters().transmit_requests;
            send_all(rig, &frames[..4]);
            assert_eq!(rig.netfront.tx_held(), 4, "held while the burst goes on");
            rig.netback.step();
            assert!(rig.netback.take_transmitted_frames().is_empty(), "nothing on the ring yet");
            send_all(rig, &frames[4..]);
            assert_eq!(rig.netfront.tx_held(), 0, "a PSH ends the large segment at once");
            let packets = packets(rig);
            assert_eq!(shapes(&packets), [(5, true)], "one packet of five slots with a GSO extra");
            let packet = &packets[0];
            let mss = segments[0].payload as u16;
            assert_eq!(packet.gso, Some((if ipv6 { 2 } else { 1 }, mss)));
            assert!(packet.checksum_blank && packet.data_validated, "NETTXF_csum_blank | NETTXF_data_validated");
            assert_eq!(packet.data, large_segment(&segments), "lengths, ID, flags and partial checksum");
            assert_eq!(packet.segments, frames, "cut by the backend: the stack's segments, byte for byte");
            let requests = rig.netback.counters().transmit_requests - requests_before;
            assert_eq!(requests, 6, "five data slots and the extra-info slot");
            let counters = rig.netfront.counters();
            assert_eq!(counters.tx_large_segments - before.tx_large_segments, 1);
            assert_eq!(counters.tx_segments_merged - before.tx_segments_merged, 5);
            assert_eq!(counters.tx_frames - before.tx_frames, 5);
            let bytes: usize = frames.iter().map(Vec::len).sum();
            assert_eq!(counters.tx_bytes - before.tx_bytes, bytes as u64);
            assert_eq!(counters.tx_dropped, 0);
        }
        assert_all_pages_back(rig);
        assert!(rig.netback.counters().violations.is_empty(), "{:?}", rig.netback.errors());
        assert_eq!(rig.netfront.counters().violations, 0);
    });
}

#[test]
fn held_segments_go_out_with_the_flush_one_of_them_as_it_was() {
    each_rig(NetbackOptions::default(), CONFIG, |rig| {
        let segments = Seg::full(false).burst(3, false);
        let frames: Vec<Vec<u8>> = segments.iter().map(Seg::frame).collect();
        send_all(rig, &frames);
        assert_eq!(rig.netfront.tx_held(), 3);
        rig.netfront.flush_transmit();
        assert_eq!(rig.netfront.tx_held(), 0);
        rig.netback.step();
        let flushed = rig.netback.take_transmitted_frames();
        assert_eq!(shapes(&flushed), [(3, true)]);
        assert_eq!(flushed[0].data, large_segment(&segments), "flags ACK: the last segment's");
        // One segment alone goes exactly as it was built: no extra, no flag.
        let single = segments[2].next().frame();
        send_all(rig, std::slice::from_ref(&single));
        assert_eq!(rig.netfront.tx_held(), 1);
        let packets = packets(rig);
        assert_eq!(shapes(&packets), [(1, false)]);
        assert!(!packets[0].checksum_blank && !packets[0].data_validated);
        assert_eq!(packets[0].data, single);
        assert_all_pages_back(rig);
    });
}

/// The packets (data slots, whether large) a sequence of frames goes out
/// as, and the frames on the wire, in order.
fn sent_as(rig: &mut Rig<'_, '_>, frames: &[Vec<u8>]) -> (Vec<Shape>, Vec<Vec<u8>>) {
    send_all(rig, frames);
    let packets = packets(rig);
    (shapes(&packets), on_the_wire(packets))
}

#[test]
fn only_what_continues_a_large_segment_joins_it() {
    let base = Seg::full(false);
    let [a, b, c, d] = [base, base.next(), base.next().next(), base.next().next().next()];
    let large = |slots: usize| (slots, true);
    let alone = (1, false);
    let cases: Vec<Case> = vec![
        (
            "another flow between",
            vec![a.frame(), b.frame(), Seg { port: 81, ..c }.frame(), c.frame()],
            vec![large(2), alone, alone],
        ),
        (
            "a gap in the sequence",
            vec![a.frame(), b.frame(), Seg { seq: c.seq + 1, ..c }.frame()],
            vec![large(2), alone],
        ),
        (
            "PSH in the middle",
            vec![a.frame(), Seg { flags: ACK | PSH, ..b }.frame(), c.frame(), d.frame()],
            vec![large(2), large(2)],
        ),
        ("FIN", vec![a.frame(), Seg { flags: ACK | FIN, ..b }.frame()], vec![alone, alone]),
        ("PSH first", vec![Seg { flags: ACK | PSH, ..a }.frame(), b.frame()], vec![alone, alone]),
        ("another acknowledgement", vec![a.frame(), Seg { ack: 7778, ..b }.frame()], vec![alone, alone]),
        ("another window", vec![a.frame(), Seg { window: 0x1000, ..b }.frame()], vec![alone, alone]),
        ("another option", vec![a.frame(), Seg { tsval: 2, ..b }.frame()], vec![alone, alone]),
        (
            "a short segment in the middle",
            vec![a.frame(), Seg { payload: 1000, ..b }.frame(), Seg { seq: b.seq + 1000, ..c }.frame()],
            vec![large(2), alone],
        ),
        (
            "more than the first's payload",
            vec![Seg { payload: 1000, ..a }.frame(), Seg { seq: a.seq + 1000, ..b }.frame()],
            vec![alone, alone],
        ),
        ("a pure ACK between", vec![a.frame(), Seg { payload: 0, ..b }.frame(), b.frame()], vec![alone, alone, alone]),
        (
            "another frame between",
            vec![a.frame(), b.frame(), frame(60, 1), c.frame(), d.frame()],
            vec![large(2), alone, large(2)],
        ),
        ("the other IP version", vec![a.frame(), Seg { ipv6: true, payload: 1428, ..b }.frame()], vec![alone, alone]),
        (
            "another TTL",
            vec![a.frame(), {
                let mut frame = b.frame();
                frame[22] = 63;
                frame
            }],
            vec![alone, alone],
        ),
    ];
    one_rig(NetbackOptions::default(), CONFIG, |rig| {
        for (case, frames, expected) in cases {
            let (shapes, wire) = sent_as(rig, &frames);
            assert_eq!(shapes, expected, "{case}");
            assert_eq!(wire, frames, "{case}: every frame reaches the wire as it was, in order");
        }
        assert_all_pages_back(rig);
        assert!(rig.netback.counters().violations.is_empty(), "{:?}", rig.netback.errors());
    });
}

#[test]
fn a_large_segment_holds_at_most_seventeen_slots_of_data() {
    each_rig(NetbackOptions::default(), CONFIG, |rig| {
        for ipv6 in [false, true] {
            let frames: Vec<Vec<u8>> = Seg::full(ipv6).burst(20, false).iter().map(Seg::frame).collect();
            let (shapes, wire) = sent_as(rig, &frames);
            assert_eq!(shapes, [(17, true), (3, true)]);
            assert_eq!(wire, frames);
            let frames: Vec<Vec<u8>> = Seg::full(ipv6).burst(18, false).iter().map(Seg::frame).collect();
            let (shapes, _) = sent_as(rig, &frames);
            assert_eq!(shapes, [(17, true), (1, false)], "a last one alone goes as it was");
        }
        assert_all_pages_back(rig);
    });
}

#[test]
fn a_large_segment_holds_at_most_65535_bytes() {
    // An MTU of 4000: frames of up to 4014 bytes, each in one pooled page.
    let options = NetbackOptions { mtu: Some(4000), ..NetbackOptions::default() };
    each_rig(options, CONFIG, |rig| {
        assert_eq!(rig.max_frame(), 4014);
        let first = Seg { payload: 3900, ..Seg::full(false) };
        let frames: Vec<Vec<u8>> = first.burst(17, false).iter().map(Seg::frame).collect();
        let (shapes, wire) = sent_as(rig, &frames);
        // 16 of them: 66 + 16 * 3900 = 62 466 bytes; a 17th would pass 65 535.
        assert_eq!(shapes, [(16, true), (1, false)]);
        assert_eq!(wire, frames);
        assert_all_pages_back(rig);
    });
}

/// Sends a burst of five over `ipv6`; the packets it went as.
fn burst_shapes(rig: &mut Rig<'_, '_>, ipv6: bool) -> Vec<Shape> {
    let frames: Vec<Vec<u8>> = Seg::full(ipv6).burst(5, true).iter().map(Seg::frame).collect();
    for frame in &frames {
        assert!(rig.send(frame));
        let merging = rig.netfront.tx_rules().is_some_and(|rules| if ipv6 { rules.tcpv6 } else { rules.tcpv4 });
        if !merging {
            assert_eq!(rig.netfront.tx_held(), 0, "nothing held without large segments");
        }
    }
    let (shapes, wire) = {
        let packets = packets(rig);
        (shapes(&packets), on_the_wire(packets))
    };
    assert_eq!(wire, frames);
    shapes
}

#[test]
fn no_large_segment_is_sent_unless_the_backend_advertises_it_and_the_configuration_allows() {
    let plain = vec![(1, false); 5];
    let large = vec![(5, true)];
    let without = |change: fn(&mut NetbackOptions)| {
        let mut options = NetbackOptions::default();
        change(&mut options);
        options
    };
    let cases: Vec<(&str, NetbackOptions, NetfrontConfig, TxRules)> = vec![
        (
            "no feature-gso-tcpv4 or -tcpv6",
            without(|options| {
                options.features.gso_tcpv4 = false;
                options.features.gso_tcpv6 = false;
            }),
            CONFIG,
            TxRules { tcpv4: false, tcpv6: false },
        ),
        ("no feature-sg", without(|options| options.features.scatter_gather = false), CONFIG, TxRules::default()),
        (
            "no feature-gso-tcpv6",
            without(|options| options.features.gso_tcpv6 = false),
            CONFIG,
            TxRules { tcpv4: true, tcpv6: false },
        ),
        (
            "no IPv6 checksum offload",
            without(|options| options.features.ipv6_checksum_offload = false),
            CONFIG,
            TxRules { tcpv4: true, tcpv6: false },
        ),
        (
            "no feature-gso-tcpv4",
            without(|options| options.features.gso_tcpv4 = false),
            CONFIG,
            TxRules { tcpv4: false, tcpv6: true },
        ),
        (
            "tx_large_segments off",
            NetbackOptions::default(),
            NetfrontConfig { tx_large_segments: false, ..CONFIG },
            TxRules::default(),
        ),
        (
            "large_segments off",
            NetbackOptions::default(),
            NetfrontConfig { large_segments: false, ..CONFIG },
            TxRules::default(),
        ),
    ];
    for (case, options, config, rules) in cases {
        one_rig(options, config, |rig| {
            assert_eq!(rig.netfront.tx_rules(), Some(rules), "{case}");
            let v4 = burst_shapes(rig, false);
            assert_eq!(v4, if rules.tcpv4 { large.clone() } else { plain.clone() }, "{case}: IPv4");
            let v6 = burst_shapes(rig, true);
            assert_eq!(v6, if rules.tcpv6 { large.clone() } else { plain.clone() }, "{case}: IPv6");
            assert_eq!(rig.netfront.counters().tx_large_segments, u64::from(rules.tcpv4) + u64::from(rules.tcpv6));
            assert!(rig.netback.counters().violations.is_empty(), "{case}: {:?}", rig.netback.errors());
            assert_all_pages_back(rig);
        });
    }
}

#[test]
fn a_backend_that_answers_the_extra_slot_wrongly_breaks_the_link() {
    for fault in [NullFault::Withheld, NullFault::OnData] {
        each_rig(NetbackOptions::default(), CONFIG, |rig| {
            rig.netback.misbehave(Hostility::Null(fault), Lasting::Once);
            match fault {
                // The extra slot's response says OKAY with the id 1 the slot
                // held: trusted, it would complete request 1.
                NullFault::Withheld => {
                    let frames: Vec<Vec<u8>> = Seg::full(false).burst(3, true).iter().map(Seg::frame).collect();
                    send_all(rig, &frames);
                }
                NullFault::OnData => assert!(rig.send(&frame(60, 1))),
            }
            let violations = rig.netfront.counters().violations;
            rig.netfront.poll_rings();
            rig.netback.step();
            rig.turn();
            assert!(rig.netfront.counters().violations > violations, "{fault:?}: detected");
            rig.assert_recovers();
        });
    }
}

#[test]
fn a_stalled_backend_leaves_nothing_dropped_and_every_page_comes_back() {
    each_rig(NetbackOptions::default(), CONFIG, |rig| {
        // The backend does not run while the stack sends what the pool holds.
        let mut segment = Seg::full(false);
        let mut sent = Vec::new();
        loop {
            let frame = segment.frame();
            if !rig.send(&frame) {
                break;
            }
            sent.push(frame);
            segment = segment.next();
            rig.netfront.poll_rings();
        }
        assert_eq!(sent.len(), CONFIG.tx_buffers, "the pool's pages, no more");
        let mut wire = Vec::new();
        for _ in 0..4 {
            rig.netback.step();
            wire.extend(rig.netback.take_transmitted());
            rig.turn();
        }
        assert_eq!(wire, sent);
        assert_eq!(rig.netfront.counters().tx_dropped, 0);
        assert_all_pages_back(rig);
    });
}

/// smoltcp on both ends: the guest's stack over netfront, and a peer's
/// over a wire the simulated backend feeds.
mod smoltcp_peer {
    use super::*;
    use smoltcp::iface::{Config, Interface, SocketSet};
    use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
    use smoltcp::socket::tcp;
    use smoltcp::time::Instant;
    use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};
    use std::collections::VecDeque;

    const GUEST_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const PEER_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
    const GUEST_IP6: Ipv6Address = Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    const PEER_IP6: Ipv6Address = Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
    const PORT: u16 = 80;

    /// A device that keeps a copy of every frame the stack builds.
    struct Recording<'d, 'r, D: Device> {
        device: &'d mut D,
        built: &'r RefCell<Vec<Vec<u8>>>,
    }

    struct RecordingTx<'r, T> {
        token: T,
        built: &'r RefCell<Vec<Vec<u8>>>,
    }

    impl<T: TxToken> TxToken for RecordingTx<'_, T> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, length: usize, f: F) -> R {
            let built = self.built;
            self.token.consume(length, |buffer| {
                let result = f(buffer);
                built.borrow_mut().push(buffer.to_vec());
                result
            })
        }
    }

    impl<'r, D: Device> Device for Recording<'_, 'r, D> {
        type RxToken<'a>
            = D::RxToken<'a>
        where
            Self: 'a;
        type TxToken<'a>
            = RecordingTx<'r, D::TxToken<'a>>
        where
            Self: 'a;

        fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
            let built = self.built;
            let (rx, tx) = self.device.receive(timestamp)?;
            Some((rx, RecordingTx { token: tx, built }))
        }

        fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
            let built = self.built;
            self.device.transmit(timestamp).map(|token| RecordingTx { token, built })
        }

        fn capabilities(&self) -> DeviceCapabilities {
            self.device.capabilities()
        }
    }

    /// The peer's side of the wire.
    #[derive(Default)]
    struct Wire {
        inbound: VecDeque<Vec<u8>>,
        outbound: Vec<Vec<u8>>,
    }

    struct WireRx(Vec<u8>);
    struct WireTx<'w>(&'w mut Vec<Vec<u8>>);

    impl RxToken for WireRx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl TxToken for WireTx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, length: usize, f: F) -> R {
            let mut frame = vec![0; length];
            let result = f(&mut frame);
            self.0.push(frame);
            result
        }
    }

    impl Device for Wire {
        type RxToken<'a> = WireRx;
        type TxToken<'a> = WireTx<'a>;

        fn receive(&mut self, _: Instant) -> Option<(WireRx, WireTx<'_>)> {
            let frame = self.inbound.pop_front()?;
            Some((WireRx(frame), WireTx(&mut self.outbound)))
        }

        fn transmit(&mut self, _: Instant) -> Option<WireTx<'_>> {
            Some(WireTx(&mut self.outbound))
        }

        fn capabilities(&self) -> DeviceCapabilities {
            let mut capabilities = DeviceCapabilities::default();
            capabilities.medium = Medium::Ethernet;
            capabilities.max_transmission_unit = 1514;
            capabilities
        }
    }

    fn interface<D: Device>(mac: [u8; 6], addresses: [IpAddress; 2], device: &mut D) -> Interface {
        let mut interface = Interface::new(Config::new(EthernetAddress(mac).into()), device, Instant::ZERO);
        interface.update_ip_addrs(|list| {
            list.push(IpCidr::new(addresses[0], 24)).unwrap();
            list.push(IpCidr::new(addresses[1], 64)).unwrap();
        });
        interface
    }

    /// What one transfer showed.
    struct Transfer {
        /// The frames smoltcp built, in order.
        built: Vec<Vec<u8>>,
        /// The packets the backend took off the ring.
        packets: Vec<TransmittedFrame>,
        counters: NetfrontCounters,
    }

    /// The guest's socket sends `data` to the peer, which reads it all.
    fn transfer(rig: &mut Rig<'_, '_>, ipv6: bool, data: &[u8]) -> Transfer {
        let built = RefCell::new(Vec::new());
        let mut wire = Wire::default();
        let mut guest_interface = {
            let mut device = Recording { device: &mut rig.netfront, built: &built };
            interface(GUEST_MAC, [GUEST_IP.into(), GUEST_IP6.into()], &mut device)
        };
        let mut peer = interface(PEER_MAC, [PEER_IP.into(), PEER_IP6.into()], &mut wire);
        let mut guest_sockets = SocketSet::new(Vec::new());
        let mut peer_sockets = SocketSet::new(Vec::new());
        let server =
            tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 4096]), tcp::SocketBuffer::new(vec![0; 96 * 1024]));
        let server = guest_sockets.add(server);
        guest_sockets.get_mut::<tcp::Socket>(server).listen(PORT).unwrap();
        let client =
            tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 128 * 1024]), tcp::SocketBuffer::new(vec![0; 4096]));
        let client = peer_sockets.add(client);
        let destination: IpAddress = if ipv6 { GUEST_IP6.into() } else { GUEST_IP.into() };
        peer_sockets.get_mut::<tcp::Socket>(client).connect(peer.context(), (destination, PORT), 40_000).unwrap();
        let (mut sent, mut received, mut packets) = (0, Vec::new(), Vec::new());
        for step in 0..20_000 {
            let now = Instant::from_millis(step);
            for _ in 0..2 {
                let mut device = Recording { device: &mut rig.netfront, built: &built };
                guest_interface.poll(now, &mut device, &mut guest_sockets);
                let socket = guest_sockets.get_mut::<tcp::Socket>(server);
                if socket.can_send() && sent < data.len() {
                    sent += socket.send_slice(&data[sent..]).unwrap();
                }
            }
            rig.netfront.poll_rings();
            rig.netback.step();
            let taken = rig.netback.take_transmitted_frames();
            wire.inbound.extend(taken.iter().cloned().flat_map(TransmittedFrame::into_wire_frames));
            packets.extend(taken);
            peer.poll(now, &mut wire, &mut peer_sockets);
            let socket = peer_sockets.get_mut::<tcp::Socket>(client);
            while let Ok(1..) = socket.recv(|bytes| {
                received.extend_from_slice(bytes);
                (bytes.len(), bytes.len())
            }) {}
            peer.poll(now, &mut wire, &mut peer_sockets);
            for frame in wire.outbound.drain(..) {
                assert!(rig.netback.inject(&frame));
            }
            rig.netback.step();
            rig.netfront.take_notification();
            if received.len() >= data.len() {
                break;
            }
        }
        assert_eq!(received.len(), data.len(), "every byte arrived");
        assert!(received == data, "as sent");
        Transfer { built: built.into_inner(), packets, counters: rig.netfront.counters() }
    }

    fn bulk_data_crosses_as_large_segments(ipv6: bool) {
        each_rig(NetbackOptions::default(), CONFIG, |rig| {
            let data: Vec<u8> = (0..256 * 1024).map(|index: usize| (index * 31 + index / 4099) as u8).collect();
            let Transfer { built, packets, counters } = transfer(rig, ipv6, &data);
            // What left the vif, after the backend cut the large segments,
            // is what smoltcp built, frame for frame; over IPv4 the IDs
            // count up within each large segment (Linux's GSO does; smoltcp
            // sends 0 with Don't Fragment), the header checksum made anew.
            let mut wire = Vec::new();
            for packet in &packets {
                let frames = packet.clone().into_wire_frames();
                for (index, frame) in frames.iter().enumerate() {
                    let mut frame = frame.clone();
                    if !ipv6 && frame[12..14] == [0x08, 0x00] && packet.gso.is_some() {
                        assert_eq!(checksum::data(&frame[14..34]), 0xffff, "a valid IPv4 header");
                        assert_eq!(u16::from_be_bytes([frame[18], frame[19]]), index as u16, "IDs count up");
                        frame[18..20].fill(0);
                        frame[24..26].fill(0);
                        let sum = !checksum::data(&frame[14..34]);
                        frame[24..26].copy_from_slice(&sum.to_be_bytes());
                    }
                    wire.push(frame);
                }
            }
            assert_eq!(wire.len(), built.len(), "every frame smoltcp built left the vif");
            assert!(wire == built, "byte for byte");
            let large = packets.iter().filter(|packet| packet.gso.is_some()).count() as u64;
            assert_eq!(counters.tx_large_segments, large);
            assert_eq!(counters.tx_frames, built.len() as u64);
            assert_eq!(counters.tx_dropped, 0);
            // About 180 segments of data: most of them inside large ones, so
            // far fewer packets crossed the ring than the stack sent.
            assert!(counters.tx_segments_merged * 10 >= 180 * 8, "{counters:?}");
            assert!(packets.len() * 4 < built.len(), "{} packets for {} frames", packets.len(), built.len());
            assert_all_pages_back(rig);
            assert!(rig.netback.counters().violations.is_empty(), "{:?}", rig.netback.errors());
        });
    }

    #[test]
    fn smoltcp_bulk_data_crosses_as_large_segments_and_arrives_as_built() {
        bulk_data_crosses_as_large_segments(false);
    }

    #[test]
    fn smoltcp_bulk_data_over_ipv6_crosses_as_large_segments_too() {
        bulk_data_crosses_as_large_segments(true);
    }
}
