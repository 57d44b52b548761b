//! The DMA layer against the simulated grant table, trusted backend: grant
//! permissions, unmap, held grants, deferred release, exhaustion, pools.
#![forbid(unsafe_code)]

mod common;

use common::{BACKEND, Fixture, trusted, with_device};
use dma::{
    BackendTrust, Bidirectional, CloseRefusal, DmaPool, FromDevice, MapFailure, PAGE_SIZE, PoolEmpty, Released,
    Segment, ToDevice,
};
use xen_sim::grant_table::SimGrantError;

#[test]
fn from_device_grant_is_writable_by_the_backend() {
    trusted(|fixture| {
        let mut handle = fixture.device.map(fixture.buffer(0, 64), FromDevice).unwrap();
        let mapping = fixture.backend_map(handle.dma_addr().bus_page, true);
        fixture.xen.write(&mapping, 0, b"from the backend").unwrap();
        fixture.xen.unmap(mapping).unwrap();
        let seen = handle.read(&fixture.device, |bytes| bytes[..16].to_vec());
        assert_eq!(seen, b"from the backend");
        let buffer = fixture.device.unmap(handle).unwrap();
        assert_eq!(&buffer.as_bytes()[..16], b"from the backend", "unmap gives back what the device wrote");
        buffer.free(fixture.source);
        fixture.close_and_check();
    });
}

#[test]
fn to_device_grant_is_read_only_for_the_backend() {
    trusted(|fixture| {
        let mut handle = fixture.device.map(fixture.buffer(0, 64), ToDevice).unwrap();
        handle.write(&fixture.device, |bytes| bytes[..8].copy_from_slice(b"for you!"));
        let grant_reference = handle.dma_addr().bus_page;
        assert_eq!(fixture.xen.map(BACKEND, grant_reference, true).unwrap_err(), SimGrantError::ReadOnly);
        let mut seen = [0; 8];
        fixture.xen.copy_from_grant(BACKEND, grant_reference, 0, &mut seen).unwrap();
        assert_eq!(&seen, b"for you!");
        assert_eq!(fixture.xen.copy_to_grant(BACKEND, grant_reference, 0, b"x"), Err(SimGrantError::ReadOnly));
        fixture.device.unmap(handle).unwrap().free(fixture.source);
        fixture.close_and_check();
    });
}

#[test]
fn after_unmap_the_backend_can_no_longer_reach_any_page() {
    trusted(|fixture| {
        let handle = fixture.device.map(fixture.buffer(100, 3 * PAGE_SIZE), Bidirectional).unwrap();
        let references: Vec<u32> = handle.segments().map(|segment| segment.bus_page).collect();
        assert_eq!(references.len(), 4);
        assert!(references.iter().all(|&reference| fixture.backend_can_map(reference)));
        let buffer = fixture.device.unmap(handle).unwrap();
        for reference in references {
            assert_eq!(fixture.xen.map(BACKEND, reference, false).unwrap_err(), SimGrantError::NotGranted);
        }
        assert!(fixture.permitted_frames().is_empty());
        buffer.free(fixture.source);
        fixture.close_and_check();
    });
}

#[test]
fn segments_give_one_grant_per_page_touched_and_never_cross_a_page() {
    trusted(|fixture| {
        let mut handle = fixture.device.map(fixture.buffer(4000, 5000), ToDevice).unwrap();
        handle.write(&fixture.device, |bytes| bytes.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8));
        let segments: Vec<Segment> = handle.segments().collect();
        let shape: Vec<(u16, u16)> = segments.iter().map(|segment| (segment.offset, segment.length)).collect();
        assert_eq!(shape, [(4000, 96), (0, 4096), (0, 808)]);
        assert_eq!(handle.dma_addr().bus_page, segments[0].bus_page);
        assert_eq!(handle.dma_addr().offset, 4000);
        let gathered = gather(&fixture, &segments);
        assert_eq!(gathered, (0..5000).map(|i| i as u8).collect::<Vec<u8>>(), "the backend reads the buffer back");
        fixture.device.unmap(handle).unwrap().free(fixture.source);
        fixture.close_and_check();
    });
}

/// What the backend reads through a scatter-gather list.
fn gather(fixture: &Fixture<'_, '_>, segments: &[Segment]) -> Vec<u8> {
    let mut gathered = Vec::new();
    for segment in segments {
        let mut part = vec![0; usize::from(segment.length)];
        fixture.xen.copy_from_grant(BACKEND, segment.bus_page, usize::from(segment.offset), &mut part).unwrap();
        gathered.extend(part);
    }
    gathered
}

#[test]
fn a_held_grant_makes_unmap_fail_and_keeps_the_buffer_owned_until_released() {
    trusted(|fixture| {
        let handle = fixture.device.map(fixture.buffer(0, 3 * PAGE_SIZE), FromDevice).unwrap();
        let references: Vec<u32> = handle.segments().map(|segment| segment.bus_page).collect();
        let frames = fixture.permitted_frames();
        let mapping = fixture.backend_map(references[1], true);

        let still_in_use = fixture.device.unmap(handle).unwrap_err();
        assert_eq!(still_in_use.held_bus_pages(), &references[1..2]);
        assert!(!fixture.backend_can_map(references[0]) && !fixture.backend_can_map(references[2]));
        assert!(frames.iter().all(|&frame| fixture.source.is_outstanding(frame)), "no page went back");
        assert_eq!(fixture.device.counters().unmap_refusals, 1);

        let still_in_use = fixture.device.retry_unmap(still_in_use).unwrap_err();
        fixture.xen.write(&mapping, 0, b"late write").unwrap();
        fixture.xen.unmap(mapping).unwrap();
        let buffer = fixture.device.retry_unmap(still_in_use).unwrap();
        assert_eq!(&buffer.as_bytes()[PAGE_SIZE..PAGE_SIZE + 10], b"late write");
        assert_eq!(fixture.device.counters().unmaps, 1);
        buffer.free(fixture.source);
        fixture.close_and_check();
    });
}

#[test]
fn a_large_buffer_keeps_its_held_grants_in_order_until_released() {
    // 64 KiB at an offset: 17 pages, more than a handle keeps inline.
    trusted(|fixture| {
        let handle = fixture.device.map(fixture.buffer(100, 16 * PAGE_SIZE), Bidirectional).unwrap();
        let references: Vec<u32> = handle.segments().map(|segment| segment.bus_page).collect();
        assert_eq!(references.len(), 17);
        let first = fixture.backend_map(references[3], true);
        let second = fixture.backend_map(references[16], false);

        let still_in_use = fixture.device.unmap(handle).unwrap_err();
        assert_eq!(still_in_use.held_bus_pages(), [references[3], references[16]]);
        assert_eq!(fixture.device.counters().grants_in_use, 2);
        fixture.xen.unmap(first).unwrap();
        let still_in_use = fixture.device.retry_unmap(still_in_use).unwrap_err();
        assert_eq!(still_in_use.held_bus_pages(), [references[16]]);
        fixture.device.defer(still_in_use);
        assert!(fixture.device.reclaim().is_empty(), "still held: stays queued");
        fixture.xen.unmap(second).unwrap();
        let released = fixture.device.reclaim();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].len(), 16 * PAGE_SIZE);
        released.into_iter().for_each(|buffer| buffer.free(fixture.source));
        fixture.close_and_check();
    });
}

#[test]
fn deferred_release_returns_the_buffer_once_the_backend_lets_go() {
    trusted(|fixture| {
        let handle = fixture.device.map(fixture.buffer(0, 64), ToDevice).unwrap();
        let mapping = fixture.backend_map(handle.dma_addr().bus_page, false);
        assert!(matches!(fixture.device.unmap_or_defer(handle), Released::Deferred));
        assert_eq!(fixture.device.deferred_len(), 1);
        assert!(fixture.device.reclaim().is_empty(), "still held: stays queued");
        let Err(refused) = fixture.device.close() else { panic!("close must be refused") };
        assert_eq!(refused.refusal, CloseRefusal::DeferredPending(1));
        let fixture = Fixture { device: *refused.device, ..fixture };

        fixture.xen.unmap(mapping).unwrap();
        let mut released = fixture.device.reclaim();
        assert_eq!(released.len(), 1);
        let counters = fixture.device.counters();
        assert_eq!((counters.deferred_releases, counters.deferred_pending, counters.unmaps), (1, 0, 1));
        released.pop().unwrap().free(fixture.source);
        fixture.close_and_check();
    });
}

#[test]
fn grant_exhaustion_is_an_error_that_gives_the_buffer_back_and_leaks_nothing() {
    with_device(BackendTrust::Trusted, 1, 1024, |fixture| {
        let usable = 512 - 8;
        let handles: Vec<_> =
            (0..usable - 1).map(|_| fixture.device.map(fixture.buffer(0, 8), ToDevice).unwrap()).collect();
        let granted_before = fixture.table.borrow().counters().granted;

        let error = fixture.device.map(fixture.buffer(0, 2 * PAGE_SIZE), ToDevice).unwrap_err();
        assert_eq!(error.reason, MapFailure::GrantsExhausted);
        assert_eq!(error.buffer.page_count(), 2, "the buffer comes back");
        assert_eq!(fixture.table.borrow().counters().granted, granted_before, "all or nothing: no grant made");
        error.buffer.free(fixture.source);

        let last = fixture.device.map(fixture.buffer(0, 8), FromDevice).unwrap();
        let error = fixture.device.map(fixture.buffer(0, 8), FromDevice).unwrap_err();
        assert_eq!(error.reason, MapFailure::GrantsExhausted);
        error.buffer.free(fixture.source);
        assert_eq!(fixture.device.counters().map_failures, 2);

        fixture.device.unmap(last).unwrap().free(fixture.source);
        for handle in handles {
            fixture.device.unmap(handle).unwrap().free(fixture.source);
        }
        fixture.close_and_check();
    });
}

#[test]
fn a_pool_reuses_its_grants_with_zero_grant_operations_per_packet() {
    trusted(|fixture| {
        let mut pool = DmaPool::<ToDevice>::new(&fixture.device, 8).unwrap();
        let granted = fixture.table.borrow().counters().granted;
        for packet in 0..100u8 {
            let mut handle = pool.take().unwrap();
            handle.write(&fixture.device, |bytes| bytes[..3].copy_from_slice(&[packet, packet, packet]));
            let mut seen = [0; 3];
            fixture.xen.copy_from_grant(BACKEND, handle.dma_addr().bus_page, 0, &mut seen).unwrap();
            assert_eq!(seen, [packet; 3]);
            pool.put(handle).unwrap();
        }
        let counters = fixture.table.borrow().counters();
        assert_eq!((counters.granted, counters.revoked), (granted, 0), "no grant work per packet");
        assert_eq!(fixture.device.counters().syncs_for_device, 100);

        let taken: Vec<_> = (0..8).map(|_| pool.take().unwrap()).collect();
        assert_eq!(pool.take().unwrap_err(), PoolEmpty, "an empty pool is backpressure");
        let pool = pool.close(&fixture.device).unwrap_err();
        let mut pool = pool;
        taken.into_iter().for_each(|handle| pool.put(handle).unwrap());
        pool.close(&fixture.device).unwrap();
        fixture.close_and_check();
    });
}

#[test]
fn a_pool_refuses_handles_it_did_not_lend() {
    trusted(|fixture| {
        let mut pool = DmaPool::<FromDevice>::new(&fixture.device, 2).unwrap();
        let stranger = fixture.device.map(fixture.buffer(0, PAGE_SIZE), FromDevice).unwrap();
        let stranger = pool.put(stranger).unwrap_err();
        fixture.device.unmap(stranger).unwrap().free(fixture.source);
        pool.close(&fixture.device).unwrap();
        fixture.close_and_check();
    });
}

#[test]
fn close_is_refused_while_handles_are_live() {
    trusted(|fixture| {
        let handle = fixture.device.map(fixture.buffer(0, 64), ToDevice).unwrap();
        let Err(refused) = fixture.device.close() else { panic!("close must be refused") };
        assert_eq!(refused.refusal, CloseRefusal::HandlesLive(1));
        let fixture = Fixture { device: *refused.device, ..fixture };
        fixture.device.unmap(handle).unwrap().free(fixture.source);
        fixture.close_and_check();
    });
}

#[test]
#[should_panic(expected = "a device other than the one that mapped it")]
fn a_handle_given_to_another_device_is_refused() {
    trusted(|fixture| {
        let other = dma::DmaDevice::new(fixture.table, fixture.source, BACKEND, BackendTrust::Trusted).unwrap();
        let handle = fixture.device.map(fixture.buffer(0, 64), ToDevice).unwrap();
        let _ = other.unmap(handle);
    });
}

#[test]
fn counters_follow_every_operation() {
    with_device(BackendTrust::Trusted, 1, 64, |fixture| {
        let mut handle = fixture.device.map(fixture.buffer(0, 2 * PAGE_SIZE), Bidirectional).unwrap();
        assert_eq!(fixture.device.counters().grants_in_use, 2);
        handle.update(&fixture.device, |bytes| bytes[0] = 1);
        handle.read(&fixture.device, |_| ());
        let buffer = fixture.device.unmap(handle).unwrap();
        let counters = fixture.device.counters();
        assert_eq!((counters.maps, counters.unmaps, counters.grants_in_use, counters.live_handles), (1, 1, 0, 0));
        assert_eq!((counters.syncs_for_device, counters.syncs_for_cpu, counters.bounce_copies), (1, 2, 0));
        buffer.free(fixture.source);
        fixture.close_and_check();
    });
}
