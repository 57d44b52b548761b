//! Every hostile mode, and how long it lasts.

use super::*;

#[test]
fn unknown_id_hostility_answers_with_an_id_never_posted() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    netback.misbehave(Hostility::UnknownId(Ring::Transmit), Lasting::Once);
    netback.misbehave(Hostility::UnknownId(Ring::Receive), Lasting::Once);
    let ids = [frontend.send_frame(&frame(60, 1))[0], frontend.send_frame(&frame(60, 2))[0]];
    let receive_ids = frontend.post_receive_buffers(2);
    netback.inject(&frame(60, 3));
    netback.inject(&frame(60, 4));
    netback.step();
    let transmit: Vec<u16> = frontend.transmit_responses().iter().map(|response| response.id).collect();
    assert_eq!(transmit, [u16::MAX, ids[1]]);
    let receive: Vec<u16> = frontend.receive_responses().iter().map(|response| response.id).collect();
    assert_eq!(receive, [u16::MAX, receive_ids[1]]);
}

#[test]
fn duplicate_id_hostility_answers_one_request_twice() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    netback.misbehave(Hostility::DuplicateId(Ring::Transmit), Lasting::Always);
    let first = frontend.send_frame(&frame(60, 1))[0];
    frontend.send_frame(&frame(60, 2));
    frontend.send_frame(&frame(60, 3));
    netback.step();
    let transmit: Vec<u16> = frontend.transmit_responses().iter().map(|response| response.id).collect();
    assert_eq!(transmit, [first; 3], "the first response has no predecessor and keeps its id");
}

#[test]
fn receive_status_and_offset_hostility() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    netback.misbehave(Hostility::ReceiveStatus(5000), Lasting::Once);
    netback.misbehave(Hostility::ReceiveStatus(-100), Lasting::Once);
    netback.misbehave(Hostility::ReceiveOffsetPastPageEnd, Lasting::Steps(1));
    frontend.post_receive_buffers(4);
    (0..3).for_each(|seed| assert!(netback.inject(&frame(100, seed))));
    netback.step();
    let responses = frontend.receive_responses();
    let pairs: Vec<(i16, u16)> = responses.iter().map(|response| (response.status, response.offset)).collect();
    assert_eq!(pairs, [(5000, 1), (-100, 4197), (100, 3997)], "each offset + status is past the page end");
    netback.inject(&frame(100, 4));
    netback.step();
    assert_eq!(frontend.receive_responses()[0], RxResponse { id: 3, offset: 0, flags: 0, status: 100 }, "worn off");
}

#[test]
fn producer_ahead_hostility_claims_responses_never_written() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    frontend.post_receive_buffers(1);
    netback.misbehave(Hostility::ProducerAhead(Ring::Receive, 3), Lasting::Once);
    netback.step();
    let [request_producer, _, response_producer, _] = frontend.receive.indices(frontend.memory());
    assert_eq!((request_producer, response_producer), (1, 3), "3 responses claimed for 1 request");
    assert!(frontend.take_notification());
    netback.step();
    assert_eq!(frontend.receive.indices(frontend.memory())[2], 3, "once only");
}

#[test]
fn delayed_responses_are_written_in_order_after_the_delay() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    netback.misbehave(Hostility::Delay(3), Lasting::Steps(1));
    frontend.send_frame(&frame(60, 1));
    netback.step();
    frontend.send_frame(&frame(60, 2));
    netback.step();
    netback.step();
    assert!(frontend.transmit_responses().is_empty(), "the second waits behind the first");
    netback.step();
    assert_eq!(statuses(&frontend.transmit_responses()), [NETIF_RSP_OKAY; 2]);
}

#[test]
fn lasting_steps_and_always_end_when_they_should() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    netback.misbehave(Hostility::UnknownId(Ring::Transmit), Lasting::Steps(2));
    let mut answered_ids = Vec::new();
    for seed in 0..3 {
        frontend.send_frame(&frame(60, seed));
        netback.step();
        answered_ids.extend(frontend.transmit_responses().iter().map(|response| response.id));
        frontend.transmit.rearm(frontend.memory());
    }
    assert_eq!(answered_ids, [u16::MAX, u16::MAX, 2]);
    netback.misbehave(Hostility::UnknownId(Ring::Transmit), Lasting::Always);
    frontend.send_frame(&frame(60, 4));
    netback.step();
    assert_eq!(frontend.transmit_responses()[0].id, u16::MAX);
    netback.behave();
    frontend.send_frame(&frame(60, 5));
    netback.step();
    assert_eq!(frontend.transmit_responses()[0].id, 4);
}

#[test]
fn extra_info_hostility_puts_extra_slots_after_a_frame_s_first() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    netback.misbehave(Hostility::ReceiveExtraInfo(2), Lasting::Once);
    let ids = frontend.post_receive_buffers(5);
    let incoming = frame(5000, 1);
    netback.inject(&incoming);
    netback.inject(&frame(100, 2));
    netback.step();
    let responses = frontend.receive_responses();
    // An extra-info slot read as a response: type and flags where the id
    // is, the rest zero for these (hash, then XDP) types.
    let extra = |kind: u16, more: u16| RxResponse { id: kind | more << 8, offset: 0, flags: 0, status: 0 };
    let expected = [
        RxResponse { id: ids[0], offset: 0, flags: NETRXF_MORE_DATA | NETRXF_EXTRA_INFO, status: 4096 },
        extra(4, 1),
        extra(5, 0),
        RxResponse { id: ids[3], offset: 0, flags: 0, status: 904 },
        RxResponse { id: ids[4], offset: 0, flags: 0, status: 100 },
    ];
    assert_eq!(responses, expected, "the next frame has no extra slot");
    let joined: Vec<u8> =
        [&responses[0], &responses[3]].iter().flat_map(|response| frontend.buffer_bytes(response)).collect();
    assert_eq!(joined, incoming);
    frontend.post_receive_buffers(5);
    netback.step();
    assert!(netback.errors().is_empty(), "the extra slots' requests count as answered: {:?}", netback.errors());
}

#[test]
fn receive_flags_hostility_adds_flags_to_the_next_response() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    netback.misbehave(Hostility::ReceiveFlags(NETRXF_MORE_DATA | NETRXF_CSUM_BLANK), Lasting::Once);
    frontend.post_receive_buffers(2);
    netback.inject(&frame(60, 1));
    netback.inject(&frame(60, 2));
    netback.step();
    let flags: Vec<u16> = frontend.receive_responses().iter().map(|response| response.flags).collect();
    assert_eq!(flags, [NETRXF_MORE_DATA | NETRXF_CSUM_BLANK, 0]);
}

#[test]
fn null_hostility_answers_an_extra_slot_okay_or_a_data_slot_null() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let mut large = tcp_frame(&[3; 3000]);
    checksum::make_partial(&mut large);
    let flags = NETTXF_CSUM_BLANK | NETTXF_EXTRA_INFO;
    netback.misbehave(Hostility::Null(NullFault::Withheld), Lasting::Once);
    let ids = frontend.send(&[data(&large, flags), extra_gso(1448, 1)]);
    netback.step();
    let responses = frontend.transmit_responses();
    assert_eq!(responses[0], TxResponse { id: ids[0], status: NETIF_RSP_OKAY });
    assert_eq!(responses[1], TxResponse { id: 1, status: NETIF_RSP_OKAY }, "the slot's old bytes as the id");

    netback.misbehave(Hostility::Null(NullFault::OnData), Lasting::Once);
    let ids = frontend.send_frame(&frame(60, 1));
    frontend.send_frame(&frame(60, 2));
    netback.step();
    let responses = frontend.transmit_responses();
    assert_eq!(responses[0], TxResponse { id: ids[0], status: NETIF_RSP_NULL });
    assert_eq!(responses[1].status, NETIF_RSP_OKAY, "once");
}
