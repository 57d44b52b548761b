//! Identity addressing: the backend as a device on bare metal, reading
//! every reference the frontend writes as a guest frame, with the same
//! checks and the same violations as grants.

use super::*;
use crate::grant_table::SimGrantError;

/// A netback with identity addressing and a reference frontend naming its
/// pages by frame, connected.
fn connected_by_frames<'x>(
    xen: &'x SimXen,
    events: &'x EventChannels<'x, SimXen>,
    keys: impl FnOnce(&mut BTreeMap<String, String>),
) -> (SimNetback<'x>, TestFrontend<'x>) {
    let options = NetbackOptions { addressing: Addressing::Identity, ..NetbackOptions::default() };
    let mut netback = SimNetback::new(xen, options);
    let mut frontend = TestFrontend::with_addressing(xen, events, Addressing::Identity);
    let mut written = frontend.keys();
    keys(&mut written);
    frontend.connect_with(&written);
    netback.step();
    (netback, frontend)
}

/// A frame number no page of the guest's RAM has.
const OUTSIDE_RAM: u32 = 0x7fff_0000;

#[test]
fn frames_flow_both_ways_with_pages_named_by_frame() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected_by_frames(&xen, &events, |_| {});
    assert!(netback.is_connected(), "errors: {:?}", netback.errors());
    let outgoing = frame(5000, 1);
    let ids = frontend.send_frame(&outgoing);
    netback.step();
    assert_eq!(netback.take_transmitted(), [outgoing]);
    assert_eq!(statuses(&frontend.transmit_responses()), vec![NETIF_RSP_OKAY; ids.len()]);

    frontend.post_receive_buffers(4);
    let incoming = frame(6000, 2);
    assert!(netback.inject(&incoming));
    netback.step();
    assert_eq!(frontend.receive_frames(), [(incoming, 0)]);
    assert!(netback.counters().violations.is_empty(), "{:?}", netback.errors());
    assert_eq!(frontend.grants.counters().granted, 0, "not one grant was made");
    assert_eq!(xen.grants().active_mappings(), 2, "the backend holds the two ring frames");
    drop(netback);
    assert_eq!(xen.grants().active_mappings(), 0, "and lets go of them when it goes");
}

#[test]
fn a_ring_frame_outside_guest_ram_fails_the_connection() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (netback, _frontend) = connected_by_frames(&xen, &events, |keys| {
        keys.insert("rx-ring-ref".to_string(), OUTSIDE_RAM.to_string());
    });
    assert!(!netback.is_connected());
    assert_eq!(netback.violations(Violation::BadRingReference), 1);
    assert_eq!(xen.grants().active_mappings(), 0, "the good ring was let go of too");
}

#[test]
fn request_frames_outside_guest_ram_are_violations_never_panics() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected_by_frames(&xen, &events, |_| {});
    let request = TxRequest { gref: OUTSIDE_RAM, offset: 0, flags: 0, id: 7, size: 60 };
    frontend.transmit.push(frontend.memory(), request.encode());
    frontend.transmit.publish(frontend.memory());
    frontend.notify();
    netback.step();
    assert_eq!(netback.violations(Violation::BadTransmitGrant), 1);
    assert_eq!(frontend.transmit_responses(), [TxResponse { id: 7, status: NETIF_RSP_ERROR }]);
    assert!(netback.take_transmitted().is_empty());

    // A page the guest has freed is no more reachable than one it never had.
    let freed = frontend.memory().allocate(1).unwrap();
    let freed_frame = freed.frame() as u32;
    xen.grants().free_pages(freed).unwrap();
    for gref in [OUTSIDE_RAM, freed_frame] {
        frontend.receive.push(frontend.memory(), RxRequest { id: 9, gref }.encode());
        frontend.publish_receive();
        assert!(netback.inject(&frame(60, 3)));
        netback.step();
        let responses = frontend.receive_responses();
        assert_eq!(responses.len(), 1);
        assert!(responses[0].status < 0, "a copy error status: {:?}", responses[0]);
    }
    assert_eq!(netback.violations(Violation::BadReceiveGrant), 2);
    assert!(netback.is_connected() && !netback.is_disabled(), "as with a bad grant, not fatal");
}

/// Nothing revokes a bare-metal device's access: the simulation holds the
/// frames it uses, so a guest that frees such a page is refused, which is
/// how a test finds a driver freeing memory its device still reads.
#[test]
fn a_page_the_backend_still_reads_cannot_be_freed() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected_by_frames(&xen, &events, |_| {});
    let page = frontend.memory().allocate(1).unwrap();
    frontend.memory().write(page.frame(), 0, &frame(60, 4)).unwrap();
    netback.misbehave(Hostility::Delay(2), Lasting::Once);
    let request = TxRequest { gref: page.frame() as u32, offset: 0, flags: 0, id: 1, size: 60 };
    frontend.transmit.push(frontend.memory(), request.encode());
    frontend.transmit.publish(frontend.memory());
    frontend.notify();
    netback.step();
    assert!(frontend.transmit_responses().is_empty(), "the response is held, and the frame with it");
    let refused = xen.grants().free_pages(page).unwrap_err();
    assert_eq!(refused.reason, SimGrantError::StillMapped);
    netback.step();
    netback.step();
    assert_eq!(frontend.transmit_responses(), [TxResponse { id: 1, status: NETIF_RSP_OKAY }]);
    xen.grants().free_pages(refused.pages).expect("answered: the backend let go");
}
