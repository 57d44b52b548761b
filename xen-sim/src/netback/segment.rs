//! Cutting a large segment the guest sent into the segments that leave
//! the vif, as Linux's GSO does when dom0 forwards a GSO packet to a
//! device without segmentation offload (`tcp_gso_segment` under
//! `inet_gso_segment` or `ipv6_gso_segment`).
//!
//! Each segment has the large segment's headers, its share of the payload
//! (the segment size, the last one what is left), and:
//! - the IPv4 total length of the segment, the ID of the large segment
//!   plus the segment's index, a header checksum made anew; or the IPv6
//!   payload length of the segment (extension headers included);
//! - the sequence number advanced by the payload before it;
//! - FIN and PSH only on the last segment, CWR only on the first;
//! - the TCP checksum: the large segment's checksum field, which must hold
//!   the pseudo-header sum over its whole TCP length (`CHECKSUM_PARTIAL`),
//!   adjusted for the segment's length, summed with the segment and
//!   complemented, as Linux completes it. A wrong partial value gives wrong
//!   checksums, as it would on Linux: the caller checks it and reports it.
//!
//! Linux refuses (the packet is dropped) a GSO packet whose payload is not
//! larger than its segment size, and one whose headers are not TCP over
//! the IP version of its GSO type.
//!
//! Never: index past the frame.

use super::checksum::{self, IpVersion};
use std::vec::Vec;

/// `ETH_HLEN`
const ETHERNET_HEADER: usize = 14;
/// The fixed IPv6 header.
const IPV6_HEADER: usize = 40;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// Why a large segment cannot be cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// Not a TCP segment over the IP version its GSO type names (a
    /// whole TCP header included).
    NotTcp,
    /// Its payload is not larger than the segment size.
    NotLarger,
}

/// A large segment, cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cut {
    /// The segments, in order.
    pub frames: Vec<Vec<u8>>,
    /// The checksum field did not hold the pseudo-header sum over the
    /// whole TCP length (only when the caller said it was partial).
    pub partial_wrong: bool,
}

/// Cuts `frame`, a TCP segment over `version`, into segments of `size`
/// bytes of payload. With `partial` its TCP checksum field is taken as
/// `CHECKSUM_PARTIAL` (`NETTXF_csum_blank`); without, the partial value is
/// computed first, as netback's `checksum_setup` does for a GSO packet
/// whose frontend did not flag it.
pub(super) fn cut(frame: &[u8], version: IpVersion, size: u16, partial: bool) -> Result<Cut, Refused> {
    let (found, tcp_start, tcp_length) = checksum::tcp_segment(frame).ok_or(Refused::NotTcp)?;
    let tcp_header = usize::from(frame.get(tcp_start + 12).ok_or(Refused::NotTcp)? >> 4) * 4;
    if found != version || tcp_header < 20 || tcp_header > tcp_length {
        return Err(Refused::NotTcp);
    }
    let size = usize::from(size);
    let payload = &frame[tcp_start + tcp_header..tcp_start + tcp_length];
    if payload.len() <= size {
        return Err(Refused::NotLarger);
    }
    let field = tcp_start + 16;
    let expected = checksum::pseudo_header(frame, tcp_length).ok_or(Refused::NotTcp)?;
    let given = u16::from_be_bytes([frame[field], frame[field + 1]]);
    let (partial_value, partial_wrong) = match partial {
        true => (given, !same_sum(given, expected)),
        false => (expected, false),
    };
    let headers = &frame[..tcp_start + tcp_header];
    let seq =
        u32::from_be_bytes([frame[tcp_start + 4], frame[tcp_start + 5], frame[tcp_start + 6], frame[tcp_start + 7]]);
    let ipv4_id = u16::from_be_bytes([frame[ETHERNET_HEADER + 4], frame[ETHERNET_HEADER + 5]]);
    let count = payload.len().div_ceil(size);
    let frames = payload
        .chunks(size)
        .enumerate()
        .map(|(index, chunk)| {
            let mut segment = Vec::with_capacity(headers.len() + chunk.len());
            segment.extend_from_slice(headers);
            segment.extend_from_slice(chunk);
            let segment_tcp_length = tcp_header + chunk.len();
            match version {
                IpVersion::V4 => {
                    let ip = ETHERNET_HEADER;
                    let total = (tcp_start - ip + segment_tcp_length) as u16;
                    segment[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
                    segment[ip + 4..ip + 6].copy_from_slice(&ipv4_id.wrapping_add(index as u16).to_be_bytes());
                    segment[ip + 10..ip + 12].fill(0);
                    let header_sum = !checksum::sum(&segment[ip..tcp_start], 0);
                    segment[ip + 10..ip + 12].copy_from_slice(&header_sum.to_be_bytes());
                }
                IpVersion::V6 => {
                    let length = (tcp_start - ETHERNET_HEADER - IPV6_HEADER + segment_tcp_length) as u16;
                    segment[ETHERNET_HEADER + 4..ETHERNET_HEADER + 6].copy_from_slice(&length.to_be_bytes());
                }
            }
            let sequence = seq.wrapping_add((index * size) as u32);
            segment[tcp_start + 4..tcp_start + 8].copy_from_slice(&sequence.to_be_bytes());
            if index + 1 < count {
                segment[tcp_start + 13] &= !(TCP_FIN | TCP_PSH);
            }
            if index > 0 {
                segment[tcp_start + 13] &= !TCP_CWR;
            }
            // The partial value moved from the whole's TCP length to the
            // segment's, then the segment summed over it.
            let adjusted =
                checksum::fold(u32::from(partial_value) + u32::from(!(tcp_length as u16)) + segment_tcp_length as u32);
            segment[field..field + 2].copy_from_slice(&adjusted.to_be_bytes());
            let complete = !checksum::sum(&segment[tcp_start..], 0);
            segment[field..field + 2].copy_from_slice(&complete.to_be_bytes());
            segment
        })
        .collect();
    Ok(Cut { frames, partial_wrong })
}

/// Whether two ones' complement sums are the same number (0 and 0xffff
/// both being zero).
fn same_sum(a: u16, b: u16) -> bool {
    a == b || (a | b == 0xffff && (a == 0 || b == 0))
}
