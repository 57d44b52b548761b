//! The receive ring: scatter-gather, backpressure, grant errors, checksum flags.

use super::*;

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
