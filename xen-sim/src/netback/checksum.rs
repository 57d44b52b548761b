//! The little packet parsing the simulated netback needs for checksums.
//!
//! [`make_partial`] turns an IPv4 TCP or UDP frame's checksum into what
//! Linux hands a vif for its own traffic (`CHECKSUM_PARTIAL`): the checksum
//! field holds the folded, uncomplemented pseudo-header sum, and whoever
//! receives it must sum the transport header and payload over it and store
//! the complement. [`is_tcp_or_udp`] is the test Linux's
//! `skb_checksum_setup` applies to a frame flagged `NETTXF_csum_blank`.
//!
//! Never: index past the frame, or touch a frame it does not fully understand.

/// `ETH_P_IP`
const ETHERTYPE_IPV4: u16 = 0x0800;
/// `ETH_P_IPV6`
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// `ETH_HLEN`
const ETHERNET_HEADER: usize = 14;
/// `IPPROTO_TCP`
const TCP: u8 = 6;
/// `IPPROTO_UDP`
const UDP: u8 = 17;

/// Where an IPv4 frame's TCP or UDP segment lies.
struct Transport {
    start: usize,
    length: usize,
    protocol: u8,
    /// Source and destination addresses.
    addresses: [u8; 8],
}

fn big_endian(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// The TCP or UDP segment of an unfragmented IPv4 frame.
fn ipv4_transport(frame: &[u8]) -> Option<Transport> {
    if big_endian(frame, 12)? != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(ETHERNET_HEADER..)?;
    let header = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(big_endian(ip, 2)?);
    let fragmented = big_endian(ip, 6)? & 0x3fff != 0;
    let protocol = *ip.get(9)?;
    let usable = ip[0] >> 4 == 4 && header >= 20 && (header..=ip.len()).contains(&total) && !fragmented;
    if !usable || !matches!(protocol, TCP | UDP) {
        return None;
    }
    let addresses = ip.get(12..20)?.try_into().ok()?;
    Some(Transport { start: ETHERNET_HEADER + header, length: total - header, protocol, addresses })
}

/// Replaces an IPv4 TCP/UDP frame's checksum with the partial one; false
/// (frame untouched) for any other frame.
pub(super) fn make_partial(frame: &mut [u8]) -> bool {
    let Some(transport) = ipv4_transport(frame) else { return false };
    let field = transport.start + if transport.protocol == TCP { 16 } else { 6 };
    if field + 2 > transport.start + transport.length {
        return false;
    }
    let words = transport.addresses.chunks(2).map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])));
    let mut sum = words.sum::<u32>() + u32::from(transport.protocol) + transport.length as u32;
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    frame[field..field + 2].copy_from_slice(&(sum as u16).to_be_bytes());
    true
}

/// Whether the frame is an unfragmented IPv4 TCP segment: what netback
/// would hand over as a GSO packet of type TCPv4.
pub(super) fn is_ipv4_tcp(frame: &[u8]) -> bool {
    ipv4_transport(frame).is_some_and(|transport| transport.protocol == TCP)
}

/// Whether the frame is TCP or UDP over IPv4 or IPv6 (without extension headers).
pub(super) fn is_tcp_or_udp(frame: &[u8]) -> bool {
    let ipv6 = big_endian(frame, 12) == Some(ETHERTYPE_IPV6)
        && frame.len() >= ETHERNET_HEADER + 40
        && matches!(frame[ETHERNET_HEADER + 6], TCP | UDP);
    ipv6 || ipv4_transport(frame).is_some()
}
