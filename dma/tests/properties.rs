//! Random sequences of map / sync / unmap / hold / release against the
//! simulated grant table, trusted and untrusted, checking after every step
//! that the device, the grant table and the page source agree, that no
//! freed page is still granted, and that nothing leaks at the end.
#![forbid(unsafe_code)]

mod common;

use common::{BACKEND, BOUNCE, Fixture, with_device};
use dma::{BackendTrust, Bidirectional, DmaBuffer, DmaHandle, FromDevice, Released, StillInUse, ToDevice};
use proptest::collection::vec;
use proptest::prelude::*;
use xen_sim::grant_table::SimMapping;

/// One step of a sequence. Indices are taken modulo the length of the list
/// they pick from; a step whose list is empty does nothing.
#[derive(Debug, Clone)]
enum Step {
    Map { offset: usize, len: usize, direction: u8 },
    MapAgain { index: usize, direction: u8 },
    CpuAccess { index: usize, byte: u8 },
    BackendMap { index: usize, segment: usize, writable: bool },
    BackendWrite { index: usize, byte: u8 },
    BackendUnmap { index: usize },
    Unmap { index: usize },
    UnmapOrDefer { index: usize },
    Retry { index: usize },
    Defer { index: usize },
    Reclaim,
    Free { index: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..4096usize, buffer_len(), 0..3u8).prop_map(|(offset, len, direction)| Step::Map { offset, len, direction }),
        1 => (any::<usize>(), 0..3u8).prop_map(|(index, direction)| Step::MapAgain { index, direction }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(index, byte)| Step::CpuAccess { index, byte }),
        3 => (any::<usize>(), any::<usize>(), any::<bool>())
            .prop_map(|(index, segment, writable)| Step::BackendMap { index, segment, writable }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(index, byte)| Step::BackendWrite { index, byte }),
        2 => any::<usize>().prop_map(|index| Step::BackendUnmap { index }),
        2 => any::<usize>().prop_map(|index| Step::Unmap { index }),
        2 => any::<usize>().prop_map(|index| Step::UnmapOrDefer { index }),
        1 => any::<usize>().prop_map(|index| Step::Retry { index }),
        1 => any::<usize>().prop_map(|index| Step::Defer { index }),
        1 => Just(Step::Reclaim),
        1 => any::<usize>().prop_map(|index| Step::Free { index }),
    ]
}

/// Mostly buffers of one to four pages, whose grant lists are inline in the
/// handle; one in four of 3 to 18 pages, most of which spill to the heap
/// (more than five pages) and some exceed the bounce pool (more than 16).
fn buffer_len() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 1..9000usize, 1 => 9000..70_000usize]
}

/// A mapped handle of any direction.
enum AnyHandle {
    To(DmaHandle<ToDevice>),
    From(DmaHandle<FromDevice>),
    Both(DmaHandle<Bidirectional>),
}

/// A refused unmap of any direction.
enum AnyStill {
    To(StillInUse<ToDevice>),
    From(StillInUse<FromDevice>),
    Both(StillInUse<Bidirectional>),
}

macro_rules! on_handle {
    ($any:expr, $handle:ident => $body:expr) => {
        match $any {
            AnyHandle::To($handle) => $body,
            AnyHandle::From($handle) => $body,
            AnyHandle::Both($handle) => $body,
        }
    };
}

/// A live handle and what the test knows of its bytes.
struct Live {
    handle: AnyHandle,
    pages: usize,
    /// The byte the CPU last filled a `ToDevice` buffer with (read-only
    /// grants: nobody else can change what the backend sees).
    cpu_fill: Option<u8>,
}

/// A backend mapping and the segment it was made for.
struct BackendMapping {
    mapping: SimMapping,
    start: usize,
    end: usize,
}

struct Model<'f, 't, 'x> {
    fixture: &'f Fixture<'t, 'x>,
    bounce_pages: usize,
    live: Vec<Live>,
    still: Vec<(AnyStill, usize)>,
    free: Vec<DmaBuffer>,
    deferred_buffers: u64,
    deferred_pages: usize,
    mappings: Vec<BackendMapping>,
}

impl Model<'_, '_, '_> {
    fn apply(&mut self, step: Step) {
        match step {
            Step::Map { offset, len, direction } => {
                if let Ok(buffer) = dma::DmaBuffer::allocate_at(self.fixture.source, offset, len) {
                    self.map(buffer, direction);
                }
            }
            Step::MapAgain { index, direction } => {
                if let Some(buffer) = take(&mut self.free, index) {
                    self.map(buffer, direction);
                }
            }
            Step::CpuAccess { index, byte } => self.cpu_access(index, byte),
            Step::BackendMap { index, segment, writable } => self.backend_map(index, segment, writable),
            Step::BackendWrite { index, byte } => self.backend_write(index, byte),
            Step::BackendUnmap { index } => {
                if let Some(mapping) = take(&mut self.mappings, index) {
                    self.fixture.xen.unmap(mapping.mapping).unwrap();
                }
            }
            Step::Unmap { index } => self.unmap(index),
            Step::UnmapOrDefer { index } => self.unmap_or_defer(index),
            Step::Retry { index } => self.retry(index),
            Step::Defer { index } => self.defer(index),
            Step::Reclaim => self.reclaim(),
            Step::Free { index } => {
                if let Some(buffer) = take(&mut self.free, index) {
                    buffer.free(self.fixture.source);
                }
            }
        }
        self.check();
    }

    fn map(&mut self, buffer: DmaBuffer, direction: u8) {
        let device = &self.fixture.device;
        let pages = buffer.page_count();
        let mapped = match direction {
            0 => device.map(buffer, ToDevice).map(AnyHandle::To),
            1 => device.map(buffer, FromDevice).map(AnyHandle::From),
            _ => device.map(buffer, Bidirectional).map(AnyHandle::Both),
        };
        match mapped {
            Ok(handle) => self.live.push(Live { handle, pages, cpu_fill: None }),
            Err(error) => {
                assert_eq!(error.buffer.page_count(), pages, "a refused map gives the buffer back");
                self.free.push(error.buffer);
            }
        }
    }

    fn cpu_access(&mut self, index: usize, byte: u8) {
        let device = &self.fixture.device;
        let Some(live) = pick(&mut self.live, index) else { return };
        match &mut live.handle {
            AnyHandle::To(handle) => {
                handle.write(device, |bytes| bytes.fill(byte));
                live.cpu_fill = Some(byte);
            }
            AnyHandle::From(handle) => handle.read(device, |bytes| assert_eq!(bytes.len(), handle_len(bytes))),
            AnyHandle::Both(handle) => handle.update(device, |bytes| bytes.fill(byte)),
        }
    }

    fn backend_map(&mut self, index: usize, segment: usize, writable: bool) {
        let Some(live) = pick(&mut self.live, index) else { return };
        let (segment, device_writes) = on_handle!(&live.handle, handle => {
            let count = handle.segments().len();
            (handle.segments().nth(segment % count).unwrap(), !matches!(live.handle, AnyHandle::To(_)))
        });
        let writable = writable && device_writes;
        let mapping = self.fixture.xen.map(BACKEND, segment.bus_page, writable).expect("a live grant maps");
        let page = self.fixture.xen.read_page(&mapping).unwrap();
        let (start, end) = (usize::from(segment.offset), usize::from(segment.offset + segment.length));
        if let Some(fill) = live.cpu_fill {
            assert!(page[start..end].iter().all(|&byte| byte == fill), "the backend sees what the CPU wrote");
        }
        if !device_writes {
            let outside = page[..start].iter().chain(&page[end..]);
            assert!(outside.copied().all(|byte| byte == 0), "a granted page holds the buffer and zeros only");
        }
        self.mappings.push(BackendMapping { mapping, start, end });
    }

    fn backend_write(&mut self, index: usize, byte: u8) {
        let Some(mapping) = pick(&mut self.mappings, index) else { return };
        if mapping.mapping.writable() {
            let bytes = vec![byte; mapping.end - mapping.start];
            self.fixture.xen.write(&mapping.mapping, mapping.start, &bytes).unwrap();
        }
    }

    fn unmap(&mut self, index: usize) {
        let Some(live) = take(&mut self.live, index) else { return };
        let device = &self.fixture.device;
        let outcome = match live.handle {
            AnyHandle::To(handle) => device.unmap(handle).map_err(AnyStill::To),
            AnyHandle::From(handle) => device.unmap(handle).map_err(AnyStill::From),
            AnyHandle::Both(handle) => device.unmap(handle).map_err(AnyStill::Both),
        };
        match outcome {
            Ok(buffer) => self.free.push(buffer),
            Err(still) => {
                assert!(self.bounce_pages == 0, "bounce mode has nothing to revoke, so never refuses");
                self.still.push((still, live.pages));
            }
        }
    }

    fn unmap_or_defer(&mut self, index: usize) {
        let Some(live) = take(&mut self.live, index) else { return };
        let released = on_handle!(live.handle, handle => self.fixture.device.unmap_or_defer(handle));
        match released {
            Released::Now(buffer) => self.free.push(buffer),
            Released::Deferred => self.count_deferred(live.pages),
        }
    }

    fn retry(&mut self, index: usize) {
        let Some((still, pages)) = take(&mut self.still, index) else { return };
        let device = &self.fixture.device;
        let outcome = match still {
            AnyStill::To(still) => device.retry_unmap(still).map_err(AnyStill::To),
            AnyStill::From(still) => device.retry_unmap(still).map_err(AnyStill::From),
            AnyStill::Both(still) => device.retry_unmap(still).map_err(AnyStill::Both),
        };
        match outcome {
            Ok(buffer) => self.free.push(buffer),
            Err(still) => self.still.push((still, pages)),
        }
    }

    fn defer(&mut self, index: usize) {
        let Some((still, pages)) = take(&mut self.still, index) else { return };
        let device = &self.fixture.device;
        match still {
            AnyStill::To(still) => device.defer(still),
            AnyStill::From(still) => device.defer(still),
            AnyStill::Both(still) => device.defer(still),
        }
        self.count_deferred(pages);
    }

    fn count_deferred(&mut self, pages: usize) {
        self.deferred_buffers += 1;
        self.deferred_pages += pages;
    }

    fn reclaim(&mut self) {
        for buffer in self.fixture.device.reclaim() {
            self.deferred_buffers -= 1;
            self.deferred_pages -= buffer.page_count();
            self.free.push(buffer);
        }
    }

    /// The invariants, after every step.
    fn check(&self) {
        let fixture = self.fixture;
        let counters = fixture.device.counters();
        assert_eq!(fixture.table.borrow().counters().in_use, counters.grants_in_use, "device and table agree");
        assert_eq!(counters.live_handles, (self.live.len() + self.still.len()) as u64, "refused unmaps stay live");
        assert_eq!(counters.deferred_pending, self.deferred_buffers);
        let held_pages: usize = self.live.iter().map(|live| live.pages).sum::<usize>()
            + self.still.iter().map(|(_, pages)| pages).sum::<usize>()
            + self.free.iter().map(DmaBuffer::page_count).sum::<usize>()
            + self.deferred_pages
            + self.bounce_pages;
        assert_eq!(fixture.source.outstanding_pages(), held_pages, "every page accounted for");
        let granted = fixture.permitted_frames();
        assert!(granted.iter().all(|&frame| fixture.source.is_outstanding(frame)), "no freed page is granted");
        if self.bounce_pages > 0 {
            assert_eq!(granted.len(), self.bounce_pages, "bounce mode grants its bounce pages and nothing else");
        } else {
            assert_eq!(granted.len() as u64, counters.grants_in_use);
        }
    }

    /// The backend lets go of everything; then every handle unmaps, every
    /// deferred buffer comes back, every page goes back to the source.
    fn finish(mut self) {
        for mapping in self.mappings.drain(..) {
            self.fixture.xen.unmap(mapping.mapping).unwrap();
        }
        let refused = self.still.len();
        while !self.live.is_empty() {
            self.unmap(0);
            assert_eq!(self.still.len(), refused, "with no backend mapping, unmap succeeds");
        }
        while let Some(before) = (!self.still.is_empty()).then_some(self.still.len()) {
            self.retry(0);
            assert_eq!(self.still.len(), before - 1, "with no backend mapping, a retry succeeds");
        }
        self.reclaim();
        assert_eq!(self.deferred_buffers, 0, "the deferred queue drains once the backend lets go");
        for buffer in self.free.drain(..) {
            buffer.free(self.fixture.source);
        }
        self.check();
    }
}

fn handle_len(bytes: &[u8]) -> usize {
    bytes.len()
}

fn pick<T>(list: &mut [T], index: usize) -> Option<&mut T> {
    let len = list.len();
    (len > 0).then(|| &mut list[index % len])
}

fn take<T>(list: &mut Vec<T>, index: usize) -> Option<T> {
    let len = list.len();
    (len > 0).then(|| list.swap_remove(index % len))
}

fn run(trust: BackendTrust, steps: Vec<Step>) {
    let bounce_pages = match trust {
        BackendTrust::Trusted => 0,
        BackendTrust::Untrusted(capacity) => capacity.read_only_pages + capacity.writable_pages,
    };
    with_device(trust, 1, 512, |fixture| {
        let mut model = Model {
            fixture: &fixture,
            bounce_pages,
            live: Vec::new(),
            still: Vec::new(),
            free: Vec::new(),
            deferred_buffers: 0,
            deferred_pages: 0,
            mappings: Vec::new(),
        };
        model.check();
        for step in steps {
            model.apply(step);
        }
        model.finish();
        fixture.close_and_check();
    });
}

proptest! {
    // Miri interprets every step, about a thousand times slower: a few
    // sequences there check the unsafe code's memory rules; the host runs 96.
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 3 } else { 96 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn trusted_sequences_keep_every_invariant_and_leak_nothing(steps in vec(step(), 1..120)) {
        run(BackendTrust::Trusted, steps);
    }

    #[test]
    fn bounced_sequences_keep_every_invariant_and_leak_nothing(steps in vec(step(), 1..120)) {
        run(BackendTrust::Untrusted(BOUNCE), steps);
    }
}
