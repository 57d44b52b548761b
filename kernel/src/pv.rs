//! This domain's Xen PV services, brought up once at boot: the shared info
//! page, event channels, the clock and the one-shot timer, the xenstore
//! client and the grant-table frames.
//!
//! The shared info page and the grant-table frames are mapped where the
//! architecture's boot code chose ([`ForeignArea`]: a hole above RAM below
//! 4 GiB on x86_64, the device tree's regions on ARM), in guest-physical
//! space the boot page tables map. Everything here is a `'static` singleton
//! because the kernel has one vCPU and one domain.
//!
//! The xenstore client's requests have deadlines in system time, slept on
//! with the one-shot timer ([`wait`]): [`XENSTORE_BOOT_TIMEOUT_NS`] while
//! the kernel boots and has nothing else to do; once the network loop
//! serves, it sets the shorter `runtime::RuntimeConfig::xenstore_timeout_ns`
//! (xen-pv's default, 2 s), so a stalled xenstored never holds the data path
//! for longer than that.
//!
//! [`suspend`] suspends the domain for the toolstack (x86_64) and, when it
//! comes back in a new domain, sets these services up again where Xen and
//! the toolstack made them anew (`docs/lifecycle.md`, "Suspend and
//! resume").

use crate::memory::MemoryMap;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::Once;
use xen_pv::abi::PAGE_SIZE;
use xen_pv::abi::event_channel::Port;
use xen_pv::abi::grant_table::{ENTRIES_PER_FRAME, GrantEntryV1};
use xen_pv::abi::hvm::{HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use xen_pv::abi::memory::{XENMAPSPACE_GRANT_TABLE, XENMAPSPACE_SHARED_INFO};
use xen_pv::abi::vcpu::VIRQ_TIMER;
use xen_pv::abi::xenstore::XenstoreInterface;
use xen_pv::event_channel::EventChannels;
use xen_pv::hypercall::{Hypervisor, SharedInfo, XEN, Xen};
use xen_pv::time::WallClock;
use xen_pv::timer::{Timer, Wake};
use xen_pv::xenstore::{Clock, Xenstore};
use xen_pv::{SuspendOutcome, XenError};

/// Most grant-table frames mapped (64 frames: 32 768 v1 references).
pub const MAX_GRANT_FRAMES: u64 = 64;

/// How long a xenstore request may wait for xenstored at boot, when nothing
/// is served yet and a slow dom0 would otherwise leave the appliance
/// without its network for good.
pub const XENSTORE_BOOT_TIMEOUT_NS: u64 = 30_000_000_000;

/// Where the guest asks Xen to put its pages: guest-physical addresses,
/// page-aligned, outside RAM the allocators manage, mapped Normal (cacheable)
/// by the boot page tables. Chosen by the architecture's boot code.
#[derive(Debug, Clone, Copy)]
pub struct ForeignArea {
    /// The page for shared info.
    pub shared_info: u64,
    /// The first page for grant-table frames.
    pub grant_frames: u64,
    /// How many grant-table frames fit from there.
    pub grant_frame_capacity: u64,
}

/// The xenstore client, locked for one conversation at a time.
pub type XenstoreGuard = spin::MutexGuard<'static, Xenstore<'static, Xen>>;

static SHARED_INFO: Once<&'static SharedInfo> = Once::new();
static XENSTORE: Once<spin::Mutex<Xenstore<'static, Xen>>> = Once::new();
static GRANT_ENTRIES: Once<&'static [GrantEntryV1]> = Once::new();
/// How many of [`GRANT_ENTRIES`] are mapped now (fewer after a resume in a
/// new domain that allows fewer frames).
static GRANT_ENTRIES_MAPPED: AtomicUsize = AtomicUsize::new(0);
static EVENTS: Once<EventChannels<'static, Xen>> = Once::new();
static TIMER: Once<Timer<'static, Xen>> = Once::new();
// (The timer and the event channels are set up again in place after a
// resume: `Timer::rebind`, `EventChannels::resumed`.)
static FOREIGN_AREA: Once<Option<ForeignArea>> = Once::new();
static LAST_TIME: AtomicU64 = AtomicU64::new(0);

/// Why the PV services could not start.
#[derive(Debug, Clone, Copy)]
pub enum PvError {
    /// No room in guest-physical space for Xen's pages.
    NoHole,
    /// A hypercall failed.
    Xen(&'static str, XenError),
    /// The xenstore page Xen named is not where it can be used.
    BadStorePage(u64),
}

/// Maps the shared info page, masks the upcall, binds the timer.
pub fn init(map: &MemoryMap, area: Option<ForeignArea>) -> Result<(), PvError> {
    let area = *FOREIGN_AREA.call_once(|| area).as_ref().ok_or(PvError::NoHole)?;
    XEN.add_to_physmap(XENMAPSPACE_SHARED_INFO, 0, area.shared_info / PAGE_SIZE as u64)
        .map_err(|error| PvError::Xen("map shared info", error))?;
    // SAFETY: Xen has just placed its shared info page at
    // `area.shared_info`, a page-aligned guest frame outside the RAM the
    // allocators own, which the boot page tables map as Normal memory
    // (identity); the page stays there for the domain's life and is accessed
    // only through atomics.
    let shared: &'static SharedInfo = unsafe { &*(area.shared_info as *const SharedInfo) };
    let shared: &'static SharedInfo = SHARED_INFO.call_once(|| shared);
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
    // page-aligned, below 4 GiB where the boot page tables map Xen's special
    // pages (identity, Normal memory), outside the RAM the allocators manage
    // (checked above), shared only with xenstored, and accessed only through
    // atomics.
    let ring: &'static XenstoreInterface = unsafe { &*((store_frame << 12) as *const XenstoreInterface) };
    // Sleeps go through the one-shot timer: a `SCHEDOP_poll` timeout is in
    // Xen's time, which on ARM is not the guest's.
    let clock = Clock::new(|_| now(), |_, ports, deadline| wait(ports, Some(deadline)).map(drop));
    let mut store = Xenstore::new(events, ring, store_port as Port, clock);
    store.set_request_timeout(XENSTORE_BOOT_TIMEOUT_NS);
    XENSTORE.call_once(|| spin::Mutex::new(store));
    map_grant_table(area)
}

/// Maps every grant-table frame Xen allows (up to the area's room and
/// [`MAX_GRANT_FRAMES`]) at the area's grant-frame pages; returns how many.
fn map_grant_frames(area: ForeignArea) -> Result<u64, PvError> {
    let size = XEN.grant_table_query_size().map_err(|error| PvError::Xen("grant table size", error))?;
    let frames = u64::from(size.max_frames).min(area.grant_frame_capacity).min(MAX_GRANT_FRAMES);
    for index in 0..frames {
        let gpfn = area.grant_frames / PAGE_SIZE as u64 + index;
        XEN.add_to_physmap(XENMAPSPACE_GRANT_TABLE, index, gpfn)
            .map_err(|error| PvError::Xen("map grant frame", error))?;
    }
    Ok(frames)
}

/// Maps the grant table ([`map_grant_frames`]) and makes its entries
/// available.
fn map_grant_table(area: ForeignArea) -> Result<(), PvError> {
    let size = XEN.grant_table_query_size().map_err(|error| PvError::Xen("grant table size", error))?;
    let frames = map_grant_frames(area)?;
    let first = area.grant_frames;
    let count = frames as usize * ENTRIES_PER_FRAME;
    // SAFETY: Xen has just placed `frames` grant-table frames at consecutive
    // guest frames from `first`, in the foreign area (outside the RAM the
    // allocators own, mapped as Normal memory by the boot page tables); they
    // stay there for the domain's life and are accessed only through atomics.
    let entries: &'static [GrantEntryV1] = unsafe { core::slice::from_raw_parts(first as *const GrantEntryV1, count) };
    GRANT_ENTRIES.call_once(|| entries);
    GRANT_ENTRIES_MAPPED.store(count, Ordering::Relaxed);
    log::info!(
        "grant table: {frames} frames mapped at {first:#x} ({} at boot, {} allowed), {count} references",
        size.frames,
        size.max_frames
    );
    Ok(())
}

/// The mapped grant-table entries (after [`init`]); the DMA layer owns
/// their allocation.
pub fn grant_entries() -> &'static [GrantEntryV1] {
    let entries = GRANT_ENTRIES.get().copied().unwrap_or(&[]);
    &entries[..GRANT_ENTRIES_MAPPED.load(Ordering::Relaxed).min(entries.len())]
}

/// Suspends the domain (the toolstack asked, the runtime acknowledged and
/// quiesced the network) and says how it came back. In a new domain the
/// services here are set up again before this returns, in this order:
///
/// 1. the architecture's first step (x86_64: the hypercall page again);
/// 2. shared info mapped again at its page (`XENMEM_add_to_physmap`, which
///    replaces whatever the restore left there), the upcall of vCPU 0
///    masked again on it, the clock's floor reset (another host's system
///    time may be behind); vCPU 0's info is the one in shared info, which
///    this kernel never moved, so it needs no registration;
/// 3. the console on its new event channel (its page is where it was);
/// 4. `VIRQ_TIMER` bound again (a new port), the timer armed afresh;
/// 5. the grant-table frames mapped again at their pages (the table is
///    new and empty: the runtime forgets every grant of the old domain);
/// 6. xenstore on the new `HVM_PARAM_STORE_EVTCHN`, its page checked to be
///    where it was, the client's connection state dropped (no watch left:
///    the runtime sets them again).
///
/// A cancelled suspend changes nothing (the timer is armed again on the
/// next wait). A new domain whose services cannot be set up again is
/// fatal: the domain crashes, and `on_crash` in `xl.cfg` decides.
pub fn suspend() -> SuspendOutcome {
    if !crate::arch::SUSPENDS {
        log::warn!("suspend: not on this architecture");
        return SuspendOutcome::Cancelled;
    }
    let timer = TIMER.get().expect("PV services used before pv::init");
    crate::console::flush();
    let outcome = match xen_pv::suspend::suspend(&XEN, timer.port(), VIRQ_TIMER) {
        Ok(outcome) => outcome,
        Err(error) => {
            log::error!("suspend: SCHEDOP_shutdown(SHUTDOWN_suspend) failed: {error:?}");
            return SuspendOutcome::Cancelled;
        }
    };
    timer.forget_armed();
    if outcome == SuspendOutcome::Resumed
        && let Err(error) = resume_in_new_domain(timer)
    {
        crate::fatal(format_args!("resume in a new domain failed: {error:?}"));
    }
    outcome
}

/// [`suspend`]'s steps in a new domain.
fn resume_in_new_domain(timer: &Timer<'static, Xen>) -> Result<(), PvError> {
    crate::arch::after_resume_in_new_domain();
    let area = (*FOREIGN_AREA.get().ok_or(PvError::NoHole)?).ok_or(PvError::NoHole)?;
    XEN.add_to_physmap(XENMAPSPACE_SHARED_INFO, 0, area.shared_info / PAGE_SIZE as u64)
        .map_err(|error| PvError::Xen("map shared info", error))?;
    events().resumed();
    LAST_TIME.store(0, Ordering::Relaxed);
    crate::console::resume();
    timer.rebind().map_err(|error| PvError::Xen("bind VIRQ_TIMER", error))?;
    let frames = map_grant_frames(area)?;
    let count = (frames as usize * ENTRIES_PER_FRAME).min(GRANT_ENTRIES.get().map_or(0, |entries| entries.len()));
    GRANT_ENTRIES_MAPPED.store(count, Ordering::Relaxed);
    let store_frame = XEN.hvm_get_param(HVM_PARAM_STORE_PFN).map_err(|error| PvError::Xen("store pfn", error))?;
    let store_port = XEN.hvm_get_param(HVM_PARAM_STORE_EVTCHN).map_err(|error| PvError::Xen("store port", error))?;
    let mut store = xenstore();
    if store_frame << 12 != store.ring_address() {
        return Err(PvError::BadStorePage(store_frame));
    }
    store.resume(store_port as Port);
    drop(store);
    log::info!(
        "resumed in a new domain: timer on port {}, xenstore on port {store_port}, {frames} grant frames",
        timer.port()
    );
    Ok(())
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
    let area = FOREIGN_AREA.get()?.as_ref()?;
    match index {
        0 => Some(area.shared_info),
        _ if index <= area.grant_frame_capacity => Some(area.grant_frames + (index - 1) * PAGE_SIZE as u64),
        _ => None,
    }
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
    let now = crate::arch::system_time(shared);
    LAST_TIME.fetch_max(now, Ordering::Relaxed).max(now)
}

/// The frequency of the counter system time comes from (TSC or generic
/// timer), for the log.
pub fn clock_frequency() -> u64 {
    SHARED_INFO.get().map_or(0, |shared| crate::arch::clock_frequency(shared))
}

/// Wall-clock time now.
pub fn wall_clock() -> WallClock {
    SHARED_INFO.get().map_or_else(WallClock::default, |shared| WallClock::boot_time(*shared).after(now()))
}

/// Unix time the domain started (system time 0), in nanoseconds: Xen's
/// wall clock, as the shared info page holds it now (0 before `init`).
pub fn start_time_ns() -> u64 {
    SHARED_INFO.get().map_or(0, |shared| {
        let start = WallClock::boot_time(*shared);
        start.seconds.saturating_mul(1_000_000_000).saturating_add(u64::from(start.nanoseconds))
    })
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
