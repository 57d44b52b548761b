//! Completing partial checksums (`NETRXF_csum_blank`).
//!
//! With large segments on, netfront takes partial checksums
//! (`feature-no-csum-offload=0`, `feature-ipv6-csum-offload=1`), so TCP and
//! UDP from dom0 itself arrive with the checksum field holding only the
//! pseudo-header sum (Linux's `CHECKSUM_PARTIAL`); with them off it asks
//! for complete ones, and a backend that sends a blank one anyway would
//! hand smoltcp a segment it must drop. Either way, such frames are
//! completed here: the checksum field is filled in over the pseudo-header
//! and the payload (with smoltcp's checksum helpers), as the sender's NIC
//! would have done.
//!
//! Handled: TCP and UDP in Ethernet II frames, over unfragmented IPv4, or
//! over IPv6 directly or behind at most [`MAX_EXTENSION_HEADERS`] of the
//! extension headers that carry no payload of their own: hop-by-hop
//! options (0, first only), routing (43) and destination options (60).
//! Anything else (a fragment header, ESP, AH, another protocol, lengths
//! that do not fit the frame) is reported as [`Completion::Unsupported`]
//! and left alone. The pseudo-header's destination is the IPv6 header's:
//! at the receiver that is the final destination, routing header or not
//! (RFC 8200, 8.1).
//!
//! Contract: the frame's bytes come from the backend, which may be
//! hostile; every index is checked against the frame before it is used,
//! and nothing here panics on any input.

/// What completing a frame's checksum did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The TCP or UDP checksum was computed and written.
    Completed,
    /// Not a TCP/UDP frame over IPv4 or IPv6 that this module reads (see
    /// the module documentation), or too short to be one.
    Unsupported,
}

use smoltcp::wire::{IpProtocol, Ipv4Address, Ipv6Address, checksum};

const ETHERNET_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const PROTOCOL_TCP: u8 = 6;
const PROTOCOL_UDP: u8 = 17;
/// The fixed IPv6 header.
const IPV6_HEADER: usize = 40;
/// IPv6 next-header values of the extension headers walked: each starts
/// with (next header, length in 8-octet units not counting the first 8).
const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const DESTINATION_OPTIONS: u8 = 60;
/// Most IPv6 extension headers walked before the TCP or UDP header: a
/// hop-by-hop, a destination options, a routing and a second destination
/// options header is what RFC 8200 (4.1) orders, with room to spare; a
/// frame with more is not completed.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// The source and destination addresses the pseudo-header is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addresses {
    V4(Ipv4Address, Ipv4Address),
    V6(Ipv6Address, Ipv6Address),
}

/// Where a frame's TCP or UDP segment lies: `start..end` in the frame,
/// both within it, `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transport {
    /// The transport header's first byte.
    pub start: usize,
    /// One past the segment's last byte (the IP length's end, not the
    /// frame's: Ethernet padding is not part of it).
    pub end: usize,
    /// `IPPROTO_TCP` or `IPPROTO_UDP`.
    pub protocol: u8,
    addresses: Addresses,
}

impl Transport {
    /// Whether the segment is carried over IPv6.
    pub fn is_ipv6(&self) -> bool {
        matches!(self.addresses, Addresses::V6(..))
    }
}

/// Fills in the TCP or UDP checksum of an IPv4 or IPv6 frame.
pub fn complete(frame: &mut [u8]) -> Completion {
    let Some(transport) = transport(frame) else { return Completion::Unsupported };
    let Transport { start, end, protocol, addresses } = transport;
    let field = match protocol {
        PROTOCOL_TCP if end - start >= 20 => start + 16,
        PROTOCOL_UDP if end - start >= 8 => start + 6,
        _ => return Completion::Unsupported,
    };
    // `field + 2 <= end <= frame.len()`: checked above and by `transport`.
    let Some(segment) = frame.get_mut(start..end) else { return Completion::Unsupported };
    let field = field - start;
    segment[field..field + 2].fill(0);
    let length = (end - start) as u32;
    let protocol_number = IpProtocol::from(protocol);
    let pseudo_header = match &addresses {
        Addresses::V4(source, destination) => checksum::pseudo_header_v4(source, destination, protocol_number, length),
        Addresses::V6(source, destination) => checksum::pseudo_header_v6(source, destination, protocol_number, length),
    };
    let mut sum = !checksum::combine(&[pseudo_header, checksum::data(segment)]);
    // A computed UDP checksum of 0 is sent as 0xffff (0 means "none" over
    // IPv4, and is not allowed over IPv6).
    if protocol == PROTOCOL_UDP && sum == 0 {
        sum = 0xffff;
    }
    segment[field..field + 2].copy_from_slice(&sum.to_be_bytes());
    Completion::Completed
}

/// The frame's TCP or UDP segment, if it is an Ethernet II frame carrying
/// one over unfragmented IPv4 or over IPv6 (see the module documentation)
/// with lengths that fit the frame.
pub(crate) fn transport(frame: &[u8]) -> Option<Transport> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let transport = match ethertype {
        ETHERTYPE_IPV4 => ipv4_transport(frame)?,
        ETHERTYPE_IPV6 => ipv6_transport(frame)?,
        _ => return None,
    };
    if !matches!(transport.protocol, PROTOCOL_TCP | PROTOCOL_UDP) {
        return None;
    }
    Some(transport)
}

/// The upper-layer segment of an unfragmented IPv4 frame with consistent
/// lengths (any protocol).
fn ipv4_transport(frame: &[u8]) -> Option<Transport> {
    let ip = frame.get(ETHERNET_HEADER..)?;
    let header = ip.get(..20)?;
    let header_length = usize::from(header[0] & 0x0f) * 4;
    let total_length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let is_fragment = u16::from_be_bytes([header[6], header[7]]) & 0x3fff != 0;
    if header[0] >> 4 != 4
        || header_length < 20
        || total_length < header_length
        || total_length > ip.len()
        || is_fragment
    {
        return None;
    }
    let address = |at: usize| Ipv4Address::new(header[at], header[at + 1], header[at + 2], header[at + 3]);
    Some(Transport {
        start: ETHERNET_HEADER + header_length,
        end: ETHERNET_HEADER + total_length,
        protocol: header[9],
        addresses: Addresses::V4(address(12), address(16)),
    })
}

/// The upper-layer segment of an IPv6 frame whose payload length fits the
/// frame: straight after the fixed header, or after the hop-by-hop,
/// routing and destination options headers in front of it (at most
/// [`MAX_EXTENSION_HEADERS`], each inside the payload). Any other next
/// header (fragment, ESP, AH, no next header, ...) gives `None` unless it
/// is the upper layer itself.
fn ipv6_transport(frame: &[u8]) -> Option<Transport> {
    let ip = frame.get(ETHERNET_HEADER..)?;
    let header = ip.get(..IPV6_HEADER)?;
    if header[0] >> 4 != 6 {
        return None;
    }
    let payload_length = usize::from(u16::from_be_bytes([header[4], header[5]]));
    // The packet as its header delimits it (a jumbogram's payload length
    // of 0 leaves no room for its hop-by-hop header: refused below).
    let packet = ip.get(..IPV6_HEADER + payload_length)?;
    let source: [u8; 16] = header.get(8..24)?.try_into().ok()?;
    let destination: [u8; 16] = header.get(24..40)?.try_into().ok()?;
    let mut next_header = header[6];
    let mut offset = IPV6_HEADER;
    for walked in 0..=MAX_EXTENSION_HEADERS {
        match next_header {
            HOP_BY_HOP if offset != IPV6_HEADER => return None,
            HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS if walked < MAX_EXTENSION_HEADERS => {
                let extension = packet.get(offset..offset + 2)?;
                next_header = extension[0];
                offset += (usize::from(extension[1]) + 1) * 8;
            }
            HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS => return None,
            protocol => {
                // The last extension header must end inside the packet.
                if offset > packet.len() {
                    return None;
                }
                return Some(Transport {
                    start: ETHERNET_HEADER + offset,
                    end: ETHERNET_HEADER + packet.len(),
                    protocol,
                    addresses: Addresses::V6(Ipv6Address::from(source), Ipv6Address::from(destination)),
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{IpAddress, TcpPacket, UdpPacket};

    /// An Ethernet + IPv4 + UDP frame with a known-good checksum
    /// (10.88.0.1:1234 -> 10.88.0.2:80, payload "hello").
    fn udp_frame() -> Vec<u8> {
        let mut frame = vec![0u8; 14];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let payload = b"hello";
        let udp_length = 8 + payload.len() as u16;
        let ip_total = 20 + udp_length;
        frame.extend_from_slice(&[0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 88, 0, 1, 10, 88, 0, 2]);
        frame[16..18].copy_from_slice(&ip_total.to_be_bytes());
        frame.extend_from_slice(&1234u16.to_be_bytes());
        frame.extend_from_slice(&80u16.to_be_bytes());
        frame.extend_from_slice(&udp_length.to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(payload);
        frame
    }

    const SOURCE_V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const DESTINATION_V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x16, 0x3e, 0xff, 0xfe, 0, 0, 2];

    /// An Ethernet + IPv6 frame (fd00::1 -> fd00::216:3eff:fe00:2) with
    /// the extension headers `extensions` (each: its next-header value and
    /// its length in 8-octet units beyond the first 8), then a TCP (20
    /// bytes, no options) or UDP header and `payload`, the checksum field
    /// holding 0x1234 (garbage, as a partial one would look to a checker).
    fn ipv6_frame(extensions: &[(u8, u8)], protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; 14];
        frame[12..14].copy_from_slice(&[0x86, 0xdd]);
        let first = extensions.first().map_or(protocol, |(kind, _)| *kind);
        frame.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, first, 64]);
        frame.extend_from_slice(&SOURCE_V6);
        frame.extend_from_slice(&DESTINATION_V6);
        for (index, (_, units)) in extensions.iter().enumerate() {
            let next = extensions.get(index + 1).map_or(protocol, |(kind, _)| *kind);
            let mut header = vec![0u8; (usize::from(*units) + 1) * 8];
            header[0] = next;
            header[1] = *units;
            // Pad options (PadN) for option headers; zeros elsewhere.
            header[2] = 1;
            header[3] = header.len() as u8 - 4;
            frame.extend_from_slice(&header);
        }
        if protocol == PROTOCOL_TCP {
            frame
                .extend_from_slice(&[0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0x20, 0, 0x12, 0x34, 0, 0]);
        } else {
            let length = (8 + payload.len()) as u16;
            frame.extend_from_slice(&[0x30, 0x39, 0, 80]);
            frame.extend_from_slice(&length.to_be_bytes());
            frame.extend_from_slice(&[0x12, 0x34]);
        }
        frame.extend_from_slice(payload);
        let payload_length = (frame.len() - 54) as u16;
        frame[18..20].copy_from_slice(&payload_length.to_be_bytes());
        frame
    }

    /// The ones'-complement sum over the pseudo-header and the segment
    /// folds to 0xffff: checked word by word here, independently of the
    /// helpers the code uses.
    fn verifies(frame: &[u8]) -> bool {
        let Transport { start, end, protocol, .. } = transport(frame).unwrap();
        let ip = &frame[14..];
        let words = |bytes: &[u8]| -> u32 {
            bytes.chunks(2).map(|pair| u32::from(pair[0]) << 8 | u32::from(pair.get(1).copied().unwrap_or(0))).sum()
        };
        let addresses = if ip[0] >> 4 == 4 { &ip[12..20] } else { &ip[8..40] };
        let mut sum = words(addresses) + u32::from(protocol) + (end - start) as u32 + words(&frame[start..end]);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    /// smoltcp's own checker agrees, over the addresses of the IP header.
    fn smoltcp_verifies(frame: &[u8]) -> bool {
        let Transport { start, end, protocol, addresses } = transport(frame).unwrap();
        let (source, destination) = match addresses {
            Addresses::V4(source, destination) => (IpAddress::Ipv4(source), IpAddress::Ipv4(destination)),
            Addresses::V6(source, destination) => (IpAddress::Ipv6(source), IpAddress::Ipv6(destination)),
        };
        let segment = &frame[start..end];
        match protocol {
            PROTOCOL_TCP => TcpPacket::new_checked(segment).unwrap().verify_checksum(&source, &destination),
            _ => UdpPacket::new_checked(segment).unwrap().verify_checksum(&source, &destination),
        }
    }

    #[test]
    fn completes_a_udp_checksum_that_verifies() {
        let mut frame = udp_frame();
        assert_eq!(complete(&mut frame), Completion::Completed);
        assert!(verifies(&frame) && smoltcp_verifies(&frame));
        let field = u16::from_be_bytes([frame[40], frame[41]]);
        // Recomputing over a frame with a partial sum in the field gives the same.
        frame[40..42].copy_from_slice(&[0x12, 0x34]);
        assert_eq!(complete(&mut frame), Completion::Completed);
        assert_eq!(u16::from_be_bytes([frame[40], frame[41]]), field);
    }

    #[test]
    fn completes_a_tcp_checksum_with_an_odd_length() {
        let mut frame = udp_frame();
        frame[23] = PROTOCOL_TCP;
        frame.truncate(34);
        frame.extend_from_slice(&[0u8; 20]);
        frame[46] = 0x50;
        frame.extend_from_slice(b"odd");
        let total = (frame.len() - 14) as u16;
        frame[16..18].copy_from_slice(&total.to_be_bytes());
        assert_eq!(complete(&mut frame), Completion::Completed);
        assert!(verifies(&frame) && smoltcp_verifies(&frame));
    }

    #[test]
    fn leaves_other_frames_alone() {
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(complete(&mut arp), Completion::Unsupported);
        let mut lying = udp_frame();
        lying[16..18].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(complete(&mut lying), Completion::Unsupported, "total length beyond the frame");
        let mut short = udp_frame();
        short.truncate(20);
        assert_eq!(complete(&mut short), Completion::Unsupported);
        let mut fragment = udp_frame();
        fragment[20] = 0x20;
        assert_eq!(complete(&mut fragment), Completion::Unsupported);
    }

    #[test]
    fn completes_ipv6_tcp_and_udp_checksums_that_verify() {
        for protocol in [PROTOCOL_TCP, PROTOCOL_UDP] {
            for payload in [&b""[..], b"odd", b"GET / HTTP/1.1\r\n\r\n"] {
                let mut frame = ipv6_frame(&[], protocol, payload);
                assert!(!smoltcp_verifies(&frame), "the field holds garbage before");
                assert_eq!(complete(&mut frame), Completion::Completed, "{protocol} {payload:?}");
                assert!(verifies(&frame) && smoltcp_verifies(&frame), "{protocol} {payload:?}");
                let transport = transport(&frame).unwrap();
                assert!(transport.is_ipv6() && transport.start == 54 && transport.end == frame.len());
            }
        }
    }

    #[test]
    fn walks_hop_by_hop_routing_and_destination_options_headers() {
        let chains: [&[(u8, u8)]; 4] = [
            &[(HOP_BY_HOP, 0)],
            &[(DESTINATION_OPTIONS, 2)],
            &[(HOP_BY_HOP, 1), (DESTINATION_OPTIONS, 0), (ROUTING, 2), (DESTINATION_OPTIONS, 0)],
            &[
                (HOP_BY_HOP, 0),
                (DESTINATION_OPTIONS, 0),
                (DESTINATION_OPTIONS, 0),
                (ROUTING, 0),
                (ROUTING, 0),
                (DESTINATION_OPTIONS, 0),
                (DESTINATION_OPTIONS, 0),
                (DESTINATION_OPTIONS, 0),
            ],
        ];
        for chain in chains {
            for protocol in [PROTOCOL_TCP, PROTOCOL_UDP] {
                let mut frame = ipv6_frame(chain, protocol, b"behind extension headers");
                assert_eq!(complete(&mut frame), Completion::Completed, "{chain:?}");
                assert!(verifies(&frame) && smoltcp_verifies(&frame), "{chain:?}");
                let skipped: usize = chain.iter().map(|(_, units)| (usize::from(*units) + 1) * 8).sum();
                assert_eq!(transport(&frame).unwrap().start, 54 + skipped);
            }
        }
    }

    #[test]
    fn ethernet_padding_after_an_ipv6_packet_is_not_summed() {
        let mut frame = ipv6_frame(&[], PROTOCOL_UDP, b"x");
        let length = frame.len();
        frame.extend_from_slice(&[0xaa; 6]);
        assert_eq!(complete(&mut frame), Completion::Completed);
        assert!(verifies(&frame[..length]) && smoltcp_verifies(&frame));
    }

    #[test]
    fn refuses_ipv6_frames_it_cannot_read() {
        let unsupported = |frame: &mut Vec<u8>| {
            let before = frame.clone();
            let completion = complete(frame);
            assert_eq!(*frame, before, "an unsupported frame is left as it was");
            completion == Completion::Unsupported
        };
        // A fragment header, ESP, AH, no next header, ICMPv6.
        for next in [44, 50, 51, 59, 58] {
            assert!(unsupported(&mut ipv6_frame(&[(next, 0)], PROTOCOL_TCP, b"data")), "next header {next}");
            assert!(unsupported(&mut ipv6_frame(&[(HOP_BY_HOP, 0), (next, 0)], PROTOCOL_UDP, b"data")));
        }
        // One extension header more than walked.
        let too_many = [(DESTINATION_OPTIONS, 0); MAX_EXTENSION_HEADERS + 1];
        assert!(unsupported(&mut ipv6_frame(&too_many, PROTOCOL_TCP, b"data")));
        // Hop-by-hop only straight after the fixed header.
        assert!(unsupported(&mut ipv6_frame(&[(ROUTING, 0), (HOP_BY_HOP, 0)], PROTOCOL_TCP, b"data")));
        // An extension header longer than the payload.
        let mut long = ipv6_frame(&[(DESTINATION_OPTIONS, 0)], PROTOCOL_UDP, b"");
        long[55] = 200;
        assert!(unsupported(&mut long));
        // A payload length beyond the frame, and one too short for the header.
        let mut lying = ipv6_frame(&[], PROTOCOL_TCP, b"data");
        lying[18..20].copy_from_slice(&1000u16.to_be_bytes());
        assert!(unsupported(&mut lying));
        let mut short = ipv6_frame(&[], PROTOCOL_TCP, b"data");
        short[18..20].copy_from_slice(&10u16.to_be_bytes());
        assert!(unsupported(&mut short), "a TCP header cut by the payload length");
        // A jumbogram (payload length 0, its length in a hop-by-hop option).
        let mut jumbo = ipv6_frame(&[(HOP_BY_HOP, 0)], PROTOCOL_TCP, b"data");
        jumbo[18..20].fill(0);
        assert!(unsupported(&mut jumbo));
        // The IPv6 ethertype over an IPv4 header.
        let mut mislabelled = udp_frame();
        mislabelled[12..14].copy_from_slice(&[0x86, 0xdd]);
        mislabelled.extend_from_slice(&[0; 40]);
        assert!(unsupported(&mut mislabelled));
    }

    /// Every prefix of good frames, and frames with random bytes over
    /// their headers, complete or are refused: no input panics.
    #[test]
    fn no_truncation_or_garbage_panics() {
        let chains: [&[(u8, u8)]; 3] =
            [&[], &[(HOP_BY_HOP, 0)], &[(HOP_BY_HOP, 1), (ROUTING, 0), (DESTINATION_OPTIONS, 3)]];
        let mut frames = vec![udp_frame()];
        for chain in chains {
            frames.push(ipv6_frame(chain, PROTOCOL_TCP, b"some payload"));
            frames.push(ipv6_frame(chain, PROTOCOL_UDP, b"x"));
        }
        for frame in &frames {
            for length in 0..=frame.len() {
                let mut prefix = frame[..length].to_vec();
                let completion = complete(&mut prefix);
                assert!(length == frame.len() || completion == Completion::Unsupported, "{length} of {}", frame.len());
            }
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let mut frame = frames[round % frames.len()].clone();
            let header_end = frame.len().min(160);
            for _ in 0..1 + next() % 6 {
                let at = (next() % header_end as u64) as usize;
                frame[at] = next() as u8;
            }
            if next() % 4 == 0 {
                frame.truncate((next() % (frame.len() as u64 + 1)) as usize);
            }
            let _ = complete(&mut frame);
            let _ = transport(&frame);
        }
    }
}
