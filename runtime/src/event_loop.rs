//! The appliance's event loop: netfront, smoltcp and the service, until the
//! toolstack asks the domain to end.
//!
//! One turn: route xenstore watch events (shutdown requests, vif changes),
//! move the netfront handshake on, let smoltcp take in at most a budget of
//! frames (`crate::budget`), let the service read and write its sockets, let
//! smoltcp send, do the rings' housekeeping (another turn at once if frames
//! are left), then sleep on the xenstore and vif ports until an event or
//! the earliest deadline (see `docs/event-loop.md`).
//!
//! A `suspend` request (`xl save`, `xl migrate`) quiesces the frontend,
//! lets the frames on its transmit ring leave, and suspends through the
//! platform. A cancelled suspend carries on as before. A resume in a new
//! domain keeps the interface, the sockets and their connections, and
//! sets up the rest again: the grant table is reset (every grant of the
//! old domain void), the old frontends are dropped without revoking or
//! closing anything, the watches, features and address keys go into the
//! new domain's xenstore, a new frontend connects the vif's new backend
//! (the same MAC), and once its link is up the appliance announces its
//! addresses (`crate::announce`). See `docs/lifecycle.md`.

use crate::instance::Instance;
use crate::lifecycle::{Lifecycle, Request, SHUTDOWN_TOKEN, ShutdownRequest};
use crate::netconfig::{Ipv6Static, NetConfig};
use crate::platform::Platform;
use crate::running_clock::RunningClock;
use crate::vif::{Shared, Totals, Vif};
use crate::{InterfaceId, Service};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::RefCell;
use dma::BounceCapacity;
use netfront::{Netfront, NetfrontConfig};
use smoltcp::time::Instant;
use xen_pv::SuspendOutcome;
use xen_pv::grant_table::GrantTable;
use xen_pv::xenstore::DEFAULT_REQUEST_TIMEOUT_NS;

/// The grant table the DMA devices allocate references from.
pub(crate) type Table<'p> = RefCell<GrantTable<'p>>;
/// A vif's frontend, with the DMA device for its backend.
pub(crate) type Frontend<'p, 't, P> =
    Netfront<'t, <P as Platform<'p>>::Hypervisor, &'t Table<'p>, <P as Platform<'p>>::Pages>;

/// Bounce pages for an untrusted backend: one per ring slot each way for
/// the pools, and [`LARGE_FRAME_BOUNCE_PAGES`] more for sending frames
/// over a page, which are mapped one by one.
pub const BOUNCE_PAGES: BounceCapacity =
    BounceCapacity { read_only_pages: 256 + LARGE_FRAME_BOUNCE_PAGES, writable_pages: 256 };

/// Read-only bounce pages beyond the transmit pool: room for one frame of
/// the largest MTU (65 535 bytes, 17 pages) or ten jumbo frames (9 000
/// bytes, 3 pages each) in flight at once. Without them every frame over a
/// page would be dropped in bounce mode.
pub const LARGE_FRAME_BOUNCE_PAGES: usize = 32;

/// How often the stack is polled while the vif has no link.
pub(crate) const LINK_DOWN_POLL: smoltcp::time::Duration = smoltcp::time::Duration::from_millis(100);
/// How often frontends replaced by one for another backend are asked to
/// close, while their old backend still holds pages.
const RETIRE_POLL: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(1);
/// How often buffers and ring pages a backend still held are offered back
/// to it, with no event to prompt it.
pub(crate) const RELEASE_RETRY: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(1);
/// At most this many replaced frontends wait for their old backends; a
/// further change of backend waits until one of them has closed.
pub(crate) const MAX_RETIRING: usize = 4;
/// How long the frames on the transmit ring may take to leave before the
/// domain suspends (those still there are lost with the old domain; TCP
/// sends them again).
const TX_DRAIN_NS: u64 = 100_000_000;

/// How long the appliance drains before it ends unless the configuration
/// says otherwise (`drain=` on the command line).
pub const DEFAULT_DRAIN: core::time::Duration = core::time::Duration::from_secs(5);
/// The longest drain: a shutdown should not hang on a slow client.
pub const MAX_DRAIN: core::time::Duration = core::time::Duration::from_secs(60);

/// How long DHCP waits for an offer before it sends DISCOVER again (as
/// busybox's udhcpc does). smoltcp's default is 10 s, and the first
/// DISCOVER goes out as the link comes up, when the host's bridge may not
/// yet pass it on: one lost DISCOVER then cost 10 s of start-up.
pub const DHCP_DISCOVER_RETRY: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(3);

/// The most interfaces beside the main one ([`RuntimeConfig::vifs`]).
pub const MAX_NUMBERED_VIFS: usize = 7;

/// How the runtime sets up the network.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How the main interface gets its address.
    pub net: NetConfig,
    /// A static IPv6 address and default router for the main interface,
    /// beside the link-local address and those router advertisements
    /// bring.
    pub ipv6: Ipv6Static,
    /// The vifs with an interface of their own (at most
    /// [`MAX_NUMBERED_VIFS`]); the main interface takes the
    /// lowest-numbered vif not among them.
    pub vifs: Vec<VifConfig>,
    /// Bounce every buffer even when the toolstack says the backend is
    /// trusted (`untrusted-backend` on the command line).
    pub force_untrusted: bool,
    /// The frontend's buffer pools.
    pub netfront: NetfrontConfig,
    /// Bounce pages for an untrusted backend.
    pub bounce: BounceCapacity,
    /// How long a xenstore request may wait for xenstored once the loop
    /// serves (then it fails with `TimedOut`).
    pub xenstore_timeout_ns: u64,
    /// How long the service may finish what is in flight once the
    /// toolstack asks the domain to end (zero: it ends at once).
    pub drain: core::time::Duration,
}

impl RuntimeConfig {
    /// The guest's configuration for `net`.
    pub fn new(net: NetConfig) -> Self {
        Self {
            net,
            ipv6: Ipv6Static::default(),
            vifs: Vec::new(),
            force_untrusted: false,
            netfront: NetfrontConfig::default(),
            bounce: BOUNCE_PAGES,
            xenstore_timeout_ns: DEFAULT_REQUEST_TIMEOUT_NS,
            drain: DEFAULT_DRAIN,
        }
    }
}

impl RuntimeConfig {
    /// The vifs that get an interface of their own: the first
    /// [`MAX_NUMBERED_VIFS`] of [`Self::vifs`].
    pub fn numbered_vifs(&self) -> impl Iterator<Item = &VifConfig> {
        self.vifs.iter().take(MAX_NUMBERED_VIFS)
    }
}

/// A vif with an interface of its own, beside the main one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VifConfig {
    /// Its device number (`device/vif/<number>`).
    pub number: u32,
    /// How its interface gets its address.
    pub net: NetConfig,
    /// Its static IPv6 settings.
    pub ipv6: Ipv6Static,
}

impl VifConfig {
    /// Vif `number`, by DHCP and router advertisements.
    pub fn dhcp(number: u32) -> Self {
        Self { number, net: NetConfig::Dhcp, ipv6: Ipv6Static::default() }
    }
}

/// Runs `service` on the network until the toolstack asks the domain to
/// end; returns that request. The service learns which domain it runs as
/// first ([`Service::identify`]), then adds its sockets to each interface
/// ([`Service::start`]).
pub fn run<'p, P: Platform<'p>, S: Service>(platform: &P, config: &RuntimeConfig, service: &mut S) -> ShutdownRequest {
    let lifecycle = start_lifecycle(platform);
    let instance = Instance::read(&mut platform.xenstore());
    log::info!("instance: name {:?}, domain id {:?}", instance.name, instance.domid);
    service.identify(&instance);
    let table = RefCell::new(GrantTable::new(platform.grant_entries()));
    EventLoop::new(platform, &table, config, service, lifecycle).run()
}

/// Runs no network, and waits until the toolstack asks the domain to end
/// (for a configuration the network cannot start with).
pub fn run_without_network<'p, P: Platform<'p>>(platform: &P) -> ShutdownRequest {
    let mut lifecycle = start_lifecycle(platform);
    wait_for_shutdown(platform, &mut lifecycle)
}

/// Advertises what the domain does on the toolstack's requests, and
/// watches for them.
fn start_lifecycle<'p, P: Platform<'p>>(platform: &P) -> Lifecycle {
    Lifecycle::init(&mut platform.xenstore()).unwrap_or_else(|error| {
        log::error!("xenstore: cannot set up the shutdown watch: {error:?}");
        Lifecycle::default()
    })
}

/// Sleeps until the toolstack asks the domain to end (no network).
fn wait_for_shutdown<'p, P: Platform<'p>>(platform: &P, lifecycle: &mut Lifecycle) -> ShutdownRequest {
    loop {
        let (request, _) = route_watch_events(platform, lifecycle, &mut |_| {});
        match request {
            Some(Request::End(request)) => return request,
            Some(Request::Suspend) => {
                log::info!("suspending: the toolstack asked (a save or a migration)");
                if platform.suspend() == SuspendOutcome::Resumed {
                    log::info!("resumed in a new domain");
                    if let Err(error) = lifecycle.resumed(&mut platform.xenstore()) {
                        log::error!("xenstore: cannot set up the shutdown watch again: {error:?}");
                    }
                } else {
                    log::info!("suspend cancelled: carrying on in the same domain");
                }
            }
            None => {}
        }
        let port = platform.xenstore().port();
        platform.wait(&[port], None);
    }
}

/// Drains the xenstore watch events: a shutdown request, and whether the
/// vifs' nodes changed (each of their paths goes to `vif_event`). However many events came, `control/shutdown` is
/// read at most once.
fn route_watch_events<'p, P: Platform<'p>>(
    platform: &P,
    lifecycle: &mut Lifecycle,
    vif_event: &mut dyn FnMut(&str),
) -> (Option<Request>, bool) {
    let mut store = platform.xenstore();
    let (mut shutdown_changed, mut vif_changed) = (false, false);
    loop {
        match store.next_watch_event() {
            Ok(Some(event)) if event.token == SHUTDOWN_TOKEN => shutdown_changed = true,
            Ok(Some(event)) if event.token == netfront::WATCH_TOKEN => {
                vif_event(&event.path);
                vif_changed = true;
            }
            Ok(Some(event)) => log::debug!("watch event for {} ignored", event.path),
            Ok(None) => break,
            Err(error) => {
                log::warn!("xenstore: {error:?}");
                break;
            }
        }
    }
    // A read that timed out is owed, and taken again once xenstored answers.
    let owed = lifecycle.check_owed() && !store.daemon_stalled();
    let request = if shutdown_changed || owed { lifecycle.on_watch_event(&mut store) } else { None };
    (request, vif_changed)
}

struct EventLoop<'p, 't, P: Platform<'p>, S: Service> {
    platform: &'t P,
    table: &'t Table<'p>,
    /// The main interface first, then one per numbered vif.
    vifs: Vec<Vif<'p, 't, P>>,
    /// Frontends replaced by one for another backend (or trust), kept until
    /// their old backend lets go of what it holds ([`Netfront::close`]).
    retiring: Vec<Box<Frontend<'p, 't, P>>>,
    /// What closed frontends counted, for the metrics.
    closed: Totals,
    service: &'t mut S,
    config: RuntimeConfig,
    lifecycle: Lifecycle,
    /// The network's time: system time less pauses.
    clock: RunningClock,
    /// Asked to end: draining until everything in flight is done or the
    /// deadline passes.
    ending: Option<Ending>,
}

/// A drain under way: the request to carry out after it, when it began and
/// its deadline (on the network's clock).
#[derive(Debug, Clone, Copy)]
struct Ending {
    request: ShutdownRequest,
    started: Instant,
    deadline: Instant,
}

impl<'p, 't, P: Platform<'p>, S: Service> EventLoop<'p, 't, P, S> {
    fn new(
        platform: &'t P,
        table: &'t Table<'p>,
        config: &RuntimeConfig,
        service: &'t mut S,
        lifecycle: Lifecycle,
    ) -> Self {
        let seed = platform.secret_seed();
        let numbered = config.numbered_vifs().map(|vif| InterfaceId::Vif(vif.number));
        let vifs = core::iter::once(InterfaceId::Main)
            .chain(numbered)
            .enumerate()
            .map(|(index, id)| Vif::new(id, config, seed.wrapping_add(index as u64), &mut *service))
            .collect();
        Self {
            platform,
            table,
            vifs,
            retiring: Vec::new(),
            closed: Totals::default(),
            service,
            config: config.clone(),
            lifecycle,
            clock: RunningClock::default(),
            ending: None,
        }
    }

    fn run(mut self) -> ShutdownRequest {
        if let Err(error) = netfront::watch_vifs(&mut self.platform.xenstore()) {
            log::error!("netfront: cannot watch device/vif: {error:?}");
        }
        self.control();
        if self.vifs[0].netfront.is_none() {
            log::warn!("no network device (device/vif) yet: waiting for one (xl network-attach)");
        }
        // Serving from now on: a stalled xenstored may hold a turn this long.
        self.platform.xenstore().set_request_timeout(self.config.xenstore_timeout_ns);
        loop {
            let vifs = &mut self.vifs;
            let (request, vif_changed) = route_watch_events(self.platform, &mut self.lifecycle, &mut |path| {
                for netfront in vifs.iter_mut().filter_map(|vif| vif.netfront.as_mut()) {
                    netfront.watch_event(path);
                }
            });
            match request {
                Some(Request::End(request)) => {
                    if let Some(request) = self.end(request) {
                        return request;
                    }
                }
                Some(Request::Suspend) => {
                    self.suspend();
                    continue;
                }
                None => {}
            }
            let owed = self.vifs.iter().any(|vif| vif.control_owed);
            if vif_changed || (owed && !self.platform.xenstore().daemon_stalled()) {
                self.control();
            }
            let mut deadline = self.turn();
            if let Some(ending) = self.ending {
                if let Some(request) = self.drained(ending) {
                    return request;
                }
                deadline = Some(deadline.map_or(ending.deadline, |deadline| deadline.min(ending.deadline)));
            }
            self.sleep(deadline);
        }
    }

    /// The toolstack asked the domain to end (acknowledged already): with
    /// a drain configured, the service stops taking connections and the
    /// loop goes on until what is in flight is done or the deadline passes
    /// ([`Self::drained`]); without one, the request is carried out at
    /// once. A further request during the drain ends it at once, as that
    /// one says. Returns the request to carry out now, if any.
    fn end(&mut self, request: ShutdownRequest) -> Option<ShutdownRequest> {
        let now = self.now();
        if let Some(ending) = self.ending.as_mut() {
            log::warn!("drain: asked again ({request:?}): ending now");
            ending.request = request;
            ending.deadline = now;
            return None;
        }
        if self.config.drain.is_zero() {
            return Some(request);
        }
        // From now on a suspend would not be carried out: it is left
        // unacknowledged.
        self.lifecycle.refuse_suspend();
        for vif in &mut self.vifs {
            self.service.drain(vif.id, &mut vif.sockets, now);
            vif.cookies.stop();
        }
        let in_flight = self.in_flight();
        let drain = smoltcp::time::Duration::from_millis(self.config.drain.as_millis() as u64);
        log::info!(
            "drain: {request:?} requested: no new connections; {in_flight} in flight, {} s to finish",
            drain.secs()
        );
        self.ending = Some(Ending { request, started: now, deadline: now + drain });
        None
    }

    /// Connections still owed something, on every interface.
    fn in_flight(&self) -> usize {
        self.vifs.iter().map(|vif| self.service.in_flight(vif.id, &vif.sockets)).sum()
    }

    /// While draining, after a turn: once nothing is in flight, or at the
    /// deadline (what is still in flight is then reset), the last FINs and
    /// resets go out (the transmit rings get [`TX_DRAIN_NS`] to empty) and
    /// the request is returned.
    fn drained(&mut self, ending: Ending) -> Option<ShutdownRequest> {
        let now = self.now();
        let in_flight = self.in_flight();
        if in_flight > 0 && now < ending.deadline {
            return None;
        }
        let mut cut = 0;
        if in_flight > 0 {
            for vif in &mut self.vifs {
                cut += self.service.cut(vif.id, &mut vif.sockets, now);
            }
        }
        self.turn();
        let unsent = self.flush_transmit();
        log::info!(
            "drain: done after {} ms: {cut} connections cut at the deadline ({unsent} frames unsent); {:?}",
            (now - ending.started).total_millis(),
            ending.request
        );
        Some(ending.request)
    }

    /// Gives the frames on the frontends' transmit rings [`TX_DRAIN_NS`] to
    /// leave; returns how many are still there.
    fn flush_transmit(&self) -> usize {
        let deadline = self.platform.now().saturating_add(TX_DRAIN_NS);
        let frontends = || self.vifs.iter().filter_map(|vif| vif.netfront.as_ref());
        loop {
            let mut ports = Vec::new();
            for netfront in frontends() {
                netfront.poll_rings();
                ports.extend(netfront.port().filter(|_| netfront.tx_in_flight() > 0));
            }
            if ports.is_empty() {
                return 0;
            }
            if self.platform.now() >= deadline {
                return frontends().map(Netfront::tx_in_flight).sum();
            }
            self.platform.wait(&ports, Some(deadline));
            for netfront in frontends() {
                netfront.take_notification();
            }
        }
    }

    /// Carries out an acknowledged `suspend`: the frontends stop receiving,
    /// sending and posting, the frames on their transmit rings are given
    /// [`TX_DRAIN_NS`] to leave, and the platform suspends the domain.
    fn suspend(&mut self) {
        log::info!("suspending: the toolstack asked (a save or a migration)");
        for netfront in self.vifs.iter().filter_map(|vif| vif.netfront.as_ref()) {
            netfront.quiesce();
        }
        let unsent = self.flush_transmit();
        if unsent > 0 {
            log::info!("suspending with {unsent} frames unsent");
        }
        match self.platform.suspend() {
            SuspendOutcome::Cancelled => {
                log::info!("suspend cancelled: carrying on in the same domain");
                for netfront in self.vifs.iter().filter_map(|vif| vif.netfront.as_ref()) {
                    netfront.resume_in_place();
                }
            }
            SuspendOutcome::Resumed => self.resumed(),
        }
    }

    /// Sets the network up again in the new domain the old one was restored
    /// in (see the module's introduction).
    fn resumed(&mut self) {
        self.clock.resumed(self.platform.now());
        log::info!("resumed in a new domain: connecting the network again");
        let reset = self.table.borrow_mut().reset_after_resume(self.platform.grant_entries());
        let current = self.vifs.iter_mut().filter_map(|vif| vif.netfront.take()).map(Box::new);
        let old: Vec<_> = current.chain(core::mem::take(&mut self.retiring)).collect();
        match reset {
            Ok(_) => {
                for frontend in old {
                    let counted = frontend_totals::<P>(&frontend);
                    match frontend.forget_after_resume() {
                        Ok(()) => self.closed += counted,
                        Err(frontend) => {
                            log::error!("network: a frontend of the old domain could not be dropped");
                            self.retiring.push(frontend);
                        }
                    }
                }
            }
            Err(refused) => {
                // Xen still shows a grant of the old domain: it was not made
                // anew after all. Let the frontends go the careful way.
                log::error!("grant table: grant {} is still live after a resume: not forgotten", refused.still_granted);
                self.retiring.extend(old);
            }
        }
        {
            let mut store = self.platform.xenstore();
            if let Err(error) = self.lifecycle.resumed(&mut store) {
                log::error!("xenstore: cannot set up the shutdown watch again: {error:?}");
            }
            if let Err(error) = netfront::watch_vifs(&mut store) {
                log::error!("netfront: cannot watch device/vif again: {error:?}");
            }
            for vif in &mut self.vifs {
                vif.resumed(&mut store);
            }
            // A new domain id (and the name the toolstack gave it).
            let instance = Instance::read(&mut store);
            log::info!("instance: name {:?}, domain id {:?}", instance.name, instance.domid);
            self.service.identify(&instance);
        }
        self.control();
    }

    /// Moves every vif's handshake on (see [`Vif::control`]).
    fn control(&mut self) {
        self.close_retiring();
        let (platform, clock) = (self.platform, &mut self.clock);
        let mut now = || network_now(clock, platform);
        let mut shared =
            Shared { platform, table: self.table, config: &self.config, retiring: &mut self.retiring, now: &mut now };
        for vif in &mut self.vifs {
            vif.control(&mut shared);
        }
        self.close_retiring();
    }

    /// Closes the replaced frontends whose old backend has let go.
    fn close_retiring(&mut self) {
        for old in core::mem::take(&mut self.retiring) {
            let counted = frontend_totals::<P>(&old);
            let backend = old.dma().backend();
            match old.close() {
                Ok(()) => {
                    log::info!("network: the DMA device for backend domain {backend} is closed");
                    self.closed += counted;
                }
                Err(old) => self.retiring.push(old),
            }
        }
    }

    /// One pass over every interface's data path; returns the earliest
    /// deadline.
    fn turn(&mut self) -> Option<Instant> {
        let now = self.now();
        let retire_deadline = (!self.retiring.is_empty()).then(|| {
            self.close_retiring();
            now + RETIRE_POLL
        });
        let mut deadline = retire_deadline;
        for index in 0..self.vifs.len() {
            let (before, rest) = self.vifs.split_at_mut(index);
            let Some((vif, after)) = rest.split_first_mut() else { break };
            let (closed, retiring) = (self.closed, &self.retiring);
            // What the rest of the network counted, summed only for a
            // metrics request.
            let others = || {
                let mut others = closed;
                for frontend in retiring {
                    others += frontend_totals::<P>(frontend);
                }
                for other in before.iter().chain(after.iter()) {
                    others += other.totals();
                }
                others
            };
            let vif_deadline = vif.turn(self.platform, self.table, &mut *self.service, &others, now);
            deadline = [deadline, vif_deadline].into_iter().flatten().min();
        }
        deadline
    }

    /// Sleeps until an event on the xenstore or a vif port, or the deadline.
    fn sleep(&mut self, deadline: Option<Instant>) {
        // Nothing the stack sent waits through the sleep: a segment held
        // for a large segment goes on the ring (each turn's `poll_rings`
        // has sent it already; this keeps that true whatever ran since).
        for netfront in self.vifs.iter().filter_map(|vif| vif.netfront.as_ref()) {
            netfront.flush_transmit();
        }
        if self.vifs.iter().filter_map(|vif| vif.netfront.as_ref()).any(Netfront::broken_link) {
            self.control();
            return;
        }
        // Requests made this turn may have taken the xenstore port's pending
        // bit and queued watch events: route them before sleeping.
        let mut ports = Vec::with_capacity(1 + self.vifs.len());
        {
            let store = self.platform.xenstore();
            if store.queued_watch_events() > 0 {
                return;
            }
            ports.push(store.port());
        }
        ports.extend(self.vifs.iter().filter_map(|vif| vif.netfront.as_ref().and_then(Netfront::port)));
        let deadline_ns =
            deadline.map(|instant| self.clock.system_time_of(instant.total_micros().max(0) as u64 * 1000));
        self.clock.sleeping(deadline_ns);
        self.platform.wait(&ports, deadline_ns);
    }

    /// smoltcp's and the service's clock: system time less the time the
    /// domain did not run (`crate::running_clock`).
    fn now(&mut self) -> Instant {
        network_now(&mut self.clock, self.platform)
    }
}

/// The network's clock now: system time less the time the domain did not
/// run.
fn network_now<'p, P: Platform<'p>>(clock: &mut RunningClock, platform: &P) -> Instant {
    Instant::from_micros((clock.now(platform.now()) / 1000) as i64)
}

/// What a frontend counted.
fn frontend_totals<'p, 't, P: Platform<'p>>(frontend: &Frontend<'p, 't, P>) -> Totals {
    Totals { netfront: frontend.counters(), dma: frontend.dma_counters(), ..Totals::default() }
}
