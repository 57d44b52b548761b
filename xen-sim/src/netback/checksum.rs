//! The little packet parsing the simulated netback needs for checksums.
//!
//! [`make_partial`] turns an IPv4 or IPv6 TCP or UDP frame's checksum into
//! what Linux hands a vif for its own traffic (`CHECKSUM_PARTIAL`): the
//! checksum field holds the folded, uncomplemented pseudo-header sum, and
//! whoever receives it must sum the transport header and payload over it
//! and store the complement. Over IPv6 the TCP or UDP header may follow
//! hop-by-hop, routing and destination options headers (at most
//! [`MAX_EXTENSION_HEADERS`]), as it may in what Linux sends. [`is_tcp_or_udp`]
//! is the test Linux's `skb_checksum_setup` applies to a frame flagged
//! `NETTXF_csum_blank`.
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
/// The fixed IPv6 header.
const IPV6_HEADER: usize = 40;
/// `NEXTHDR_HOP`, `NEXTHDR_ROUTING`, `NEXTHDR_DEST`: extension headers of
/// (next header, length in 8 octets beyond the first 8, data).
const IPV6_EXTENSIONS: [u8; 3] = [0, 43, 60];
/// Most IPv6 extension headers walked to the TCP or UDP header.
const MAX_EXTENSION_HEADERS: usize = 8;

/// The IP version a TCP or UDP segment is carried over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IpVersion {
    V4,
    V6,
}

/// Where an IPv4 or IPv6 frame's TCP or UDP segment lies.
struct Transport<'a> {
    start: usize,
    length: usize,
    protocol: u8,
    version: IpVersion,
    /// Source and destination addresses (8 or 32 bytes).
    addresses: &'a [u8],
}

fn big_endian(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// The TCP or UDP segment of an unfragmented IPv4 frame.
fn ipv4_transport(frame: &[u8]) -> Option<Transport<'_>> {
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
    let addresses = ip.get(12..20)?;
    let version = IpVersion::V4;
    Some(Transport { start: ETHERNET_HEADER + header, length: total - header, protocol, version, addresses })
}

/// The TCP or UDP segment of an IPv6 frame whose payload length fits the
/// frame, directly after the fixed header or behind hop-by-hop, routing
/// and destination options headers.
fn ipv6_transport(frame: &[u8]) -> Option<Transport<'_>> {
    if big_endian(frame, 12)? != ETHERTYPE_IPV6 {
        return None;
    }
    let ip = frame.get(ETHERNET_HEADER..)?;
    if ip.first()? >> 4 != 6 {
        return None;
    }
    let packet = ip.get(..IPV6_HEADER + usize::from(big_endian(ip, 4)?))?;
    let mut next = *packet.get(6)?;
    let mut offset = IPV6_HEADER;
    for _ in 0..MAX_EXTENSION_HEADERS {
        if !IPV6_EXTENSIONS.contains(&next) {
            break;
        }
        next = *packet.get(offset)?;
        offset += (usize::from(*packet.get(offset + 1)?) + 1) * 8;
    }
    if !matches!(next, TCP | UDP) || offset > packet.len() {
        return None;
    }
    let addresses = packet.get(8..40)?;
    let version = IpVersion::V6;
    Some(Transport {
        start: ETHERNET_HEADER + offset,
        length: packet.len() - offset,
        protocol: next,
        version,
        addresses,
    })
}

fn transport(frame: &[u8]) -> Option<Transport<'_>> {
    ipv4_transport(frame).or_else(|| ipv6_transport(frame))
}

/// Where a frame's TCP segment lies, over IPv4 or IPv6 (as
/// [`make_partial`] reads it): its IP version, where it starts in the
/// frame, and its length (TCP header and payload).
pub(super) fn tcp_segment(frame: &[u8]) -> Option<(IpVersion, usize, usize)> {
    transport(frame).filter(|transport| transport.protocol == TCP).map(|t| (t.version, t.start, t.length))
}

/// The pseudo-header sum (folded, not complemented) of `frame`'s TCP or
/// UDP segment, taken as `length` bytes long: Linux's `CHECKSUM_PARTIAL`
/// value for a segment of that length.
pub(super) fn pseudo_header(frame: &[u8], length: usize) -> Option<u16> {
    let transport = transport(frame)?;
    let words = transport.addresses.chunks(2).map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])));
    Some(fold(words.sum::<u32>() + u32::from(transport.protocol) + length as u32))
}

/// The ones' complement sum of `bytes` (big-endian 16-bit words, an odd
/// last byte padded with zero) added to `sum`, folded to 16 bits.
pub(super) fn sum(bytes: &[u8], sum: u32) -> u16 {
    let words = bytes.chunks(2).map(|pair| u32::from(u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)])));
    fold(words.fold(sum, |sum, word| fold(sum) as u32 + word))
}

/// Folds a 32-bit ones' complement sum to 16 bits.
pub(super) fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Replaces an IPv4 or IPv6 TCP/UDP frame's checksum with the partial one;
/// false (frame untouched) for any other frame.
pub(super) fn make_partial(frame: &mut [u8]) -> bool {
    let Some(transport) = transport(frame) else { return false };
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

/// The IP version of a TCP or UDP frame (as [`make_partial`] reads it),
/// if it is one.
pub(super) fn tcp_or_udp_version(frame: &[u8]) -> Option<IpVersion> {
    transport(frame).map(|transport| transport.version)
}

/// The IP version of a TCP frame with a whole TCP header: what netback
/// would hand over as a GSO packet of type TCPv4 or TCPv6.
pub(super) fn tcp_version(frame: &[u8]) -> Option<IpVersion> {
    transport(frame).filter(|transport| transport.protocol == TCP && transport.length >= 20).map(|t| t.version)
}

/// Whether the frame is TCP or UDP over IPv4 or IPv6 (without extension headers).
pub(super) fn is_tcp_or_udp(frame: &[u8]) -> bool {
    let ipv6 = big_endian(frame, 12) == Some(ETHERTYPE_IPV6)
        && frame.len() >= ETHERNET_HEADER + 40
        && matches!(frame[ETHERNET_HEADER + 6], TCP | UDP);
    ipv6 || ipv4_transport(frame).is_some()
}
