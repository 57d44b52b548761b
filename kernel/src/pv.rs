//! This domain's Xen PV services, brought up once at boot: the shared info
//! page, event channels, the clock and the one-shot timer.
//!
//! The shared info page is mapped into a hole of guest-physical space above
//! RAM (identity-mapped by the boot page tables). Everything here is a
//! `'static` singleton because the kernel has one vCPU and one domain.

use crate::memory::MemoryMap;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;
use xen_pv::XenError;
use xen_pv::abi::PAGE_SIZE;
use xen_pv::abi::event_channel::Port;
use xen_pv::abi::grant_table::{ENTRIES_PER_FRAME, GrantEntryV1};
use xen_pv::abi::hvm::{HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use xen_pv::abi::memory::{XENMAPSPACE_GRANT_TABLE, XENMAPSPACE_SHARED_INFO};
use xen_pv::abi::shared_info::SharedInfo;
use xen_pv::abi::xenstore::XenstoreInterface;
use xen_pv::event_channel::EventChannels;
use xen_pv::hypercall::{Hypervisor, XEN, Xen};
use xen_pv::time::{PvClockSnapshot, WallClock};
use xen_pv::timer::{Timer, Wake};
use xen_pv::xenstore::Xenstore;

/// Where Xen-provided pages go: a 2 MiB-aligned hole below 4 GiB (the
/// boot page tables map exactly the low 4 GiB).
const FOREIGN_AREA_ALIGN: u64 = 2 << 20;
/// Pages reserved there: shared info, then up to 64 grant-table frames.
pub const FOREIGN_AREA_PAGES: u64 = 1 + 64;

/// The xenstore client, locked for one conversation at a time.
pub type XenstoreGuard = spin::MutexGuard<'static, Xenstore<'static, Xen>>;

static SHARED_INFO: Once<&'static SharedInfo> = Once::new();
static XENSTORE: Once<spin::Mutex<Xenstore<'static, Xen>>> = Once::new();
static GRANT_ENTRIES: Once<&'static [GrantEntryV1]> = Once::new();
static EVENTS: Once<EventChannels<'static, Xen>> = Once::new();
static TIMER: Once<Timer<'static, Xen>> = Once::new();
static FOREIGN_AREA: AtomicU64 = AtomicU64::new(0);
static LAST_TIME: AtomicU64 = AtomicU64::new(0);

/// Why the PV services could not start.
#[derive(Debug, Clone, Copy)]
pub enum PvError {
    /// No hole in guest-physical space for Xen's pages.
    NoHole,
    /// A hypercall failed.
    Xen(&'static str, XenError),
    /// The xenstore page Xen named is not where it can be used.
    BadStorePage(u64),
}

/// Maps the shared info page, masks the upcall, binds the timer.
pub fn init(map: &MemoryMap) -> Result<(), PvError> {
    let area =
        map.find_hole(FOREIGN_AREA_PAGES * PAGE_SIZE as u64, FOREIGN_AREA_ALIGN, 1 << 32).ok_or(PvError::NoHole)?;
    FOREIGN_AREA.store(area, Ordering::Relaxed);
    XEN.add_to_physmap(XENMAPSPACE_SHARED_INFO, 0, area / PAGE_SIZE as u64)
        .map_err(|error| PvError::Xen("map shared info", error))?;
    // SAFETY: Xen has just placed its shared info page at `area`, a
    // page-aligned guest frame in a hole of the memory map (so no allocator
    // owns it), identity-mapped below 4 GiB; the page stays there for the
    // domain's life and is accessed only through atomics.
    let shared: &'static SharedInfo = unsafe { &*(area as *const SharedInfo) };
    let shared = SHARED_INFO.call_once(|| shared);
    let events = EVENTS.call_once(|| EventChannels::new(&XEN, shared));
    let timer = Timer::new(events).map_err(|error| PvError::Xen("bind VIRQ_TIMER", error))?;
    TIMER.call_once(|| timer);
    let store_frame = XEN.hvm_get_param(HVM_PARAM_STORE_PFN).map_err(|error| PvError::Xen("store pfn", error))?;
    let store_port = XEN.hvm_get_param(HVM_PARAM_STORE_EVTCHN).map_err(|error| PvError::Xen("store port", error))?;
    if store_frame == 0
        || store_frame >= 1 << 20
        || map.ram().any(|ram| ram.start <= store_frame << 12 && store_frame << 12 < ram.end)
    {
        return Err(PvError::BadStorePage(store_frame));
    }
    // SAFETY: Xen gave this frame to the domain as its xenstore page: it is
    // page-aligned, identity-mapped below 4 GiB, outside the RAM the
    // allocators manage (checked above), shared only with xenstored, and
    // accessed only through atomics.
    let ring: &'static XenstoreInterface = unsafe { &*((store_frame << 12) as *const XenstoreInterface) };
    XENSTORE.call_once(|| spin::Mutex::new(Xenstore::new(events, ring, store_port as Port)));
    map_grant_table(area)
}

/// Maps every grant-table frame Xen allows (up to the foreign area's room)
/// right after the shared info page.
fn map_grant_table(area: u64) -> Result<(), PvError> {
    let size = XEN.grant_table_query_size().map_err(|error| PvError::Xen("grant table size", error))?;
    let frames = u64::from(size.max_frames).min(FOREIGN_AREA_PAGES - 1);
    let first = area + PAGE_SIZE as u64;
    for index in 0..frames {
        let gpfn = first / PAGE_SIZE as u64 + index;
        XEN.add_to_physmap(XENMAPSPACE_GRANT_TABLE, index, gpfn)
            .map_err(|error| PvError::Xen("map grant frame", error))?;
    }
    let count = frames as usize * ENTRIES_PER_FRAME;
    // SAFETY: Xen has just placed `frames` grant-table frames at consecutive
    // guest frames from `first`, in the foreign area (a hole of the memory
    // map no allocator owns, identity-mapped below 4 GiB); they stay there
    // for the domain's life and are accessed only through atomics.
    let entries: &'static [GrantEntryV1] = unsafe { core::slice::from_raw_parts(first as *const GrantEntryV1, count) };
    GRANT_ENTRIES.call_once(|| entries);
    log::info!(
        "grant table: {frames} frames mapped ({} at boot, {} allowed), {count} references",
        size.frames,
        size.max_frames
    );
    Ok(())
}

/// The mapped grant-table entries (after [`init`]); the DMA layer owns
/// their allocation.
pub fn grant_entries() -> &'static [GrantEntryV1] {
    GRANT_ENTRIES.get().copied().unwrap_or(&[])
}

/// The xenstore client (after [`init`]).
pub fn xenstore() -> XenstoreGuard {
    XENSTORE.get().expect("PV services used before pv::init").lock()
}

/// The xenstore event-channel port, for wait sets.
pub fn xenstore_port() -> Port {
    XENSTORE.get().map_or(0, |store| store.lock().port())
}

/// The guest-physical address of page `index` of the foreign area (0 is
/// shared info; 1.. are for grant-table frames).
pub fn foreign_page(index: u64) -> Option<u64> {
    let base = FOREIGN_AREA.load(Ordering::Relaxed);
    (base != 0 && index < FOREIGN_AREA_PAGES).then(|| base + index * PAGE_SIZE as u64)
}

/// The event channels (after [`init`]).
pub fn events() -> &'static EventChannels<'static, Xen> {
    EVENTS.get().expect("PV services used before pv::init")
}

/// Clears `port`'s pending bit; false if it was clear or the services are
/// not up yet.
pub fn take_pending(port: Port) -> bool {
    EVENTS.get().is_some_and(|events| events.take_pending(port))
}

/// System time: nanoseconds since the domain started, never going back.
pub fn now() -> u64 {
    let Some(shared) = SHARED_INFO.get() else { return 0 };
    let snapshot = PvClockSnapshot::read(&shared.vcpu_info[0].time);
    let now = snapshot.system_time_at(crate::arch::read_timestamp_counter());
    LAST_TIME.fetch_max(now, Ordering::Relaxed).max(now)
}

/// The TSC frequency Xen reports, for the log.
pub fn tsc_frequency() -> u64 {
    SHARED_INFO.get().map_or(0, |shared| PvClockSnapshot::read(&shared.vcpu_info[0].time).tsc_frequency())
}

/// Wall-clock time now.
pub fn wall_clock() -> WallClock {
    SHARED_INFO.get().map_or_else(WallClock::default, |shared| WallClock::boot_time(shared).after(now()))
}

/// Sleeps until one of `ports` is pending or system time reaches
/// `deadline` (ns); the vCPU is idle meanwhile.
pub fn wait(ports: &[Port], deadline: Option<u64>) -> Result<Wake, XenError> {
    TIMER.get().expect("PV services used before pv::init").wait(ports, deadline)
}

/// Sleeps until system time reaches `deadline` (ns).
pub fn sleep_until(deadline: u64) {
    while now() < deadline {
        if wait(&[], Some(deadline)).is_err() {
            break;
        }
    }
}
