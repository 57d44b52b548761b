//! Large segments from the guest (a GSO extra on a transmit packet): the
//! checks Linux makes on their way through dom0, and the segments that
//! leave the vif.

use super::*;
use xen_pv::abi::netif::NETTXF_DATA_VALIDATED;

/// The flags of the large segments these tests send.
const LARGE: u16 = NETTXF_CSUM_BLANK | NETTXF_DATA_VALIDATED | NETTXF_EXTRA_INFO;
/// TCP's ACK and PSH flags.
const ACK: u8 = 0x10;
const ACK_PSH: u8 = 0x18;

/// [`tcp_frame`]'s segment with sequence number `seq`, flags `flags` and
/// IPv4 ID `id`, its checksums complete: what a sender cutting segments
/// itself would send.
fn segment_like(payload: &[u8], seq: u32, flags: u8, id: u16) -> Vec<u8> {
    let mut bytes = tcp_frame(payload);
    bytes[18..20].copy_from_slice(&id.to_be_bytes());
    bytes[24..26].fill(0);
    let header_sum = !ones_complement_sum(&bytes[14..34], 0);
    bytes[24..26].copy_from_slice(&header_sum.to_be_bytes());
    bytes[38..42].copy_from_slice(&seq.to_be_bytes());
    bytes[47] = flags;
    bytes[50..52].fill(0);
    let pseudo = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + (20 + payload.len()) as u32;
    let segment_sum = !ones_complement_sum(&bytes[34..], pseudo);
    bytes[50..52].copy_from_slice(&segment_sum.to_be_bytes());
    bytes
}

fn payload(length: usize) -> Vec<u8> {
    (0..length).map(|index| (index * 7 + index / 251) as u8).collect()
}

/// The segments a sender would have sent for `payload` in segments of
/// `size` from sequence number 1 and IPv4 ID 0, PSH on the last.
fn expected_segments(payload: &[u8], size: usize) -> Vec<Vec<u8>> {
    let count = payload.len().div_ceil(size);
    payload
        .chunks(size)
        .enumerate()
        .map(|(index, chunk)| {
            let flags = if index + 1 == count { ACK_PSH } else { ACK };
            segment_like(chunk, 1 + (index * size) as u32, flags, index as u16)
        })
        .collect()
}

/// The large segment of `payload`: one frame, PSH set, its checksum partial.
fn large_segment(payload: &[u8]) -> Vec<u8> {
    let mut frame = segment_like(payload, 1, ACK_PSH, 0);
    assert!(checksum::make_partial(&mut frame));
    frame
}

#[test]
fn a_large_segment_leaves_as_the_segments_a_sender_would_have_cut() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let bytes = payload(3500);
    let large = large_segment(&bytes);
    // Over three slots: the headers and 1000 bytes, then two more pieces.
    let (first, rest) = large.split_at(54 + 1000);
    let (second, third) = rest.split_at(1500);
    let ids = frontend.send(&[
        Slot::Data { bytes: first.to_vec(), offset: 0, size: large.len() as u16, flags: LARGE | NETTXF_MORE_DATA },
        extra_gso(1000, 1),
        data(second, NETTXF_MORE_DATA),
        data(third, 0),
    ]);
    netback.step();
    let responses = frontend.transmit_responses();
    assert_eq!(statuses(&responses), [NETIF_RSP_OKAY, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETIF_RSP_OKAY]);
    assert_eq!((responses[0].id, responses[2].id, responses[3].id), (ids[0], ids[1], ids[2]));
    let frames = netback.take_transmitted_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].data.clone(), frames[0].slots, frames[0].gso), (large, 3, Some((1, 1000))));
    assert!(frames[0].checksum_blank && frames[0].data_validated);
    assert_eq!(frames[0].segments, expected_segments(&bytes, 1000), "IDs 0 to 3, PSH on the last, checksums whole");
    let counters = netback.counters();
    assert_eq!((counters.transmitted_large_segments, counters.transmitted_segments), (1, 4));
    assert!(counters.violations.is_empty(), "{:?}", netback.errors());
}

#[test]
fn the_wire_view_cuts_large_segments_and_passes_other_frames() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let bytes = payload(2000);
    let plain = frame(60, 1);
    frontend.send_frame(&plain);
    frontend.send(&[data(&large_segment(&bytes), LARGE), extra_gso(1000, 1)]);
    netback.step();
    let mut expected = vec![plain];
    expected.extend(expected_segments(&bytes, 1000));
    assert_eq!(netback.take_transmitted(), expected);
}

#[test]
fn a_large_segment_without_csum_blank_is_fixed_up_and_counted() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let bytes = payload(2500);
    // The complete checksum, not the partial one: netback recomputes it.
    frontend.send(&[data(&segment_like(&bytes, 1, ACK_PSH, 0), NETTXF_EXTRA_INFO), extra_gso(1000, 1)]);
    netback.step();
    assert_eq!(netback.violations(Violation::GsoWithoutChecksumBlank), 1);
    assert_eq!(netback.take_transmitted(), expected_segments(&bytes, 1000));
}

#[test]
fn a_wrong_partial_checksum_gives_bad_segments_and_is_counted() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let bytes = payload(2500);
    // csum_blank, but the field holds the complete checksum.
    frontend.send(&[data(&segment_like(&bytes, 1, ACK_PSH, 0), LARGE), extra_gso(1000, 1)]);
    netback.step();
    assert_eq!(netback.violations(Violation::GsoBadPartialChecksum), 1);
    let sent = netback.take_transmitted();
    let expected = expected_segments(&bytes, 1000);
    assert_eq!(sent.len(), expected.len());
    for (sent, expected) in sent.iter().zip(&expected) {
        assert_ne!(sent[50..52], expected[50..52], "a bad checksum");
        assert_eq!((&sent[..50], &sent[52..]), (&expected[..50], &expected[52..]), "the rest as it should be");
    }
}

#[test]
fn large_segments_linux_would_drop_are_dropped_after_their_answers() {
    let cases = [
        // Not larger than its segment size.
        (large_segment(&payload(1000)), extra_gso(1000, 1), Violation::GsoNotLarger),
        // An IPv4 segment called TCPv6.
        (large_segment(&payload(3000)), extra_gso(1000, 2), Violation::GsoNotTcp),
        // Not TCP at all (the checksum flag left off, or it would be
        // dropped earlier for that).
        (frame(3000, 1), extra_gso(1000, 1), Violation::GsoNotTcp),
    ];
    for (frame, extra, violation) in cases {
        let xen = sim();
        let events = EventChannels::new(&xen, xen.shared_info());
        let (mut netback, mut frontend) = connected(&xen, &events);
        let flags = if violation == Violation::GsoNotTcp && frame[12] == 0x88 { NETTXF_EXTRA_INFO } else { LARGE };
        frontend.send(&[data(&frame, flags), extra]);
        netback.step();
        assert_eq!(statuses(&frontend.transmit_responses()), [NETIF_RSP_OKAY, NETIF_RSP_NULL], "{violation:?}");
        assert_eq!(netback.violations(violation), 1, "{violation:?}: {:?}", netback.errors());
        assert!(netback.take_transmitted().is_empty(), "{violation:?}");
        assert!(!netback.is_disabled(), "{violation:?}: dropped, not fatal");
    }
}

#[test]
fn a_large_segment_of_a_type_not_advertised_is_counted() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let mut options = NetbackOptions::default();
    options.features.gso_tcpv4 = false;
    let (mut netback, mut frontend) = connected_with(&xen, &events, options, |_| {});
    assert_eq!(frontend.backend_value("feature-gso-tcpv4").as_deref(), Some("0"));
    let bytes = payload(2000);
    frontend.send(&[data(&large_segment(&bytes), LARGE), extra_gso(1000, 1)]);
    netback.step();
    assert_eq!(netback.violations(Violation::GsoNotAdvertised), 1);
    assert_eq!(netback.take_transmitted(), expected_segments(&bytes, 1000), "Linux takes it anyway");
}

#[test]
fn an_ipv6_large_segment_is_cut_too() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let bytes = payload(2100);
    let mut large = tcp6_frame(&bytes, false);
    assert!(checksum::make_partial(&mut large));
    frontend.send(&[data(&large, LARGE), extra_gso(1000, 2)]);
    netback.step();
    let sent = netback.take_transmitted();
    assert_eq!(sent.len(), 3);
    let start = 14 + 40;
    let mut joined = Vec::new();
    for (index, segment) in sent.iter().enumerate() {
        let chunk = &segment[start + 20..];
        assert_eq!(u16::from_be_bytes([segment[18], segment[19]]) as usize, 20 + chunk.len());
        let seq = u32::from_be_bytes([segment[start + 4], segment[start + 5], segment[start + 6], segment[start + 7]]);
        assert_eq!(seq, 1 + 1000 * index as u32);
        assert_eq!(segment[start + 13], if index == 2 { ACK_PSH } else { ACK });
        let pseudo = u32::from(ones_complement_sum(&IPV6_ADDRESSES, 0)) + 6 + (20 + chunk.len()) as u32;
        assert_eq!(ones_complement_sum(&segment[start..], pseudo), 0xffff, "segment {index}: a valid checksum");
        joined.extend_from_slice(chunk);
    }
    assert_eq!(joined, bytes);
    assert!(netback.counters().violations.is_empty(), "{:?}", netback.errors());
}
