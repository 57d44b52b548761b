//! A host simulation of Xen, behind `xen_pv`'s [`Hypervisor`] seam: the
//! other side of everything the guest-side services in `xen-pv` talk to, so
//! that they, the DMA layer and netfront are tested on the host. This crate
//! is for tests and fuzz targets only: its users take it as a
//! dev-dependency or behind their own `test-utils` feature, and it never
//! reaches the guest image.
//!
//! [`SimXen`] plays the hypervisor and the other domains a guest talks to:
//! event channels with Xen's pending/mask semantics in a real
//! [`SharedInfo`] in ordinary memory, a virtual clock that only moves when
//! the guest waits (so tests are deterministic), the single-shot timer and
//! `VIRQ_TIMER`, a xenstore daemon on the other side of a real ring
//! ([`xenstore::XenstoreServer`]), and a grant table whose backend side
//! follows Xen's permission rules ([`grant_table::SimGrantTable`]). Around
//! it: [`netback`], Linux netback's side of a `vif`; [`ring::BackRing`],
//! the back end's half of a shared ring; and [`xenstore::exercise`], the
//! hostile-xenstored driver of the `xenstore_client` fuzz target.
//!
//! Everything is single-threaded: a notification to the xenstore port runs
//! the daemon at once, as if dom0 had been scheduled (unless a test stalled
//! it). A guest that waits for something that can never happen (a poll with
//! no deadline and nothing that could raise its ports) makes the simulation
//! panic, which fails the test instead of hanging it; a wait with a deadline
//! moves the clock to it ([`SimXen::clock`] is the xenstore client's).
//!
//! Unsafe code is denied but in two modules: `grant_table::memory` (the
//! simulated guest RAM, the only raw memory accesses) and `zeroed` (the
//! shared info page, allocated zero-filled).
#![deny(unsafe_code)]

pub mod grant_table;
pub mod netback;
pub mod random;
pub mod regressions;
pub mod ring;
pub mod xenstore;
#[allow(unsafe_code)]
mod zeroed;

use core::cell::RefCell;
use core::sync::atomic::Ordering;
use std::boxed::Box;
use std::collections::BTreeMap;
use std::vec::Vec;
use xen_pv::abi::DomainId;
use xen_pv::abi::event_channel::Port;
use xen_pv::abi::hvm::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use xen_pv::abi::memory::{XENMAPSPACE_GRANT_TABLE, XENMAPSPACE_SHARED_INFO};
use xen_pv::abi::sched::ShutdownReason;
use xen_pv::abi::shared_info::EVENT_CHANNEL_2L_PORTS;
use xen_pv::abi::shared_info::x86_64::SharedInfo; // any layout would do: the page is ordinary memory
use xen_pv::abi::vcpu::VIRQ_TIMER;
use xen_pv::abi::xenstore::XenstoreInterface;
use xen_pv::hypervisor::{GrantTableSize, Hypervisor, PortStatus, XenError};
use xen_pv::xenstore::Clock;

/// The backend domain the simulation plays (dom0).
pub const BACKEND_DOMAIN: DomainId = 0;
/// The guest frame the simulated xenstore page is said to be at.
pub const XENSTORE_FRAME: u64 = 0xfeffc;

/// What a port is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Waiting for `remote` to bind (`alloc_unbound`).
    Unbound {
        /// The domain allowed to bind.
        remote: DomainId,
    },
    /// A virtual IRQ.
    Virq(u32),
    /// The xenstore ring's channel, served by the simulated daemon.
    Xenstore,
}

/// Hypercalls made, by kind, for tests that count them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HypercallCounts {
    /// `EVTCHNOP_send`
    pub sends: u64,
    /// `SCHEDOP_poll`
    pub polls: u64,
    /// `VCPUOP_set_singleshot_timer`
    pub timer_sets: u64,
    /// Every other hypercall.
    pub other: u64,
}

struct State {
    now: u64,
    bindings: BTreeMap<Port, Binding>,
    notifications: BTreeMap<Port, u64>,
    timer_deadline: Option<u64>,
    shutdown: Option<ShutdownReason>,
    counts: HypercallCounts,
    physmap: Vec<(u32, u64, u64)>,
    params: BTreeMap<u32, u64>,
    xenstore: xenstore::XenstoreServer,
    port_limit: Port,
    /// The port the xenstore daemon signals ([`XENSTORE_PORT`] until a
    /// restore in a new domain).
    xenstore_port: Port,
    /// What the next suspend hypercall returns (1, a cancellation Xen
    /// reports, unless a test says otherwise).
    suspend_returns: Option<usize>,
    /// Suspend hypercalls made.
    suspends: u64,
    /// Restores in a new domain so far.
    restores: u64,
}

/// The simulated hypervisor, dom0 daemons and backends.
pub struct SimXen {
    shared_info: Box<SharedInfo>,
    xenstore_ring: Box<XenstoreInterface>,
    grants: grant_table::SimGrantTable,
    state: RefCell<State>,
}

/// The xenstore port the simulation hands out (as Xen's toolstack would).
pub const XENSTORE_PORT: Port = 1;

impl SimXen {
    /// A fresh domain: nothing bound but the xenstore channel, time 0, a
    /// grant table of `grant_frames` frames (growable to 4 times that) and
    /// [`grant_table::DEFAULT_MEMORY_PAGES`] pages of guest RAM.
    pub fn new(grant_frames: u32) -> Self {
        Self::with_memory_pages(grant_frames, grant_table::DEFAULT_MEMORY_PAGES)
    }

    /// As [`Self::new`], with `pages` pages of guest RAM (a small domain
    /// is quicker to make, for tests that build thousands).
    pub fn with_memory_pages(grant_frames: u32, pages: usize) -> Self {
        let mut bindings = BTreeMap::new();
        bindings.insert(XENSTORE_PORT, Binding::Xenstore);
        let mut params = BTreeMap::new();
        params.insert(HVM_PARAM_STORE_PFN, XENSTORE_FRAME);
        params.insert(HVM_PARAM_STORE_EVTCHN, u64::from(XENSTORE_PORT));
        Self {
            shared_info: zeroed::shared_info(),
            xenstore_ring: Box::new(XenstoreInterface::new_zeroed()),
            grants: grant_table::SimGrantTable::with_memory_pages(grant_frames, grant_frames * 4, pages),
            state: RefCell::new(State {
                now: 0,
                bindings,
                notifications: BTreeMap::new(),
                timer_deadline: None,
                shutdown: None,
                counts: HypercallCounts::default(),
                physmap: Vec::new(),
                params,
                xenstore: xenstore::XenstoreServer::new(),
                port_limit: EVENT_CHANNEL_2L_PORTS as Port,
                xenstore_port: XENSTORE_PORT,
                suspend_returns: None,
                suspends: 0,
                restores: 0,
            }),
        }
    }

    /// The shared info page Xen would map for the guest.
    pub fn shared_info(&self) -> &SharedInfo {
        &self.shared_info
    }

    /// The xenstore ring page.
    pub fn xenstore_ring(&self) -> &XenstoreInterface {
        &self.xenstore_ring
    }

    /// The grant table and its simulated backend side.
    pub fn grants(&self) -> &grant_table::SimGrantTable {
        &self.grants
    }

    /// The simulated xenstore daemon, for tests to inspect or change the
    /// store as dom0 would (`xenstore-write`, `xenstore-ls`).
    pub fn with_xenstore<R>(&self, work: impl FnOnce(&mut xenstore::XenstoreServer) -> R) -> R {
        let result = work(&mut self.state.borrow_mut().xenstore);
        self.serve_xenstore();
        result
    }

    /// System time now (ns).
    pub fn now(&self) -> u64 {
        self.state.borrow().now
    }

    /// The clock a simulated guest's xenstore client measures its deadlines
    /// in: this virtual time, slept on with `SCHEDOP_poll` timeouts (which
    /// move it).
    pub fn clock() -> Clock<SimXen> {
        Clock::new(SimXen::now, |events, ports, deadline| events.wait(ports, Some(deadline)))
    }

    /// Moves time forward, firing the timer if its deadline passes.
    pub fn advance(&self, nanoseconds: u64) {
        let deadline = self.now() + nanoseconds;
        self.advance_to(deadline);
    }

    /// How the guest ended, if it did.
    pub fn shutdown_reason(&self) -> Option<ShutdownReason> {
        self.state.borrow().shutdown
    }

    /// Hypercalls made so far.
    pub fn counts(&self) -> HypercallCounts {
        self.state.borrow().counts
    }

    /// What `port` is bound to.
    pub fn binding(&self, port: Port) -> Option<Binding> {
        self.state.borrow().bindings.get(&port).copied()
    }

    /// Notifications the guest sent on `port` since the last call.
    pub fn take_notifications(&self, port: Port) -> u64 {
        self.state.borrow_mut().notifications.remove(&port).unwrap_or(0)
    }

    /// What `add_to_physmap` was asked: (space, index, guest frame).
    pub fn physmap(&self) -> Vec<(u32, u64, u64)> {
        self.state.borrow().physmap.clone()
    }

    /// Limits how many ports can be allocated, to test exhaustion.
    pub fn limit_ports(&self, limit: Port) {
        self.state.borrow_mut().port_limit = limit;
    }

    /// Makes `port` pending as Xen does: the pending bit, then the
    /// selector bit and the upcall flag of vCPU 0.
    pub fn raise(&self, port: Port) {
        let word = port as usize / 64;
        let bit = 1u64 << (port % 64);
        self.shared_info.evtchn_pending[word].fetch_or(bit, Ordering::SeqCst);
        let vcpu = &self.shared_info.vcpu_info[0];
        vcpu.evtchn_pending_sel.fetch_or(1 << word, Ordering::SeqCst);
        vcpu.evtchn_upcall_pending.store(1, Ordering::SeqCst);
    }

    /// Whether `port`'s pending bit is set.
    pub fn is_pending(&self, port: Port) -> bool {
        self.shared_info.evtchn_pending[port as usize / 64].load(Ordering::SeqCst) & (1 << (port % 64)) != 0
    }

    /// The port the xenstore daemon signals now.
    pub fn xenstore_port(&self) -> Port {
        self.state.borrow().xenstore_port
    }

    /// Suspend hypercalls the guest made.
    pub fn suspends(&self) -> u64 {
        self.state.borrow().suspends
    }

    /// Restores in a new domain so far.
    pub fn restores(&self) -> u64 {
        self.state.borrow().restores
    }

    /// The toolstack resumes the suspended domain where it was (a failed
    /// save, a checkpoint): the next suspend hypercall returns 1 if
    /// `reported` (libxc changed its return value, as it does for guests
    /// with `HVM_PARAM_CALLBACK_IRQ` set), 0 otherwise. Nothing else
    /// changes.
    pub fn cancel_next_suspend(&self, reported: bool) {
        self.state.borrow_mut().suspend_returns = Some(usize::from(reported));
    }

    /// The toolstack saved the suspended domain and restored it in a new
    /// one (`xl save` + `xl restore`, `xl migrate`), as Xen and libxl leave
    /// it for the guest: the same memory, but a new shared info page (no
    /// event pending or masked, the upcall not masked), every port closed
    /// and then the console's and the xenstore daemon's allocated afresh
    /// (under numbers that differ from before: the console's first, as
    /// libxl does), `HVM_PARAM_STORE_EVTCHN` naming the new one, no timer
    /// armed, an empty grant table with no mapping, and a xenstore
    /// connection with no watch and a fresh home (see
    /// [`xenstore::XenstoreServer::restart_for_new_domain`]). The guest's
    /// suspend hypercall returns 0. Backends of the old domain must be gone
    /// first (drop them): the new domain's devices get new ones.
    pub fn restore_in_new_domain(&self) {
        self.grants.wipe();
        let shared = &self.shared_info;
        for word in shared.evtchn_pending.iter().chain(shared.evtchn_mask.iter()) {
            word.store(0, Ordering::SeqCst);
        }
        for vcpu in &shared.vcpu_info {
            vcpu.evtchn_upcall_pending.store(0, Ordering::SeqCst);
            vcpu.evtchn_upcall_mask.store(0, Ordering::SeqCst);
            vcpu.evtchn_pending_sel.store(0, Ordering::SeqCst);
        }
        {
            let mut state = self.state.borrow_mut();
            state.bindings.clear();
            state.notifications.clear();
            state.timer_deadline = None;
            state.xenstore.restart_for_new_domain();
            state.suspend_returns = Some(0);
            state.restores += 1;
        }
        let console = self.allocate_port(Binding::Unbound { remote: BACKEND_DOMAIN }).expect("a new domain has ports");
        let store = self.allocate_port(Binding::Xenstore).expect("a new domain has ports");
        let mut state = self.state.borrow_mut();
        state.xenstore_port = store;
        state.params.insert(HVM_PARAM_STORE_EVTCHN, u64::from(store));
        state.params.insert(HVM_PARAM_CONSOLE_EVTCHN, u64::from(console));
    }

    fn serve_xenstore(&self) {
        let answered = self.state.borrow_mut().xenstore.process(&self.xenstore_ring);
        if answered {
            self.raise(self.xenstore_port());
        }
    }

    fn advance_to(&self, deadline: u64) {
        let fired = {
            let mut state = self.state.borrow_mut();
            state.now = state.now.max(deadline);
            match state.timer_deadline {
                Some(when) if when <= state.now => {
                    state.timer_deadline = None;
                    state.bindings.iter().find(|(_, binding)| **binding == Binding::Virq(VIRQ_TIMER)).map(|(p, _)| *p)
                }
                _ => None,
            }
        };
        if let Some(port) = fired {
            self.raise(port);
        }
    }

    fn allocate_port(&self, binding: Binding) -> Result<Port, XenError> {
        let mut state = self.state.borrow_mut();
        let limit = state.port_limit;
        let port = (1..limit).find(|port| !state.bindings.contains_key(port)).ok_or(XenError::ENOSPC)?;
        state.bindings.insert(port, binding);
        state.counts.other += 1;
        Ok(port)
    }

    fn bound(&self, port: Port) -> Result<Binding, XenError> {
        self.state.borrow().bindings.get(&port).copied().ok_or(XenError::EINVAL)
    }
}

impl Hypervisor for SimXen {
    fn hvm_get_param(&self, index: u32) -> Result<u64, XenError> {
        let mut state = self.state.borrow_mut();
        state.counts.other += 1;
        state.params.get(&index).copied().ok_or(XenError::EINVAL)
    }

    fn add_to_physmap(&self, space: u32, index: u64, gpfn: u64) -> Result<(), XenError> {
        let mut state = self.state.borrow_mut();
        state.counts.other += 1;
        let valid = match space {
            XENMAPSPACE_SHARED_INFO => index == 0,
            XENMAPSPACE_GRANT_TABLE => index < u64::from(self.grants.size().max_frames),
            _ => false,
        };
        if !valid {
            return Err(XenError::EINVAL);
        }
        if space == XENMAPSPACE_GRANT_TABLE {
            self.grants.grow_to(index as u32 + 1);
        }
        state.physmap.push((space, index, gpfn));
        Ok(())
    }

    fn grant_table_query_size(&self) -> Result<GrantTableSize, XenError> {
        self.state.borrow_mut().counts.other += 1;
        Ok(self.grants.size())
    }

    fn event_channel_alloc_unbound(&self, remote: DomainId) -> Result<Port, XenError> {
        self.allocate_port(Binding::Unbound { remote })
    }

    fn event_channel_bind_virq(&self, virq: u32, vcpu: u32) -> Result<Port, XenError> {
        if vcpu != 0 {
            return Err(XenError::ENOENT);
        }
        let already = self.state.borrow().bindings.values().any(|binding| *binding == Binding::Virq(virq));
        if already {
            return Err(XenError(17)); // EEXIST: a per-vCPU VIRQ binds once
        }
        self.allocate_port(Binding::Virq(virq))
    }

    fn event_channel_send(&self, port: Port) -> Result<(), XenError> {
        let binding = self.bound(port)?;
        {
            let mut state = self.state.borrow_mut();
            state.counts.sends += 1;
            *state.notifications.entry(port).or_default() += 1;
        }
        if binding == Binding::Xenstore {
            self.serve_xenstore();
        }
        Ok(())
    }

    fn event_channel_close(&self, port: Port) -> Result<(), XenError> {
        let mut state = self.state.borrow_mut();
        state.counts.other += 1;
        state.bindings.remove(&port).map(drop).ok_or(XenError::EINVAL)
    }

    fn event_channel_status(&self, port: Port) -> Result<PortStatus, XenError> {
        let mut state = self.state.borrow_mut();
        state.counts.other += 1;
        Ok(match state.bindings.get(&port) {
            None => PortStatus::Closed,
            Some(Binding::Unbound { remote }) => PortStatus::Unbound { remote: *remote },
            Some(Binding::Virq(virq)) => PortStatus::Virq { virq: *virq, vcpu: 0 },
            Some(Binding::Xenstore) => PortStatus::Interdomain { remote: BACKEND_DOMAIN },
        })
    }

    fn event_channel_unmask(&self, port: Port) -> Result<(), XenError> {
        self.bound(port)?;
        self.state.borrow_mut().counts.other += 1;
        self.shared_info.evtchn_mask[port as usize / 64].fetch_and(!(1 << (port % 64)), Ordering::SeqCst);
        if self.is_pending(port) {
            self.raise(port);
        }
        Ok(())
    }

    fn set_singleshot_timer(&self, vcpu: u32, deadline: u64) -> Result<(), XenError> {
        let mut state = self.state.borrow_mut();
        state.counts.timer_sets += 1;
        if vcpu != 0 {
            return Err(XenError::ENOENT);
        }
        if deadline <= state.now {
            return Err(XenError::ETIME);
        }
        state.timer_deadline = Some(deadline);
        Ok(())
    }

    fn stop_singleshot_timer(&self, vcpu: u32) -> Result<(), XenError> {
        let mut state = self.state.borrow_mut();
        state.counts.other += 1;
        if vcpu != 0 {
            return Err(XenError::ENOENT);
        }
        state.timer_deadline = None;
        Ok(())
    }

    fn poll(&self, ports: &[Port], deadline: Option<u64>) -> Result<(), XenError> {
        self.state.borrow_mut().counts.polls += 1;
        if ports.iter().any(|&port| self.is_pending(port)) {
            return Ok(());
        }
        let timer = self.state.borrow().timer_deadline;
        let timer_wakes_us = ports.iter().any(|&port| self.binding(port) == Some(Binding::Virq(VIRQ_TIMER)));
        let wake = match (deadline, timer.filter(|_| timer_wakes_us)) {
            (Some(deadline), Some(timer)) => deadline.min(timer),
            (Some(deadline), None) => deadline,
            (None, Some(timer)) => timer,
            (None, None) => panic!("simulated Xen: poll on {ports:?} with no deadline would sleep forever"),
        };
        self.advance_to(wake);
        Ok(())
    }

    fn yield_now(&self) {
        self.state.borrow_mut().counts.other += 1;
        self.serve_xenstore();
    }

    fn shutdown(&self, reason: ShutdownReason) -> Result<(), XenError> {
        let mut state = self.state.borrow_mut();
        state.counts.other += 1;
        state.shutdown = Some(reason);
        Ok(())
    }

    /// Returns what the test arranged ([`SimXen::cancel_next_suspend`],
    /// [`SimXen::restore_in_new_domain`]), and 1 (a reported cancellation)
    /// if it arranged nothing.
    fn suspend(&self) -> Result<usize, XenError> {
        let mut state = self.state.borrow_mut();
        state.counts.other += 1;
        state.suspends += 1;
        Ok(state.suspend_returns.take().unwrap_or(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_allocated_until_exhausted_and_closed_ports_are_reused() {
        let xen = SimXen::new(1);
        xen.limit_ports(4);
        let first = xen.event_channel_alloc_unbound(BACKEND_DOMAIN).unwrap();
        let second = xen.event_channel_alloc_unbound(BACKEND_DOMAIN).unwrap();
        assert_eq!((first, second), (2, 3), "port 1 is xenstore's");
        assert_eq!(xen.event_channel_alloc_unbound(BACKEND_DOMAIN), Err(XenError::ENOSPC));
        xen.event_channel_close(first).unwrap();
        assert_eq!(xen.event_channel_close(first), Err(XenError::EINVAL));
        assert_eq!(xen.event_channel_alloc_unbound(BACKEND_DOMAIN), Ok(first));
    }

    #[test]
    fn timer_fires_virq_when_time_reaches_the_deadline() {
        let xen = SimXen::new(1);
        let port = xen.event_channel_bind_virq(VIRQ_TIMER, 0).unwrap();
        assert_eq!(xen.event_channel_bind_virq(VIRQ_TIMER, 0), Err(XenError(17)));
        xen.set_singleshot_timer(0, 1_000).unwrap();
        xen.advance(999);
        assert!(!xen.is_pending(port));
        xen.poll(&[port], None).unwrap();
        assert!(xen.is_pending(port));
        assert_eq!(xen.now(), 1_000);
        assert_eq!(xen.set_singleshot_timer(0, 1_000), Err(XenError::ETIME));
    }

    #[test]
    fn poll_returns_at_the_deadline_or_at_once_when_pending() {
        let xen = SimXen::new(1);
        let port = xen.event_channel_alloc_unbound(BACKEND_DOMAIN).unwrap();
        xen.poll(&[port], Some(5_000)).unwrap();
        assert_eq!(xen.now(), 5_000);
        xen.raise(port);
        xen.poll(&[port], Some(9_000)).unwrap();
        assert_eq!(xen.now(), 5_000, "a pending port does not sleep");
        assert_eq!(xen.counts().polls, 2);
    }

    #[test]
    #[should_panic(expected = "sleep forever")]
    fn poll_that_can_never_wake_fails_the_test() {
        let xen = SimXen::new(1);
        let port = xen.event_channel_alloc_unbound(BACKEND_DOMAIN).unwrap();
        let _ = xen.poll(&[port], None);
    }

    #[test]
    fn raise_sets_pending_selector_and_upcall_flag() {
        let xen = SimXen::new(1);
        xen.raise(130);
        let shared = xen.shared_info();
        assert_eq!(shared.evtchn_pending[2].load(Ordering::SeqCst), 1 << 2);
        assert_eq!(shared.vcpu_info[0].evtchn_pending_sel.load(Ordering::SeqCst), 1 << 2);
        assert_eq!(shared.vcpu_info[0].evtchn_upcall_pending.load(Ordering::SeqCst), 1);
    }
}
