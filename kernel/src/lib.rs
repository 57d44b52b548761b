//! xenecho's kernel: everything between Xen and the appliance.
//!
//! Boot (per architecture, under `arch`) hands over to the neutral start
//! sequence, which finds Xen, brings up the PV console and the `log` backend,
//! builds the frame allocator and the heap from the memory map, brings up
//! the PV services (`pv`: shared info, event channels, clock and timer,
//! xenstore, grant-table frames) and calls the appliance's entry point
//! (declared with [`entry_point!`]) with a [`BootInfo`]. The appliance runs
//! its network on those services and returns how the domain should end; a
//! panic or a CPU exception prints the last log lines and its cause on the
//! console (and on the first serial port when Xen is not there) and reports
//! a crash to Xen. The kernel knows nothing of the network: DMA pages are
//! the one thing it lends the layers above (`memory::pages::KernelPages`,
//! a `dma::PageSource`).
//!
//! The pure parts (command line, memory map, frame allocator, console ring,
//! log formatting and the ring of recent lines) build and are tested on the host; the glue that touches
//! the machine exists only for `target_os = "none"`.
//!
//! Unsafe code is denied but in the modules that touch the machine: each
//! architecture's module under `arch`, `console`, `pv`, `start`, and
//! `memory`'s `heap`, `pages` and `platform` (README.md, "Where unsafe
//! lives", lists them and why).
//!
//! Never: trust a value from Xen or dom0 without checking it, or block
//! forever on a backend (console output is dropped, and counted, instead).
#![cfg_attr(target_os = "none", no_std)]
#![deny(unsafe_code)]

extern crate alloc;

#[cfg(target_os = "none")]
mod arch;
pub mod cmdline;
#[allow(unsafe_code)] // the console ring page Xen names, as a reference
pub mod console;
pub mod devicetree;
pub mod logger;
pub mod memory;
#[cfg(target_os = "none")]
#[allow(unsafe_code)] // the shared info, xenstore and grant-table frames, as references
pub mod pv;
pub mod selftest;
#[cfg(target_os = "none")]
#[allow(unsafe_code)] // declaring and calling the appliance's entry point
mod start;

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

/// Declares the appliance's entry point: `fn(&BootInfo) -> ShutdownReason`.
/// The kernel calls it once everything is up; the appliance runs until the
/// toolstack asks the domain to end and returns how, and the kernel ends
/// the domain that way (`SCHEDOP_shutdown`).
#[macro_export]
macro_rules! entry_point {
    ($main:path) => {
        // The one exported symbol the kernel links against; exporting a
        // symbol is all that is unsafe here (tests/check-unsafe.sh lists
        // this allow as the one not on a module).
        #[allow(unsafe_code)]
        #[unsafe(export_name = "xenecho_main")]
        extern "Rust" fn __xenecho_main(boot: &$crate::BootInfo) -> $crate::ShutdownReason {
            let main: fn(&$crate::BootInfo) -> $crate::ShutdownReason = $main;
            main(boot)
        }
    };
}

/// How the domain ends (re-exported for the entry point's signature).
pub use xen_pv::abi::sched::ShutdownReason;

#[cfg(target_os = "none")]
pub use start::fatal;

/// NMIs taken since boot (x86_64: `xl trigger NAME nmi`), each counted and
/// returned from.
#[cfg(target_os = "none")]
pub fn nmis() -> u64 {
    arch::nmis()
}

/// Heap usage now.
#[cfg(target_os = "none")]
pub fn heap_stats() -> memory::HeapStats {
    memory::heap_stats()
}
