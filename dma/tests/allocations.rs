//! What allocates on the DMA hot path: nothing, for a buffer of up to five
//! pages (its grant references live in the handle), and one list for a
//! larger one. Counted with `allocation-counter`, which is this test
//! binary's global allocator (it counts per thread, so the test harness
//! does not disturb it).
#![forbid(unsafe_code)]

mod common;

use allocation_counter::{AllocationInfo, measure};
use common::{Fixture, trusted};
use dma::{Bidirectional, DmaBuffer, DmaPool, FromDevice, PAGE_SIZE, ToDevice};

/// map + write (a sync) + unmap of `buffer` as `ToDevice`, counted.
fn map_write_unmap(fixture: &Fixture<'_, '_>, buffer: DmaBuffer) -> (AllocationInfo, DmaBuffer) {
    let device = &fixture.device;
    let mut returned = None;
    let info = measure(|| {
        let mut handle = device.map(buffer, ToDevice).expect("map");
        handle.write(device, |bytes| bytes.fill(7));
        returned = Some(device.unmap(handle).expect("no backend holds a grant"));
    });
    (info, returned.expect("unmapped"))
}

#[test]
fn map_and_unmap_of_up_to_five_pages_allocate_nothing() {
    trusted(|fixture| {
        for (offset, len) in [(0, 1), (0, PAGE_SIZE), (100, PAGE_SIZE), (0, 5 * PAGE_SIZE), (4000, 4 * PAGE_SIZE)] {
            let buffer = fixture.buffer(offset, len);
            let pages = buffer.page_count();
            assert!(pages <= 5);
            let (info, buffer) = map_write_unmap(&fixture, buffer);
            assert_eq!(info.count_total, 0, "{pages} pages at offset {offset}: {info:?}");
            buffer.free(fixture.source);
        }
        fixture.close_and_check();
    });
}

#[test]
fn a_larger_buffer_allocates_one_grant_list_and_frees_it() {
    trusted(|fixture| {
        for (offset, len, pages) in [(4000, 5 * PAGE_SIZE, 6), (0, 16 * PAGE_SIZE, 16), (100, 16 * PAGE_SIZE, 17)] {
            let buffer = fixture.buffer(offset, len);
            assert_eq!(buffer.page_count(), pages);
            let (info, buffer) = map_write_unmap(&fixture, buffer);
            assert_eq!((info.count_total, info.count_current), (1, 0), "{pages} pages: {info:?}");
            assert_eq!(info.bytes_total, 4 * pages as u64, "one reference per page");
            buffer.free(fixture.source);
        }
        fixture.close_and_check();
    });
}

#[test]
fn a_refused_unmap_and_its_retries_allocate_nothing() {
    trusted(|fixture| {
        let device = &fixture.device;
        let handle = device.map(fixture.buffer(0, 3 * PAGE_SIZE), FromDevice).unwrap();
        let held = handle.segments().nth(1).unwrap().bus_page;
        let mapping = fixture.backend_map(held, true);
        let mut still_in_use = None;
        let info = measure(|| {
            let refused = device.unmap(handle).unwrap_err();
            still_in_use = Some(device.retry_unmap(refused).unwrap_err());
        });
        assert_eq!(info.count_total, 0, "{info:?}");
        let still_in_use = still_in_use.unwrap();
        assert_eq!(still_in_use.held_bus_pages(), [held]);
        fixture.xen.unmap(mapping).unwrap();
        let mut buffer = None;
        let info = measure(|| buffer = Some(device.retry_unmap(still_in_use).unwrap()));
        assert_eq!(info.count_total, 0, "{info:?}");
        buffer.unwrap().free(fixture.source);
        fixture.close_and_check();
    });
}

#[test]
fn a_pooled_packet_allocates_nothing() {
    trusted(|fixture| {
        let device = &fixture.device;
        let mut pool = DmaPool::<Bidirectional>::new(device, 2).unwrap();
        let info = measure(|| {
            let mut handle = pool.take().unwrap();
            handle.update(device, |bytes| bytes[0] = 1);
            pool.put(handle).unwrap();
        });
        assert_eq!(info.count_total, 0, "{info:?}");
        pool.close(device).unwrap();
        fixture.close_and_check();
    });
}
