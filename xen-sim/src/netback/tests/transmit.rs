//! The transmit ring: gathering slots, and netback's rules one by one.

use super::*;

#[test]
fn a_multi_slot_packet_is_gathered_from_its_slots() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let whole = frame(2150, 3);
    let (first, rest) = whole.split_at(100);
    let (second, third) = rest.split_at(2000);
    let slots = [
        Slot::Data { bytes: first.to_vec(), offset: 3996, size: 2150, flags: NETTXF_MORE_DATA },
        Slot::Data { bytes: second.to_vec(), offset: 0, size: 2000, flags: NETTXF_MORE_DATA },
        Slot::Data { bytes: third.to_vec(), offset: 1000, size: 50, flags: 0 },
    ];
    let ids = frontend.send(&slots);
    netback.step();
    assert_eq!(netback.take_transmitted(), [whole]);
    let expected: Vec<TxResponse> = ids.iter().map(|&id| TxResponse { id, status: NETIF_RSP_OKAY }).collect();
    assert_eq!(frontend.transmit_responses(), expected);
    assert_eq!(netback.counters().transmit_requests, 3);
}

#[test]
fn a_slot_crossing_its_page_disables_the_vif() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    frontend.send(&[Slot::Data { bytes: frame(96, 9), offset: 4000, size: 200, flags: 0 }]);
    netback.step();
    assert_eq!(netback.violations(Violation::SlotCrossesPage), 1);
    assert!(netback.is_disabled() && netback.is_connected());
    assert!(frontend.transmit_responses().is_empty(), "a fatal error answers nothing");
    frontend.send_frame(&frame(60, 9));
    netback.step();
    assert!(netback.take_transmitted().is_empty(), "a disabled vif serves nothing");
    assert!(!netback.inject(&frame(60, 9)));
    assert!(netback.errors().last().unwrap().contains("fatal error, disabling device"));
}

#[test]
fn a_follow_up_slot_crossing_its_page_is_fatal_too() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let first = Slot::Data { bytes: frame(100, 1), offset: 0, size: 110, flags: NETTXF_MORE_DATA };
    frontend.send(&[first, Slot::Data { bytes: vec![1; 6], offset: 4090, size: 10, flags: 0 }]);
    netback.step();
    assert_eq!(netback.violations(Violation::SlotCrossesPage), 1);
    assert!(netback.is_disabled());
}

/// A packet of one 100-byte first slot and `follow_ups` 100-byte slots.
fn packet_of(follow_ups: usize) -> Vec<Slot> {
    let size = (100 * (1 + follow_ups)) as u16;
    let mut slots = vec![Slot::Data { bytes: frame(100, 0), offset: 0, size, flags: NETTXF_MORE_DATA }];
    slots.extend((0..follow_ups).map(|index| {
        let flags = if index + 1 < follow_ups { NETTXF_MORE_DATA } else { 0 };
        data(&[index as u8; 100], flags)
    }));
    slots
}

#[test]
fn slot_limits_accept_18_follow_ups_drop_19_and_disable_above_20() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    frontend.send(&packet_of(18));
    netback.step();
    assert_eq!(netback.take_transmitted().len(), 1, "Linux takes 1 + 18 slots");
    assert_eq!(netback.violations(Violation::MoreSlotsThanProtocolMinimum), 1, "the protocol promises 18 in all");
    frontend.transmit_responses();

    frontend.send(&packet_of(19));
    netback.step();
    assert!(netback.take_transmitted().is_empty());
    assert_eq!(statuses(&frontend.transmit_responses()), [NETIF_RSP_ERROR; 20]);
    assert_eq!(netback.violations(Violation::TooManySlots), 1);
    assert!(!netback.is_disabled(), "a drop is not fatal");

    frontend.send(&packet_of(21));
    netback.step();
    assert_eq!(netback.violations(Violation::TooManySlotsFatal), 1);
    assert!(netback.is_disabled());
}

#[test]
fn twenty_follow_ups_are_still_only_dropped() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    frontend.send(&packet_of(20));
    netback.step();
    assert_eq!(statuses(&frontend.transmit_responses()), [NETIF_RSP_ERROR; 21]);
    assert!(!netback.is_disabled());
}

#[test]
fn a_first_slot_under_an_ethernet_header_is_dropped_with_errors() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    frontend.send(&[data(&[0xab; 10], 0)]);
    frontend
        .send(&[Slot::Data { bytes: vec![1; 10], offset: 0, size: 110, flags: NETTXF_MORE_DATA }, data(&[2; 100], 0)]);
    netback.step();
    assert_eq!(statuses(&frontend.transmit_responses()), [NETIF_RSP_ERROR; 3]);
    assert_eq!(netback.violations(Violation::FirstSlotTooSmall), 2);
    assert_eq!(netback.counters().transmit_errors, 2);
    assert!(netback.take_transmitted().is_empty() && !netback.is_disabled());
}

#[test]
fn a_follow_up_slot_larger_than_the_packet_is_dropped() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    frontend.send(&[
        Slot::Data { bytes: frame(100, 1), offset: 0, size: 100, flags: NETTXF_MORE_DATA },
        data(&[2; 200], 0),
    ]);
    netback.step();
    assert_eq!(statuses(&frontend.transmit_responses()), [NETIF_RSP_ERROR; 2]);
    assert_eq!(netback.violations(Violation::SlotLargerThanPacket), 1);
}

#[test]
fn a_packet_promising_a_slot_that_is_not_published_is_fatal() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    frontend.send(&[Slot::Data { bytes: frame(100, 1), offset: 0, size: 200, flags: NETTXF_MORE_DATA }]);
    netback.step();
    assert_eq!(netback.violations(Violation::MissingSlots), 1);
    assert!(netback.is_disabled());
}

#[test]
fn an_impossible_request_producer_is_fatal() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, frontend) = connected(&xen, &events);
    frontend.transmit.set_word(frontend.memory(), 0, 300);
    frontend.notify();
    netback.step();
    assert_eq!(netback.violations(Violation::ImpossibleRequestCount), 1);
    assert!(netback.is_disabled());
}

#[test]
fn extra_info_slots_get_null_responses() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let mut tcp = tcp_frame(&[7; 3000]);
    assert!(checksum::make_partial(&mut tcp));
    let ids = frontend.send(&[data(&tcp, NETTXF_EXTRA_INFO | NETTXF_CSUM_BLANK), extra_gso(1448, 1)]);
    netback.step();
    let responses = frontend.transmit_responses();
    assert_eq!(responses[0], TxResponse { id: ids[0], status: NETIF_RSP_OKAY });
    assert_eq!(responses[1].status, NETIF_RSP_NULL);
    assert_eq!(responses[1].id, 1, "netback writes only the status: the id is the extra's type byte");
    let transmitted = netback.take_transmitted_frames();
    assert_eq!(transmitted[0].gso, Some((1, 1448)));
    assert_eq!(transmitted[0].data, tcp);
    assert_eq!(transmitted[0].segments.len(), 3, "3000 bytes in segments of 1448");
    assert!(netback.counters().violations.is_empty(), "{:?}", netback.errors());
}

#[test]
fn bad_extra_info_is_fatal() {
    let bad_extras = [
        (Slot::Extra([9, 0, 0]), Violation::BadExtraInfo),
        (Slot::Extra([0, 0, 0]), Violation::BadExtraInfo),
        (extra_gso(0, 1), Violation::BadGso),
        (extra_gso(1448, 7), Violation::BadGso),
    ];
    for (extra, violation) in bad_extras {
        let xen = sim();
        let events = EventChannels::new(&xen, xen.shared_info());
        let (mut netback, mut frontend) = connected(&xen, &events);
        frontend.send(&[data(&frame(100, 1), NETTXF_EXTRA_INFO), extra]);
        netback.step();
        assert_eq!(netback.violations(violation), 1, "{violation:?}");
        assert!(netback.is_disabled());
    }
}

#[test]
fn multicast_control_extras_are_answered_without_a_frame() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    frontend.send(&[data(&frame(14, 0), NETTXF_EXTRA_INFO), Slot::Extra([2 | 0x0100_0000, 0, 0])]);
    netback.step();
    assert_eq!(statuses(&frontend.transmit_responses()), [NETIF_RSP_OKAY, NETIF_RSP_NULL]);
    assert!(netback.take_transmitted().is_empty());
}

#[test]
fn transmit_grants_are_mapped_read_only_until_answered() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    netback.misbehave(Hostility::Delay(2), Lasting::Once);
    frontend.send_frame(&frame(60, 1));
    netback.step();
    let reference = frontend.transmit_grants[0];
    let flags = xen.grants().entries()[reference as usize].flags.load(Ordering::SeqCst);
    assert_eq!(flags & (GTF_READING | GTF_WRITING), GTF_READING, "mapped, read-only");
    assert_eq!(frontend.revoke(reference), Err(RevokeError::StillInUse));
    assert!(frontend.transmit_responses().is_empty());
    netback.step();
    assert!(frontend.transmit_responses().is_empty(), "held for 2 steps");
    netback.step();
    assert_eq!(statuses(&frontend.transmit_responses()), [NETIF_RSP_OKAY]);
    assert_eq!(frontend.revoke(reference), Ok(()), "the response ends the mapping");
}

#[test]
fn a_transmit_grant_dom0_cannot_map_is_answered_with_an_error() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let ids = frontend.send(&packet_of(1));
    frontend.revoke(frontend.transmit_grants[1]).unwrap();
    netback.step();
    let responses = frontend.transmit_responses();
    assert_eq!(statuses(&responses), [NETIF_RSP_OKAY, NETIF_RSP_ERROR], "as netback's xenvif_tx_check_gop");
    assert_eq!(responses[1].id, ids[1]);
    assert_eq!(netback.violations(Violation::BadTransmitGrant), 1);
    assert!(netback.take_transmitted().is_empty());
    assert_eq!(xen.grants().active_mappings(), 2, "only the rings stay mapped");
}

#[test]
fn checksum_blank_on_a_frame_that_is_not_tcp_or_udp_loses_it() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    frontend.send(&[data(&frame(60, 1), NETTXF_CSUM_BLANK)]);
    frontend.send(&[data(&tcp_frame(b"hello"), NETTXF_CSUM_BLANK)]);
    netback.step();
    assert_eq!(statuses(&frontend.transmit_responses()), [NETIF_RSP_OKAY; 2]);
    assert_eq!(netback.violations(Violation::ChecksumBlankNotTcpUdp), 1);
    let transmitted = netback.take_transmitted_frames();
    assert_eq!(transmitted.len(), 1);
    assert!(transmitted[0].checksum_blank);
}
