//! The one-shot timer against the simulated hypervisor's virtual clock.
#![forbid(unsafe_code)]

use xen_pv::XenError;
use xen_pv::event_channel::EventChannels;
use xen_pv::timer::{MAX_WAIT_PORTS, Timer, Wake};
use xen_sim::{BACKEND_DOMAIN, SimXen};

#[test]
fn sleeps_until_the_deadline_and_arms_once_per_deadline() {
    let xen = SimXen::new(1);
    let events = EventChannels::new(&xen, xen.shared_info());
    let timer = Timer::new(&events).unwrap();
    let device = events.alloc_unbound(BACKEND_DOMAIN).unwrap();
    assert_eq!(timer.wait(&[device], Some(1_000_000_000)), Ok(Wake::Deadline));
    assert_eq!(xen.now(), 1_000_000_000);
    assert_eq!(xen.counts().timer_sets, 1);
    // An event before the next deadline wakes the wait; waiting again for
    // the same deadline does not re-arm.
    xen.raise(device);
    assert_eq!(timer.wait(&[device], Some(2_000_000_000)), Ok(Wake::Event));
    assert!(events.take_pending(device));
    assert_eq!(timer.wait(&[device], Some(2_000_000_000)), Ok(Wake::Deadline));
    assert_eq!(xen.counts().timer_sets, 2);
    assert_eq!(xen.now(), 2_000_000_000);
}

#[test]
fn a_past_deadline_returns_at_once() {
    let xen = SimXen::new(1);
    let events = EventChannels::new(&xen, xen.shared_info());
    let timer = Timer::new(&events).unwrap();
    xen.advance(500);
    assert_eq!(timer.wait(&[], Some(100)), Ok(Wake::Deadline));
    assert_eq!(xen.counts().polls, 0, "no sleep for a past deadline");
}

#[test]
fn refuses_more_ports_than_it_can_watch() {
    let xen = SimXen::new(1);
    let events = EventChannels::new(&xen, xen.shared_info());
    let timer = Timer::new(&events).unwrap();
    let ports = [5; MAX_WAIT_PORTS + 1];
    assert_eq!(timer.wait(&ports, Some(10)), Err(XenError::EINVAL));
}
