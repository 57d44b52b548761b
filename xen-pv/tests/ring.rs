//! The front ring against the back end's half from `xen-sim`: both sides of
//! one shared page, in order, with the notification rules and a hostile
//! back end. (The front half alone: the unit tests of src/ring.rs.)
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;
use xen_pv::ring::{FrontRing, RingError, SharedRing};
use xen_sim::ring::BackRing;

#[test]
fn requests_and_responses_travel_in_order() {
    let shared = Box::new(SharedRing::<2>::new_zeroed());
    let mut front = FrontRing::new(&*shared);
    let mut back = BackRing::new(&shared);
    front.push([1, 10]).unwrap();
    front.push([2, 20]).unwrap();
    assert!(front.publish(), "req_event starts at 1: the first request notifies");
    assert_eq!(back.take(), Ok(Some([1, 10])));
    assert_eq!(back.take(), Ok(Some([2, 20])));
    assert_eq!(back.take(), Ok(None));
    back.push([1, 0]);
    assert!(back.publish());
    assert_eq!(front.take(), Ok(Some([1, 0])));
    assert_eq!(front.take(), Ok(None));
    assert_eq!(front.outstanding(), 1);
}

#[test]
fn notification_follows_the_event_index() {
    let shared = Box::new(SharedRing::<2>::new_zeroed());
    let mut front = FrontRing::new(&*shared);
    let mut back = BackRing::new(&shared);
    front.push([0, 0]).unwrap();
    assert!(front.publish());
    // The back end has not re-armed req_event: no notification needed.
    front.push([0, 0]).unwrap();
    assert!(!front.publish());
    back.take().unwrap();
    back.take().unwrap();
    assert_eq!(back.final_check(), Ok(false));
    front.push([0, 0]).unwrap();
    assert!(front.publish(), "re-armed by final_check");
}

#[test]
fn final_check_sees_a_racing_response() {
    let shared = Box::new(SharedRing::<2>::new_zeroed());
    let mut front = FrontRing::new(&*shared);
    let mut back = BackRing::new(&shared);
    front.push([7, 0]).unwrap();
    front.publish();
    back.take().unwrap();
    back.push([7, 0]);
    back.publish();
    assert_eq!(front.final_check(), Ok(true));
    front.take().unwrap();
    assert_eq!(front.final_check(), Ok(false));
    assert_eq!(shared.rsp_event.load(Ordering::Relaxed), 2);
}

#[test]
fn a_backend_claiming_too_many_responses_is_caught() {
    let shared = Box::new(SharedRing::<2>::new_zeroed());
    let mut front = FrontRing::new(&*shared);
    let mut back = BackRing::new(&shared);
    front.push([1, 0]).unwrap();
    front.publish();
    back.force_response_producer(2);
    assert_eq!(front.take(), Err(RingError::ProducerOverflow { producer: 2, consumer: 0 }));
    back.force_response_producer(u32::MAX);
    assert!(front.unconsumed().is_err());
}
