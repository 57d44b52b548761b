//! The receive ring: scatter-gather, backpressure, grant errors, checksum flags.

use super::*;
use xen_pv::abi::netif::{ExtraInfo, GSO_TYPE_TCPV6};

#[test]
fn scatter_gather_receive_splits_a_large_frame_across_slots() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let ids = frontend.post_receive_buffers(3);
    let incoming = frame(9000, 4);
    netback.inject(&incoming);
    netback.step();
    let responses = frontend.receive_responses();
    let expected = [
        RxResponse { id: ids[0], offset: 0, flags: NETRXF_MORE_DATA, status: 4096 },
        RxResponse { id: ids[1], offset: 0, flags: NETRXF_MORE_DATA, status: 4096 },
        RxResponse { id: ids[2], offset: 0, flags: 0, status: 808 },
    ];
    assert_eq!(responses, expected);
    let joined: Vec<u8> = responses.iter().flat_map(|response| frontend.buffer_bytes(response)).collect();
    assert_eq!(joined, incoming);
}

#[test]
fn without_scatter_gather_a_frame_larger_than_a_page_is_dropped() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected_with(&xen, &events, NetbackOptions::default(), |keys| {
        keys.insert("feature-sg".to_string(), "0".to_string());
    });
    frontend.post_receive_buffers(2);
    netback.inject(&frame(5000, 5));
    netback.inject(&frame(1000, 6));
    netback.step();
    assert_eq!(frontend.receive_frames(), [(frame(1000, 6), 0)]);
    assert_eq!(netback.counters().receive_dropped_no_scatter_gather, 1);
}

#[test]
fn a_frame_waits_for_receive_buffers_and_the_backend_asks_to_be_told() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    netback.inject(&frame(100, 7));
    netback.step();
    netback.step();
    assert_eq!(netback.queued_for_guest(), 1);
    assert_eq!(netback.counters().receive_waits, 1, "woken once, by the injection");
    let [request_producer, request_event, ..] = frontend.receive.indices(frontend.memory());
    assert_eq!(request_event, request_producer + 1, "req_event set to the next request");
    frontend.push_receive_buffer(false);
    assert!(frontend.receive.publish(frontend.memory()), "publishing crosses req_event");
    frontend.notify();
    netback.step();
    assert_eq!(frontend.receive_frames(), [(frame(100, 7), 0)]);
    assert_eq!(netback.queued_for_guest(), 0);
}

#[test]
fn a_receive_buffer_dom0_cannot_write_gets_a_grant_error_status() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    frontend.push_receive_buffer(true);
    frontend.receive.push(frontend.memory(), RxRequest { id: 50, gref: 1000 }.encode());
    frontend.receive.push(frontend.memory(), RxRequest { id: 51, gref: 4000 }.encode());
    frontend.publish_receive();
    (0..3).for_each(|seed| assert!(netback.inject(&frame(60, seed))));
    netback.step();
    let responses = frontend.receive_responses();
    let statuses: Vec<i16> = responses.iter().map(|response| response.status).collect();
    assert_eq!(statuses, [-8, -1, -3], "GNTST_permission_denied, _general_error, _bad_gntref");
    assert_eq!(netback.violations(Violation::BadReceiveGrant), 3);
}

#[test]
fn request_ids_still_unanswered_must_not_be_reused() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let reference = frontend.page_with(&[], 0, false);
    for _ in 0..2 {
        frontend.receive.push(frontend.memory(), RxRequest { id: 5, gref: reference }.encode());
    }
    frontend.publish_receive();
    netback.step();
    assert_eq!(netback.violations(Violation::DuplicateRequestId), 1);
}

#[test]
fn with_checksum_offload_tcp_frames_arrive_partial_like_dom0_traffic() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected_with(&xen, &events, NetbackOptions::default(), |keys| {
        keys.remove("feature-no-csum-offload");
    });
    frontend.post_receive_buffers(2);
    let tcp = tcp_frame(b"GET / HTTP/1.1\r\n\r\n");
    netback.inject(&tcp);
    netback.inject(&frame(60, 1));
    netback.step();
    let frames = frontend.receive_frames();
    let (mut partial, flags) = frames[0].clone();
    assert_eq!(flags, NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED);
    assert_ne!(partial, tcp, "the checksum field holds the pseudo-header sum");
    assert_eq!(partial[..50], tcp[..50]);
    complete_tcp_checksum(&mut partial);
    assert_eq!(partial, tcp);
    assert_eq!(frames[1], (frame(60, 1), 0), "other frames arrive as they are");
}

/// IPv6 TCP frames arrive partial only when the frontend wrote
/// `feature-ipv6-csum-offload=1` (behind a hop-by-hop header too); IPv4
/// ones follow `feature-no-csum-offload` alone.
#[test]
fn ipv6_frames_arrive_partial_when_the_frontend_takes_ipv6_checksum_offload() {
    for ipv6_offload in ["1", "0"] {
        let xen = sim();
        let events = EventChannels::new(&xen, xen.shared_info());
        let (mut netback, mut frontend) = connected_with(&xen, &events, NetbackOptions::default(), |keys| {
            keys.remove("feature-no-csum-offload");
            keys.insert("feature-ipv6-csum-offload".to_string(), ipv6_offload.to_string());
        });
        frontend.post_receive_buffers(3);
        let plain = tcp6_frame(b"GET / HTTP/1.1\r\n\r\n", false);
        let behind_options = tcp6_frame(b"x", true);
        let tcp = tcp_frame(b"y");
        for frame in [&plain, &behind_options, &tcp] {
            assert!(netback.inject(frame));
        }
        netback.step();
        let frames = frontend.receive_frames();
        assert_eq!(frames[2].1, NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED, "IPv4 follows its own key");
        if ipv6_offload == "0" {
            assert_eq!(frames[..2], [(plain, 0), (behind_options, 0)]);
            continue;
        }
        for ((mut partial, flags), (original, start)) in frames.into_iter().zip([(plain, 54), (behind_options, 62)]) {
            assert_eq!(flags, NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED);
            assert_ne!(partial, original, "the checksum field holds the pseudo-header sum");
            complete_tcp6_checksum(&mut partial, start);
            assert_eq!(partial, original);
        }
    }
}

/// An IPv6 TCP frame over the MTU goes as one packet with a TCPv6 GSO slot
/// (segment size the MTU less 60) when the frontend asked for TCPv6
/// segments and IPv6 checksum offload, as Linux keeps TSO6 off a vif
/// without the latter; otherwise as plain slots.
#[test]
fn an_ipv6_tcp_frame_over_the_mtu_goes_as_a_tcpv6_large_segment_when_asked() {
    for (gso_tcpv6, ipv6_offload) in [("1", "1"), ("1", "0"), ("0", "1")] {
        let xen = sim();
        let events = EventChannels::new(&xen, xen.shared_info());
        let (mut netback, mut frontend) = connected_with(&xen, &events, NetbackOptions::default(), |keys| {
            keys.remove("feature-no-csum-offload");
            keys.insert("feature-gso-tcpv4".to_string(), "1".to_string());
            keys.insert("feature-gso-tcpv6".to_string(), gso_tcpv6.to_string());
            keys.insert("feature-ipv6-csum-offload".to_string(), ipv6_offload.to_string());
        });
        frontend.post_receive_buffers(4);
        let segment = tcp6_frame(&[7; 5000], false);
        assert!(netback.inject(&segment));
        netback.step();
        let words: Vec<[u32; 2]> = core::iter::from_fn(|| frontend.receive.take(frontend.memory())).collect();
        let first = RxResponse::decode(words[0]);
        let large = gso_tcpv6 == "1" && ipv6_offload == "1";
        assert_eq!(netback.counters().received_large_segments, u64::from(large), "{gso_tcpv6} {ipv6_offload}");
        if !large {
            assert_eq!(words.len(), 2, "two data slots, no extra");
            assert_eq!(first.flags & NETRXF_EXTRA_INFO, 0);
            continue;
        }
        assert_eq!(words.len(), 3, "a data slot, the GSO slot, a data slot");
        assert_eq!(first.flags, NETRXF_MORE_DATA | NETRXF_EXTRA_INFO | NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED);
        let gso = ExtraInfo::decode(words[1]);
        let expected = ExtraInfo { kind: 1, gso_size: 1440, gso_type: GSO_TYPE_TCPV6, ..ExtraInfo::default() };
        assert_eq!(gso, expected);
        let mut joined = frontend.buffer_bytes(&first);
        joined.extend(frontend.buffer_bytes(&RxResponse::decode(words[2])));
        complete_tcp6_checksum(&mut joined, 54);
        assert_eq!(joined, segment);
    }
}

#[test]
fn a_backend_can_send_partial_checksums_to_a_frontend_that_asked_for_none() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let options = NetbackOptions { receive_checksum: ReceiveChecksum::PartialRegardless, ..NetbackOptions::default() };
    let (mut netback, mut frontend) = connected_with(&xen, &events, options, |_| {});
    assert!(netback.frontend_features().unwrap().no_checksum_offload);
    frontend.post_receive_buffers(1);
    netback.inject(&tcp_frame(b"x"));
    netback.step();
    let frames = frontend.receive_frames();
    assert_eq!(frames[0].1, NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED);
}

#[test]
fn received_checksum_flags_are_configurable() {
    for (choice, expected) in [(ReceiveChecksum::Validated, NETRXF_DATA_VALIDATED), (ReceiveChecksum::Unflagged, 0)] {
        let xen = sim();
        let events = EventChannels::new(&xen, xen.shared_info());
        let options = NetbackOptions { receive_checksum: choice, ..NetbackOptions::default() };
        let (mut netback, mut frontend) = connected_with(&xen, &events, options, |keys| {
            keys.remove("feature-no-csum-offload");
        });
        frontend.post_receive_buffers(1);
        let tcp = tcp_frame(b"x");
        netback.inject(&tcp);
        netback.step();
        assert_eq!(frontend.receive_frames(), [(tcp, expected)]);
    }
}

#[test]
fn an_impossible_receive_request_producer_is_fatal() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, frontend) = connected(&xen, &events);
    frontend.receive.set_word(frontend.memory(), 0, 1000);
    netback.inject(&frame(60, 1));
    netback.step();
    assert_eq!(netback.violations(Violation::ImpossibleRequestCount), 1);
    assert!(netback.is_disabled());
}
