//! xenecho's kernel: everything between Xen and the appliance.
//!
//! Boot (per architecture, under [`arch`]) hands over to the neutral start
//! sequence, which finds Xen, brings up the PV console and the `log` backend,
//! builds the frame allocator and the heap from the memory map, and calls the
//! appliance's entry point (declared with [`entry_point!`]) with a
//! [`BootInfo`]. When the appliance returns, the domain powers off; a panic
//! or a CPU exception prints its cause on the console and reports a crash to
//! Xen.
//!
//! The pure parts (command line, memory map, frame allocator, console ring,
//! log formatting) build and are tested on the host; the glue that touches
//! the machine exists only for `target_os = "none"`.
//!
//! Never: trust a value from Xen or dom0 without checking it, or block
//! forever on a backend (console output is dropped, and counted, instead).
#![cfg_attr(target_os = "none", no_std)]

extern crate alloc;

#[cfg(target_os = "none")]
mod arch;
pub mod budget;
pub mod cmdline;
pub mod console;
pub mod devicetree;
pub mod lifecycle;
pub mod logger;
pub mod memory;
#[cfg(target_os = "none")]
mod net;
pub mod netconfig;
#[cfg(target_os = "none")]
pub mod pv;
pub mod running_clock;
pub mod selftest;
#[cfg(target_os = "none")]
mod start;
pub mod stats;
pub mod syn_cookies;

pub use cmdline::CommandLine;

/// What the kernel hands the appliance.
#[derive(Clone)]
pub struct BootInfo {
    /// The command line (`extra = "..."` in `xl.cfg`).
    pub command_line: CommandLine<'static>,
    /// The checked memory map.
    pub memory_map: memory::MemoryMap,
    /// Xen's (major, minor) version.
    pub xen_version: (u32, u32),
    /// Where the heap and the frame bitmap went.
    pub memory: memory::MemoryLayout,
}

/// A network service the appliance runs on the kernel's TCP/IP stack.
///
/// The kernel owns the event loop: on every turn it lets smoltcp process
/// what arrived, calls [`Service::poll`], lets smoltcp send what the service
/// wrote, and sleeps until the next event or the earliest deadline.
pub trait Service {
    /// Adds the service's sockets, once, before the first poll.
    fn start(&mut self, sockets: &mut smoltcp::iface::SocketSet<'static>);

    /// Serves the sockets; returns the latest time it wants to be polled
    /// again (`None`: only when something happens). `stats` gathers the
    /// kernel's counters, for a metrics request.
    fn poll(
        &mut self,
        sockets: &mut smoltcp::iface::SocketSet<'static>,
        now: smoltcp::time::Instant,
        stats: &dyn Fn() -> stats::KernelStats,
    ) -> Option<smoltcp::time::Instant>;

    /// Whether half-open handshakes crowd the service's backlog, so that
    /// SYNs should be answered with cookies (see [`syn_cookies`]).
    fn syn_pressure(&self) -> bool {
        false
    }
}

/// The boxed service the entry point returns.
pub type ServiceBox = alloc::boxed::Box<dyn Service>;

/// Declares the appliance's entry point: `fn(&BootInfo) -> Box<dyn
/// Service>`. The kernel calls it once everything is up, runs the service
/// on the network until the toolstack asks the domain to end, and then
/// powers off (or reboots).
#[macro_export]
macro_rules! entry_point {
    ($main:path) => {
        // The one exported symbol the kernel links against; exporting a
        // symbol is all that is unsafe here.
        #[allow(unsafe_code)]
        #[unsafe(export_name = "xenecho_main")]
        extern "Rust" fn __xenecho_main(boot: &$crate::BootInfo) -> $crate::ServiceBox {
            let main: fn(&$crate::BootInfo) -> $crate::ServiceBox = $main;
            main(boot)
        }
    };
}

#[cfg(target_os = "none")]
pub use start::fatal;

/// Heap usage now.
#[cfg(target_os = "none")]
pub fn heap_stats() -> memory::HeapStats {
    memory::heap_stats()
}
