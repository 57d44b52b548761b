//! Event channels over the simulated hypervisor's shared info page: the
//! upcall mask, pending bits taken once, the 2-level scan, waits and
//! notifications.
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;
use xen_pv::abi::event_channel::Port;
use xen_pv::abi::vcpu::VIRQ_TIMER;
use xen_pv::event_channel::EventChannels;
use xen_pv::{Hypervisor, XenError};
use xen_sim::{BACKEND_DOMAIN, SimXen};

#[test]
fn masks_the_upcall_and_takes_pending_bits_once() {
    let xen = SimXen::new(1);
    let events = EventChannels::new(&xen, xen.shared_info());
    assert_eq!(xen.shared_info().vcpu_info[0].evtchn_upcall_mask.load(Ordering::SeqCst), 1);
    let port = events.alloc_unbound(BACKEND_DOMAIN).unwrap();
    assert!(!events.take_pending(port));
    xen.raise(port);
    assert!(events.is_pending(port));
    assert!(events.take_pending(port));
    assert!(!events.take_pending(port));
    assert_eq!(events.counters().received.load(Ordering::Relaxed), 1);
}

#[test]
fn scans_pending_unmasked_ports_in_order() {
    let xen = SimXen::new(1);
    let events = EventChannels::new(&xen, xen.shared_info());
    for port in [700, 3, 64, 65, 4095] {
        xen.raise(port);
    }
    events.mask(64).unwrap();
    let seen: Vec<Port> = events.pending_ports().collect();
    assert_eq!(seen, [3, 65, 700, 4095]);
    events.unmask(64).unwrap();
    assert_eq!(events.pending_ports().count(), 5, "scanning does not clear");
    assert_eq!(xen.shared_info().vcpu_info[0].evtchn_upcall_pending.load(Ordering::SeqCst), 0);
}

#[test]
fn rejects_ports_outside_the_2_level_range() {
    let xen = SimXen::new(1);
    let events = EventChannels::new(&xen, xen.shared_info());
    assert_eq!(events.mask(4096), Err(XenError::EINVAL));
    assert!(!events.take_pending(u32::MAX));
    assert_eq!(events.close(5000), Err(XenError::EINVAL));
}

#[test]
fn wait_sleeps_only_when_nothing_is_pending() {
    let xen = SimXen::new(1);
    let events = EventChannels::new(&xen, xen.shared_info());
    let timer = events.bind_virq(VIRQ_TIMER).unwrap();
    xen.set_singleshot_timer(0, 2_000_000).unwrap();
    events.wait(&[timer], None).unwrap();
    assert_eq!(xen.now(), 2_000_000);
    assert!(events.take_pending(timer));
    xen.raise(timer);
    events.wait(&[timer], Some(9_000_000)).unwrap();
    assert_eq!(events.counters().polls.load(Ordering::Relaxed), 1, "second wait did not poll");
}

#[test]
fn notify_counts_and_reaches_the_other_end() {
    let xen = SimXen::new(1);
    let events = EventChannels::new(&xen, xen.shared_info());
    let port = events.alloc_unbound(BACKEND_DOMAIN).unwrap();
    events.notify(port).unwrap();
    events.notify(port).unwrap();
    assert_eq!(xen.take_notifications(port), 2);
    assert_eq!(events.notify(999), Err(XenError::EINVAL));
    events.close(port).unwrap();
    assert_eq!(events.notify(port), Err(XenError::EINVAL));
}
