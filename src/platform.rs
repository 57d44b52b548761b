//! The kernel's PV services as the network runtime's [`Platform`]: the
//! board's wiring, nothing more (each method is one call into the kernel).

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::memory::pages::KernelPages;
use kernel::pv;
use runtime::{Platform, PlatformStats};
use xen_pv::SuspendOutcome;
use xen_pv::abi::event_channel::Port;
use xen_pv::abi::grant_table::GrantEntryV1;
use xen_pv::event_channel::EventChannels;
use xen_pv::hypercall::Xen;

/// The NMI count last logged (the kernel counts them; the log says so once
/// the loop next waits).
static NMIS_LOGGED: AtomicU64 = AtomicU64::new(0);

/// This domain's PV services (after `pv::init`, which the kernel ran).
pub struct KernelPlatform;

impl Platform<'static> for KernelPlatform {
    type Hypervisor = Xen;
    type Pages = KernelPages;
    type Store<'s> = pv::XenstoreGuard;

    fn xenstore(&self) -> pv::XenstoreGuard {
        pv::xenstore()
    }

    fn events(&self) -> &'static EventChannels<'static, Xen> {
        pv::events()
    }

    fn grant_entries(&self) -> &'static [GrantEntryV1] {
        pv::grant_entries()
    }

    fn pages(&self) -> KernelPages {
        KernelPages
    }

    fn now(&self) -> u64 {
        pv::now()
    }

    fn wait(&self, ports: &[Port], deadline: Option<u64>) {
        if let Err(error) = pv::wait(ports, deadline) {
            log::error!("waiting for events: {error:?}");
        }
        let nmis = kernel::nmis();
        if NMIS_LOGGED.swap(nmis, Ordering::Relaxed) != nmis {
            log::warn!("NMI received ({nmis} since boot; `xl trigger nmi`?): carrying on");
        }
    }

    fn suspend(&self) -> SuspendOutcome {
        pv::suspend()
    }

    fn secret_seed(&self) -> u64 {
        // Boot time in nanoseconds and the wall clock, which a client on
        // the network cannot read.
        pv::now() ^ pv::wall_clock().seconds.rotate_left(32)
    }

    fn stats(&self) -> PlatformStats {
        let heap = kernel::heap_stats();
        PlatformStats {
            hypercalls: xen_pv::hypercall::HYPERCALLS.load(Ordering::Relaxed),
            heap_used: heap.used as u64,
            heap_free: heap.free as u64,
            console_dropped_bytes: kernel::console::DROPPED_BYTES.load(Ordering::Relaxed),
            start_time_ns: pv::start_time_ns(),
        }
    }
}
