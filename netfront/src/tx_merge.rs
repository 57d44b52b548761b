//! Merging the stack's TCP segments into large segments (TX GSO), by
//! their headers alone.
//!
//! smoltcp sends TCP segments of at most the MSS, each built in its own
//! pooled tx page. When the backend takes large segments from the frontend
//! (`feature-gso-tcpv4`, `feature-gso-tcpv6`), consecutive segments of one
//! flow are sent as one: the first segment's page carries the headers and
//! its payload, and each later segment adds one slot that points into its
//! own page past its headers (nothing is copied). The backend cuts the
//! large segment back into segments of the size its GSO extra names, as
//! Linux's GSO does: the same headers, the sequence number advanced, the
//! IPv4 length, ID and header checksum and the TCP checksum made for each.
//!
//! This module decides, from the header bytes only, what may be merged,
//! and writes the large segment's headers. A segment continues an open
//! large segment when
//! - it is a TCP segment in an Ethernet II frame over IPv4 (no fragment,
//!   the frame exactly its IP length) or over IPv6 (TCP straight after the
//!   fixed header, the frame exactly its payload length), of an IP version
//!   the backend takes large segments of;
//! - its header bytes are the open one's but for the fields segmentation
//!   rewrites: the IPv4 total length, ID and header checksum, the IPv6
//!   payload length, the TCP sequence number, flags and checksum (so the
//!   same addresses, ports, acknowledgement, window, options, TTL, ToS);
//! - its sequence number follows the open one's last byte;
//! - every segment in the open one has flags exactly ACK and a payload of
//!   exactly the MSS (the first segment's payload), and the new one has
//!   ACK or ACK|PSH and a payload of 1 to MSS bytes: segmentation gives
//!   every segment but the last the MSS, and clears PSH on all but the
//!   last, so the segments that reach the peer are the ones the stack made;
//! - the large segment stays within [`MAX_DATA_SLOTS`] slots of data and
//!   [`MAX_TX_SIZE`] bytes.
//!
//! A segment that does not continue it closes it. A large segment is
//! opened only by a segment with flags exactly ACK and a payload (a PSH, a
//! FIN, a pure ACK ends a burst and goes alone).
//!
//! The large segment's headers are the first segment's, with the IPv4
//! total length (and a recomputed header checksum) or the IPv6 payload
//! length of the whole, the last segment's flags, and in the TCP checksum
//! field the pseudo-header sum (source, destination, protocol, the whole
//! TCP length), folded and not complemented: Linux's `CHECKSUM_PARTIAL`,
//! which netback requires of a GSO packet (`NETTXF_csum_blank`) and which
//! its segmentation adjusts for each segment's length before summing the
//! segment. The IPv4 ID stays the first segment's; Linux gives the
//! segments it cuts consecutive IDs from it (smoltcp sends every segment
//! with ID 0 and Don't Fragment, where the ID means nothing: RFC 6864).
//!
//! Contract: pure functions of the bytes given; indices are checked, so no
//! input panics.

use smoltcp::wire::{IpProtocol, Ipv4Address, Ipv6Address, checksum};
use xen_pv::abi::netif::{EXTRA_TYPE_GSO, ExtraInfo, GSO_TYPE_TCPV4, GSO_TYPE_TCPV6, MAX_TX_SIZE};

/// Ethernet, the longest IPv4 header and the longest TCP header: the most
/// header bytes a segment can have, and what is kept of each frame to
/// compare.
pub const MAX_HEADERS: usize = ETHERNET_HEADER + 60 + 60;

/// Slots of data a large segment takes at most (and so segments merged
/// into it): its first page and 16 more. Linux netback maps the first
/// slot's bytes past its first 128 into a fragment of their own, so 17
/// slots become 17 fragments, what an skb holds (`MAX_SKB_FRAGS`); at 18
/// it would have to copy the packet into fresh pages (its `frag_list`
/// path). The GSO extra-info slot comes on top: it takes a ring slot but
/// is not counted by netback's slot limits.
pub const MAX_DATA_SLOTS: usize = 17;

const ETHERNET_HEADER: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];
const IPV6_HEADER: usize = 40;
const PROTOCOL_TCP: u8 = 6;
/// TCP's ACK flag.
pub const TCP_ACK: u8 = 0x10;
/// TCP's PSH flag.
pub const TCP_PSH: u8 = 0x08;

/// An IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Which large segments the backend takes from the frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxRules {
    /// TCP over IPv4 (`feature-gso-tcpv4`).
    pub tcpv4: bool,
    /// TCP over IPv6 (`feature-gso-tcpv6`).
    pub tcpv6: bool,
}

impl TxRules {
    /// Whether segments of `version` may be merged.
    pub fn allows(self, version: IpVersion) -> bool {
        match version {
            IpVersion::V4 => self.tcpv4,
            IpVersion::V6 => self.tcpv6,
        }
    }

    /// Whether any may.
    pub fn any(self) -> bool {
        self.tcpv4 || self.tcpv6
    }
}

/// A frame read as a TCP segment this module may merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Its IP version.
    pub version: IpVersion,
    /// Where its TCP header starts in the frame.
    pub tcp_start: usize,
    /// Its Ethernet, IP and TCP headers' length: where its payload starts.
    pub header_length: usize,
    /// Its payload's length.
    pub payload: usize,
    /// Its sequence number.
    pub seq: u32,
    /// Its TCP flags (byte 13 of the TCP header).
    pub flags: u8,
}

impl Segment {
    /// Reads a frame of `length` bytes as a TCP segment, from `headers`,
    /// its first bytes (at least its headers: [`MAX_HEADERS`] or the whole
    /// frame). `None` for anything else (see the module documentation).
    pub fn parse(headers: &[u8], length: usize) -> Option<Self> {
        let ethertype = [*headers.get(12)?, *headers.get(13)?];
        let ip = headers.get(ETHERNET_HEADER..)?;
        let (version, tcp_start) = if ethertype == ETHERTYPE_IPV4 {
            let fixed = ip.get(..20)?;
            let header_length = usize::from(fixed[0] & 0x0f) * 4;
            let total_length = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
            let fragment = u16::from_be_bytes([fixed[6], fixed[7]]) & 0x3fff != 0;
            let usable = fixed[0] >> 4 == 4 && header_length >= 20 && fixed[9] == PROTOCOL_TCP && !fragment;
            if !usable || ETHERNET_HEADER + total_length != length {
                return None;
            }
            (IpVersion::V4, ETHERNET_HEADER + header_length)
        } else if ethertype == ETHERTYPE_IPV6 {
            let fixed = ip.get(..IPV6_HEADER)?;
            let payload_length = usize::from(u16::from_be_bytes([fixed[4], fixed[5]]));
            if fixed[0] >> 4 != 6
                || fixed[6] != PROTOCOL_TCP
                || ETHERNET_HEADER + IPV6_HEADER + payload_length != length
            {
                return None;
            }
            (IpVersion::V6, ETHERNET_HEADER + IPV6_HEADER)
        } else {
            return None;
        };
        let tcp = headers.get(tcp_start..tcp_start + 20)?;
        let header_length = tcp_start + usize::from(tcp[12] >> 4) * 4;
        if header_length < tcp_start + 20 || header_length > length || header_length > headers.len() {
            return None;
        }
        Some(Self {
            version,
            tcp_start,
            header_length,
            payload: length - header_length,
            seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
            flags: tcp[13],
        })
    }

    /// Whether it may open a large segment: flags exactly ACK, and a payload.
    pub fn may_open(&self) -> bool {
        self.flags == TCP_ACK && self.payload > 0
    }

    /// Its frame's length.
    pub fn frame_length(&self) -> usize {
        self.header_length + self.payload
    }

    /// Whether header byte `index` is one segmentation rewrites (and so
    /// may differ between the segments of one large segment).
    fn rewritten(&self, index: usize) -> bool {
        let ip = match self.version {
            // Total length, ID, header checksum.
            IpVersion::V4 => matches!(index, 16..=19 | 24..=25),
            // Payload length.
            IpVersion::V6 => matches!(index, 18..=19),
        };
        let tcp = index.checked_sub(self.tcp_start).is_some_and(|at| matches!(at, 4..=7 | 13 | 16..=17));
        ip || tcp
    }
}

/// An open large segment, as its headers say: the first segment's header
/// bytes and what was appended since.
#[derive(Debug, Clone)]
pub struct Merge {
    headers: [u8; MAX_HEADERS],
    first: Segment,
    segments: usize,
    next_seq: u32,
    last_flags: u8,
    /// The large segment's frame length: the headers and every payload.
    length: usize,
    /// The merged frames' lengths, summed (what the stack sent).
    stack_bytes: usize,
    /// Every segment so far had flags ACK and the MSS: another may follow.
    open: bool,
}

impl Merge {
    /// A large segment opened by `first` (which [`Segment::may_open`]),
    /// whose frame starts with `headers`.
    pub fn start(headers: &[u8], first: Segment) -> Self {
        let mut kept = [0; MAX_HEADERS];
        let count = headers.len().min(first.header_length);
        kept[..count].copy_from_slice(&headers[..count]);
        Self {
            headers: kept,
            first,
            segments: 1,
            next_seq: first.seq.wrapping_add(first.payload as u32),
            last_flags: first.flags,
            length: first.frame_length(),
            stack_bytes: first.frame_length(),
            open: first.may_open(),
        }
    }

    /// Whether `segment`, whose frame starts with `headers`, continues the
    /// large segment within its limits (see the module documentation).
    pub fn continues(&self, headers: &[u8], segment: &Segment) -> bool {
        let first = &self.first;
        let same_shape = segment.version == first.version
            && segment.tcp_start == first.tcp_start
            && segment.header_length == first.header_length;
        let fits = segment.payload > 0
            && segment.payload <= self.mss()
            && self.segments < MAX_DATA_SLOTS
            && self.length + segment.payload <= MAX_TX_SIZE;
        let flags = segment.flags == TCP_ACK || segment.flags == TCP_ACK | TCP_PSH;
        self.open
            && same_shape
            && fits
            && flags
            && segment.seq == self.next_seq
            && headers.len() >= first.header_length
            && (0..first.header_length).all(|index| first.rewritten(index) || headers[index] == self.headers[index])
    }

    /// Adds `segment` (which [`Self::continues`] it).
    pub fn append(&mut self, segment: &Segment) {
        self.segments += 1;
        self.next_seq = self.next_seq.wrapping_add(segment.payload as u32);
        self.last_flags = segment.flags;
        self.length += segment.payload;
        self.stack_bytes += segment.frame_length();
        self.open = self.open && segment.flags == TCP_ACK && segment.payload == self.mss();
    }

    /// Whether another segment could still be appended.
    pub fn growing(&self) -> bool {
        self.open && self.segments < MAX_DATA_SLOTS && self.length < MAX_TX_SIZE
    }

    /// The segments merged so far.
    pub fn segments(&self) -> usize {
        self.segments
    }

    /// The segment size: the first segment's payload.
    pub fn mss(&self) -> usize {
        self.first.payload
    }

    /// The large segment's frame length.
    pub fn length(&self) -> usize {
        self.length
    }

    /// The merged frames' lengths, summed.
    pub fn stack_bytes(&self) -> usize {
        self.stack_bytes
    }

    /// The first segment's headers' length (the first slot's share of
    /// them, and where each later segment's payload starts in its page).
    pub fn header_length(&self) -> usize {
        self.first.header_length
    }

    /// Its IP version.
    pub fn version(&self) -> IpVersion {
        self.first.version
    }

    /// Rewrites `header` (the first segment's header bytes, at least
    /// [`Self::header_length`] of them) into the large segment's: the IP
    /// length of the whole (IPv4's header checksum recomputed), the last
    /// segment's flags, and the pseudo-header sum over the whole TCP length
    /// in the TCP checksum field (see the module documentation).
    pub fn patch(&self, header: &mut [u8]) {
        let Segment { tcp_start, header_length, .. } = self.first;
        let Some(header) = header.get_mut(..header_length) else { return };
        let tcp_length = self.length - tcp_start;
        let pseudo_header = match self.first.version {
            IpVersion::V4 => {
                let total_length = (self.length - ETHERNET_HEADER) as u16;
                header[16..18].copy_from_slice(&total_length.to_be_bytes());
                header[24..26].fill(0);
                let header_sum = !checksum::data(&header[ETHERNET_HEADER..tcp_start]);
                header[24..26].copy_from_slice(&header_sum.to_be_bytes());
                let address = |at: usize| Ipv4Address::new(header[at], header[at + 1], header[at + 2], header[at + 3]);
                checksum::pseudo_header_v4(&address(26), &address(30), IpProtocol::Tcp, tcp_length as u32)
            }
            IpVersion::V6 => {
                header[18..20].copy_from_slice(&(tcp_length as u16).to_be_bytes());
                let address = |at: usize| {
                    let mut octets = [0; 16];
                    octets.copy_from_slice(&header[at..at + 16]);
                    Ipv6Address::from(octets)
                };
                checksum::pseudo_header_v6(&address(22), &address(38), IpProtocol::Tcp, tcp_length as u32)
            }
        };
        header[tcp_start + 13] = self.last_flags;
        header[tcp_start + 16..tcp_start + 18].copy_from_slice(&pseudo_header.to_be_bytes());
    }

    /// The GSO extra-info slot the large segment is sent with: its segment
    /// size and TCP type, no further extra.
    pub fn gso_extra(&self) -> ExtraInfo {
        let gso_type = match self.first.version {
            IpVersion::V4 => GSO_TYPE_TCPV4,
            IpVersion::V6 => GSO_TYPE_TCPV6,
        };
        ExtraInfo { kind: EXTRA_TYPE_GSO, gso_size: self.mss() as u16, gso_type, ..ExtraInfo::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A TCP segment's frame: 10.0.0.1:80 -> 10.0.0.2:4000 (or over IPv6
    /// fd00::1 -> fd00::2), sequence `seq`, flags `flags`, `payload` bytes
    /// of pattern, the checksums complete (as smoltcp sends it).
    fn segment(ipv6: bool, seq: u32, flags: u8, payload: usize) -> Vec<u8> {
        let mut frame = alloc::vec![2, 0, 0, 0, 0, 2, 0, 0x16, 0x3e, 0, 0, 1];
        let tcp_length = 20 + 12 + payload;
        if ipv6 {
            frame.extend_from_slice(&ETHERTYPE_IPV6);
            frame.extend_from_slice(&[0x60, 0, 0, 0]);
            frame.extend_from_slice(&(tcp_length as u16).to_be_bytes());
            frame.extend_from_slice(&[PROTOCOL_TCP, 64]);
            frame.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            frame.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        } else {
            frame.extend_from_slice(&ETHERTYPE_IPV4);
            let total = (20 + tcp_length) as u16;
            frame.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, PROTOCOL_TCP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            frame[16..18].copy_from_slice(&total.to_be_bytes());
            let sum = !checksum::data(&frame[14..34]);
            frame[24..26].copy_from_slice(&sum.to_be_bytes());
        }
        let tcp_start = frame.len();
        frame.extend_from_slice(&[0, 80, 0x0f, 0xa0]);
        frame.extend_from_slice(&seq.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0x30, 0x39, 0x80, flags, 0x10, 0, 0, 0, 0, 0]);
        // Options: two NOPs and a timestamp.
        frame.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        frame.extend((0..payload).map(|index| (index as u32).wrapping_add(seq) as u8));
        let pseudo = if ipv6 {
            let address = |at: usize| Ipv6Address::from(<[u8; 16]>::try_from(&frame[at..at + 16]).unwrap());
            checksum::pseudo_header_v6(&address(22), &address(38), IpProtocol::Tcp, tcp_length as u32)
        } else {
            checksum::pseudo_header_v4(
                &Ipv4Address::new(10, 0, 0, 1),
                &Ipv4Address::new(10, 0, 0, 2),
                IpProtocol::Tcp,
                tcp_length as u32,
            )
        };
        let sum = !checksum::combine(&[pseudo, checksum::data(&frame[tcp_start..])]);
        frame[tcp_start + 16..tcp_start + 18].copy_from_slice(&sum.to_be_bytes());
        frame
    }

    fn parse(frame: &[u8]) -> Option<Segment> {
        Segment::parse(&frame[..frame.len().min(MAX_HEADERS)], frame.len())
    }

    #[test]
    fn a_segment_is_read_from_its_headers() {
        let frame = segment(false, 7, TCP_ACK, 100);
        let read = parse(&frame).unwrap();
        assert_eq!((read.version, read.tcp_start, read.header_length), (IpVersion::V4, 34, 66));
        assert_eq!((read.payload, read.seq, read.flags), (100, 7, TCP_ACK));
        let frame6 = segment(true, 7, TCP_ACK | TCP_PSH, 0);
        let read = parse(&frame6).unwrap();
        assert_eq!((read.version, read.tcp_start, read.header_length, read.payload), (IpVersion::V6, 54, 86, 0));
        assert!(!read.may_open(), "PSH, and no payload");
    }

    #[test]
    fn anything_but_a_whole_tcp_segment_is_refused() {
        let good = segment(false, 7, TCP_ACK, 100);
        let mut padded = good.clone();
        padded.push(0);
        assert_eq!(parse(&padded), None, "Ethernet padding: the frame is not its IP length");
        let mut udp = good.clone();
        udp[23] = 17;
        assert_eq!(parse(&udp), None);
        let mut fragment = good.clone();
        fragment[20] = 0x20;
        assert_eq!(parse(&fragment), None);
        let mut options = segment(false, 7, TCP_ACK, 10);
        options[46] = 0xf0;
        assert_eq!(parse(&options), None, "a TCP header longer than the frame");
        let mut short_tcp = good.clone();
        short_tcp[46] = 0x40;
        assert_eq!(parse(&short_tcp), None, "a TCP data offset under 5");
        let mut arp = good.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(parse(&arp), None);
        let mut extension = segment(true, 7, TCP_ACK, 100);
        extension[20] = 0;
        assert_eq!(parse(&extension), None, "IPv6 extension headers are not merged");
        for cut in 0..good.len() {
            // Any truncation: no panic, and no segment longer than its bytes.
            if let Some(read) = Segment::parse(&good[..cut], cut) {
                assert!(read.header_length <= cut);
            }
        }
        assert_eq!(Segment::parse(&good[..40], good.len()), None, "headers not all there");
    }

    fn merge_of(frames: &[Vec<u8>]) -> Merge {
        let first = parse(&frames[0]).unwrap();
        let mut merge = Merge::start(&frames[0], first);
        for frame in &frames[1..] {
            let next = parse(frame).unwrap();
            assert!(merge.continues(frame, &next));
            merge.append(&next);
        }
        merge
    }

    #[test]
    fn contiguous_full_segments_continue_and_a_push_ends_them() {
        for ipv6 in [false, true] {
            let frames = [
                segment(ipv6, 1000, TCP_ACK, 100),
                segment(ipv6, 1100, TCP_ACK, 100),
                segment(ipv6, 1200, TCP_ACK | TCP_PSH, 60),
            ];
            let merge = merge_of(&frames);
            assert_eq!((merge.segments(), merge.mss()), (3, 100));
            let header_length = if ipv6 { 86 } else { 66 };
            assert_eq!(merge.length(), header_length + 260);
            assert_eq!(merge.stack_bytes(), frames.iter().map(Vec::len).sum::<usize>());
            assert!(!merge.growing(), "nothing follows a PSH");
            let after = segment(ipv6, 1260, TCP_ACK, 100);
            assert!(!merge.continues(&after, &parse(&after).unwrap()));
        }
    }

    #[test]
    fn a_short_segment_ends_a_large_one() {
        let frames = [segment(false, 0, TCP_ACK, 100), segment(false, 100, TCP_ACK, 50)];
        let merge = merge_of(&frames);
        assert!(!merge.growing());
        let next = segment(false, 150, TCP_ACK, 100);
        assert!(!merge.continues(&next, &parse(&next).unwrap()));
    }

    #[test]
    fn only_a_continuation_of_the_same_flow_continues() {
        let first = segment(false, 0, TCP_ACK, 100);
        let merge = Merge::start(&first, parse(&first).unwrap());
        let next = segment(false, 100, TCP_ACK, 100);
        let refused = |frame: Vec<u8>, why: &str| {
            let read = parse(&frame).unwrap();
            assert!(!merge.continues(&frame, &read), "{why}");
        };
        assert!(merge.continues(&next, &parse(&next).unwrap()));
        refused(segment(false, 101, TCP_ACK, 100), "a gap in the sequence");
        refused(segment(false, 99, TCP_ACK, 100), "an overlap");
        refused(segment(false, 100, TCP_ACK, 101), "more than the MSS");
        refused(segment(false, 100, TCP_ACK | 0x01, 100), "FIN");
        refused(segment(false, 100, TCP_ACK | 0x20, 100), "URG");
        refused(segment(false, 100, 0x02 | TCP_ACK, 100), "SYN");
        refused(segment(true, 100, TCP_ACK, 100), "another IP version");
        let changed = |at: usize, value: u8, why: &str| {
            let mut frame = next.clone();
            frame[at] = value;
            refused(frame, why);
        };
        changed(0, 9, "another destination MAC");
        changed(15, 4, "another ToS");
        changed(22, 63, "another TTL");
        changed(29, 9, "another source address");
        changed(33, 9, "another destination address");
        changed(35, 81, "another source port");
        changed(37, 0xa1, "another destination port");
        changed(45, 0x3a, "another acknowledgement");
        changed(48, 0x11, "another window");
        changed(53, 1, "another urgent pointer");
        changed(61, 3, "another timestamp option");
        // What segmentation rewrites may differ.
        let mut rewritten = next.clone();
        rewritten[18..20].copy_from_slice(&[0x12, 0x34]);
        rewritten[24..26].copy_from_slice(&[0xde, 0xad]);
        rewritten[50..52].copy_from_slice(&[0xbe, 0xef]);
        assert!(merge.continues(&rewritten, &parse(&rewritten).unwrap()), "ID and checksums");
    }

    #[test]
    fn a_large_segment_keeps_to_its_slot_and_byte_limits() {
        let frames: Vec<Vec<u8>> = (0..MAX_DATA_SLOTS as u32).map(|k| segment(false, k * 100, TCP_ACK, 100)).collect();
        let merge = merge_of(&frames);
        assert!(!merge.growing(), "{MAX_DATA_SLOTS} slots of data");
        let next = segment(false, MAX_DATA_SLOTS as u32 * 100, TCP_ACK, 100);
        assert!(!merge.continues(&next, &parse(&next).unwrap()));
        // 4000-byte payloads (an MTU of 4066): 16 fit in 65 535 bytes.
        let large: Vec<Vec<u8>> = (0..16).map(|k| segment(false, k * 4000, TCP_ACK, 4000)).collect();
        let merge = merge_of(&large);
        assert_eq!(merge.length(), 66 + 64_000);
        let next = segment(false, 64_000, TCP_ACK, 4000);
        assert!(!merge.continues(&next, &parse(&next).unwrap()), "65 535 bytes at most");
        let last = segment(false, 64_000, TCP_ACK | TCP_PSH, 65_535 - 66 - 64_000);
        assert!(merge.continues(&last, &parse(&last).unwrap()), "up to exactly 65 535");
    }

    #[test]
    fn the_large_segment_s_headers_are_the_whole_s_with_a_partial_checksum() {
        for ipv6 in [false, true] {
            let frames = [
                segment(ipv6, 5000, TCP_ACK, 100),
                segment(ipv6, 5100, TCP_ACK, 100),
                segment(ipv6, 5200, TCP_ACK | TCP_PSH, 30),
            ];
            let merge = merge_of(&frames);
            let mut header = frames[0][..merge.header_length()].to_vec();
            merge.patch(&mut header);
            let tcp_start = if ipv6 { 54 } else { 34 };
            let tcp_length = merge.length() - tcp_start;
            if ipv6 {
                assert_eq!(u16::from_be_bytes([header[18], header[19]]) as usize, tcp_length);
            } else {
                assert_eq!(u16::from_be_bytes([header[16], header[17]]) as usize, merge.length() - 14);
                assert_eq!(checksum::data(&header[14..34]), 0xffff, "a valid IPv4 header checksum");
                assert_eq!(header[18..20], [0, 0], "the first segment's ID");
            }
            assert_eq!(header[tcp_start + 13], TCP_ACK | TCP_PSH, "the last segment's flags");
            // The partial checksum completes to the whole's checksum: the
            // payloads summed over it, complemented.
            let mut whole = header.clone();
            for frame in &frames {
                whole.extend_from_slice(&frame[merge.header_length()..]);
            }
            let partial = u16::from_be_bytes([header[tcp_start + 16], header[tcp_start + 17]]);
            let mut zeroed = whole.clone();
            zeroed[tcp_start + 16..tcp_start + 18].fill(0);
            let (source, destination) = if ipv6 { (22, 38) } else { (26, 30) };
            let pseudo = if ipv6 {
                let address = |at: usize| Ipv6Address::from(<[u8; 16]>::try_from(&whole[at..at + 16]).unwrap());
                checksum::pseudo_header_v6(&address(source), &address(destination), IpProtocol::Tcp, tcp_length as u32)
            } else {
                let address = |at: usize| Ipv4Address::new(whole[at], whole[at + 1], whole[at + 2], whole[at + 3]);
                checksum::pseudo_header_v4(&address(source), &address(destination), IpProtocol::Tcp, tcp_length as u32)
            };
            assert_eq!(partial, pseudo, "the folded pseudo-header sum, not complemented");
            let completed = !checksum::combine(&[partial, checksum::data(&zeroed[tcp_start..])]);
            let expected = !checksum::combine(&[pseudo, checksum::data(&zeroed[tcp_start..])]);
            assert_eq!(completed, expected);
            let extra = merge.gso_extra();
            assert_eq!((extra.kind, extra.gso_size, extra.flags), (EXTRA_TYPE_GSO, 100, 0));
            assert_eq!(extra.gso_type, if ipv6 { GSO_TYPE_TCPV6 } else { GSO_TYPE_TCPV4 });
        }
    }
}
