//! Suspend and resume against the simulated Xen: telling a cancelled
//! suspend from a resume in a new domain, and setting the event channels,
//! the timer, xenstore and the grant table up again in the new one.
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;
use xen_pv::PortStatus;
use xen_pv::abi::grant_table::{GNTTAB_NR_RESERVED_ENTRIES, GTF_PERMIT_ACCESS};
use xen_pv::abi::hvm::HVM_PARAM_STORE_EVTCHN;
use xen_pv::abi::vcpu::VIRQ_TIMER;
use xen_pv::event_channel::EventChannels;
use xen_pv::grant_table::{GrantError, GrantTable, Release, ResetRefused};
use xen_pv::hypervisor::Hypervisor;
use xen_pv::suspend::{SuspendOutcome, suspend};
use xen_pv::timer::{Timer, Wake};
use xen_pv::xenstore::Xenstore;
use xen_sim::{BACKEND_DOMAIN, SimXen, XENSTORE_PORT};

#[test]
fn a_cancellation_xen_reports_resumes_in_place() {
    let xen = SimXen::new(1);
    let events = EventChannels::new(&xen, xen.shared_info());
    let timer = Timer::new(&events).unwrap();
    xen.cancel_next_suspend(true);
    assert_eq!(suspend(&xen, timer.port(), VIRQ_TIMER), Ok(SuspendOutcome::Cancelled));
    assert_eq!(xen.suspends(), 1);
    assert_eq!(xen.binding(timer.port()), Some(xen_sim::Binding::Virq(VIRQ_TIMER)), "nothing was re-created");
}

/// libxc reports a cancellation only to guests with a callback interrupt;
/// this one has none and sees 0, and finds its timer's port still bound.
#[test]
fn a_cancellation_xen_does_not_report_is_recognised_by_the_timer_port() {
    let xen = SimXen::new(1);
    let events = EventChannels::new(&xen, xen.shared_info());
    let timer = Timer::new(&events).unwrap();
    xen.cancel_next_suspend(false);
    assert_eq!(suspend(&xen, timer.port(), VIRQ_TIMER), Ok(SuspendOutcome::Cancelled));
}

#[test]
fn a_new_domain_is_recognised_and_its_ports_bound_again() {
    let xen = SimXen::new(1);
    let events = EventChannels::new(&xen, xen.shared_info());
    let timer = Timer::new(&events).unwrap();
    let old_timer_port = timer.port();
    xen.restore_in_new_domain();
    assert_eq!(suspend(&xen, old_timer_port, VIRQ_TIMER), Ok(SuspendOutcome::Resumed));
    assert_eq!(xen.shared_info().vcpu_info[0].evtchn_upcall_mask.load(Ordering::SeqCst), 0, "a new page");

    events.resumed();
    assert_eq!(xen.shared_info().vcpu_info[0].evtchn_upcall_mask.load(Ordering::SeqCst), 1, "masked again");
    let port = timer.rebind().unwrap();
    assert_eq!(events.status(port), Ok(PortStatus::Virq { virq: VIRQ_TIMER, vcpu: 0 }));
    assert_ne!(port, old_timer_port, "the toolstack's ports came first in the new domain");
    // The timer works on its new port, armed afresh.
    let deadline = xen.now() + 1_000_000;
    assert_eq!(timer.wait(&[], Some(deadline)), Ok(Wake::Deadline));
    assert_eq!(xen.now(), deadline);
}

#[test]
fn xenstore_talks_to_the_new_daemon_on_its_new_port_and_watches_again() {
    let xen = SimXen::new(1);
    let events = EventChannels::new(&xen, xen.shared_info());
    let mut store = Xenstore::new(&events, xen.xenstore_ring(), XENSTORE_PORT, SimXen::clock());
    store.write("data/before", "1").unwrap();
    store.watch("control/shutdown", "token").unwrap();
    // The watch's first event waits unread, as one may at a suspend.
    assert_eq!(xen.with_xenstore(|server| server.watch_count()), 1);

    xen.restore_in_new_domain();
    let port = xen.hvm_get_param(HVM_PARAM_STORE_EVTCHN).unwrap() as u32;
    assert_ne!(port, XENSTORE_PORT);
    events.resumed();
    store.resume(port);
    assert_eq!(store.port(), port);
    assert_eq!(store.next_watch_event(), Ok(None), "events of the old connection are dropped");
    assert_eq!(store.read("data/before"), Err(xen_pv::xenstore::XenstoreError::NotFound), "a new home");
    store.write("data/after", "2").unwrap();
    assert_eq!(xen.with_xenstore(|server| server.read_as_dom0("data/after")).as_deref(), Some("2"));
    store.watch("control/shutdown", "token").unwrap();
    let event = store.next_watch_event().unwrap().expect("the new watch's first event");
    assert_eq!(event.path, "control/shutdown");
    assert_eq!(xen.take_notifications(XENSTORE_PORT), 0, "nothing goes to the old port");
    assert!(xen.take_notifications(port) >= 3, "every request went to the new one");
}

#[test]
fn the_grant_table_forgets_its_grants_only_once_xen_shows_them_gone() {
    let xen = SimXen::new(1);
    let frame = xen.grants().memory().allocate(1).unwrap().frame();
    let mut table: GrantTable<'_, &str> = GrantTable::new(xen.grants().current_entries());
    let kept = table.grant(BACKEND_DOMAIN, frame, false).unwrap();
    let held = table.grant(BACKEND_DOMAIN, frame, true).unwrap();
    let mapping = xen.grants().map(BACKEND_DOMAIN, held, false).unwrap();
    assert_eq!(table.revoke_or_defer(&[held], "the held page"), Ok(Release::Deferred));

    // The same domain: Xen still shows the grants, so nothing is forgotten.
    assert_eq!(
        table.reset_after_resume(xen.grants().current_entries()).err(),
        Some(ResetRefused { still_granted: kept })
    );
    assert_eq!(table.epoch(), 0);
    assert_eq!(table.counters().in_use, 2);

    drop(mapping); // the old backend is gone with the old domain
    xen.restore_in_new_domain();
    let owners = table.reset_after_resume(xen.grants().current_entries()).unwrap();
    assert_eq!(owners, vec!["the held page"], "no backend holds the deferred page any more");
    assert_eq!(table.epoch(), 1);
    let counters = table.counters();
    assert_eq!((counters.in_use, counters.deferred, counters.forgotten, counters.revoked), (0, 0, 2, 0));
    // Every usable reference is free again, handed out from the first.
    let first = table.grant(BACKEND_DOMAIN, frame, false).unwrap();
    assert_eq!(first, GNTTAB_NR_RESERVED_ENTRIES);
    assert_ne!(xen.grants().entries()[first as usize].flags.load(Ordering::SeqCst) & GTF_PERMIT_ACCESS, 0);
    assert_eq!(table.revoke(held), Err(xen_pv::grant_table::RevokeError::NotGranted), "old references are free");
    let _ = GrantError::TableReset;
}
