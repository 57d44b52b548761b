//! The tables: printed at the end, and written as Markdown to
//! `DMA_BENCH_REPORT` when it is set, with the machine, the date and the
//! goals of issue 13 checked against the figures.

use crate::designs::HANDLE;
use crate::live::Operation;
use crate::measure::{Settings, Timing};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The live count the first goal is checked at.
const GOAL_LIVE: usize = 1 << 16;
/// Goal: the ordered tree over the handle, in (a), at `GOAL_LIVE`.
const GOAL_RATIO: f64 = 10.0;
/// Goal: map + sync + unmap by handle, in ns.
const GOAL_CYCLE_NS: f64 = 40.0;

/// One timing.
struct Entry {
    operation: Operation,
    design: &'static str,
    /// `None`: one thread, its own index (the handles inline); `Some(n)`:
    /// n threads, one index shared behind a lock.
    threads: Option<usize>,
    live: usize,
    timing: Timing,
}

impl fmt::Display for Entry {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operation = match self.operation {
            Operation::Sync => "sync",
            Operation::SyncChained => "sync, chained",
            Operation::Cycle => "map+sync+unmap",
        };
        let threads = self.threads.map_or("1 thread, own index".to_string(), |n| format!("{n} thread(s), shared"));
        let Timing { median, min, max } = self.timing;
        write!(
            formatter,
            "{operation:<15} {:>5} live  {threads:<20} {:<24} {median:8.1} ns  (runs {min:.1} to {max:.1})",
            live_label(self.live),
            self.design
        )
    }
}

/// Everything measured, and what the report says about the run.
pub struct Results {
    entries: Vec<Entry>,
    other: Vec<(&'static str, Timing)>,
    build: String,
    settings: Settings,
    live: Vec<usize>,
    live_threaded: Vec<usize>,
    threads: Vec<usize>,
    load_at_start: String,
    load_at_end: String,
    duration: Duration,
}

impl Results {
    /// Nothing measured yet; notes the load average now. The live counts
    /// and thread counts are the tables' columns and rows.
    pub fn new(
        build: String,
        settings: Settings,
        live: Vec<usize>,
        live_threaded: Vec<usize>,
        threads: Vec<usize>,
    ) -> Self {
        Self {
            entries: Vec::new(),
            other: Vec::new(),
            build,
            settings,
            live,
            live_threaded,
            threads,
            load_at_start: load_average(),
            load_at_end: String::new(),
            duration: Duration::ZERO,
        }
    }

    /// Records a timing and prints it.
    pub fn add(
        &mut self,
        design: &'static str,
        threads: Option<usize>,
        live: usize,
        operation: Operation,
        timing: Timing,
    ) {
        let entry = Entry { operation, design, threads, live, timing };
        println!("{entry}");
        self.entries.push(entry);
    }

    /// The designs in the order they were first measured (the handle first).
    fn designs(&self) -> Vec<&'static str> {
        let mut designs: Vec<&'static str> = Vec::new();
        for entry in &self.entries {
            if !designs.contains(&entry.design) {
                designs.push(entry.design);
            }
        }
        designs
    }

    /// Records and prints one of the other figures.
    pub fn add_other(&mut self, what: &'static str, timing: Timing) {
        let Timing { median, min, max } = timing;
        println!("{what:<60} {median:8.1} ns  (runs {min:.1} to {max:.1})");
        self.other.push((what, timing));
    }

    /// Notes the load average at the end and how long it all took.
    pub fn finish(&mut self, duration: Duration) {
        self.load_at_end = load_average();
        self.duration = duration;
    }

    fn median(&self, operation: Operation, design: &str, threads: Option<usize>, live: usize) -> Option<f64> {
        self.entries
            .iter()
            .find(|entry| {
                entry.operation == operation && entry.design == design && entry.threads == threads && entry.live == live
            })
            .map(|entry| entry.timing.median)
    }

    /// "12.3 ns", with "(4.5×)" after it for an address-keyed design: its
    /// time over the handle's in the same setting.
    fn cell(&self, operation: Operation, design: &str, threads: Option<usize>, live: usize) -> String {
        let Some(time) = self.median(operation, design, threads, live) else { return "–".to_string() };
        match self.median(operation, HANDLE, threads, live) {
            Some(handle) if design != HANDLE => format!("{time:.1} ns ({:.1}×)", time / handle),
            _ => format!("{time:.1} ns"),
        }
    }

    /// A table of one operation, one thread: a row per design, a column per
    /// live count.
    fn single_table(&self, operation: Operation) -> String {
        let mut lines = vec![
            format!("| design | {} |", self.live.iter().map(|&live| live_header(live)).collect::<Vec<_>>().join(" | ")),
            format!("|:---|{}", "---:|".repeat(self.live.len())),
        ];
        for design in self.designs() {
            let cells: Vec<String> = self.live.iter().map(|&live| self.cell(operation, design, None, live)).collect();
            lines.push(format!("| {} | {} |", design_label(design), cells.join(" | ")));
        }
        lines.join("\n")
    }

    /// A table of one operation with threads: a row per design and thread
    /// count, a column per live count.
    fn threaded_table(&self, operation: Operation) -> String {
        let headers: Vec<String> = self.live_threaded.iter().map(|&live| live_header(live)).collect();
        let mut lines = vec![
            format!("| design | threads | {} |", headers.join(" | ")),
            format!("|:---|---:|{}", "---:|".repeat(self.live_threaded.len())),
        ];
        for design in self.designs() {
            for &threads in &self.threads {
                let cells: Vec<String> =
                    self.live_threaded.iter().map(|&live| self.cell(operation, design, Some(threads), live)).collect();
                lines.push(format!("| {} | {threads} | {} |", design_label(design), cells.join(" | ")));
            }
        }
        lines.join("\n")
    }

    fn other_lines(&self) -> String {
        self.other
            .iter()
            .map(|(what, timing)| format!("- By handle, {what}: {:.1} ns.", timing.median))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The goals of issue 13, each with the figures that decide it.
    fn goals(&self) -> String {
        let tree_over_handle = |operation| {
            let tree = self.median(operation, "BTreeMap", None, GOAL_LIVE)?;
            let handle = self.median(operation, HANDLE, None, GOAL_LIVE)?;
            Some((tree, handle, tree / handle))
        };
        let ratio = match (tree_over_handle(Operation::Sync), tree_over_handle(Operation::SyncChained)) {
            (Some((tree, handle, ratio)), chained) => {
                let one_at_a_time = chained.map_or(String::new(), |(tree, handle, ratio)| {
                    format!(" One sync at a time (latency): {tree:.1} ns against {handle:.1} ns, {ratio:.1}×.")
                });
                format!(
                    "- Handle at least {GOAL_RATIO:.0}× faster than the ordered tree in (a) at {}: {tree:.1} ns \
                     against {handle:.1} ns, {ratio:.1}×: **{}**.{one_at_a_time}",
                    live_label(GOAL_LIVE),
                    if ratio >= GOAL_RATIO { "met" } else { "not met" }
                )
            }
            _ => "- Handle against ordered tree: not measured in this run.".to_string(),
        };
        let cycles: Vec<(usize, f64)> = self
            .live
            .iter()
            .filter_map(|&live| Some((live, self.median(Operation::Cycle, HANDLE, None, live)?)))
            .collect();
        let met: Vec<String> =
            cycles.iter().filter(|(_, time)| *time <= GOAL_CYCLE_NS).map(|&(live, _)| live_label(live)).collect();
        let verdict = match met.len() {
            0 => "**not met**".to_string(),
            count if count == cycles.len() => "**met**".to_string(),
            _ => format!("**met at N = {} only**", met.join(", ")),
        };
        let figures: Vec<String> =
            cycles.iter().map(|&(live, time)| format!("{time:.1} ns at N = {}", live_label(live))).collect();
        let cycle = format!(
            "- map + sync + unmap by handle at most {GOAL_CYCLE_NS:.0} ns, in (b): {}: {verdict}.",
            figures.join(", ")
        );
        format!("{ratio}\n{cycle}")
    }

    /// Prints the tables.
    pub fn print(&self) {
        println!("\n{}", self.tables());
    }

    /// Prints the tables; writes the Markdown report if `DMA_BENCH_REPORT`
    /// is set.
    pub fn publish(&self) {
        let text = self.tables();
        println!("\n{text}");
        if let Some(path) = std::env::var_os("DMA_BENCH_REPORT") {
            let path = workspace_root().join(PathBuf::from(path));
            std::fs::write(&path, self.markdown(&text)).expect("write the benchmark report");
            println!("dma_lookup: report written to {}", path.display());
        }
    }

    /// The tables, the other figures and the goals, with their headings.
    fn tables(&self) -> String {
        format!(
            "## (a) Steady state: sync of one of N persistent mappings\n\n{}\n\n\
             ## (a) Latency: the same sync, each operation waiting for the one before\n\n{}\n\n\
             ## (b) map + sync + unmap of one of N live mappings\n\n{}\n\n\
             ## (c) Threads: sync, the address-keyed index shared behind a lock\n\n{}\n\n\
             ## (c) Threads: map + sync + unmap, the address-keyed index shared behind a lock\n\n{}\n\n\
             ## Other figures\n\n{}\n\n\
             ## Goals (issue 13)\n\n{}\n\n\
             Build: {}. The whole benchmark took {:.0} s.",
            self.single_table(Operation::Sync),
            self.single_table(Operation::SyncChained),
            self.single_table(Operation::Cycle),
            self.threaded_table(Operation::Sync),
            self.threaded_table(Operation::Cycle),
            self.other_lines(),
            self.goals(),
            self.build,
            self.duration.as_secs_f64(),
        )
    }

    fn markdown(&self, tables: &str) -> String {
        format!(
            "# DMA benchmark: by handle against by bus address\n\n\
             Produced by `DMA_BENCH_REPORT=docs/benchmarks-dma.md cargo bench -p dma --bench dma_lookup` \
             (dma/benches/dma_lookup; `make bench` runs it too) on {date}, on {machine}, a machine shared with \
             other work. Load average (1, 5, 15 minutes): {start} at the start, {end} at the end (which counts the \
             benchmark's own threads: one, two in (c)); at the start, above about 1.5 means other programs \
             were running beside it. Timings on a loaded machine vary, from run \
             to run by 10 % and more: compare the ratios before the absolute times, and absolute times only \
             between runs on one machine.\n\n\
             ## How it measures\n\n\
             Every figure is nanoseconds per operation: the median of {runs} timed runs of about {run_ms} ms \
             each, host build, trusted mode, no backend mapping anything. The live mappings are N one-page \
             `ToDevice` buffers on a real `GrantDma`; each operation acts on one of them, picked from a seeded \
             random sequence, so at N = 64 Ki and 1 Mi what it touches is mostly not in the first-level \
             caches, and at 1 Mi (80 MiB of handles alone) not in any cache. N = 1 is the same operation with \
             everything in the caches. The designs take turns: all are set up at once, and each round gives \
             each of them a warm-up run (about eight operations per live mapping, to bring its data back into \
             the caches after the others' turns) and one timed run, so a slow spell of the machine falls on all \
             alike. Nothing writes the buffers' bytes: that work is the same for every design, and leaving \
             them alone lets a million mappings be real ones, their 4 GiB of pages reserved but never brought \
             into memory.\n\n\
             \"By handle\" is this crate's design: the caller keeps the `DmaHandle`, and sync and unmap read \
             everything from it. The other rows run the same device but give sync and unmap only the bus \
             address, as Linux's DMA API does, so the layer finds the mapping again in an index: a `BTreeMap` \
             (an ordered tree, as Linux's IOVA allocator and the Xen-on-ARM foreign-mapping table keep), a hash \
             table with std's SipHash or with a one-multiply hasher (the best case for a hash table), a \
             two-level radix table of 512-entry levels by page number (an IOMMU page table's shape) or a flat \
             array by page number (how swiotlb finds its slot). On Xen the page number of a bus address is its \
             grant reference, so the arrays are indexed by grant reference and sized by the grant table. With \
             one thread the index holds the handles themselves. Each cell gives the absolute time and, for an \
             address-keyed design, in brackets, its time over the handle's in the same column.\n\n\
             **(a)** A sync for the device: the steady state of persistent mappings. Operations are independent, \
             so the processor may work on the cache misses of several at once (throughput). The latency table \
             chains them instead (each sync's mapping number depends on a value the previous one read from its \
             mapping), which gives the time of one sync on its own.\n\n\
             **(b)** map + sync + unmap on one of N live mappings: unmap it, map its buffer again (a fresh grant \
             reference, so a new address), sync it. For an address-keyed design that adds a remove, an insert \
             and a lookup.\n\n\
             **(c)** (a) and (b) with 1, 2 (and, with more cores, as many as there are) threads at once, the N \
             mappings divided between them. A `GrantDma` is single-threaded, so each thread has its own device, \
             grant table and pages, as each queue of a multi-queue device would; the handles share nothing, \
             while the address-keyed designs share one index of all threads' mappings behind a \
             `std::sync::RwLock` (read lock to look up, write lock to insert and remove), which gives the slot \
             of the handle in the thread's own slab. A figure is the mean over the threads of the time per \
             operation each saw: with no contention and a core per thread it would equal the one-thread \
             figure; each thread also has only its share of the mappings and a core's own second-level cache, \
             so a two-thread figure can come out below the one-thread one. With two threads on a two-core \
             machine, anything else running takes a core from one of them: these are the noisiest figures.\n\n\
             **(d)** The absolute times and the ratios are in every table; the goals below are checked against \
             them.\n\n\
             Where the time goes, measured with a profiler and an instruction count, is in docs/dma.md \
             (\"Numbers\").\n\n{tables}\n",
            date = utc_now(),
            machine = machine(),
            start = self.load_at_start,
            end = self.load_at_end,
            runs = self.settings.runs,
            run_ms = self.settings.run_time.as_millis(),
        )
    }
}

/// "1 Ki", "64 Ki", "1 Mi", or the number.
fn live_label(live: usize) -> String {
    match live {
        live if live >= 1 << 20 && live % (1 << 20) == 0 => format!("{} Mi", live >> 20),
        live if live >= 1 << 10 && live % (1 << 10) == 0 => format!("{} Ki", live >> 10),
        live => live.to_string(),
    }
}

fn live_header(live: usize) -> String {
    format!("N = {}", live_label(live))
}

fn design_label(design: &str) -> String {
    if design == HANDLE { format!("**{design}**") } else { format!("by address: {design}") }
}

/// The load averages of /proc/loadavg, or "unknown".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .filter(|load| !load.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The processor model, the number of cores and whether it is a virtual
/// machine.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map_or("an unknown processor", |(_, model)| model.trim());
    let virtual_machine = cpuinfo.lines().any(|line| line.starts_with("flags") && line.contains(" hypervisor"));
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let kind = if virtual_machine { ", a virtual machine" } else { "" };
    format!("{} ({model}, {cores} cores{kind})", std::env::consts::ARCH)
}

/// The date and time now, UTC, as "2026-12-05 01:40 UTC".
fn utc_now() -> String {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs()) as i64;
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", of_day / 3600, of_day % 3600 / 60)
}

fn workspace_root() -> PathBuf {
    let manifest_directory = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_directory.parent().map_or(manifest_directory.clone(), PathBuf::from)
}
