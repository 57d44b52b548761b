//! The seam between the runtime and the machine.
//!
//! A [`Platform`] is what the kernel's PV services offer, reduced to what
//! the network needs: the xenstore client (one conversation at a time), the
//! event channels, the mapped grant-table entries the DMA layer allocates
//! from, a page source, system time, and the wait primitive (sleep on ports
//! until a deadline). On Xen the appliance implements it over the kernel;
//! in host tests `testing` (feature `test-utils`) implements it over the
//! simulated Xen, where a wait is also the moment the rest of the simulated
//! world runs.

use core::ops::DerefMut;
use dma::PageSource;
use xen_pv::abi::event_channel::Port;
use xen_pv::abi::grant_table::GrantEntryV1;
use xen_pv::event_channel::EventChannels;
use xen_pv::xenstore::Xenstore;
use xen_pv::{Hypervisor, SuspendOutcome};

/// The machine, as the runtime uses it. `'p` is how long the PV services
/// live (`'static` on Xen).
pub trait Platform<'p> {
    /// Who makes the hypercalls.
    type Hypervisor: Hypervisor + 'p;
    /// Where DMA pages come from.
    type Pages: PageSource;
    /// The xenstore client, held for one conversation.
    type Store<'s>: DerefMut<Target = Xenstore<'p, Self::Hypervisor>>
    where
        Self: 's;

    /// The xenstore client, for one conversation (do not hold it across a
    /// [`Platform::wait`]).
    fn xenstore(&self) -> Self::Store<'_>;

    /// The event channels.
    fn events(&self) -> &'p EventChannels<'p, Self::Hypervisor>;

    /// The mapped grant-table entries; the DMA layer owns their allocation.
    fn grant_entries(&self) -> &'p [GrantEntryV1];

    /// The page source DMA buffers and rings come from.
    fn pages(&self) -> Self::Pages;

    /// System time: nanoseconds since the domain started, never going back.
    fn now(&self) -> u64;

    /// Sleeps until one of `ports` is pending or system time reaches
    /// `deadline` (ns); `None`: until a port is pending.
    fn wait(&self, ports: &[Port], deadline: Option<u64>);

    /// Suspends the domain (the toolstack's `suspend` request was
    /// acknowledged and the network quiesced) and says how it came back.
    /// On [`SuspendOutcome::Resumed`] (a new domain) the platform has set
    /// up again what lies below the runtime: the shared info page, its own
    /// ports (the timer), the grant-table frames ([`Platform::grant_entries`]
    /// gives the new ones, every grant in them void), the xenstore
    /// connection (a new port, no watch) and the console. The runtime sets
    /// up the rest. Never called where suspend is not supported.
    fn suspend(&self) -> SuspendOutcome;

    /// A value a client on the network cannot read or guess, to key the SYN
    /// cookies with.
    fn secret_seed(&self) -> u64;

    /// The platform's own counters, for the metrics.
    fn stats(&self) -> PlatformStats;
}

/// What the platform counts (the kernel, on Xen).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlatformStats {
    /// Hypercalls made.
    pub hypercalls: u64,
    /// Heap bytes in use.
    pub heap_used: u64,
    /// Heap bytes free.
    pub heap_free: u64,
    /// Console bytes dropped because the console daemon did not drain.
    pub console_dropped_bytes: u64,
    /// Unix time the domain started, in nanoseconds (Xen's wall clock at
    /// system time 0; 0 if unknown).
    pub start_time_ns: u64,
}
