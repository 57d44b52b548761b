//! Bounce mode (untrusted backend): a granted page never holds a byte that
//! is not the buffer's, the buffer's own pages are never granted, and the
//! backend cannot hold the guest's memory hostage.
#![forbid(unsafe_code)]

mod common;

use common::{BACKEND, BOUNCE, Fixture, trusted, untrusted, with_device};
use dma::{
    BackendTrust, Bidirectional, BounceCapacity, CloseRefusal, Direction, DmaBuffer, DmaPool, FromDevice, MapFailure,
    PAGE_SIZE, ToDevice,
};

const CANARY: u8 = 0xCA;

/// Writes the canary over every byte of the buffer's pages that is not the
/// buffer's (what other data sharing those pages would look like), and
/// fills the buffer itself with `fill`.
fn surround_with_canary(fixture: &Fixture<'_, '_>, buffer: &mut DmaBuffer, fill: u8) {
    for frame in buffer.frames() {
        fixture.xen.memory().write(frame, 0, &[CANARY; PAGE_SIZE]).unwrap();
    }
    buffer.as_bytes_mut().fill(fill);
}

/// Every page the backend can read through the handle's grants, whole.
fn backend_view(fixture: &Fixture<'_, '_>, grant_references: &[u32]) -> Vec<Vec<u8>> {
    grant_references
        .iter()
        .map(|&reference| {
            let mapping = fixture.backend_map(reference, false);
            let page = fixture.xen.read_page(&mapping).unwrap();
            fixture.xen.unmap(mapping).unwrap();
            page
        })
        .collect()
}

#[test]
fn bounce_mode_never_grants_a_page_holding_bytes_outside_the_buffer() {
    untrusted(|fixture| {
        check_backend_sees_only_the_buffer(&fixture, ToDevice);
        check_backend_sees_only_the_buffer(&fixture, FromDevice);
        check_backend_sees_only_the_buffer(&fixture, Bidirectional);
        fixture.close_and_check();
    });
}

/// Maps a canary-surrounded buffer in bounce mode and reads every granted
/// page whole: the buffer's bytes (if the CPU writes this direction, else
/// zeros) and zeros around them, never a canary; the own pages never granted.
fn check_backend_sees_only_the_buffer<D: Direction>(fixture: &Fixture<'_, '_>, direction: D) {
    let mut buffer = fixture.buffer(100, 5000);
    surround_with_canary(fixture, &mut buffer, 0x42);
    let buffer_frames = buffer.frames();
    let handle = fixture.device.map(buffer, direction).unwrap();
    assert!(handle.is_bounced());
    let segments: Vec<_> = handle.segments().collect();
    let references: Vec<u32> = segments.iter().map(|segment| segment.bus_page).collect();
    let inside = if D::CPU_WRITES { 0x42 } else { 0 };
    for (page, segment) in backend_view(fixture, &references).iter().zip(&segments) {
        let (start, end) = (usize::from(segment.offset), usize::from(segment.offset + segment.length));
        assert!(page[start..end].iter().all(|&byte| byte == inside), "the buffer's bytes, nothing else");
        assert!(page[..start].iter().chain(&page[end..]).all(|&byte| byte == 0), "zeros around them");
    }
    let granted = fixture.permitted_frames();
    assert!(granted.iter().all(|frame| !buffer_frames.contains(frame)), "the buffer's own pages are never granted");
    fixture.device.unmap(handle).unwrap().free(fixture.source);
}

#[test]
fn the_canary_check_does_catch_a_leak_when_pages_are_granted_directly() {
    // The negative control: the same check against a trusted device sees the
    // canary, which only a bug could put there for a DMA buffer, but proves
    // the test above would notice a page that holds more than the buffer.
    trusted(|fixture| {
        let mut buffer = fixture.buffer(100, 5000);
        surround_with_canary(&fixture, &mut buffer, 0x42);
        let handle = fixture.device.map(buffer, ToDevice).unwrap();
        let references: Vec<u32> = handle.segments().map(|segment| segment.bus_page).collect();
        assert_eq!(backend_view(&fixture, &references)[0][..100], [CANARY; 100]);
        fixture.device.unmap(handle).unwrap().free(fixture.source);
        fixture.close_and_check();
    });
}

#[test]
fn a_bounce_page_goes_back_zeroed_so_the_next_buffer_never_shows_the_last() {
    untrusted(|fixture| {
        let mut secret = fixture.buffer(0, PAGE_SIZE);
        secret.as_bytes_mut().fill(0x5E);
        let handle = fixture.device.map(secret, ToDevice).unwrap();
        fixture.device.unmap(handle).unwrap().free(fixture.source);

        for _ in 0..BOUNCE.read_only_pages {
            let mut small = fixture.buffer(0, 10);
            small.as_bytes_mut().fill(1);
            let handle = fixture.device.map(small, ToDevice).unwrap();
            let page = &backend_view(&fixture, &[handle.dma_addr().bus_page])[0];
            assert_eq!(page[..10], [1; 10]);
            assert!(page[10..].iter().all(|&byte| byte == 0), "nothing of the previous buffer");
            fixture.device.unmap(handle).unwrap().free(fixture.source);
        }
        fixture.close_and_check();
    });
}

#[test]
fn data_crosses_by_copy_at_sync_time_both_ways() {
    untrusted(|fixture| {
        let mut handle = fixture.device.map(fixture.buffer(10, 20), FromDevice).unwrap();
        let grant_reference = handle.dma_addr().bus_page;
        fixture.xen.copy_to_grant(BACKEND, grant_reference, 10, b"received").unwrap();
        let seen = handle.read(&fixture.device, |bytes| bytes[..8].to_vec());
        assert_eq!(seen, b"received");
        fixture.xen.copy_to_grant(BACKEND, grant_reference, 10, b"RECEIVED").unwrap();
        let buffer = fixture.device.unmap(handle).unwrap();
        assert_eq!(&buffer.as_bytes()[..8], b"RECEIVED", "unmap copies the device's last writes back");
        buffer.free(fixture.source);
        let counters = fixture.device.counters();
        assert_eq!((counters.bounce_copies, counters.bounce_bytes), (2, 40));
        fixture.close_and_check();
    });
}

#[test]
fn to_device_bounce_pages_are_read_only_and_from_device_ones_writable() {
    untrusted(|fixture| {
        let to_device = fixture.device.map(fixture.buffer(0, 8), ToDevice).unwrap();
        let from_device = fixture.device.map(fixture.buffer(0, 8), FromDevice).unwrap();
        let read_only = to_device.dma_addr().bus_page;
        assert!(fixture.xen.map(BACKEND, read_only, true).is_err());
        let mapping = fixture.backend_map(from_device.dma_addr().bus_page, true);
        fixture.xen.unmap(mapping).unwrap();
        fixture.device.unmap(to_device).unwrap().free(fixture.source);
        fixture.device.unmap(from_device).unwrap().free(fixture.source);
        fixture.close_and_check();
    });
}

#[test]
fn unmap_never_waits_for_a_backend_that_keeps_a_bounce_page_mapped() {
    untrusted(|fixture| {
        let handle = fixture.device.map(fixture.buffer(0, 64), FromDevice).unwrap();
        let mapping = fixture.backend_map(handle.dma_addr().bus_page, true);
        let buffer = fixture.device.unmap(handle).expect("bounce pages are persistent grants: nothing to revoke");
        buffer.free(fixture.source);

        let Err(refused) = fixture.device.close() else { panic!("close must wait for the held bounce page") };
        assert_eq!(refused.refusal, CloseRefusal::BouncePagesHeld(1));
        let fixture = Fixture { device: *refused.device, ..fixture };
        assert_eq!(fixture.source.outstanding_pages(), 1, "only the held page is kept, the others are freed");
        fixture.xen.unmap(mapping).unwrap();
        fixture.close_and_check();
    });
}

#[test]
fn bounce_exhaustion_is_an_error_that_gives_the_buffer_back() {
    let capacity = BounceCapacity { read_only_pages: 2, writable_pages: 0 };
    with_device(BackendTrust::Untrusted(capacity), 1, 64, |fixture| {
        let first = fixture.device.map(fixture.buffer(0, 2 * PAGE_SIZE), ToDevice).unwrap();
        let error = fixture.device.map(fixture.buffer(0, 1), ToDevice).unwrap_err();
        assert_eq!(error.reason, MapFailure::BounceExhausted);
        error.buffer.free(fixture.source);
        let error = fixture.device.map(fixture.buffer(0, 1), FromDevice).unwrap_err();
        assert_eq!(error.reason, MapFailure::BounceExhausted, "no writable bounce page at all");
        error.buffer.free(fixture.source);
        fixture.device.unmap(first).unwrap().free(fixture.source);
        fixture.close_and_check();
    });
}

#[test]
fn a_bounced_pool_copies_per_packet_but_makes_no_grant() {
    untrusted(|fixture| {
        let mut pool = DmaPool::<FromDevice>::new(&fixture.device, 4).unwrap();
        let granted = fixture.table.borrow().counters().granted;
        for packet in 0..20u8 {
            let mut handle = pool.take().unwrap();
            fixture.xen.copy_to_grant(BACKEND, handle.dma_addr().bus_page, 0, &[packet]).unwrap();
            assert_eq!(handle.read(&fixture.device, |bytes| bytes[0]), packet);
            pool.put(handle).unwrap();
        }
        assert_eq!(fixture.table.borrow().counters().granted, granted);
        assert_eq!(fixture.device.counters().bounce_copies, 20);
        pool.close(&fixture.device).unwrap();
        fixture.close_and_check();
    });
}

#[test]
fn setup_that_runs_out_of_pages_leaves_nothing_behind() {
    let capacity = BounceCapacity { read_only_pages: 4, writable_pages: 8 };
    let xen = xen_sim::grant_table::SimGrantTable::with_memory_pages(1, 1, 6);
    let table = core::cell::RefCell::new(xen_pv::grant_table::GrantTable::<()>::new(xen.current_entries()));
    let source = dma::sim::SimPageSource::new(&xen);
    let error = dma::DmaDevice::new(&table, &source, BACKEND, BackendTrust::Untrusted(capacity)).err();
    assert_eq!(error, Some(dma::SetupError::OutOfPages));
    assert_eq!(table.borrow().counters().in_use, 0);
    assert_eq!(source.outstanding_pages(), 0);
}

/// A sync of a byte range copies those bytes only: a short frame in a
/// page-sized buffer costs its own length, not a page, both ways, also
/// where the range crosses a page boundary.
#[test]
fn a_range_sync_copies_only_the_range() {
    untrusted(|fixture| {
        // Sending: 60 bytes of a page-sized buffer.
        let buffer = fixture.buffer(0, PAGE_SIZE);
        let mut handle = fixture.device.map(buffer, ToDevice).unwrap();
        let before = fixture.device.counters().bounce_bytes;
        handle.write_range(&fixture.device, 0..60, |bytes| bytes.fill(0x5a));
        assert_eq!(fixture.device.counters().bounce_bytes - before, 60);
        let reference = handle.segments().next().unwrap().bus_page;
        let page = &backend_view(&fixture, &[reference])[0];
        assert!(page[..60].iter().all(|&byte| byte == 0x5a), "the backend sees the bytes written");
        fixture.device.unmap(handle).unwrap().free(fixture.source);

        // Receiving: the backend writes a frame that crosses into the
        // buffer's second page; the CPU takes bytes 4000..4200 only.
        let buffer = fixture.buffer(0, 2 * PAGE_SIZE);
        let mut handle = fixture.device.map(buffer, FromDevice).unwrap();
        let references: Vec<u32> = handle.segments().map(|segment| segment.bus_page).collect();
        for (index, &reference) in references.iter().enumerate() {
            let mapping = fixture.backend_map(reference, true);
            fixture.xen.write(&mapping, 0, &[0x10 + index as u8; PAGE_SIZE]).unwrap();
            fixture.xen.unmap(mapping).unwrap();
        }
        let before = fixture.device.counters().bounce_bytes;
        let seen = handle.read_range(&fixture.device, 4000..4200, |bytes| bytes.to_vec());
        assert_eq!(fixture.device.counters().bounce_bytes - before, 200);
        assert_eq!(&seen[..96], &[0x10; 96][..], "the end of the first page");
        assert_eq!(&seen[96..], &[0x11; 104][..], "the start of the second");
        let whole = handle.read(&fixture.device, |bytes| bytes.len());
        assert_eq!(whole, 2 * PAGE_SIZE);
        fixture.device.unmap(handle).unwrap().free(fixture.source);
        fixture.close_and_check();
    });
}

#[test]
#[should_panic(expected = "DMA sync of bytes 0..4097 of a 4096-byte buffer")]
fn a_range_past_the_buffer_is_refused() {
    untrusted(|fixture| {
        let buffer = fixture.buffer(0, PAGE_SIZE);
        let mut handle = fixture.device.map(buffer, FromDevice).unwrap();
        fixture.device.sync_range_for_cpu(&mut handle, 0..PAGE_SIZE + 1);
    });
}
