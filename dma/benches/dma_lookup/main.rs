//! The DMA layer's micro-benchmark (`cargo bench -p dma --bench dma_lookup`):
//! a mapping reached through its handle, against the same mapping found by
//! bus address in an index, which is what Linux's DMA API makes its backends
//! do (unmap and sync are given only the address).
//!
//! What it measures, with N live one-page mappings (N = 1, 1 Ki, 64 Ki,
//! 1 Mi), each operation on one of them picked from a seeded random sequence:
//! - (a) the steady state of persistent mappings: a sync for the device,
//!   operations independent (throughput), and chained (each waits for the
//!   last: latency);
//! - (b) a map + sync + unmap cycle: unmap one, map its buffer again (a fresh
//!   grant, so a new address, which the address-keyed designs must record),
//!   sync it;
//! - (c) both with several threads (1, 2, and the number of cores if more),
//!   the address-keyed index shared behind a lock, each thread on its own
//!   device (see `threads.rs`), against handles, which share nothing;
//! - besides: the persistent pool (take + sync + put) and one 64 KiB buffer
//!   (16 pages, its grant list on the heap).
//!
//! The designs (`designs.rs`, `live.rs`, `address_keyed.rs`): by handle, and
//! by address through a `BTreeMap`, two hash tables, a two-level radix table
//! and a flat array. All run on the same `GrantDma` code, trusted mode, no
//! backend mapping anything, so the index is the only difference.
//!
//! A plain harness (`measure.rs`): `Instant` around a run of many
//! operations, calibrated to about 5 ms, the median of 15 runs (short runs,
//! many of them: on a shared machine the median then leaves out the runs
//! another program interrupted), the designs taking turns, inputs through
//! `black_box`. The whole benchmark takes a minute or two. It prints every
//! timing as it goes, then the tables; with `DMA_BENCH_REPORT=path` it
//! writes them as Markdown (a relative path is taken from the workspace
//! root). Words after `--` pick designs by name (`cargo bench -p dma --bench
//! dma_lookup -- handle BTree`); such a partial run writes no report. Run
//! without `--bench` (as `cargo test --benches` does), it only checks that
//! every design works, on a few mappings, and writes nothing.
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
mod designs;
mod live;
mod measure;
mod report;
#[allow(unsafe_code)] // the benchmark's arena and its `unsafe impl dma::PageSource`
mod source;
mod threads;

use core::cell::RefCell;
use designs::Design;
use dma::sim::SimPageSource;
use dma::{BackendTrust, DmaBuffer, DmaPool, GrantDma, PAGE_SIZE, ToDevice};
use live::{Operation, Table, device, grant_table_entries, with_device};
use measure::{Contender, Order, Pace, Settings, Timing, measure_in_turns, per_operation};
use report::Results;
use source::BenchSource;
use std::time::{Duration, Instant};
use threads::Coordinator;
use xen_pv::grant_table::GrantTable;
use xen_sim::grant_table::SimGrantTable;

/// Live mappings the single-thread measurements run at.
const LIVE: [usize; 4] = [1, 1 << 10, 1 << 16, 1 << 20];
/// Live mappings (all threads together) the threaded ones run at.
const LIVE_THREADED: [usize; 3] = [1 << 10, 1 << 16, 1 << 20];
/// The seed of the single-thread random order.
const SEED: u64 = 0x00d1_5ea5_e5ee_d001;
/// The large buffer: 64 KiB, 16 pages (a grant list on the heap).
const LARGE: usize = 16 * PAGE_SIZE;
/// Buffers in the pool measured.
const POOL_BUFFERS: usize = 8;

/// A full run, or a smoke test of every design on a few mappings; and the
/// designs asked for.
struct Plan {
    settings: Settings,
    live: Vec<usize>,
    live_threaded: Vec<usize>,
    threads: Vec<usize>,
    designs: Vec<Design>,
}

impl Plan {
    /// `filters`: words from the command line; only designs whose name
    /// contains one of them run (all when there is none).
    fn new(full: bool, filters: &[String]) -> Self {
        let threads = thread_counts();
        let designs = designs::ALL
            .into_iter()
            .filter(|design| filters.is_empty() || filters.iter().any(|filter| design.name().contains(filter.as_str())))
            .collect();
        if full {
            let settings = Settings { runs: 15, run_time: Duration::from_millis(5) };
            Self { settings, live: LIVE.to_vec(), live_threaded: LIVE_THREADED.to_vec(), threads, designs }
        } else {
            let settings = Settings { runs: 1, run_time: Duration::from_micros(200) };
            Self { settings, live: vec![1, 64], live_threaded: vec![64], threads, designs }
        }
    }
}

/// 1, 2, and the number of cores when there are more.
fn thread_counts() -> Vec<usize> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut counts = vec![1, 2];
    if cores > 2 {
        counts.push(cores);
    }
    counts
}

fn main() {
    // A panic on a worker thread would leave the others waiting at their
    // barrier for ever: end the whole benchmark instead.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::exit(101);
    }));

    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let full = arguments.iter().any(|argument| argument == "--bench");
    let filters: Vec<String> = arguments.iter().filter(|argument| !argument.starts_with('-')).cloned().collect();
    let plan = Plan::new(full, &filters);
    let build = build_description();
    println!("dma_lookup: {build}");
    if !full {
        println!("dma_lookup: not run by `cargo bench` (no --bench): a smoke test of every design, nothing written");
    }
    let started = Instant::now();
    let mut results =
        Results::new(build, plan.settings, plan.live.clone(), plan.live_threaded.clone(), plan.threads.clone());

    for &live in &plan.live {
        single_thread(&plan, live, &mut results);
    }
    for &live in &plan.live_threaded {
        for &threads in &plan.threads {
            threaded(&plan, live, threads, &mut results);
        }
    }
    if plan.designs.contains(&Design::Handle) {
        other_figures(&plan.settings, &mut results);
    }
    results.finish(started.elapsed());

    if !full {
        println!("dma_lookup: smoke test passed");
    } else if filters.is_empty() {
        results.publish();
    } else {
        results.print();
        println!("dma_lookup: only some designs ran (a filter was given): no report written");
    }
}

/// (a) and (b) at `live` mappings, one thread: every design on a device of
/// its own, all set up at once and measured in turns.
fn single_thread(plan: &Plan, live: usize, results: &mut Results) {
    let count = plan.designs.len();
    let entries: Vec<_> = (0..count).map(|_| grant_table_entries(live)).collect();
    let tables: Vec<Table<'_>> = entries.iter().map(|entries| RefCell::new(GrantTable::new(entries))).collect();
    let sources: Vec<BenchSource> = (0..count).map(|_| BenchSource::new(live)).collect();
    let devices: Vec<_> = tables.iter().zip(&sources).map(|(table, source)| device(table, source)).collect();
    let contenders =
        plan.designs.iter().zip(&devices).map(|(design, device)| design.alone(device, live, SEED)).collect();
    measure_all(plan, None, live, contenders, &[Operation::Sync, Operation::SyncChained, Operation::Cycle], results);
    for device in devices {
        device.close().expect("the benchmark unmapped everything");
    }
}

/// (c) at `live` mappings over `threads` threads: a group of threads per
/// design, all set up at once and measured in turns.
fn threaded(plan: &Plan, live: usize, threads: usize, results: &mut Results) {
    let coordinators: Vec<Coordinator> = plan.designs.iter().map(|_| Coordinator::new(live, threads)).collect();
    std::thread::scope(|scope| {
        for (design, coordinator) in plan.designs.iter().zip(&coordinators) {
            design.spawn(scope, coordinator, threads);
        }
        let contenders =
            coordinators.iter().map(|coordinator| Box::new(coordinator) as Box<dyn Contender + '_>).collect();
        measure_all(plan, Some(threads), live, contenders, &[Operation::Sync, Operation::Cycle], results);
    });
}

/// Times each of `operations` on every design's contender, in turns, then
/// tears them down.
fn measure_all(
    plan: &Plan,
    threads: Option<usize>,
    live: usize,
    mut contenders: Vec<Box<dyn Contender + '_>>,
    operations: &[Operation],
    results: &mut Results,
) {
    for &operation in operations {
        let timings = measure_in_turns(&plan.settings, &mut contenders, operation);
        for (design, timing) in plan.designs.iter().zip(timings) {
            results.add(design.name(), threads, live, operation, timing);
        }
    }
    contenders.into_iter().for_each(|contender| contender.finish());
}

/// The persistent pool's take + sync + put, and map + sync + unmap of one
/// 64 KiB buffer, by handle, nothing else live.
fn other_figures(settings: &Settings, results: &mut Results) {
    let pool = with_device(POOL_BUFFERS, |device| {
        let mut pool = DmaPool::<ToDevice>::new(device, POOL_BUFFERS).expect("pool");
        let timing = measure_alone(settings, |_| {
            let mut handle = pool.take().expect("an idle handle");
            device.sync_for_device(&mut handle);
            pool.put(handle).expect("put back");
            0
        });
        pool.close(device).expect("close");
        timing
    });
    results.add_other("pool of 8: take + sync + put", pool);

    // The benchmark's arena hands out single pages, so the large buffer
    // comes from the simulation's guest RAM (the same grant-table code).
    let xen = SimGrantTable::with_memory_pages(1, 1, LARGE / PAGE_SIZE);
    let table: Table<'_> = RefCell::new(GrantTable::new(xen.current_entries()));
    let source = SimPageSource::new(&xen);
    let device = GrantDma::new(&table, &source, 0, BackendTrust::Trusted).expect("device");
    let mut spare = Some(DmaBuffer::allocate(device.source(), LARGE).expect("64 KiB buffer"));
    let large = measure_alone(settings, |_| {
        let mut handle = device.map(spare.take().expect("the buffer"), ToDevice).expect("map");
        device.sync_for_device(&mut handle);
        spare = Some(device.unmap(handle).expect("unmap"));
        0
    });
    spare.expect("the buffer").free(device.source());
    device.close().expect("close");
    results.add_other("one 64 KiB buffer (16 pages): map + sync + unmap", large);
}

/// Times `operation` alone: the median of `settings.runs` runs after one
/// untimed run that calibrates.
fn measure_alone(settings: &Settings, mut operation: impl FnMut(usize) -> usize) -> Timing {
    let mut order = Order::new(1, SEED);
    let mut iterations = 1024;
    while order.time(iterations, Pace::Independent, &mut operation) < settings.run_time / 4 && iterations < 1 << 30 {
        iterations *= 2;
    }
    iterations *= 4;
    let runs = (0..settings.runs)
        .map(|_| per_operation(order.time(iterations, Pace::Independent, &mut operation), iterations));
    Timing::of(runs.collect())
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
