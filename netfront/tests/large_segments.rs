//! Large segments (`feature-gso-tcpv4`, `feature-gso-tcpv6`) against the
//! simulated netback: 64 KiB TCP segments over IPv4 and IPv6 over many rx
//! slots with a GSO extra-info slot, received whole, their partial
//! checksums completed, and accepted by smoltcp; extra-info chains that
//! break the rules (a GSO type on the other IP version's frame included)
//! dropped and counted, the link kept; the same over bounce buffers and at
//! MTU 9000.
#![forbid(unsafe_code)]

use dma::{BackendTrust, BounceCapacity};
use netfront::link::{MAX_FRAME, Malformed};
use netfront::testing::{CONFIG, Rig, frame, ip_frame, ipv6_frame, with_config};
use netfront::{LARGE_SEGMENT_SLOTS, NetfrontConfig};
use xen_sim::netback::{GsoFault, Hostility, Lasting, NetbackOptions, ReceiveChecksum};

/// Guest RAM for these tests: the pools, bounce pages and 64 KiB frames.
const MEMORY_PAGES: usize = 1024;

/// Both trusts: pages granted to the backend, and bounce buffers.
fn trusts() -> [BackendTrust; 2] {
    [BackendTrust::Trusted, BackendTrust::Untrusted(BounceCapacity { read_only_pages: 160, writable_pages: 160 })]
}

/// Runs `test` over both trusts and both addressings, with `options`.
fn each_rig(options: NetbackOptions, config: NetfrontConfig, mut test: impl FnMut(&mut Rig<'_, '_>)) {
    for trust in trusts() {
        for addressing in netfront::testing::ADDRESSINGS {
            let options = NetbackOptions { addressing, ..options.clone() };
            with_config(MEMORY_PAGES, trust, options, config, &mut test);
        }
    }
}

/// Takes frames for a few turns of the loop.
fn receive_for_a_while(rig: &mut Rig<'_, '_>) -> Vec<Vec<u8>> {
    let mut received = Vec::new();
    for _ in 0..6 {
        received.extend(rig.turn());
    }
    received
}

#[test]
fn a_64_kib_segment_over_eighteen_slots_reaches_the_stack_whole() {
    each_rig(NetbackOptions::default(), CONFIG, |rig| {
        let rules = rig.netfront.rx_rules().expect("a link");
        assert!(rules.large_segments && rules.mtu == 1500);
        // The largest IPv4 packet: 65 535 bytes, 17 pages with its header.
        let segment = ip_frame(MAX_FRAME, true, 3);
        let small = ip_frame(600, true, 4);
        let requests_before = rig.netback.counters().receive_requests;
        let bounced_before = rig.netfront.dma_counters().bounce_bytes;
        assert!(rig.netback.inject(&segment) && rig.netback.inject(&small));
        let received = receive_for_a_while(rig);
        // Over bounce buffers only the frames' bytes are copied out of the
        // bounce pages (not the 19 whole pages they came in).
        let bounced = rig.netfront.dma_counters().bounce_bytes - bounced_before;
        let expected = if rig.netfront.dma().is_bouncing() { (segment.len() + small.len()) as u64 } else { 0 };
        assert_eq!(bounced, expected, "bytes copied from bounce pages");
        assert!(
            received == [segment.clone(), small.clone()],
            "{} frames, {:?}",
            received.len(),
            rig.netfront.counters()
        );
        let backend = rig.netback.counters();
        assert_eq!(backend.received_large_segments, 1, "sent as one large segment");
        assert_eq!(
            backend.receive_requests - requests_before,
            LARGE_SEGMENT_SLOTS as u64 + 1,
            "17 data slots and the GSO slot, then the small frame's one"
        );
        let counters = rig.netfront.counters();
        assert_eq!((counters.rx_large_segments, counters.rx_malformed, counters.violations), (1, 0, 0));
        // Both came with partial checksums (offload is on), completed here.
        assert_eq!(counters.rx_checksums_completed, 2);
        assert!(rig.netback.errors().is_empty(), "{:?}", rig.netback.errors());
        for _ in 0..4 {
            rig.turn();
        }
        assert_eq!(rig.pages.outstanding_pages(), rig.idle_pages, "every rx page came home");
    });
}

/// The largest IPv6 packet a frame holds (65 535 bytes, its header
/// included), as a TCPv6 segment over 17 data slots and the GSO slot; then
/// one behind a hop-by-hop header, and small IPv6 TCP and UDP frames, all
/// with partial checksums completed here into the injected bytes.
#[test]
fn a_64_kib_ipv6_segment_over_eighteen_slots_reaches_the_stack_whole() {
    each_rig(NetbackOptions::default(), CONFIG, |rig| {
        let features = rig.netback.frontend_features().expect("connected");
        assert!(features.gso_tcpv6 && features.ipv6_checksum_offload);
        let segment = ipv6_frame(MAX_FRAME, true, false, 3);
        assert_eq!(segment.len(), MAX_FRAME);
        let behind_options = ipv6_frame(20_000, true, true, 4);
        let small = [ipv6_frame(600, true, false, 5), ipv6_frame(601, false, true, 6)];
        let requests_before = rig.netback.counters().receive_requests;
        for frame in [&segment, &behind_options, &small[0], &small[1]] {
            assert!(rig.netback.inject(frame));
        }
        let received = receive_for_a_while(rig);
        let expected = [segment.clone(), behind_options.clone(), small[0].clone(), small[1].clone()];
        assert!(received == expected, "{} frames, {:?}", received.len(), rig.netfront.counters());
        let backend = rig.netback.counters();
        assert_eq!(backend.received_large_segments, 2, "both over the MTU sent as large segments");
        assert_eq!(
            backend.receive_requests - requests_before,
            LARGE_SEGMENT_SLOTS as u64 + 6 + 2,
            "17 data slots and the GSO slot, 5 and a GSO slot, then one each"
        );
        let counters = rig.netfront.counters();
        assert_eq!((counters.rx_large_segments, counters.rx_malformed, counters.violations), (2, 0, 0));
        assert_eq!((counters.rx_checksums_completed, counters.rx_checksums_unsupported), (4, 0));
        assert!(rig.netback.errors().is_empty(), "{:?}", rig.netback.errors());
        for _ in 0..4 {
            rig.turn();
        }
        assert_eq!(rig.pages.outstanding_pages(), rig.idle_pages, "every rx page came home");
    });
}

#[test]
fn jumbo_mtu_9000_carries_full_frames_and_larger_segments() {
    let options = NetbackOptions { mtu: Some(9000), ..NetbackOptions::default() };
    each_rig(options, CONFIG, |rig| {
        assert_eq!(rig.netfront.rx_rules().map(|rules| rules.mtu), Some(9000));
        let jumbo = ip_frame(9014, true, 5);
        let segment = ip_frame(40_000, true, 6);
        let udp = ip_frame(9014, false, 7);
        for frame in [&jumbo, &segment, &udp] {
            assert!(rig.netback.inject(frame));
        }
        let received = receive_for_a_while(rig);
        assert!(received == [jumbo.clone(), segment.clone(), udp.clone()], "{} frames arrived", received.len());
        assert_eq!(rig.netback.counters().received_large_segments, 1, "only the frame over the MTU");
        let counters = rig.netfront.counters();
        assert_eq!((counters.rx_large_segments, counters.rx_malformed, counters.violations), (1, 0, 0));
    });
}

/// A guest that does not ask (configured off, or an rx pool too small for
/// a segment and other traffic) keeps `feature-no-csum-offload=1` and gets
/// no GSO slots; a GSO slot sent anyway is dropped as not negotiated.
#[test]
fn without_large_segments_no_gso_is_asked_for_or_accepted() {
    let off = NetfrontConfig { large_segments: false, ..CONFIG };
    let small_pool = NetfrontConfig { rx_buffers: 16, ..CONFIG };
    for config in [off, small_pool] {
        each_rig(NetbackOptions::default(), config, |rig| {
            let features = rig.netback.frontend_features().expect("connected");
            assert!(!features.gso_tcpv4 && features.no_checksum_offload, "{config:?}");
            assert!(!features.gso_tcpv6 && !features.ipv6_checksum_offload, "{config:?}");
            let big = ip_frame(12_000, true, 8);
            let big6 = ipv6_frame(12_000, true, false, 8);
            assert!(rig.netback.inject(&big) && rig.netback.inject(&big6));
            assert_eq!(receive_for_a_while(rig), [big.as_slice(), &big6], "multi-slot, no GSO slot");
            assert_eq!(rig.netback.counters().received_large_segments, 0);
            assert_eq!(rig.netfront.counters().rx_checksums_completed, 0, "complete checksums");
            rig.netback.misbehave(Hostility::BadGso(GsoFault::OnAnyFrame), Lasting::Once);
            assert!(rig.netback.inject(&big));
            assert!(receive_for_a_while(rig).is_empty());
            assert_eq!(rig.netfront.last_malformed(), Some(Malformed::GsoNotNegotiated));
            let counters = rig.netfront.counters();
            assert_eq!((counters.rx_malformed, counters.violations, counters.rx_large_segments), (1, 0, 0));
        });
    }
}

/// A broken GSO slot, the frame it comes on, and the reason expected.
type Case = (GsoFault, Vec<u8>, fn(Malformed) -> bool);

/// Every way a well-delimited extra-info chain can break the rules: the
/// frame is dropped and counted with its reason, its pages come home, the
/// link stays up and the next frame arrives.
#[test]
fn malformed_gso_information_is_dropped_and_counted() {
    let segment = || ip_frame(20_000, true, 9);
    let segment6 = || ipv6_frame(20_000, true, false, 9);
    let cases: [Case; 14] = [
        (GsoFault::UnknownType, segment(), |reason| reason == Malformed::UnknownExtraType(9)),
        (GsoFault::SizeZero, segment(), |reason| reason == Malformed::GsoSize(0)),
        (GsoFault::SizeHuge, segment(), |reason| reason == Malformed::GsoSize(u16::MAX)),
        (GsoFault::SizeZero, segment6(), |reason| reason == Malformed::GsoSize(0)),
        (GsoFault::SizeHuge, segment6(), |reason| reason == Malformed::GsoSize(u16::MAX)),
        // Either GSO type on the other IP version's segment.
        (GsoFault::TypeTcpv6, segment(), |reason| reason == Malformed::GsoNotTcpIpv6),
        (GsoFault::TypeTcpv4, segment6(), |reason| reason == Malformed::GsoNotTcpIpv4),
        // IPv6 UDP frames under a TCPv4 and a TCPv6 slot.
        (GsoFault::OnAnyFrame, ipv6_frame(3000, false, false, 11), |reason| reason == Malformed::GsoNotTcpIpv4),
        (GsoFault::TypeTcpv6, ipv6_frame(3000, false, false, 11), |reason| reason == Malformed::GsoNotTcpIpv6),
        (GsoFault::DuplicateType, segment(), |reason| reason == Malformed::DuplicateExtraType(1)),
        (GsoFault::NotOnFirstSlot, segment(), |reason| reason == Malformed::ExtraInfoNotFirst),
        (GsoFault::TooLong, ip_frame(MAX_FRAME, true, 10), |reason| reason == Malformed::TooLong(MAX_FRAME + 4096)),
        // A UDP frame and an untyped one under a GSO slot of type TCPv4.
        (GsoFault::OnAnyFrame, ip_frame(3000, false, 11), |reason| reason == Malformed::GsoNotTcpIpv4),
        (GsoFault::DuplicateType, segment6(), |reason| reason == Malformed::DuplicateExtraType(1)),
    ];
    for (fault, bad, expected) in cases {
        each_rig(NetbackOptions::default(), CONFIG, |rig| {
            rig.netback.misbehave(Hostility::BadGso(fault), Lasting::Once);
            let good = ip_frame(1514, true, 12);
            assert!(rig.netback.inject(&bad) && rig.netback.inject(&good));
            let received = receive_for_a_while(rig);
            assert!(received == [good.clone()], "{fault:?}: {} frames arrived", received.len());
            let reason = rig.netfront.last_malformed();
            assert!(reason.is_some_and(expected), "{fault:?}: dropped as {reason:?}");
            let counters = rig.netfront.counters();
            assert_eq!((counters.rx_malformed, counters.violations, counters.connects), (1, 0, 1), "{fault:?}");
            assert_eq!(rig.pages.outstanding_pages(), rig.idle_pages, "{fault:?}: every page came home");
        });
    }
    each_rig(NetbackOptions::default(), CONFIG, |rig| {
        rig.netback.misbehave(Hostility::BadGso(GsoFault::OnAnyFrame), Lasting::Once);
        assert!(rig.netback.inject(&frame(6000, 13)));
        assert!(receive_for_a_while(rig).is_empty());
        assert_eq!(rig.netfront.last_malformed(), Some(Malformed::GsoNotTcpIpv4));
    });
}

/// `NETRXF_extra_info` with no extra slot behind it: the next data slot is
/// read in its place, and (its id, a ring position past the extra types,
/// read as the type) fails as an unknown type; the frame is dropped.
#[test]
fn a_missing_extra_slot_drops_the_frame() {
    each_rig(NetbackOptions::default(), CONFIG, |rig| {
        for index in 0..8 {
            assert!(rig.netback.inject(&frame(60, index)));
        }
        assert_eq!(receive_for_a_while(rig).len(), 8);
        rig.netback.misbehave(Hostility::BadGso(GsoFault::MissingExtraSlot), Lasting::Once);
        let good = ip_frame(100, true, 14);
        assert!(rig.netback.inject(&ip_frame(12_000, true, 15)) && rig.netback.inject(&good));
        assert_eq!(receive_for_a_while(rig), [good.as_slice()]);
        let reason = rig.netfront.last_malformed();
        assert!(matches!(reason, Some(Malformed::UnknownExtraType(kind)) if kind >= 6), "{reason:?}");
        let counters = rig.netfront.counters();
        assert_eq!((counters.rx_malformed, counters.violations), (1, 0));
    });
}

/// A chain longer than there are extra types: where the frame ends cannot
/// be known, so it is a violation: the link is torn down, counted, and
/// comes back.
#[test]
fn an_extra_info_chain_too_long_breaks_the_link_which_recovers() {
    each_rig(NetbackOptions::default(), CONFIG, |rig| {
        rig.netback.misbehave(Hostility::BadGso(GsoFault::ChainTooLong), Lasting::Once);
        assert!(rig.netback.inject(&ip_frame(20_000, true, 16)));
        assert!(receive_for_a_while(rig).is_empty());
        let counters = rig.netfront.counters();
        assert_eq!((counters.violations, counters.disconnects), (1, 1));
        rig.assert_recovers();
    });
}

/// The backend's checksum flags on large segments: a validated (not
/// partial) segment's checksum is left as it is; a partial one completed.
#[test]
fn large_segments_arrive_under_every_checksum_mode() {
    for receive_checksum in [ReceiveChecksum::PartialLikeDom0, ReceiveChecksum::Validated, ReceiveChecksum::Unflagged] {
        let options = NetbackOptions { receive_checksum, ..NetbackOptions::default() };
        each_rig(options, CONFIG, |rig| {
            let segment = ip_frame(30_000, true, 17);
            assert!(rig.netback.inject(&segment));
            assert_eq!(receive_for_a_while(rig), [segment.as_slice()], "{receive_checksum:?}");
            assert_eq!(rig.netfront.counters().rx_large_segments, 1);
        });
    }
}

mod through_smoltcp {
    //! A TCP receiver in smoltcp over the frontend, and a peer written
    //! here that sends it one 64 KiB segment, over IPv4 or IPv6.

    use super::*;
    use smoltcp::iface::{Config, Interface, SocketSet};
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::socket::tcp;
    use smoltcp::time::Instant;
    use smoltcp::wire::{
        ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv6Packet,
        Icmpv6Repr, IpAddress, IpCidr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, Ipv6Address, Ipv6Packet,
        Ipv6Repr, NdiscNeighborFlags, NdiscRepr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    };

    const GUEST_MAC: EthernetAddress = EthernetAddress([0x00, 0x16, 0x3e, 0x00, 0x00, 0x01]);
    const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
    const GUEST_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const PEER_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
    const GUEST_IP6: Ipv6Address = Ipv6Address::new(0xfd00, 0, 0, 0, 0x0216, 0x3eff, 0xfe00, 1);
    const PEER_IP6: Ipv6Address = Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
    const PEER_PORT: u16 = 40_000;
    const PORT: u16 = 80;

    fn ethernet(ethertype: EthernetProtocol, payload_length: usize) -> (Vec<u8>, EthernetRepr) {
        let repr = EthernetRepr { src_addr: PEER_MAC, dst_addr: GUEST_MAC, ethertype };
        (vec![0; repr.buffer_len() + payload_length], repr)
    }

    fn arp_request() -> Vec<u8> {
        let arp = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: PEER_MAC,
            source_protocol_addr: PEER_IP,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: GUEST_IP,
        };
        let (mut bytes, repr) = ethernet(EthernetProtocol::Arp, arp.buffer_len());
        let mut frame = EthernetFrame::new_unchecked(&mut bytes);
        repr.emit(&mut frame);
        arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        bytes
    }

    /// The peer's unsolicited neighbour advertisement (override, its MAC):
    /// IPv6's way to fill the guest's neighbour cache, as the ARP request
    /// does for IPv4.
    fn neighbour_advertisement() -> Vec<u8> {
        let icmp = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::OVERRIDE,
            target_addr: PEER_IP6,
            lladdr: Some(PEER_MAC.into()),
        });
        let ip = Ipv6Repr {
            src_addr: PEER_IP6,
            dst_addr: GUEST_IP6,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp.buffer_len(),
            hop_limit: 255,
        };
        let (mut bytes, repr) = ethernet(EthernetProtocol::Ipv6, ip.buffer_len() + icmp.buffer_len());
        let mut frame = EthernetFrame::new_unchecked(&mut bytes);
        repr.emit(&mut frame);
        let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet);
        let checksums = ChecksumCapabilities::default();
        icmp.emit(&PEER_IP6, &GUEST_IP6, &mut Icmpv6Packet::new_unchecked(packet.payload_mut()), &checksums);
        bytes
    }

    /// The peer's segment over IPv4 or IPv6, checksums complete.
    fn segment(tcp: &TcpRepr<'_>, ipv6: bool) -> Vec<u8> {
        let checksums = ChecksumCapabilities::default();
        if ipv6 {
            let ip = Ipv6Repr {
                src_addr: PEER_IP6,
                dst_addr: GUEST_IP6,
                next_header: IpProtocol::Tcp,
                payload_len: tcp.buffer_len(),
                hop_limit: 64,
            };
            let (mut bytes, repr) = ethernet(EthernetProtocol::Ipv6, ip.buffer_len() + tcp.buffer_len());
            let mut frame = EthernetFrame::new_unchecked(&mut bytes);
            repr.emit(&mut frame);
            let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
            ip.emit(&mut packet);
            let mut tcp_packet = TcpPacket::new_unchecked(packet.payload_mut());
            tcp.emit(&mut tcp_packet, &PEER_IP6.into(), &GUEST_IP6.into(), &checksums);
            return bytes;
        }
        let ip = Ipv4Repr {
            src_addr: PEER_IP,
            dst_addr: GUEST_IP,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let (mut bytes, repr) = ethernet(EthernetProtocol::Ipv4, ip.buffer_len() + tcp.buffer_len());
        let mut frame = EthernetFrame::new_unchecked(&mut bytes);
        repr.emit(&mut frame);
        let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet, &checksums);
        let mut tcp_packet = TcpPacket::new_unchecked(packet.payload_mut());
        tcp.emit(&mut tcp_packet, &PEER_IP.into(), &GUEST_IP.into(), &checksums);
        bytes
    }

    /// The TCP segments among the frames the guest sent, over either IP
    /// version: (seq, ack, flags). Other IPv6 traffic (neighbour discovery,
    /// MLD) is skipped.
    fn segments_sent(frames: &[Vec<u8>]) -> Vec<(TcpSeqNumber, Option<TcpSeqNumber>, TcpControl)> {
        let mut found = Vec::new();
        for bytes in frames {
            let Ok(frame) = EthernetFrame::new_checked(bytes) else { continue };
            let (source, destination, payload) = match frame.ethertype() {
                EthernetProtocol::Ipv4 => {
                    let ip = Ipv4Packet::new_checked(frame.payload()).expect("the guest sends whole IPv4 packets");
                    (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()), ip.payload())
                }
                EthernetProtocol::Ipv6 => {
                    let ip = Ipv6Packet::new_checked(frame.payload()).expect("the guest sends whole IPv6 packets");
                    if ip.next_header() != IpProtocol::Tcp {
                        continue;
                    }
                    (IpAddress::Ipv6(ip.src_addr()), IpAddress::Ipv6(ip.dst_addr()), ip.payload())
                }
                _ => continue,
            };
            let tcp = TcpPacket::new_checked(payload).expect("whole TCP segments");
            let repr =
                TcpRepr::parse(&tcp, &source, &destination, &ChecksumCapabilities::default()).expect("a valid segment");
            found.push((repr.seq_number, repr.ack_number, repr.control));
        }
        found
    }

    fn repr(control: TcpControl, seq: i32, ack: Option<TcpSeqNumber>, payload: &[u8]) -> TcpRepr<'_> {
        TcpRepr {
            src_port: PEER_PORT,
            dst_port: PORT,
            control,
            seq_number: TcpSeqNumber(seq),
            ack_number: ack,
            window_len: 65_535,
            window_scale: None,
            max_seg_size: (control == TcpControl::Syn).then_some(1460),
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        }
    }

    /// The peer connects and sends the largest TCP segment a frame holds
    /// over IPv4 or IPv6 (65 495 or 65 475 bytes): it arrives as one GSO
    /// packet of 18 slots with a partial checksum, and smoltcp takes it
    /// whole: every byte reaches the socket and one ACK covers them all.
    fn largest_segment_reaches_the_socket(ipv6: bool) {
        each_rig(NetbackOptions::default(), CONFIG, |rig| {
            let mut interface = Interface::new(Config::new(GUEST_MAC.into()), &mut rig.netfront, Instant::ZERO);
            interface.update_ip_addrs(|addresses| {
                addresses.push(IpCidr::new(GUEST_IP.into(), 24)).unwrap();
                addresses.push(IpCidr::new(GUEST_IP6.into(), 64)).unwrap();
            });
            let mut sockets = SocketSet::new(Vec::new());
            let socket =
                tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 65_535]), tcp::SocketBuffer::new(vec![0; 4096]));
            let handle = sockets.add(socket);
            sockets.get_mut::<tcp::Socket>(handle).listen(PORT).unwrap();
            let mut now = 0;
            let mut exchange = |rig: &mut Rig<'_, '_>, frames: &[Vec<u8>]| {
                for frame in frames {
                    assert!(rig.netback.inject(frame));
                }
                let mut sent = Vec::new();
                for _ in 0..6 {
                    now += 10;
                    rig.netback.step();
                    rig.netfront.take_notification();
                    interface.poll(Instant::from_millis(now), &mut rig.netfront, &mut sockets);
                    rig.netfront.poll_rings();
                    rig.netback.step();
                    sent.extend(rig.netback.take_transmitted());
                }
                sent
            };
            exchange(rig, &[if ipv6 { neighbour_advertisement() } else { arp_request() }]);
            let syn = segment(&repr(TcpControl::Syn, 1000, None, &[]), ipv6);
            let syn_ack = segments_sent(&exchange(rig, &[syn]));
            let [(guest_seq, Some(ack), TcpControl::Syn)] = syn_ack[..] else { panic!("no SYN-ACK: {syn_ack:?}") };
            assert_eq!(ack, TcpSeqNumber(1001));
            let guest_next = Some(guest_seq + 1);
            let length = if ipv6 { 65_475 } else { 65_495 };
            let payload: Vec<u8> = (0..length).map(|index| (index % 251) as u8).collect();
            let data = segment(&repr(TcpControl::Psh, 1001, guest_next, &payload), ipv6);
            assert_eq!(data.len(), MAX_FRAME, "the largest IP packet a frame holds");
            let ack = segment(&repr(TcpControl::None, 1001, guest_next, &[]), ipv6);
            let acks = segments_sent(&exchange(rig, &[ack, data]));
            assert_eq!(rig.netback.counters().received_large_segments, 1, "sent as one large segment");
            let counters = rig.netfront.counters();
            assert_eq!(counters.rx_large_segments, 1, "received as one");
            // The SYN, the ACK and the data came partial (dom0's traffic).
            assert_eq!((counters.rx_checksums_completed, counters.rx_checksums_unsupported), (3, 0));
            let end = TcpSeqNumber(1001) + payload.len();
            assert!(acks.iter().any(|(_, ack, _)| *ack == Some(end)), "every byte acknowledged: {acks:?}");
            let mut read = vec![0; payload.len() + 1];
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            let mut got = 0;
            while let Ok(count @ 1..) = socket.recv_slice(&mut read[got..]) {
                got += count;
            }
            assert!(got == payload.len() && read[..got] == payload[..], "{got} bytes read of {}", payload.len());
        });
    }

    #[test]
    fn smoltcp_accepts_a_64_kib_segment_whole() {
        largest_segment_reaches_the_socket(false);
    }

    /// The same over IPv6: a TCPv6 GSO packet, its partial checksum
    /// completed over the IPv6 pseudo-header, verified by smoltcp.
    #[test]
    fn smoltcp_accepts_a_64_kib_ipv6_segment_whole() {
        largest_segment_reaches_the_socket(true);
    }
}
