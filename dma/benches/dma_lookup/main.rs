//! map + sync + unmap by handle against an address-keyed design, at 1 k and
//! 64 k live mappings (`cargo bench -p dma --bench dma_lookup`).
//!
//! Every design maps a one-page `ToDevice` buffer, writes a byte through the
//! sync-bracketed accessor, and unmaps it, while `live` other mappings stay
//! mapped. The handle design keeps its live handles in a `Vec` it never
//! touches: its unmap reads the handle and nothing else. The address-keyed
//! designs (a `BTreeMap`, like Linux's IOVA and p2m rbtrees, and a hash
//! table) are given only the bus address for sync and unmap and look the
//! mapping up; they run on the same device, so the lookup is the difference.
//! The persistent pool (take + write + put, no grant work) is measured too,
//! and so is the handle with one 64 KiB buffer (16 pages: more than a handle
//! keeps inline, so its grant list is one heap allocation).
//!
//! Criterion prints its statistics; this program then prints each median
//! and the ratios, and with `DMA_BENCH_REPORT=path` writes them as Markdown
//! (a relative path is taken from the workspace root). No backend maps
//! anything here, so every grant revokes at once.
//!
//! The build it measures is printed first and in the report: `cargo bench`
//! builds with Cargo's `bench` profile, which inherits the workspace's
//! `[profile.release]`, the guest image's profile (opt-level "s", LTO, one
//! codegen unit). Only its `panic = "abort"` does not carry over: a
//! benchmark always unwinds. The opt-level printed is the one Cargo built
//! with (from `dma/build.rs`), so an override such as
//! `CARGO_PROFILE_BENCH_OPT_LEVEL=3` shows.
#![deny(unsafe_code)]

mod address_keyed;
#[allow(unsafe_code)] // the benchmark's arena and its `unsafe impl dma::PageSource`
mod source;

use address_keyed::{AddressKeyed, HashTable, MappingTable};
use core::cell::RefCell;
use core::sync::atomic::{AtomicU16, AtomicU32};
use criterion::{BenchmarkId, Criterion};
use dma::sim::SimPageSource;
use dma::{BackendTrust, DmaBuffer, DmaHandle, DmaPool, GrantDma, Grants, PAGE_SIZE, PageSource, ToDevice};
use source::BenchSource;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use xen_pv::abi::grant_table::GrantEntryV1;
use xen_pv::grant_table::GrantTable;
use xen_sim::grant_table::SimGrantTable;

/// Live mappings to measure at.
const LIVE: [usize; 2] = [1 << 10, 1 << 16];
/// Buffers mapped per measured operation (one), plus the pool's.
const SPARE_PAGES: usize = 64;
/// Criterion samples per benchmark; the report uses their median.
const SAMPLES: usize = 20;
/// The large buffer: 64 KiB, 16 pages (a grant list on the heap).
const LARGE: usize = 16 * PAGE_SIZE;
/// The design name and live count the large buffer's median is kept under.
const LARGE_DESIGN: (&str, usize) = ("handle 64 KiB", 0);

/// Medians in nanoseconds per operation, by design and live count.
#[derive(Default)]
struct Results {
    samples: RefCell<BTreeMap<(&'static str, usize), Vec<f64>>>,
}

impl Results {
    /// Keeps one sample and hands its time on to criterion.
    fn record(&self, design: &'static str, live: usize, (iterations, elapsed): (u64, Duration)) -> Duration {
        let per_operation = elapsed.as_nanos() as f64 / iterations.max(1) as f64;
        self.samples.borrow_mut().entry((design, live)).or_default().push(per_operation);
        elapsed
    }

    /// The median of the last `SAMPLES` calls (criterion's samples; the
    /// calls before them are its warm-up).
    fn median(&self, design: &'static str, live: usize) -> Option<f64> {
        let samples = self.samples.borrow();
        let all = samples.get(&(design, live))?;
        let mut last: Vec<f64> = all[all.len().saturating_sub(SAMPLES)..].to_vec();
        last.sort_by(f64::total_cmp);
        (last.len() >= SAMPLES / 2).then(|| last[last.len() / 2])
    }
}

type Table<'e> = RefCell<GrantTable<'e>>;
type Device<'t, 'e> = GrantDma<&'t Table<'e>, &'t BenchSource>;

fn main() {
    println!("dma_lookup: {}", build_description());
    let mut criterion = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    let results = Results::default();
    for live in LIVE {
        bench_at(&mut criterion, live, &results);
    }
    bench_large(&mut criterion, &results);
    criterion.final_summary();
    report(&results);
}

/// Benchmarks every design with `live` mappings held. Each design sets up
/// its live mappings once, outside the measured loops, and tears them down
/// after its benchmark.
fn bench_at(criterion: &mut Criterion, live: usize, results: &Results) {
    let entries: Vec<GrantEntryV1> = (0..live + SPARE_PAGES + 16).map(|_| empty_entry()).collect();
    let table: Table<'_> = RefCell::new(GrantTable::new(&entries));
    let source = BenchSource::new(live + SPARE_PAGES);
    let device = GrantDma::new(&table, &source, 0, BackendTrust::Trusted).expect("device");
    let mut group = criterion.benchmark_group("map_sync_unmap");

    let mut by_handle = ByHandle::new(&device, live, PAGE_SIZE);
    group.bench_function(BenchmarkId::new("handle", live), |bencher| {
        bencher.iter_custom(|iterations| results.record("handle", live, by_handle.run(iterations)))
    });
    by_handle.finish();

    let mut by_btree = ByAddress::<BTreeMap<_, _>>::new(&device, live);
    group.bench_function(BenchmarkId::new("btree", live), |bencher| {
        bencher.iter_custom(|iterations| results.record("btree", live, by_btree.run(iterations)))
    });
    by_btree.finish();

    let mut by_hash = ByAddress::<HashTable>::new(&device, live);
    group.bench_function(BenchmarkId::new("hash", live), |bencher| {
        bencher.iter_custom(|iterations| results.record("hash", live, by_hash.run(iterations)))
    });
    by_hash.finish();

    let mut by_pool = ByPool::new(&device, live);
    group.bench_function(BenchmarkId::new("pool", live), |bencher| {
        bencher.iter_custom(|iterations| results.record("pool", live, by_pool.run(iterations)))
    });
    by_pool.finish();
    group.finish();
}

fn empty_entry() -> GrantEntryV1 {
    GrantEntryV1 { flags: AtomicU16::new(0), domid: AtomicU16::new(0), frame: AtomicU32::new(0) }
}

/// map + write-and-sync + unmap of one 64 KiB buffer by handle, nothing
/// else live. The benchmark's own page source hands out single pages only,
/// so this one runs over the simulation's guest RAM (the same `GrantTable`
/// code; the source is not used inside the measured loop).
fn bench_large(criterion: &mut Criterion, results: &Results) {
    let xen = SimGrantTable::with_memory_pages(1, 1, LARGE / PAGE_SIZE);
    let table: Table<'_> = RefCell::new(GrantTable::new(xen.current_entries()));
    let source = SimPageSource::new(&xen);
    let device = GrantDma::new(&table, &source, 0, BackendTrust::Trusted).expect("device");
    let mut group = criterion.benchmark_group("map_sync_unmap_64KiB");
    let mut by_handle = ByHandle::new(&device, 0, LARGE);
    let (design, live) = LARGE_DESIGN;
    group.bench_function("handle", |bencher| {
        bencher.iter_custom(|iterations| results.record(design, live, by_handle.run(iterations)))
    });
    by_handle.finish();
    group.finish();
    device.close().expect("close");
}

fn page<G: Grants, S: PageSource>(device: &GrantDma<G, S>) -> DmaBuffer {
    DmaBuffer::allocate(device.source(), PAGE_SIZE).expect("page")
}

/// `live` mapped one-page buffers, kept in a `Vec` nobody searches.
fn map_live<G: Grants, S: PageSource>(device: &GrantDma<G, S>, live: usize) -> Vec<DmaHandle<ToDevice>> {
    (0..live).map(|_| device.map(page(device), ToDevice).expect("map")).collect()
}

fn unmap_live<G: Grants, S: PageSource>(device: &GrantDma<G, S>, held: Vec<DmaHandle<ToDevice>>) {
    for handle in held {
        device.unmap(handle).expect("unmap").free(device.source());
    }
}

/// The handle design: the operation touches only its own handle.
struct ByHandle<'d, G: Grants, S: PageSource> {
    device: &'d GrantDma<G, S>,
    held: Vec<DmaHandle<ToDevice>>,
    spare: Option<DmaBuffer>,
}

impl<'d, G: Grants, S: PageSource> ByHandle<'d, G, S> {
    /// `live` one-page mappings held, and a spare buffer of `len` bytes.
    fn new(device: &'d GrantDma<G, S>, live: usize, len: usize) -> Self {
        let spare = DmaBuffer::allocate(device.source(), len).expect("spare buffer");
        Self { device, held: map_live(device, live), spare: Some(spare) }
    }

    fn run(&mut self, iterations: u64) -> (u64, Duration) {
        let device = self.device;
        let start = Instant::now();
        for _ in 0..iterations {
            let mut handle = device.map(self.spare.take().expect("spare"), ToDevice).expect("map");
            handle.write(device, |bytes| bytes[0] = bytes[0].wrapping_add(1));
            self.spare = Some(device.unmap(handle).expect("unmap"));
        }
        (iterations, start.elapsed())
    }

    fn finish(self) {
        self.spare.expect("spare").free(self.device.source());
        unmap_live(self.device, self.held);
    }
}

/// An address-keyed design: sync and unmap get only the bus address.
struct ByAddress<'d, 't, 'e, T: MappingTable> {
    keyed: AddressKeyed<'d, &'t Table<'e>, &'t BenchSource, T>,
    device: &'d Device<'t, 'e>,
    spare: Option<DmaBuffer>,
}

impl<'d, 't, 'e, T: MappingTable> ByAddress<'d, 't, 'e, T> {
    fn new(device: &'d Device<'t, 'e>, live: usize) -> Self {
        let mut keyed = AddressKeyed::new(device);
        for _ in 0..live {
            keyed.map(page(device));
        }
        Self { keyed, device, spare: Some(page(device)) }
    }

    fn run(&mut self, iterations: u64) -> (u64, Duration) {
        let start = Instant::now();
        for _ in 0..iterations {
            let address = self.keyed.map(self.spare.take().expect("spare"));
            self.keyed.write(address, |bytes| bytes[0] = bytes[0].wrapping_add(1));
            self.spare = Some(self.keyed.unmap(address));
        }
        (iterations, start.elapsed())
    }

    fn finish(mut self) {
        self.spare.take().expect("spare").free(self.device.source());
        self.keyed.unmap_all().into_iter().for_each(|buffer| buffer.free(self.device.source()));
    }
}

/// The persistent model: a pool mapped once, take + write + put per packet.
struct ByPool<'d, 't, 'e> {
    device: &'d Device<'t, 'e>,
    held: Vec<DmaHandle<ToDevice>>,
    pool: DmaPool<ToDevice>,
}

impl<'d, 't, 'e> ByPool<'d, 't, 'e> {
    fn new(device: &'d Device<'t, 'e>, live: usize) -> Self {
        let pool = DmaPool::new(device, 8).expect("pool");
        Self { device, held: map_live(device, live), pool }
    }

    fn run(&mut self, iterations: u64) -> (u64, Duration) {
        let start = Instant::now();
        for _ in 0..iterations {
            let mut handle = self.pool.take().expect("idle handle");
            handle.write(self.device, |bytes| bytes[0] = bytes[0].wrapping_add(1));
            self.pool.put(handle).expect("put back");
        }
        (iterations, start.elapsed())
    }

    fn finish(self) {
        self.pool.close(self.device).expect("close");
        unmap_live(self.device, self.held);
    }
}

/// How this program was built: Cargo's profile family and opt-level (from
/// `dma/build.rs`), debug assertions, panic strategy.
fn build_description() -> String {
    format!(
        "built in Cargo's {} profile family at opt-level {}, debug assertions {}, panic = {}",
        env!("DMA_BUILD_PROFILE"),
        env!("DMA_BUILD_OPT_LEVEL"),
        if cfg!(debug_assertions) { "on" } else { "off" },
        if cfg!(panic = "abort") { "abort" } else { "unwind" },
    )
}

/// Prints the medians and ratios; writes them to `DMA_BENCH_REPORT` if set.
fn report(results: &Results) {
    let Some(text) = report_text(results) else {
        println!("dma_lookup: no complete samples (test mode or filtered run): no report");
        return;
    };
    println!("\n{text}");
    if let Some(path) = std::env::var_os("DMA_BENCH_REPORT") {
        let path = workspace_root().join(PathBuf::from(path));
        std::fs::write(&path, format!("{}\n", report_markdown(&text))).expect("write the benchmark report");
        println!("dma_lookup: report written to {}", path.display());
    }
}

/// The build, the table of medians and ratios, and the large buffer's
/// time, or `None` if a design was not measured.
fn report_text(results: &Results) -> Option<String> {
    let mut lines = vec![
        "| live mappings | by handle | address-keyed BTreeMap | address-keyed hash | pool (take+write+put) | BTreeMap / handle | hash / handle |".to_string(),
        "|---:|---:|---:|---:|---:|---:|---:|".to_string(),
    ];
    for live in LIVE {
        let handle = results.median("handle", live)?;
        let btree = results.median("btree", live)?;
        let hash = results.median("hash", live)?;
        let pool = results.median("pool", live)?;
        lines.push(format!(
            "| {live} | {handle:.1} ns | {btree:.1} ns | {hash:.1} ns | {pool:.1} ns | {:.2}x | {:.2}x |",
            btree / handle,
            hash / handle
        ));
    }
    let (design, live) = LARGE_DESIGN;
    let large = results.median(design, live)?;
    let pages = LARGE / PAGE_SIZE;
    lines.push(String::new());
    lines.push(format!(
        "By handle, one 64 KiB buffer ({pages} pages, grant list on the heap), nothing else live: {large:.1} ns \
         ({:.1} ns a page).",
        large / pages as f64
    ));
    lines.push(String::new());
    lines.push(format!("Build: {}.", build_description()));
    Some(lines.join("\n"))
}

fn report_markdown(table: &str) -> String {
    format!(
        "# DMA benchmark: handle against address-keyed lookup\n\n\
         Produced by `DMA_BENCH_REPORT=docs/benchmarks-dma.md cargo bench -p dma --bench dma_lookup` \
         (dma/benches/dma_lookup). Median time per operation over {SAMPLES} criterion samples, on this \
         machine ({}), host build, no backend mapping anything.\n\n\
         One operation is map + write-and-sync + unmap of a one-page `ToDevice` buffer (two grant-table \
         writes and fences; the handle keeps its grant reference inline, so nothing is allocated) while the \
         other mappings stay live. \
         \"By handle\" reads everything from the handle; the address-keyed designs run on the same device \
         but are given only the bus address for sync and unmap and look the mapping up (BTreeMap as \
         Linux's rbtrees do; a hash table with a cheap hasher as the best case). The pool row is the \
         persistent model (no grant operation, sync only). Ratios above 1 are the cost of the lookup; \
         compare ratios, not absolute times, between machines. `cargo bench` builds with the `bench` \
         profile, which inherits the guest image's `[profile.release]` (opt-level \"s\", LTO, one codegen \
         unit; benchmarks unwind instead of aborting): the build line below says what was used.\n\n{table}\n",
        std::env::consts::ARCH
    )
}

fn workspace_root() -> PathBuf {
    let manifest_directory = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_directory.parent().map_or(manifest_directory.clone(), PathBuf::from)
}
