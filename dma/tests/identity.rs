//! The DMA layer over the identity translation (bare metal without an
//! IOMMU): the same device, handles, pools, shared pages and bounce mode,
//! with the bus address the physical address and nothing to revoke. The
//! simulated device reaches guest frames directly, as such a device would.
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;
use dma::sim::SimPageSource;
use dma::{
    BackendTrust, BounceCapacity, DmaBuffer, DmaDevice, DmaPool, FromDevice, IdentityTranslation, PAGE_SIZE,
    SharedPage, ToDevice,
};
use xen_pv::ring::SharedRing;
use xen_sim::grant_table::SimGrantTable;

/// A device over the identity translation.
type Device<'s, 'x> = DmaDevice<IdentityTranslation, &'s SimPageSource<'x>>;

/// Runs `test` with guest RAM and a device of the given trust over it;
/// then closes the device and checks that every page is back and the
/// simulated device holds nothing.
fn with_identity(trust: BackendTrust, test: impl FnOnce(&SimGrantTable, &SimPageSource<'_>, &Device<'_, '_>)) {
    let xen = SimGrantTable::with_memory_pages(1, 1, 128);
    let source = SimPageSource::new(&xen);
    let device = DmaDevice::new(IdentityTranslation, &source, 0, trust).expect("device setup");
    test(&xen, &source, &device);
    let counters = device.counters();
    assert_eq!((counters.live_handles, counters.unmap_refusals, counters.deferred_pending), (0, 0, 0));
    assert!(device.close().is_ok(), "nothing can hold the device open");
    assert_eq!(source.outstanding_pages(), 0, "every page back with the source");
    assert_eq!(xen.active_mappings(), 0, "the simulated device holds nothing");
}

/// What the device reads at a segment: `length` bytes of frame `bus_page`.
fn device_reads(xen: &SimGrantTable, bus_page: u32, offset: usize, length: usize) -> Vec<u8> {
    let mut bytes = vec![0; length];
    xen.copy_from_frame(u64::from(bus_page), offset, &mut bytes).expect("a live frame");
    bytes
}

#[test]
fn a_mapping_s_bus_address_is_its_physical_address() {
    with_identity(BackendTrust::Trusted, |xen, source, device| {
        let mut buffer = DmaBuffer::allocate_at(source, 100, 5000).unwrap();
        buffer.as_bytes_mut().iter_mut().enumerate().for_each(|(index, byte)| *byte = index as u8);
        let frames = buffer.frames();
        let handle = device.map(buffer, ToDevice).unwrap();
        let address = handle.dma_addr();
        assert_eq!(u64::from(address.bus_page), frames.start, "the bus page is the frame");
        assert_eq!(address.encoded(), frames.start * PAGE_SIZE as u64 + 100, "the physical address");
        let segments: Vec<_> = handle.segments().collect();
        let pages: Vec<u64> = segments.iter().map(|segment| u64::from(segment.bus_page)).collect();
        assert_eq!(pages, frames.clone().collect::<Vec<_>>(), "one segment per frame, in order");
        let mut seen = Vec::new();
        for segment in &segments {
            seen.extend(device_reads(xen, segment.bus_page, segment.offset.into(), segment.length.into()));
        }
        assert_eq!(seen, (0..5000).map(|index| index as u8).collect::<Vec<_>>());
        assert_eq!(device.counters().grants_in_use, 2, "two bus pages in use");
        let buffer = device.unmap(handle).expect("nothing can refuse");
        assert_eq!(device.counters().grants_in_use, 0);
        buffer.free(source);
    });
}

#[test]
fn what_the_device_writes_reaches_the_cpu_through_the_handle() {
    with_identity(BackendTrust::Trusted, |xen, source, device| {
        let mut handle = device.map(DmaBuffer::allocate(source, 64).unwrap(), FromDevice).unwrap();
        let address = handle.dma_addr();
        xen.copy_to_frame(u64::from(address.bus_page), usize::from(address.offset), b"from the device").unwrap();
        handle.read(device, |bytes| assert_eq!(&bytes[..15], b"from the device"));
        device.unmap(handle).unwrap().free(source);
    });
}

/// No revocation on bare metal: an unmap succeeds while the device still
/// holds the page, and only the driver's protocol keeps it from freeing
/// the page then. The simulation refuses such a free (a real machine would
/// not notice), which is how netfront's tests catch a driver that unmaps
/// too early.
#[test]
#[should_panic(expected = "the DMA layer freed pages the backend can still reach")]
fn unmap_cannot_refuse_and_an_early_free_is_caught_by_the_simulation() {
    let xen = SimGrantTable::with_memory_pages(1, 1, 16);
    let source = SimPageSource::new(&xen);
    let device = DmaDevice::new(IdentityTranslation, &source, 0, BackendTrust::Trusted).unwrap();
    let handle = device.map(DmaBuffer::allocate(&source, 64).unwrap(), ToDevice).unwrap();
    let held = xen.map_frame(u64::from(handle.dma_addr().bus_page), false).unwrap();
    let buffer = device.unmap(handle).expect("the identity translation never refuses an unmap");
    assert_eq!(device.counters().unmap_refusals, 0);
    buffer.free(&source); // the device still reads the page: the simulation refuses
    drop(held);
}

#[test]
fn bounce_mode_tells_the_device_the_bounce_frames() {
    let capacity = BounceCapacity { read_only_pages: 4, writable_pages: 4 };
    with_identity(BackendTrust::Untrusted(capacity), |xen, source, device| {
        let mut buffer = DmaBuffer::allocate_at(source, 10, 100).unwrap();
        buffer.as_bytes_mut().fill(0x5a);
        let own = buffer.frames();
        let handle = device.map(buffer, ToDevice).unwrap();
        assert!(handle.is_bounced());
        let address = handle.dma_addr();
        assert!(!own.contains(&u64::from(address.bus_page)), "the device is told a bounce page");
        assert!(source.is_outstanding(u64::from(address.bus_page)), "a page of the device's bounce pool");
        assert_eq!(device_reads(xen, address.bus_page, 10, 100), vec![0x5a; 100], "the buffer's bytes, copied");
        assert_eq!(device.counters().bounce_bytes, 100);
        device.unmap(handle).unwrap().free(source);

        let mut handle = device.map(DmaBuffer::allocate(source, 32).unwrap(), FromDevice).unwrap();
        let address = handle.dma_addr();
        xen.copy_to_frame(u64::from(address.bus_page), usize::from(address.offset), b"bounced").unwrap();
        handle.read_range(device, 0..7, |bytes| assert_eq!(bytes, b"bounced"));
        device.unmap(handle).unwrap().free(source);
    });
}

#[test]
fn pools_and_shared_pages_work_over_it() {
    with_identity(BackendTrust::Trusted, |xen, source, device| {
        let mut pool: DmaPool<ToDevice> = DmaPool::new(device, 4).unwrap();
        let mut handle = pool.take().unwrap();
        handle.write_range(device, 0..5, |bytes| bytes.copy_from_slice(b"slot!"));
        assert_eq!(device_reads(xen, handle.dma_addr().bus_page, 0, 5), b"slot!");
        pool.put(handle).unwrap();
        assert!(pool.close(device).is_ok());

        let ring: SharedPage<SharedRing<2>> = device.share().unwrap();
        assert!(source.is_outstanding(u64::from(ring.bus_page())), "a ring is told by its frame");
        xen.copy_to_frame(u64::from(ring.bus_page()), 8, &7u32.to_le_bytes()).unwrap();
        assert_eq!(ring.get().rsp_prod.load(Ordering::Acquire), 7);
        assert!(device.unshare(ring).is_ok());
    });
}
