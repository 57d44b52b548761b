//! Notifications both ways, by the ring rules.

use super::*;

#[test]
fn the_backend_notifies_only_when_rsp_event_asks() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    frontend.send_frame(&frame(60, 1));
    netback.step();
    assert!(frontend.take_notification());
    frontend.transmit_responses();
    frontend.send_frame(&frame(60, 2));
    netback.step();
    assert!(!frontend.take_notification(), "rsp_event was not re-armed");
    assert_eq!(frontend.transmit_responses().len(), 1, "but the response is there");
    frontend.transmit.rearm(frontend.memory());
    frontend.send_frame(&frame(60, 3));
    netback.step();
    assert!(frontend.take_notification());
    assert_eq!(netback.counters().backend_notifications, 2);
    assert_eq!(netback.counters().frontend_notifications, 3, "req_event was re-armed after each packet");
}

#[test]
fn requests_published_without_a_notification_wait_and_are_counted() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    frontend.send_frame(&frame(60, 1));
    netback.step();
    let request = TxRequest { gref: frontend.page_with(&frame(60, 2), 0, true), size: 60, ..TxRequest::default() };
    frontend.transmit.push(frontend.memory(), request.encode());
    assert!(frontend.transmit.publish(frontend.memory()), "the ring asks for a notification");
    netback.step();
    netback.step();
    assert_eq!(netback.take_transmitted().len(), 1, "the second packet sleeps with the backend");
    assert_eq!(netback.violations(Violation::MissedNotification), 1, "counted once");
    frontend.notify();
    netback.step();
    assert_eq!(netback.take_transmitted().len(), 1);
}

#[test]
fn a_backend_not_requiring_notifications_serves_at_every_step() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let options = NetbackOptions { notifications_required: false, ..NetbackOptions::default() };
    let (mut netback, mut frontend) = connected_with(&xen, &events, options, |_| {});
    let request = TxRequest { gref: frontend.page_with(&frame(60, 2), 0, true), size: 60, ..TxRequest::default() };
    frontend.transmit.push(frontend.memory(), request.encode());
    frontend.transmit.publish(frontend.memory());
    netback.step();
    assert_eq!(netback.take_transmitted().len(), 1);
    assert_eq!(netback.violations(Violation::MissedNotification), 0);
}
