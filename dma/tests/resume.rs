//! A resume in a new domain voids every grant: a device made before it
//! gives its pages back without revoking anything (the references may be a
//! new device's by then), and refuses to grant more.
#![forbid(unsafe_code)]

mod common;

use common::{BACKEND, BOUNCE, with_device};
use dma::{BackendTrust, DmaDevice, DmaPool, FromDevice, MapFailure, Released, ToDevice};
use xen_pv::grant_table::GrantError;
use xen_sim::grant_table::SimGrantError;

fn resume_checks(trust: BackendTrust) {
    with_device(trust, 1, 512, |fixture| {
        let device = &fixture.device;
        let pool: DmaPool<FromDevice> = DmaPool::new(device, 8).unwrap();
        let handle = device.map(fixture.buffer(0, 100), ToDevice).unwrap();
        let reference = handle.dma_addr().bus_page;
        let mapping = fixture.backend_map(reference, false);
        let bouncing = device.is_bouncing();
        match device.unmap_or_defer(handle) {
            // A bounced buffer comes back at once: the backend holds the
            // bounce page, which the device keeps.
            Released::Now(buffer) if bouncing => buffer.free(fixture.source),
            Released::Deferred if !bouncing => {}
            _ => panic!("the backend holds the buffer's own page: its release waits"),
        }
        let granted_before = fixture.table.borrow().counters().granted;
        assert!(!device.bus_pages_void());

        // Restored in a new domain: Xen's table is empty, the backend gone.
        drop(mapping);
        fixture.xen.wipe();
        let owners = fixture.table.borrow_mut().reset_after_resume(fixture.xen.current_entries()).unwrap();
        assert!(owners.is_empty(), "the device keeps its own deferred queue");
        assert!(device.bus_pages_void());

        // A device of the new domain takes the same references first.
        let new_device = DmaDevice::new(fixture.table, fixture.source, BACKEND, BackendTrust::Trusted).unwrap();
        let new_handle = new_device.map(fixture.buffer(0, 100), ToDevice).unwrap();
        let new_reference = new_handle.dma_addr().bus_page;

        // The old device cannot grant any more ...
        let refused = device.map(fixture.buffer(0, 100), ToDevice).unwrap_err();
        assert_eq!(refused.reason, MapFailure::Grant(GrantError::TableReset));
        refused.buffer.free(fixture.source);
        // ... and gives everything back without touching the table: the
        // deferred buffer, the pool, the bounce pages.
        let reclaimed = device.reclaim();
        assert_eq!(reclaimed.len(), usize::from(!bouncing), "the deferred buffer is dropped, not revoked");
        reclaimed.into_iter().for_each(|buffer| buffer.free(fixture.source));
        pool.close(device).unwrap();
        let revoked_before = fixture.table.borrow().counters().revoked;
        fixture.device.close().expect("nothing of the old domain is held");
        assert_eq!(fixture.table.borrow().counters().revoked, revoked_before, "nothing was revoked");
        assert!(granted_before > 0);

        // The new device's grant is untouched by all of that.
        let mapping = fixture.xen.map(BACKEND, new_reference, false).expect("the new grant stands");
        fixture.xen.unmap(mapping).unwrap();
        let buffer = new_device.unmap(new_handle).unwrap();
        buffer.free(fixture.source);
        new_device.close().unwrap();
        assert_eq!(fixture.source.outstanding_pages(), 0, "every page came back");
        assert_eq!(fixture.xen.map(BACKEND, reference, false).err(), Some(SimGrantError::NotGranted));
    });
}

#[test]
fn a_trusted_device_of_the_old_domain_forgets_its_grants() {
    resume_checks(BackendTrust::Trusted);
}

#[test]
fn a_bouncing_device_of_the_old_domain_forgets_its_grants_and_frees_its_bounce_pages() {
    resume_checks(BackendTrust::Untrusted(BOUNCE));
}
