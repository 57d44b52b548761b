//! The simulated netback against a tiny reference frontend ([`frontend`]):
//! the handshake, frames both ways, netback's rules one by one, every
//! hostile mode, teardown, detach and attach.

mod frontend;
mod hostile;
mod identity;
mod notifications;
mod random;
mod receive;
mod segmentation;
mod transmit;
mod xenbus;

use super::*;
use crate::SimXen;
use core::sync::atomic::Ordering;
use frontend::{DEVICE, Slot, TestFrontend, data};
use std::collections::BTreeMap;
use std::string::ToString;
use std::vec;
use xen_pv::abi::grant_table::{GTF_READING, GTF_WRITING};
use xen_pv::abi::netif::{
    NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED, NETRXF_EXTRA_INFO,
    NETRXF_MORE_DATA, NETTXF_CSUM_BLANK, NETTXF_EXTRA_INFO, NETTXF_MORE_DATA, RxRequest, RxResponse, TxRequest,
    TxResponse,
};
use xen_pv::event_channel::EventChannels;
use xen_pv::grant_table::RevokeError;

/// A frame of `length` bytes: an Ethernet header with an experimental
/// ethertype (no checksum business), then a pattern.
fn frame(length: usize, seed: u8) -> Vec<u8> {
    let mut bytes = vec![0x00, 0x16, 0x3e, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x88, 0xb5];
    bytes.extend((0..length - 14).map(|index| (index as u8).wrapping_mul(7).wrapping_add(seed)));
    bytes
}

fn ones_complement_sum(bytes: &[u8], mut sum: u32) -> u16 {
    for pair in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// A valid IPv4 TCP frame from 10.0.0.1 to 10.0.0.2 carrying `payload`.
fn tcp_frame(payload: &[u8]) -> Vec<u8> {
    let total = (40 + payload.len()) as u16;
    let mut bytes = frame(14, 0);
    bytes[12..14].copy_from_slice(&[0x08, 0x00]);
    let [high, low] = total.to_be_bytes();
    bytes.extend([0x45, 0, high, low, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    let header_sum = !ones_complement_sum(&bytes[14..34], 0);
    bytes[24..26].copy_from_slice(&header_sum.to_be_bytes());
    bytes.extend([0x04, 0xd2, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0x20, 0, 0, 0, 0, 0]);
    bytes.extend(payload);
    let pseudo = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + u32::from(total - 20);
    let segment_sum = !ones_complement_sum(&bytes[34..], pseudo);
    bytes[50..52].copy_from_slice(&segment_sum.to_be_bytes());
    bytes
}

/// What a frontend does with `NETRXF_csum_blank`: sums the segment over
/// the partial checksum and stores the complement.
fn complete_tcp_checksum(bytes: &mut [u8]) {
    let sum = !ones_complement_sum(&bytes[34..], 0);
    bytes[50..52].copy_from_slice(&sum.to_be_bytes());
}

/// The IPv6 addresses of [`tcp6_frame`]: fd00::1, then fd00::2.
const IPV6_ADDRESSES: [u8; 32] =
    [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// A valid IPv6 TCP frame from fd00::1 to fd00::2 carrying `payload`,
/// behind a hop-by-hop options header (8 bytes of padding) if `hop_by_hop`.
fn tcp6_frame(payload: &[u8], hop_by_hop: bool) -> Vec<u8> {
    let extension: &[u8] = if hop_by_hop { &[6, 0, 1, 4, 0, 0, 0, 0] } else { &[] };
    let segment_length = 20 + payload.len();
    let payload_length = (extension.len() + segment_length) as u16;
    let mut bytes = frame(14, 0);
    bytes[12..14].copy_from_slice(&[0x86, 0xdd]);
    bytes.extend([0x60, 0, 0, 0]);
    bytes.extend(payload_length.to_be_bytes());
    bytes.extend([if hop_by_hop { 0 } else { 6 }, 64]);
    bytes.extend(IPV6_ADDRESSES);
    bytes.extend(extension);
    let start = bytes.len();
    bytes.extend([0x04, 0xd2, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0x20, 0, 0, 0, 0, 0]);
    bytes.extend(payload);
    let pseudo = u32::from(ones_complement_sum(&IPV6_ADDRESSES, 0)) + 6 + segment_length as u32;
    let segment_sum = !ones_complement_sum(&bytes[start..], pseudo);
    bytes[start + 16..start + 18].copy_from_slice(&segment_sum.to_be_bytes());
    bytes
}

/// [`complete_tcp_checksum`] for an IPv6 frame whose TCP header starts at
/// `start`.
fn complete_tcp6_checksum(bytes: &mut [u8], start: usize) {
    let sum = !ones_complement_sum(&bytes[start..], 0);
    bytes[start + 16..start + 18].copy_from_slice(&sum.to_be_bytes());
}

fn extra_gso(size: u16, gso_type: u8) -> Slot {
    Slot::Extra([1 | u32::from(size) << 16, u32::from(gso_type), 0])
}

fn statuses(responses: &[TxResponse]) -> Vec<i16> {
    responses.iter().map(|response| response.status).collect()
}

fn sim() -> SimXen {
    SimXen::new(4)
}

/// A netback with `options` and a frontend that has connected to it.
fn connected_with<'x>(
    xen: &'x SimXen,
    events: &'x EventChannels<'x, SimXen>,
    options: NetbackOptions,
    keys: impl FnOnce(&mut BTreeMap<String, String>),
) -> (SimNetback<'x>, TestFrontend<'x>) {
    let mut netback = SimNetback::new(xen, options);
    let mut frontend = TestFrontend::new(xen, events);
    let mut written = frontend.keys();
    keys(&mut written);
    frontend.connect_with(&written);
    netback.step();
    (netback, frontend)
}

fn connected<'x>(xen: &'x SimXen, events: &'x EventChannels<'x, SimXen>) -> (SimNetback<'x>, TestFrontend<'x>) {
    let (netback, frontend) = connected_with(xen, events, NetbackOptions::default(), |_| {});
    assert!(netback.is_connected(), "errors: {:?}", netback.errors());
    (netback, frontend)
}

fn read(xen: &SimXen, path: &str) -> Option<String> {
    xen.with_xenstore(|server| server.read_as_dom0(path))
}

#[test]
fn frames_flow_both_ways_byte_identical() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let outgoing = frame(60, 1);
    let ids = frontend.send_frame(&outgoing);
    netback.step();
    assert_eq!(netback.take_transmitted(), [outgoing]);
    let responses = frontend.transmit_responses();
    assert_eq!(responses, [TxResponse { id: ids[0], status: NETIF_RSP_OKAY }]);
    assert!(frontend.take_notification(), "rsp_event starts at 1: the first response notifies");

    frontend.post_receive_buffers(4);
    let incoming = frame(1514, 2);
    assert!(netback.inject(&incoming));
    netback.step();
    assert_eq!(frontend.receive_frames(), [(incoming, 0)]);
    let counters = netback.counters();
    assert_eq!((counters.transmitted_frames, counters.transmitted_bytes), (1, 60));
    assert_eq!((counters.received_frames, counters.received_bytes), (1, 1514));
    assert_eq!((counters.receive_requests, counters.receive_responses), (1, 1));
    assert!(counters.violations.is_empty(), "{:?}", netback.errors());
}
