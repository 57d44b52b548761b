//! Completing partial checksums (`NETRXF_csum_blank`).
//!
//! netfront asks for complete checksums (`feature-no-csum-offload=1`), so a
//! conforming backend never sends a frame with a blank one. A backend that
//! does anyway would hand smoltcp a TCP or UDP segment it must drop, so such
//! frames are completed here: the checksum field is filled in over the
//! pseudo-header and the payload (with smoltcp's checksum helpers), as the
//! sender's NIC would have done.
//! Only IPv4 TCP and UDP in Ethernet II frames are handled; anything else is
//! reported and left alone.

/// What completing a frame's checksum did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The TCP or UDP checksum was computed and written.
    Completed,
    /// Not an IPv4 TCP/UDP frame, or too short to be one.
    Unsupported,
}

use smoltcp::wire::{IpProtocol, Ipv4Address, checksum};

const ETHERNET_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const PROTOCOL_TCP: u8 = 6;
const PROTOCOL_UDP: u8 = 17;

/// Fills in the TCP or UDP checksum of an IPv4 frame.
pub fn complete(frame: &mut [u8]) -> Completion {
    let Some((start, end, protocol)) = transport_span(frame) else { return Completion::Unsupported };
    let field = match protocol {
        PROTOCOL_TCP if end - start >= 20 => start + 16,
        PROTOCOL_UDP if end - start >= 8 => start + 6,
        _ => return Completion::Unsupported,
    };
    frame[field..field + 2].fill(0);
    let ip = &frame[ETHERNET_HEADER..];
    let address = |at: usize| Ipv4Address::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
    let pseudo_header =
        checksum::pseudo_header_v4(&address(12), &address(16), IpProtocol::from(protocol), (end - start) as u32);
    let mut sum = !checksum::combine(&[pseudo_header, checksum::data(&frame[start..end])]);
    if protocol == PROTOCOL_UDP && sum == 0 {
        sum = 0xffff;
    }
    let checksum = sum;
    frame[field..field + 2].copy_from_slice(&checksum.to_be_bytes());
    Completion::Completed
}

/// The transport segment's bounds and protocol, if the frame is IPv4 with
/// consistent lengths.
fn transport_span(frame: &[u8]) -> Option<(usize, usize, u8)> {
    if frame.len() < ETHERNET_HEADER + 20 || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = &frame[ETHERNET_HEADER..];
    let header_length = usize::from(ip[0] & 0x0f) * 4;
    let total_length = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let is_fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    if ip[0] >> 4 != 4 || header_length < 20 || total_length < header_length || total_length > ip.len() || is_fragment {
        return None;
    }
    Some((ETHERNET_HEADER + header_length, ETHERNET_HEADER + total_length, ip[9]))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The ones'-complement sum over the pseudo-header and the segment
    /// folds to 0xffff: checked word by word here, independently of the
    /// helpers the code uses.
    fn verifies(frame: &[u8]) -> bool {
        let (start, end, protocol) = transport_span(frame).unwrap();
        let ip = &frame[14..];
        let words = |bytes: &[u8]| -> u32 {
            bytes.chunks(2).map(|pair| u32::from(pair[0]) << 8 | u32::from(pair.get(1).copied().unwrap_or(0))).sum()
        };
        let mut sum = words(&ip[12..20]) + u32::from(protocol) + (end - start) as u32 + words(&frame[start..end]);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    #[test]
    fn completes_a_udp_checksum_that_verifies() {
        let mut frame = udp_frame();
        assert_eq!(complete(&mut frame), Completion::Completed);
        assert!(verifies(&frame));
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
        frame.extend_from_slice(b"odd");
        let total = (frame.len() - 14) as u16;
        frame[16..18].copy_from_slice(&total.to_be_bytes());
        assert_eq!(complete(&mut frame), Completion::Completed);
        assert!(verifies(&frame));
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
}
