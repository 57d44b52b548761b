//! Several threads at once: the address-keyed index shared behind a lock,
//! against handles, which share nothing.
//!
//! A `GrantDma` is single-threaded (`Cell` counters, `RefCell` queues; the
//! guest has one vCPU), so each thread maps on a device of its own, over its
//! own grant table and arena, as an SMP kernel would give each queue of a
//! multi-queue device its own. What the designs then differ in is what they
//! share: the handle design nothing at all; the address-keyed designs one
//! index of every thread's mappings behind a `std::sync::RwLock` (read lock
//! to look up for a sync, write lock to record a map or forget an unmap), as
//! an IOMMU domain's tree or the swiotlb's slots are shared by the CPUs
//! using one device. The live mappings are divided between the threads.
//!
//! Each design has its group of threads, all set up at once; a group runs
//! only when the main thread releases it through its [`Coordinator`]'s
//! barrier, every thread of it the same number of operations, and reports
//! how long each took. A run's figure is the mean over the threads of the
//! time per operation each saw, so with no contention and a core per thread
//! it stays at the one-thread figure.

use crate::address_keyed::{AddressIndex, SharedAddressKeyed};
use crate::live::{ByAddress, ByHandle, Live, Operation, grant_entries, page, run, with_device};
use crate::measure::{Contender, Order, per_operation};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::thread::Scope;
use std::time::Duration;

/// What the main thread tells a group to do next.
#[derive(Debug, Clone, Copy)]
enum Step {
    Run { operation: Operation, iterations: usize },
    Stop,
}

/// A group of threads' meeting point with the main thread.
pub struct Coordinator {
    /// Live mappings of each thread.
    share: usize,
    barrier: Barrier,
    step: Mutex<Step>,
    elapsed: Mutex<Vec<Duration>>,
}

impl Coordinator {
    /// For a group of `threads` sharing `live` mappings.
    pub fn new(live: usize, threads: usize) -> Self {
        Self {
            share: live / threads,
            barrier: Barrier::new(threads + 1),
            step: Mutex::new(Step::Stop),
            elapsed: Mutex::new(Vec::new()),
        }
    }

    /// Main thread: lets the group tear down and end.
    fn stop(&self) {
        *self.step.lock().expect("step lock") = Step::Stop;
        self.barrier.wait();
    }

    /// A thread of the group: runs what the main thread asks, until it says
    /// stop.
    fn serve(&self, live: &mut impl Live, order: &mut Order) {
        loop {
            self.barrier.wait();
            let step = *self.step.lock().expect("step lock");
            let Step::Run { operation, iterations } = step else { return };
            let elapsed = run(live, order, operation, iterations);
            self.elapsed.lock().expect("elapsed lock").push(elapsed);
            self.barrier.wait();
        }
    }
}

/// A group as a [`Contender`]: a run is every thread of it running at once.
impl Contender for &Coordinator {
    fn live(&self) -> usize {
        self.share
    }

    fn run(&mut self, operation: Operation, iterations: usize) -> f64 {
        *self.step.lock().expect("step lock") = Step::Run { operation, iterations };
        self.barrier.wait(); // go
        self.barrier.wait(); // all done
        let elapsed = std::mem::take(&mut *self.elapsed.lock().expect("elapsed lock"));
        elapsed.iter().map(|&time| per_operation(time, iterations)).sum::<f64>() / elapsed.len() as f64
    }

    fn finish(self: Box<Self>) {
        self.stop();
    }
}

/// The seed of thread `thread`'s random order (never 0).
fn seed(thread: usize) -> u64 {
    0x5eed_0000 + thread as u64
}

/// Starts `threads` threads sharing mappings by handle (the coordinator's
/// share each): each its own device and handles. They wait for
/// `coordinator`.
pub fn spawn_by_handle<'scope>(scope: &'scope Scope<'scope, '_>, coordinator: &'scope Coordinator, threads: usize) {
    let share = coordinator.share;
    for thread in 0..threads {
        scope.spawn(move || {
            with_device(share, |device| {
                let mut live = ByHandle::new(device, share);
                coordinator.serve(&mut live, &mut Order::new(share, seed(thread)));
                live.finish();
            })
        });
    }
}

/// Starts `threads` threads sharing mappings by address (the coordinator's
/// share each), through one index of type `T` behind a lock. They wait for
/// `coordinator`.
pub fn spawn_by_address<'scope, T: AddressIndex<u32> + Send + Sync + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    coordinator: &'scope Coordinator,
    threads: usize,
) {
    let share = coordinator.share;
    let pages_each = grant_entries(share);
    let index = Arc::new(RwLock::new(T::new(pages_each * threads)));
    for thread in 0..threads {
        let index = Arc::clone(&index);
        scope.spawn(move || {
            with_device(share, |device| {
                let layer = SharedAddressKeyed::new(device, &*index, thread * pages_each);
                let mut live = ByAddress::new(layer, (0..share).map(|_| page(device)));
                coordinator.serve(&mut live, &mut Order::new(share, seed(thread)));
                live.finish();
            })
        });
    }
}
