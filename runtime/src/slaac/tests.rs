//! SLAAC's pure parts: advertisements read from real frames (built with
//! smoltcp's wire types), addresses and routers with their lifetimes and
//! bounds, the solicitations' schedule and frame.

use super::*;
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{NdiscPrefixInformation, NdiscRouterFlags};

const MAC: EthernetAddress = EthernetAddress([0x00, 0x16, 0x3e, 0x5a, 0x00, 0x01]);
const ROUTER_MAC: EthernetAddress = EthernetAddress([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);
const ROUTER: Ipv6Address = Ipv6Address::new(0xfe80, 0, 0, 0, 0xfcff, 0xffff, 0xfeff, 0xffff);
const ALL_NODES: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

fn prefix(first: u16, valid: u32, flags: NdiscPrefixInfoFlags, length: u8) -> NdiscPrefixInformation {
    NdiscPrefixInformation {
        prefix_len: length,
        flags,
        valid_lifetime: Duration::from_secs(valid.into()),
        preferred_lifetime: Duration::from_secs((valid / 2).into()),
        prefix: Ipv6Address::new(first, 0xdb8, 0, 1, 0, 0, 0, 0),
    }
}

fn autonomous(first: u16, valid: u32) -> NdiscPrefixInformation {
    prefix(first, valid, NdiscPrefixInfoFlags::ADDRCONF | NdiscPrefixInfoFlags::ON_LINK, 64)
}

/// An advertisement frame from `source` with `router_lifetime` seconds and
/// the prefix options `prefixes` (smoltcp's `NdiscRepr` emits one; the
/// others are appended as further options, the payload length fixed up).
fn advertisement_frame(
    source: Ipv6Address,
    hop_limit: u8,
    router_lifetime: u16,
    prefixes: &[NdiscPrefixInformation],
) -> Vec<u8> {
    let ndisc = NdiscRepr::RouterAdvert {
        hop_limit: 64,
        flags: NdiscRouterFlags::empty(),
        router_lifetime: Duration::from_secs(router_lifetime.into()),
        reachable_time: Duration::ZERO,
        retrans_time: Duration::ZERO,
        lladdr: Some(HardwareAddress::Ethernet(ROUTER_MAC).into()),
        mtu: None,
        prefix_info: prefixes.first().copied(),
    };
    let icmp = Icmpv6Repr::Ndisc(ndisc);
    let mut extra = Vec::new();
    for info in prefixes.iter().skip(1) {
        let repr = NdiscOptionRepr::PrefixInformation(*info);
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(&mut NdiscOption::new_unchecked(&mut bytes[..]));
        extra.extend(bytes);
    }
    let payload_len = icmp.buffer_len() + extra.len();
    let ip =
        Ipv6Repr { src_addr: source, dst_addr: ALL_NODES, next_header: IpProtocol::Icmpv6, payload_len, hop_limit };
    let ethernet = EthernetRepr {
        src_addr: ROUTER_MAC,
        dst_addr: EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
        ethertype: EthernetProtocol::Ipv6,
    };
    let mut frame = vec![0; ethernet.buffer_len() + ip.buffer_len() + payload_len];
    let mut ethernet_frame = EthernetFrame::new_unchecked(&mut frame[..]);
    ethernet.emit(&mut ethernet_frame);
    let mut ip_packet = Ipv6Packet::new_unchecked(ethernet_frame.payload_mut());
    ip.emit(&mut ip_packet);
    let payload = ip_packet.payload_mut();
    payload[icmp.buffer_len()..].copy_from_slice(&extra);
    let mut icmp_packet = Icmpv6Packet::new_unchecked(payload);
    // Emitted without a checksum, then summed over the whole message.
    icmp.emit(&source, &ALL_NODES, &mut icmp_packet, &ChecksumCapabilities::ignored());
    icmp_packet.fill_checksum(&source, &ALL_NODES);
    frame
}

fn at(seconds: u64) -> Instant {
    Instant::from_secs(seconds as i64)
}

#[test]
fn the_link_local_address_is_the_macs_eui64() {
    // 00:16:3e:5a:00:01: the universal/local bit flipped, ff:fe in the middle.
    assert_eq!(link_local(MAC), Ipv6Cidr::new(Ipv6Address::new(0xfe80, 0, 0, 0, 0x0216, 0x3eff, 0xfe5a, 0x0001), 64));
}

#[test]
fn an_advertisement_is_read_with_its_usable_prefixes() {
    let frame = advertisement_frame(
        ROUTER,
        255,
        1800,
        &[
            autonomous(0x2001, 3600),
            // Not autonomous, not /64, a link-local prefix: not for addresses.
            prefix(0x2002, 3600, NdiscPrefixInfoFlags::ON_LINK, 64),
            prefix(0x2003, 3600, NdiscPrefixInfoFlags::ADDRCONF, 48),
            prefix(0xfe80, 3600, NdiscPrefixInfoFlags::ADDRCONF, 64),
            autonomous(0xfd00, u32::MAX),
        ],
    );
    let advertisement = parse_advertisement(&frame).expect("an advertisement");
    assert_eq!(advertisement.router, ROUTER);
    assert_eq!(advertisement.router_lifetime, Duration::from_secs(1800));
    let prefixes: Vec<_> = advertisement.prefixes.iter().flatten().copied().collect();
    assert_eq!(
        prefixes,
        [
            Prefix {
                prefix: Ipv6Cidr::new(Ipv6Address::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0), 64),
                valid: Some(Duration::from_secs(3600))
            },
            Prefix { prefix: Ipv6Cidr::new(Ipv6Address::new(0xfd00, 0xdb8, 0, 1, 0, 0, 0, 0), 64), valid: None },
        ]
    );
}

#[test]
fn advertisements_failing_rfc_4861s_checks_are_not_read() {
    let good = advertisement_frame(ROUTER, 255, 1800, &[autonomous(0x2001, 3600)]);
    assert!(parse_advertisement(&good).is_some());
    // Forwarded by a router (hop limit below 255).
    assert_eq!(parse_advertisement(&advertisement_frame(ROUTER, 64, 1800, &[autonomous(0x2001, 3600)])), None);
    // From a global address.
    let global = Ipv6Address::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1);
    assert_eq!(parse_advertisement(&advertisement_frame(global, 255, 1800, &[autonomous(0x2001, 3600)])), None);
    // A bad checksum.
    let mut corrupt = good.clone();
    *corrupt.last_mut().unwrap() ^= 1;
    assert_eq!(parse_advertisement(&corrupt), None);
    // Cut short, and other frames.
    assert_eq!(parse_advertisement(&good[..good.len() - 5]), None);
    assert_eq!(parse_advertisement(&router_solicitation(MAC, link_local(MAC).address())), None);
    assert_eq!(parse_advertisement(&[0; 100]), None);
}

#[test]
fn a_prefix_gives_an_address_and_the_source_a_default_route_for_their_lifetimes() {
    let mut slaac = Slaac::default();
    let advertisement =
        parse_advertisement(&advertisement_frame(ROUTER, 255, 600, &[autonomous(0x2001, 3600)])).unwrap();
    slaac.advertised(&advertisement, MAC, at(10));
    assert!(slaac.take_changed());
    assert!(!slaac.take_changed(), "taken");
    let expected = Ipv6Cidr::new(Ipv6Address::new(0x2001, 0xdb8, 0, 1, 0x0216, 0x3eff, 0xfe5a, 0x0001), 64);
    assert_eq!(slaac.addresses().collect::<Vec<_>>(), [expected]);
    assert_eq!(slaac.router(), Some(ROUTER));
    assert_eq!(slaac.deadline(), Some(at(610)), "the router's lifetime ends first");
    assert_eq!(slaac.advertisements(), 1);

    slaac.expire(at(609));
    assert!(!slaac.take_changed());
    slaac.expire(at(610));
    assert!(slaac.take_changed());
    assert_eq!(slaac.router(), None);
    assert_eq!(slaac.addresses().count(), 1);
    assert_eq!(slaac.deadline(), Some(at(3610)));
    slaac.expire(at(3610));
    assert!(slaac.take_changed());
    assert_eq!(slaac.addresses().count(), 0);
    assert_eq!(slaac.deadline(), None);
}

#[test]
fn a_router_lifetime_of_zero_removes_the_router() {
    let mut slaac = Slaac::default();
    let frame = |lifetime| parse_advertisement(&advertisement_frame(ROUTER, 255, lifetime, &[])).unwrap();
    slaac.advertised(&frame(600), MAC, at(0));
    assert_eq!(slaac.router(), Some(ROUTER));
    slaac.take_changed();
    slaac.advertised(&frame(0), MAC, at(1));
    assert!(slaac.take_changed());
    assert_eq!(slaac.router(), None);
}

#[test]
fn the_two_hour_rule_keeps_an_advertisement_from_cutting_an_address_short() {
    let mut slaac = Slaac::default();
    let with = |valid| parse_advertisement(&advertisement_frame(ROUTER, 255, 0, &[autonomous(0x2001, valid)])).unwrap();
    slaac.advertised(&with(86_400), MAC, at(0));
    // A day left; 60 s offered: cut to two hours, not to 60 s.
    slaac.advertised(&with(60), MAC, at(0));
    assert_eq!(slaac.deadline(), Some(at(7200)));
    // Two hours or less left: a shorter offer is ignored.
    slaac.advertised(&with(60), MAC, at(100));
    assert_eq!(slaac.deadline(), Some(at(7200)));
    // A longer one is taken.
    slaac.advertised(&with(10_000), MAC, at(100));
    assert_eq!(slaac.deadline(), Some(at(10_100)));
    // Infinite.
    slaac.advertised(&with(u32::MAX), MAC, at(200));
    assert_eq!(slaac.deadline(), None);
    slaac.expire(at(1_000_000));
    assert_eq!(slaac.addresses().count(), 1, "an infinite lifetime does not end");
}

#[test]
fn addresses_and_routers_are_bounded() {
    let mut slaac = Slaac::default();
    let prefixes: Vec<_> = (0..4).map(|index| autonomous(0x2001 + index, 3600)).collect();
    let advertisement = parse_advertisement(&advertisement_frame(ROUTER, 255, 600, &prefixes)).unwrap();
    slaac.advertised(&advertisement, MAC, at(0));
    assert_eq!(slaac.addresses().count(), MAX_ADDRESSES);
    for router in 1..=4u16 {
        let source = Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, router);
        slaac.advertised(&parse_advertisement(&advertisement_frame(source, 255, 600, &[])).unwrap(), MAC, at(0));
    }
    // ROUTER first, then one more: the others are not kept.
    assert_eq!(slaac.routers.iter().count(), MAX_ROUTERS);
    assert_eq!(slaac.router(), Some(ROUTER));
    // An address that went makes room for another prefix.
    slaac.forget();
    assert!(slaac.take_changed());
    assert_eq!((slaac.addresses().count(), slaac.router()), (0, None));
}

#[test]
fn solicitations_go_three_times_four_seconds_apart_once_the_link_is_up() {
    let mut schedule = Solicitation::default();
    assert!(!schedule.due(at(0), false), "no link");
    assert_eq!(schedule.deadline(), None);
    assert!(schedule.due(at(1), true));
    assert_eq!(schedule.deadline(), Some(at(5)));
    assert!(!schedule.due(at(4), true));
    assert!(schedule.due(at(5), true));
    assert!(schedule.due(at(9), true));
    assert!(!schedule.due(at(13), true), "three sent");
    assert_eq!(schedule.deadline(), None);

    let mut answered = Solicitation::default();
    assert!(answered.due(at(0), true));
    answered.answered();
    assert!(!answered.due(at(4), true));
    assert_eq!(answered.deadline(), None);
}

#[test]
fn a_solicitation_is_a_valid_router_solicit_to_all_routers() {
    let source = link_local(MAC).address();
    let frame = router_solicitation(MAC, source);
    let ethernet = EthernetFrame::new_checked(&frame[..]).unwrap();
    assert_eq!(ethernet.dst_addr(), EthernetAddress([0x33, 0x33, 0, 0, 0, 2]));
    let ip = Ipv6Packet::new_checked(ethernet.payload()).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (source, ALL_ROUTERS, 255));
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum(&source, &ALL_ROUTERS));
    let repr = NdiscRepr::parse(&icmp).unwrap();
    assert_eq!(repr, NdiscRepr::RouterSolicit { lladdr: Some(HardwareAddress::Ethernet(MAC).into()) });
}
