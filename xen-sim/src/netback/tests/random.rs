//! Random traffic both ways, with a fixed seed: every frame arrives byte
//! for byte, however its slots are cut, and nothing is flagged.

use super::*;
use crate::random::XorShift;
use xen_pv::abi::PAGE_SIZE;

/// Cuts `frame` into slots at random offsets and lengths, none crossing
/// its page, the first holding at least a header; after 12 slots the rest
/// goes in whole pages, so a packet stays within 18 slots.
fn random_slots(random: &mut XorShift, frame: &[u8]) -> Vec<Slot> {
    let mut slots = Vec::new();
    let mut rest = frame;
    while !rest.is_empty() {
        let tidy = slots.len() >= 12;
        let offset = if tidy { 0 } else { random.below(PAGE_SIZE - 14) };
        let room = (PAGE_SIZE - offset).min(rest.len());
        let least = if slots.is_empty() { 14 } else { 1 };
        let length = if tidy { room } else { least + random.below(room - least + 1) };
        let (piece, tail) = rest.split_at(length);
        let flags = if tail.is_empty() { 0 } else { NETTXF_MORE_DATA };
        slots.push(Slot::Data { bytes: piece.to_vec(), offset: offset as u16, size: length as u16, flags });
        rest = tail;
    }
    if let Some(Slot::Data { size, .. }) = slots.first_mut() {
        *size = frame.len() as u16;
    }
    slots
}

#[test]
fn random_frames_cross_both_ways_intact() {
    let xen = SimXen::new(16);
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    let mut random = XorShift(0x2545_f491_4f6c_dd1d);
    let rounds = if cfg!(miri) { 3 } else { 60 };
    for round in 0..rounds {
        let outgoing = frame(14 + random.below(9000), round as u8);
        let slots = random_slots(&mut random, &outgoing);
        frontend.send(&slots);
        let incoming = frame(14 + random.below(20_000), round as u8 ^ 0x5a);
        frontend.post_receive_buffers(incoming.len().div_ceil(PAGE_SIZE));
        assert!(netback.inject(&incoming));
        netback.step();
        assert_eq!(netback.take_transmitted(), [outgoing], "round {round}");
        let received = frontend.receive_frames();
        let lengths: Vec<usize> = received.iter().map(|(bytes, _)| bytes.len()).collect();
        assert_eq!(lengths, [incoming.len()], "round {round}: {:?}", netback.errors());
        assert!(received[0] == (incoming, 0), "round {round}: the received frame or its flags differ");
        assert!(frontend.transmit_responses().iter().all(|response| response.status == NETIF_RSP_OKAY));
        frontend.transmit.rearm(frontend.memory());
        frontend.receive.rearm(frontend.memory());
    }
    assert!(netback.counters().violations.is_empty(), "{:?}", netback.errors());
}
