//! Timing: std's `Instant` around many operations, the median of several
//! runs taken in turns, and the random order the operations visit the live
//! mappings in.
//!
//! A run performs one operation per entry of a pre-generated, seeded random
//! sequence of mapping numbers, so successive operations hit unrelated
//! mappings (with 64 Ki or 1 Mi of them, most of what one touches is out of
//! the caches) and every run of every design sees the same pattern. The
//! sequence is read in order, which the hardware prefetches, and each number
//! passes through `black_box`, so the compiler cannot see the pattern either.
//!
//! Operations are independent of each other, so the processor may work on
//! the cache misses of several at once: that measures throughput. With
//! [`Pace::Chained`] each operation's mapping number also depends on a value
//! the previous operation read from its mapping (through a mask that is
//! zero at run time but unknown to the compiler), so one operation's misses
//! cannot start before the last one's are over: the latency of one alone.
//!
//! The designs compared take turns: every design's live mappings are set up
//! at once, and each round gives every design an untimed warm-up run and
//! one timed run. A slow spell of the shared machine then falls on every
//! design alike, and the median of the rounds leaves it out. The warm-up
//! brings a design's data back into the caches after the other designs'
//! turns, when it fits there (at 64 Ki mappings it does, at 1 Mi it does
//! not): it makes eight passes' worth of operations over the live mappings
//! (two were not enough: a design measured after another was up to three
//! times slower than alone), within limits of a quarter of a timed run and
//! eight timed runs.

use crate::live::Operation;
use std::hint::black_box;
use std::time::{Duration, Instant};
use xen_sim::random::XorShift;

/// Entries in a random order (a power of two; 4 MiB of `u32`): longer than
/// any run, so a run does not revisit mappings in a pattern the caches learn.
const ORDER_LEN: usize = 1 << 20;

/// How long and how often to measure.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Timed runs (rounds) per figure; the median is reported.
    pub runs: usize,
    /// The aimed-at length of one timed run.
    pub run_time: Duration,
}

impl Settings {
    /// How long calibration runs until: a quarter of a timed run.
    fn calibration_time(&self) -> Duration {
        self.run_time / 4
    }
}

/// Passes over the live mappings a warm-up aims at (operations per live
/// mapping).
const WARM_UP_PASSES: usize = 8;
/// The warm-up's bounds, in timed runs: a quarter of one, eight.
const WARM_UP_MIN_RUNS: f64 = 0.25;
const WARM_UP_MAX_RUNS: f64 = 8.0;

/// Nanoseconds per operation: the median and the spread of the runs.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Timing {
    /// The median and extremes of `samples` (ns per operation, one per run).
    pub fn of(mut samples: Vec<f64>) -> Self {
        assert!(!samples.is_empty(), "a timing needs at least one run");
        samples.sort_by(f64::total_cmp);
        let middle = samples.len() / 2;
        let median =
            if samples.len() % 2 == 1 { samples[middle] } else { (samples[middle - 1] + samples[middle]) / 2.0 };
        Self { median, min: samples[0], max: samples[samples.len() - 1] }
    }
}

/// Whether operations may overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Independent operations (throughput).
    Independent,
    /// Each operation waits for the previous one's reads (latency).
    Chained,
}

/// A seeded random sequence of mapping numbers below `live`, read in a ring.
pub struct Order {
    numbers: Vec<u32>,
    next: usize,
}

impl Order {
    /// `ORDER_LEN` numbers below `live`, from `seed` (not 0).
    pub fn new(live: usize, seed: u64) -> Self {
        assert!(live > 0 && u32::try_from(live).is_ok(), "a live count that fits the order's numbers");
        let mut random = XorShift(seed);
        Self { numbers: (0..ORDER_LEN).map(|_| random.below(live) as u32).collect(), next: 0 }
    }

    /// Runs `operation` on the next `iterations` numbers and times it.
    /// `operation` returns a value it read from the mapping, for
    /// [`Pace::Chained`].
    pub fn time(&mut self, iterations: usize, pace: Pace, mut operation: impl FnMut(usize) -> usize) -> Duration {
        let numbers = black_box(self.numbers.as_slice());
        let mut position = self.next;
        let start = Instant::now();
        match pace {
            Pace::Independent => {
                for _ in 0..iterations {
                    operation(black_box(numbers[position] as usize));
                    position = (position + 1) % ORDER_LEN;
                }
            }
            Pace::Chained => {
                let zero = black_box(0);
                let mut carried = 0;
                for _ in 0..iterations {
                    carried = operation(numbers[position] as usize ^ (carried & zero));
                    position = (position + 1) % ORDER_LEN;
                }
            }
        }
        let elapsed = start.elapsed();
        self.next = position;
        elapsed
    }
}

/// Nanoseconds per operation of one run.
pub fn per_operation(elapsed: Duration, iterations: usize) -> f64 {
    elapsed.as_nanos() as f64 / iterations.max(1) as f64
}

/// One design's live mappings, ready to be timed.
pub trait Contender {
    /// Live mappings (of one thread, for a group).
    fn live(&self) -> usize;
    /// Runs `iterations` operations; returns nanoseconds per operation.
    fn run(&mut self, operation: Operation, iterations: usize) -> f64;
    /// Unmaps everything.
    fn finish(self: Box<Self>);
}

/// Operations of a timed run and of the warm-up before it.
#[derive(Debug, Clone, Copy)]
struct Iterations {
    warm_up: usize,
    timed: usize,
}

/// Doubles the operations of an untimed run until it lasts a quarter of a
/// timed run; returns the operations of a timed run and its warm-up.
fn calibrate(settings: &Settings, contender: &mut dyn Contender, operation: Operation) -> Iterations {
    let mut iterations = 1024;
    loop {
        let per_operation = contender.run(operation, iterations);
        let lasted = per_operation * iterations as f64;
        if lasted >= settings.calibration_time().as_nanos() as f64 || iterations >= 1 << 30 {
            let timed = (settings.run_time.as_nanos() as f64 / per_operation.max(0.1)).max(1000.0);
            let passes = (WARM_UP_PASSES * contender.live()) as f64;
            let warm_up = passes.clamp(timed * WARM_UP_MIN_RUNS, timed * WARM_UP_MAX_RUNS);
            return Iterations { warm_up: warm_up as usize, timed: timed as usize };
        }
        iterations *= 2;
    }
}

/// Times `operation` on every contender, in turns: calibrates each, then
/// `settings.runs` rounds of a warm-up and a timed run each. Returns their
/// timings in order.
pub fn measure_in_turns(
    settings: &Settings,
    contenders: &mut [Box<dyn Contender + '_>],
    operation: Operation,
) -> Vec<Timing> {
    let iterations: Vec<Iterations> =
        contenders.iter_mut().map(|contender| calibrate(settings, &mut **contender, operation)).collect();
    let mut samples = vec![Vec::with_capacity(settings.runs); contenders.len()];
    for _ in 0..settings.runs {
        for ((contender, iterations), samples) in contenders.iter_mut().zip(&iterations).zip(&mut samples) {
            contender.run(operation, iterations.warm_up);
            samples.push(contender.run(operation, iterations.timed));
        }
    }
    samples.into_iter().map(Timing::of).collect()
}
