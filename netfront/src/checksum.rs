//! Completing partial checksums (`NETRXF_csum_blank`).
//!
//! netfront asks for complete checksums (`feature-no-csum-offload=1`), so a
//! conforming backend never sends a frame with a blank one. A backend that
//! does anyway would hand smoltcp a TCP or UDP segment it must drop, so such
//! frames are completed here: the checksum field is filled in over the
//! pseudo-header and the payload, as the sender's NIC would have done.
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
    let length = (end - start) as u32;
    let mut sum = sum_words(&ip[12..20]) + u32::from(protocol) + length;
    sum += sum_words(&frame[start..end]);
    let mut checksum = !fold(sum);
    if protocol == PROTOCOL_UDP && checksum == 0 {
        checksum = 0xffff;
    }
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

fn sum_words(bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    let mut sum: u32 = chunks.by_ref().map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]]))).sum();
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
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

    fn verifies(frame: &[u8]) -> bool {
        let (start, end, protocol) = transport_span(frame).unwrap();
        let ip = &frame[14..];
        let sum = sum_words(&ip[12..20]) + u32::from(protocol) + (end - start) as u32 + sum_words(&frame[start..end]);
        fold(sum) == 0xffff
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
