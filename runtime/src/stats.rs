//! What the runtime and the platform count, gathered for the appliance's
//! metrics.
//!
//! A snapshot is assembled only when the appliance asks (a metrics request),
//! from counters that live where the work happens: hypercalls, the heap and
//! the console on the platform ([`crate::PlatformStats`]), event channels,
//! the netfront link, the DMA device, the grant table, the SYN cookies and the IPv4
//! fragment screen here.

use dma::DmaCounters;
use netfront::NetfrontCounters;
use xen_pv::grant_table::GrantCounters;

/// One snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Xen system time (ns since the domain started).
    pub uptime_ns: u64,
    /// Unix time the domain started, in nanoseconds (Xen's wall clock at
    /// system time 0; 0 when the platform does not know it).
    pub start_time_ns: u64,
    /// Hypercalls made.
    pub hypercalls: u64,
    /// Event-channel notifications sent.
    pub events_sent: u64,
    /// Pending events taken.
    pub events_received: u64,
    /// Sleeps in `SCHEDOP_poll`.
    pub polls: u64,
    /// Heap bytes in use.
    pub heap_used: u64,
    /// Heap bytes free.
    pub heap_free: u64,
    /// Console bytes dropped because the console daemon did not drain.
    pub console_dropped_bytes: u64,
    /// Interfaces made: the main one and each vif's own, once its vif was
    /// first found.
    pub interfaces: u64,
    /// The network frontends (every one the interfaces had).
    pub netfront: NetfrontCounters,
    /// The DMA layer.
    pub dma: DmaCounters,
    /// The grant table.
    pub grants: GrantCounters,
    /// SYN cookies in front of the stack.
    pub syn_cookies: crate::syn_cookies::SynCookieCounters,
    /// IPv4 fragments in front of the stack.
    pub fragments: crate::fragments::FragmentCounters,
}
