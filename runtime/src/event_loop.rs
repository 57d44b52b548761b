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

use crate::address_keys::{AddressKeys, vif_number};
use crate::announce::{Announcement, gratuitous_arp};
use crate::data_path;
use crate::instance::Instance;
use crate::lease_hint::{self, LeaseHint};
use crate::lifecycle::{Lifecycle, Request, SHUTDOWN_TOKEN, ShutdownRequest};
use crate::netconfig::{Ipv6Static, NetConfig};
use crate::platform::Platform;
use crate::running_clock::RunningClock;
use crate::slaac::{self, Slaac, Solicitation, Watched};
use crate::stats::Stats;
use crate::syn_cookies::SynCookies;
use crate::{NetworkState, Service};
use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::sync::atomic::Ordering;
use dma::{BackendTrust, BounceCapacity, DmaCounters, DmaDevice};
use netfront::{Netfront, NetfrontConfig, NetfrontCounters, NetfrontError, VifIdentity};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, TxToken};
use smoltcp::socket::dhcpv4;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv6Cidr};
use xen_pv::SuspendOutcome;
use xen_pv::grant_table::GrantTable;
use xen_pv::xenstore::{DEFAULT_REQUEST_TIMEOUT_NS, XenstoreError};

/// The grant table the DMA devices allocate references from.
type Table<'p> = RefCell<GrantTable<'p>>;
/// A vif's frontend, with the DMA device for its backend.
type Frontend<'p, 't, P> = Netfront<'t, <P as Platform<'p>>::Hypervisor, &'t Table<'p>, <P as Platform<'p>>::Pages>;

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
const LINK_DOWN_POLL: smoltcp::time::Duration = smoltcp::time::Duration::from_millis(100);
/// How often frontends replaced by one for another backend are asked to
/// close, while their old backend still holds pages.
const RETIRE_POLL: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(1);
/// How often buffers and ring pages a backend still held are offered back
/// to it, with no event to prompt it.
const RELEASE_RETRY: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(1);
/// At most this many replaced frontends wait for their old backends; a
/// further change of backend waits until one of them has closed.
const MAX_RETIRING: usize = 4;
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

/// How the runtime sets up the network.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How the interface gets its address.
    pub net: NetConfig,
    /// A static IPv6 address and default router, beside the link-local
    /// address and those router advertisements bring.
    pub ipv6: Ipv6Static,
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
            force_untrusted: false,
            netfront: NetfrontConfig::default(),
            bounce: BOUNCE_PAGES,
            xenstore_timeout_ns: DEFAULT_REQUEST_TIMEOUT_NS,
            drain: DEFAULT_DRAIN,
        }
    }
}

/// Runs `service` on the network until the toolstack asks the domain to
/// end; returns that request. The service learns which domain it runs as
/// first ([`Service::identify`]), then adds its sockets.
pub fn run<'p, P: Platform<'p>, S: Service>(platform: &P, config: &RuntimeConfig, service: &mut S) -> ShutdownRequest {
    let lifecycle = start_lifecycle(platform);
    let instance = Instance::read(&mut platform.xenstore());
    log::info!("instance: name {:?}, domain id {:?}", instance.name, instance.domid);
    service.identify(&instance);
    let table = RefCell::new(GrantTable::new(platform.grant_entries()));
    let mut sockets = SocketSet::new(Vec::new());
    service.start(&mut sockets);
    EventLoop::new(platform, &table, config, sockets, service, lifecycle).run()
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
/// vif's nodes changed (each of their paths goes to `vif_event`). However many events came, `control/shutdown` is
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
    /// The frontend of the first vif, once there is one.
    netfront: Option<Frontend<'p, 't, P>>,
    /// Frontends replaced by one for another backend (or trust), kept until
    /// their old backend lets go of what it holds ([`Netfront::close`]).
    retiring: Vec<Box<Frontend<'p, 't, P>>>,
    /// What closed frontends counted, for the metrics.
    closed_counters: (NetfrontCounters, DmaCounters),
    interface: Option<Interface>,
    sockets: SocketSet<'static>,
    service: &'t mut S,
    config: RuntimeConfig,
    lifecycle: Lifecycle,
    dhcp: Option<SocketHandle>,
    /// While DHCP has brought no lease: when to say so
    /// ([`crate::lease_hint`]).
    lease_hint: Option<LeaseHint>,
    /// A handshake step timed out: take it again once xenstored answers
    /// (no watch event will ask).
    control_owed: bool,
    /// SYN cookies in front of smoltcp (on while the service reports SYN
    /// pressure).
    cookies: SynCookies,
    /// What the IPv4 fragment screen counted.
    fragments: crate::fragments::FragmentScreen,
    /// The network's time: system time less pauses.
    clock: RunningClock,
    /// When the frontend's held buffers are next offered back, while it has
    /// any.
    release_retry_at: Option<Instant>,
    /// The interface's address as published in xenstore, and the vif
    /// number it is published under.
    address: AddressKeys,
    /// After a resume in a new domain: the gratuitous ARPs still due.
    announcement: Option<Announcement>,
    /// IPv6 addresses and routers from router advertisements.
    slaac: Slaac,
    /// The router solicitations still to send.
    solicitation: Solicitation,
    /// The interface's addresses as last seen: smoltcp empties its
    /// neighbour cache whenever they change, and the router is then asked
    /// for its link-layer address again ([`Slaac::solicit_router_again`]).
    addresses_seen: Vec<IpCidr>,
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
        sockets: SocketSet<'static>,
        service: &'t mut S,
        lifecycle: Lifecycle,
    ) -> Self {
        Self {
            platform,
            table,
            netfront: None,
            retiring: Vec::new(),
            closed_counters: Default::default(),
            interface: None,
            sockets,
            service,
            config: config.clone(),
            lifecycle,
            dhcp: None,
            lease_hint: None,
            control_owed: false,
            cookies: SynCookies::new(platform.secret_seed()),
            fragments: crate::fragments::FragmentScreen::default(),
            clock: RunningClock::default(),
            release_retry_at: None,
            address: AddressKeys::default(),
            announcement: None,
            slaac: Slaac::default(),
            solicitation: Solicitation::default(),
            addresses_seen: Vec::new(),
            ending: None,
        }
    }

    fn run(mut self) -> ShutdownRequest {
        if let Err(error) = netfront::watch_vifs(&mut self.platform.xenstore()) {
            log::error!("netfront: cannot watch device/vif: {error:?}");
        }
        self.control();
        if self.netfront.is_none() {
            log::warn!("no network device (device/vif) yet: waiting for one (xl network-attach)");
        }
        // Serving from now on: a stalled xenstored may hold a turn this long.
        self.platform.xenstore().set_request_timeout(self.config.xenstore_timeout_ns);
        loop {
            let netfront = &mut self.netfront;
            let (request, vif_changed) = route_watch_events(self.platform, &mut self.lifecycle, &mut |path| {
                if let Some(netfront) = netfront.as_mut() {
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
            if vif_changed || (self.control_owed && !self.platform.xenstore().daemon_stalled()) {
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
        self.service.drain(&mut self.sockets, now);
        self.cookies.stop();
        let in_flight = self.service.in_flight(&self.sockets);
        let drain = smoltcp::time::Duration::from_millis(self.config.drain.as_millis() as u64);
        log::info!(
            "drain: {request:?} requested: no new connections; {in_flight} in flight, {} s to finish",
            drain.secs()
        );
        self.ending = Some(Ending { request, started: now, deadline: now + drain });
        None
    }

    /// While draining, after a turn: once nothing is in flight, or at the
    /// deadline (what is still in flight is then reset), the last FINs and
    /// resets go out (the transmit ring gets [`TX_DRAIN_NS`] to empty) and
    /// the request is returned.
    fn drained(&mut self, ending: Ending) -> Option<ShutdownRequest> {
        let now = self.now();
        let in_flight = self.service.in_flight(&self.sockets);
        if in_flight > 0 && now < ending.deadline {
            return None;
        }
        let cut = if in_flight > 0 { self.service.cut(&mut self.sockets, now) } else { 0 };
        self.turn();
        let unsent = self.flush_transmit();
        log::info!(
            "drain: done after {} ms: {cut} connections cut at the deadline ({unsent} frames unsent); {:?}",
            (now - ending.started).total_millis(),
            ending.request
        );
        Some(ending.request)
    }

    /// Gives the frames on the frontend's transmit ring [`TX_DRAIN_NS`] to
    /// leave; returns how many are still there.
    fn flush_transmit(&self) -> usize {
        let Some(netfront) = self.netfront.as_ref() else { return 0 };
        let deadline = self.platform.now().saturating_add(TX_DRAIN_NS);
        loop {
            netfront.poll_rings();
            let Some(port) = netfront.port().filter(|_| netfront.tx_in_flight() > 0) else { return 0 };
            if self.platform.now() >= deadline {
                return netfront.tx_in_flight();
            }
            self.platform.wait(&[port], Some(deadline));
            netfront.take_notification();
        }
    }

    /// Carries out an acknowledged `suspend`: the frontend stops receiving,
    /// sending and posting, the frames on its transmit ring are given
    /// [`TX_DRAIN_NS`] to leave, and the platform suspends the domain.
    fn suspend(&mut self) {
        log::info!("suspending: the toolstack asked (a save or a migration)");
        if let Some(netfront) = self.netfront.as_ref() {
            netfront.quiesce();
        }
        let unsent = self.flush_transmit();
        if unsent > 0 {
            log::info!("suspending with {unsent} frames unsent");
        }
        match self.platform.suspend() {
            SuspendOutcome::Cancelled => {
                log::info!("suspend cancelled: carrying on in the same domain");
                if let Some(netfront) = self.netfront.as_ref() {
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
        match reset {
            Ok(_) => {
                let old = self.netfront.take().map(Box::new).into_iter().chain(core::mem::take(&mut self.retiring));
                for frontend in old {
                    let counted = (frontend.counters(), frontend.dma_counters());
                    match frontend.forget_after_resume() {
                        Ok(()) => {
                            self.closed_counters.0 += counted.0;
                            self.closed_counters.1 += counted.1;
                        }
                        Err(frontend) => {
                            log::error!("network: a frontend of the old domain could not be dropped");
                            self.retiring.push(frontend);
                        }
                    }
                }
            }
            Err(refused) => {
                // Xen still shows a grant of the old domain: it was not made
                // anew after all. Let the frontend go the careful way.
                log::error!("grant table: grant {} is still live after a resume: not forgotten", refused.still_granted);
                self.retire_frontend();
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
            self.address.resumed(&mut store);
            // A new domain id (and the name the toolstack gave it).
            let instance = Instance::read(&mut store);
            log::info!("instance: name {:?}, domain id {:?}", instance.name, instance.domid);
            self.service.identify(&instance);
        }
        self.release_retry_at = None;
        self.announcement = Some(Announcement::new());
        // Perhaps another host, another link: ask its routers.
        self.solicitation = Solicitation::default();
        self.control();
    }

    /// Moves the vif handshake on (making the frontend the vif's backend
    /// needs first); brings the interface up the first time.
    fn control(&mut self) {
        self.close_retiring();
        let mut outcome = self.poll_frontend();
        if let Err(NetfrontError::IdentityChanged(identity)) = outcome {
            log::info!("network: the vif is now served by domain {} (trusted: {})", identity.backend, identity.trusted);
            self.retire_frontend();
            outcome = self.poll_frontend();
        }
        // A timed-out step is taken again once xenstored answers; a vif with
        // no frontend yet, once a replaced one has closed.
        self.control_owed = outcome == Err(NetfrontError::Xenstore(XenstoreError::TimedOut))
            || (self.netfront.is_none() && !self.retiring.is_empty());
        if let Err(error) = outcome {
            log::error!("netfront: {error:?}");
        }
        let Some((mac, vif)) = self
            .netfront
            .as_ref()
            .and_then(Netfront::device)
            .map(|device| (EthernetAddress(device.mac.0), vif_number(&device.path)))
        else {
            return;
        };
        // The address, if any, is published under the vif's current number.
        if let Some(vif) = vif {
            self.address.set_vif(&mut self.platform.xenstore(), vif);
        }
        match self.interface.as_mut() {
            None => self.interface = self.make_interface(mac),
            Some(interface) if interface.hardware_addr() != HardwareAddress::Ethernet(mac) => {
                // A new vif (xl network-attach) brings a new address: use it,
                // and ask for a lease for it.
                log::info!("network: the interface's address is now {mac}");
                interface.set_hardware_addr(HardwareAddress::Ethernet(mac));
                if let Some(handle) = self.dhcp {
                    self.sockets.get_mut::<dhcpv4::Socket>(handle).reset();
                }
                // The IPv6 addresses were made of the old MAC: a new
                // link-local one now, and new ones from the next
                // advertisement, asked for at once.
                self.slaac.forget();
                self.slaac.take_changed();
                self.solicitation = Solicitation::default();
                apply_ipv6(self.platform, &self.config.ipv6, &self.slaac, interface, &mut self.address);
            }
            Some(_) => {}
        }
    }

    /// Polls the frontend's control plane; makes one for the vif when there
    /// is none (the first vif, or one with a new backend).
    fn poll_frontend(&mut self) -> Result<(), NetfrontError> {
        if self.netfront.is_none() {
            if self.retiring.len() >= MAX_RETIRING {
                return Err(NetfrontError::Resources("frontends of earlier backends still held"));
            }
            let found = netfront::find_vif(&mut self.platform.xenstore())?;
            let Some(identity) = found else { return Ok(()) };
            self.netfront = Some(self.open_frontend(identity)?);
        }
        match self.netfront.as_mut() {
            Some(netfront) => netfront.poll_control(&mut self.platform.xenstore()),
            None => Ok(()),
        }
    }

    /// The vif is now served by another backend (or with another trust):
    /// the frontend retires, and closes at once if its backend holds
    /// nothing (its grants free for the new device); otherwise it waits in
    /// `retiring` until the old backend lets go.
    fn retire_frontend(&mut self) {
        let old = self.netfront.take();
        self.retiring.extend(old.map(Box::new));
        self.close_retiring();
    }

    /// A frontend for a vif served as `identity` says, with its own DMA
    /// device: granting to that backend, bouncing unless it is trusted.
    fn open_frontend(&self, identity: VifIdentity) -> Result<Frontend<'p, 't, P>, NetfrontError> {
        let backend = identity.backend;
        let trust = if identity.trusted && !self.config.force_untrusted {
            BackendTrust::Trusted
        } else {
            log::info!("backend domain {backend} is not trusted: bouncing every buffer");
            BackendTrust::Untrusted(self.config.bounce)
        };
        let dma = DmaDevice::new(self.table, self.platform.pages(), backend, trust).map_err(|error| {
            log::error!("DMA set-up for domain {backend} failed: {error:?}");
            NetfrontError::Resources("DMA device")
        })?;
        log::info!("network: a DMA device for backend domain {backend}");
        Ok(Netfront::new(self.platform.events(), dma, identity.trusted, self.config.netfront))
    }

    /// Closes the replaced frontends whose old backend has let go.
    fn close_retiring(&mut self) {
        for old in core::mem::take(&mut self.retiring) {
            let counted = (old.counters(), old.dma_counters());
            let backend = old.dma().backend();
            match old.close() {
                Ok(()) => {
                    log::info!("network: the DMA device for backend domain {backend} is closed");
                    self.closed_counters.0 += counted.0;
                    self.closed_counters.1 += counted.1;
                }
                Err(old) => self.retiring.push(old),
            }
        }
    }

    /// The counters of the frontends the vif had before the current one.
    fn earlier_counters(&self) -> (NetfrontCounters, DmaCounters) {
        let (mut netfront, mut dma) = self.closed_counters;
        for frontend in &self.retiring {
            netfront += frontend.counters();
            dma += frontend.dma_counters();
        }
        (netfront, dma)
    }

    /// The interface on the first vif, with its address or asking for one.
    /// It outlives the vif's frontends: a later one only changes its MAC.
    fn make_interface(&mut self, mac: EthernetAddress) -> Option<Interface> {
        let now = self.now();
        let netfront = self.netfront.as_mut()?;
        let mut interface = Interface::new(Config::new(HardwareAddress::Ethernet(mac)), netfront, now);
        crate::fragments::configure(&mut interface, &mut self.fragments);
        match self.config.net {
            NetConfig::Static { address, gateway } => {
                interface.update_ip_addrs(|addresses| {
                    let _ = addresses.push(IpCidr::Ipv4(address));
                });
                if let Some(gateway) = gateway {
                    let _ = interface.routes_mut().add_default_ipv4_route(gateway);
                }
                log::info!("network: static address {address}");
                self.address.set_address(&mut self.platform.xenstore(), Some(&address.address().to_string()));
            }
            NetConfig::Dhcp => {
                let mut dhcp = dhcpv4::Socket::new();
                let mut retry = dhcpv4::RetryConfig::default();
                retry.discover_timeout = DHCP_DISCOVER_RETRY;
                dhcp.set_retry_config(retry);
                self.dhcp = Some(self.sockets.add(dhcp));
                self.lease_hint = Some(LeaseHint::new(now));
                log::info!("network: asking for an address by DHCP");
            }
        }
        apply_ipv6(self.platform, &self.config.ipv6, &self.slaac, &mut interface, &mut self.address);
        Some(interface)
    }

    /// One pass over the data path; returns the earliest deadline.
    fn turn(&mut self) -> Option<Instant> {
        let now = self.now();
        let retire_deadline = (!self.retiring.is_empty()).then(|| {
            self.close_retiring();
            now + RETIRE_POLL
        });
        let (earlier_counters, earlier_dma) = self.earlier_counters();
        let (Some(interface), Some(netfront)) = (self.interface.as_mut(), self.netfront.as_mut()) else {
            return retire_deadline;
        };
        if netfront.take_notification() {
            log::trace!("netfront: notified");
        }
        let (platform, table, dhcp) = (self.platform, self.table, self.dhcp);
        let address = &mut self.address;
        self.service.network(network_state(interface, netfront.is_up(), &self.config.ipv6, &self.slaac));
        let HardwareAddress::Ethernet(mac) = interface.hardware_addr();
        let advertisements = self.slaac.advertisements();
        let pass = data_path::pass(
            interface,
            &mut Watched::new(netfront, &mut self.slaac, mac),
            &mut self.cookies,
            &mut self.fragments,
            &mut self.sockets,
            &mut *self.service,
            now,
            |interface, sockets| dhcp_events(platform, dhcp, address, interface, sockets),
            |watched, cookies, fragments| {
                let netfront = watched.device();
                let mut stats = gather_stats(platform, table, cookies);
                stats.fragments = *fragments;
                stats.netfront = earlier_counters;
                stats.netfront += netfront.counters();
                stats.dma = earlier_dma;
                stats.dma += netfront.dma_counters();
                stats
            },
        );
        if self.slaac.advertisements() != advertisements {
            self.solicitation.answered();
        }
        self.slaac.expire(now);
        if self.slaac.take_changed() {
            apply_ipv6(platform, &self.config.ipv6, &self.slaac, interface, &mut self.address);
        }
        if self.solicitation.due(now, netfront.is_up()) {
            solicit_routers::<P>(interface, netfront, now);
        }
        if interface.ip_addrs() != self.addresses_seen.as_slice() {
            self.addresses_seen = interface.ip_addrs().to_vec();
            self.slaac.solicit_router_again();
        }
        if let Some(router) = self.slaac.take_router_to_solicit() {
            solicit_neighbour::<P>(interface, netfront, router, now);
        }
        // A solicitation due while the link is down waits for the link (a
        // vif event), not for its time: that would be a busy loop.
        let solicit_deadline = self.solicitation.deadline().filter(|_| netfront.is_up());
        let slaac_deadline = [self.slaac.deadline(), solicit_deadline].into_iter().flatten().min();
        let announce_deadline = announce::<P>(&mut self.announcement, interface, netfront, now);
        let hint_deadline = if self.dhcp.is_some() {
            tend_lease_hint(&mut self.lease_hint, now, has_ipv4(interface), netfront.is_up())
        } else {
            None
        };
        let release_deadline = if netfront.releases_pending() {
            let due = *self.release_retry_at.get_or_insert(now + RELEASE_RETRY);
            if now >= due {
                netfront.retry_releases();
                self.release_retry_at = netfront.releases_pending().then(|| now + RELEASE_RETRY);
            }
            self.release_retry_at
        } else {
            self.release_retry_at = None;
            None
        };
        if netfront.poll_rings() || pass.frames_left || self.cookies.has_replay() {
            return Some(now);
        }
        let mut stack_deadline = interface.poll_at(now, &self.sockets);
        if !netfront.is_up() {
            // Nothing can be sent: a retransmission due now would be due
            // again at once, a busy loop until the link is back. Xenstore
            // events bring the link back; until then, look now and then.
            stack_deadline = stack_deadline.map(|deadline| deadline.max(now + LINK_DOWN_POLL));
        }
        [
            pass.service_deadline,
            stack_deadline,
            retire_deadline,
            release_deadline,
            hint_deadline,
            announce_deadline,
            slaac_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Sleeps until an event on the xenstore or vif port, or the deadline.
    fn sleep(&mut self, deadline: Option<Instant>) {
        if self.netfront.as_ref().is_some_and(Netfront::broken_link) {
            self.control();
            return;
        }
        // Requests made this turn may have taken the xenstore port's pending
        // bit and queued watch events: route them before sleeping.
        let mut ports = Vec::with_capacity(2);
        {
            let store = self.platform.xenstore();
            if store.queued_watch_events() > 0 {
                return;
            }
            ports.push(store.port());
        }
        ports.extend(self.netfront.as_ref().and_then(Netfront::port));
        let deadline_ns =
            deadline.map(|instant| self.clock.system_time_of(instant.total_micros().max(0) as u64 * 1000));
        self.clock.sleeping(deadline_ns);
        self.platform.wait(&ports, deadline_ns);
    }

    /// smoltcp's and the service's clock: system time less the time the
    /// domain did not run (`crate::running_clock`).
    fn now(&mut self) -> Instant {
        Instant::from_micros((self.clock.now(self.platform.now()) / 1000) as i64)
    }
}

/// Sends the gratuitous ARPs due after a resume (one per IPv4 address of
/// the interface) once the link is up; returns when the next is due. An
/// interface with no address has nothing to announce: DHCP's own exchange
/// will show where it is.
fn announce<'p, 't, P: Platform<'p>>(
    announcement: &mut Option<Announcement>,
    interface: &Interface,
    netfront: &mut Frontend<'p, 't, P>,
    now: Instant,
) -> Option<Instant> {
    let schedule = announcement.as_mut()?;
    let addresses: Vec<_> = interface
        .ip_addrs()
        .iter()
        .filter_map(|cidr| match cidr.address() {
            IpAddress::Ipv4(address) => Some(address),
            IpAddress::Ipv6(_) => None,
        })
        .collect();
    let HardwareAddress::Ethernet(mac) = interface.hardware_addr();
    if addresses.is_empty() {
        *announcement = None;
        return None;
    }
    if schedule.due(now, netfront.is_up()) {
        for address in addresses {
            let frame = gratuitous_arp(mac, address);
            match netfront.transmit(now) {
                Some(token) => token.consume(frame.len(), |buffer| buffer.copy_from_slice(&frame)),
                None => log::debug!("network: no room to announce {address}"),
            }
        }
        log::info!("network: announced {mac} after the resume");
    }
    let deadline = schedule.deadline();
    if schedule.is_done() {
        *announcement = None;
    }
    deadline
}

/// Whether the interface has an IPv4 address.
fn has_ipv4(interface: &Interface) -> bool {
    interface.ip_addrs().iter().any(|cidr| matches!(cidr, IpCidr::Ipv4(_)))
}

/// The network's state as the service hears it.
fn network_state(interface: &Interface, link_up: bool, config: &Ipv6Static, slaac: &Slaac) -> NetworkState {
    let ipv6 = || {
        interface.ip_addrs().iter().filter_map(|cidr| match cidr {
            IpCidr::Ipv6(cidr) => Some(cidr.address()),
            IpCidr::Ipv4(_) => None,
        })
    };
    NetworkState {
        link_up,
        address_bound: has_ipv4(interface),
        ipv6_addresses: ipv6().count(),
        ipv6_address_bound: ipv6().any(|address| !address.is_unicast_link_local()),
        ipv6_default_router: config.gateway.or(slaac.router()).is_some(),
        router_advertisements: slaac.advertisements(),
    }
}

/// Gives the interface its IPv6 addresses (the link-local one of its MAC,
/// the static `ip6=`, those from router advertisements) and default router
/// (`gw6=`, else the first an advertisement named), leaving its IPv4
/// address alone; logs what came and went, and publishes the addresses in
/// xenstore, in that order.
fn apply_ipv6<'p, P: Platform<'p>>(
    platform: &P,
    config: &Ipv6Static,
    slaac: &Slaac,
    interface: &mut Interface,
    keys: &mut AddressKeys,
) {
    let HardwareAddress::Ethernet(mac) = interface.hardware_addr();
    let mut wanted: Vec<Ipv6Cidr> = Vec::from([slaac::link_local(mac)]);
    for cidr in config.address.into_iter().chain(slaac.addresses()) {
        if !wanted.contains(&cidr) {
            wanted.push(cidr);
        }
    }
    let had: Vec<Ipv6Cidr> = interface
        .ip_addrs()
        .iter()
        .filter_map(|cidr| match cidr {
            IpCidr::Ipv6(cidr) => Some(*cidr),
            IpCidr::Ipv4(_) => None,
        })
        .collect();
    let mut kept = Vec::with_capacity(wanted.len());
    interface.update_ip_addrs(|addresses| {
        addresses.retain(|cidr| !matches!(cidr, IpCidr::Ipv6(_)));
        for cidr in &wanted {
            match addresses.push(IpCidr::Ipv6(*cidr)) {
                Ok(()) => kept.push(*cidr),
                Err(_) => log::warn!("network: no room on the interface for IPv6 address {cidr}"),
            }
        }
    });
    for cidr in kept.iter().filter(|cidr| !had.contains(cidr)) {
        log::info!("network: IPv6 address {cidr}");
    }
    for cidr in had.iter().filter(|cidr| !kept.contains(cidr)) {
        log::info!("network: IPv6 address {cidr} is gone");
    }
    let router = config.gateway.or(slaac.router());
    let routes = interface.routes_mut();
    let old = routes.remove_default_ipv6_route().map(|route| route.via_router);
    if let Some(router) = router {
        let _ = routes.add_default_ipv6_route(router);
    }
    if old != router.map(IpAddress::Ipv6) {
        match router {
            Some(router) => log::info!("network: IPv6 default router {router}"),
            None => log::info!("network: no IPv6 default router"),
        }
    }
    keys.set_ipv6(&mut platform.xenstore(), kept.iter().map(|cidr| cidr.address().to_string()).collect());
}

/// Sends a router solicitation from the interface's link-local address.
fn solicit_routers<'p, 't, P: Platform<'p>>(interface: &Interface, netfront: &mut Frontend<'p, 't, P>, now: Instant) {
    let HardwareAddress::Ethernet(mac) = interface.hardware_addr();
    let frame = slaac::router_solicitation(mac, slaac::link_local(mac).address());
    send_frame::<P>(netfront, &frame, "router solicitation", now);
}

/// Sends a neighbour solicitation for `target` from the interface's
/// link-local address (see [`Slaac::take_router_to_solicit`]).
fn solicit_neighbour<'p, 't, P: Platform<'p>>(
    interface: &Interface,
    netfront: &mut Frontend<'p, 't, P>,
    target: smoltcp::wire::Ipv6Address,
    now: Instant,
) {
    let HardwareAddress::Ethernet(mac) = interface.hardware_addr();
    let frame = slaac::neighbour_solicitation(mac, slaac::link_local(mac).address(), target);
    send_frame::<P>(netfront, &frame, "neighbour solicitation", now);
}

/// Sends `frame` (a `what`) if the ring has room; if not, it is not sent
/// (a router solicitation's schedule sends another; smoltcp asks for a
/// neighbour itself when it first needs one).
fn send_frame<'p, 't, P: Platform<'p>>(netfront: &mut Frontend<'p, 't, P>, frame: &[u8], what: &str, now: Instant) {
    match netfront.transmit(now) {
        Some(token) => {
            token.consume(frame.len(), |buffer| buffer.copy_from_slice(frame));
            log::debug!("network: {what} sent");
        }
        None => log::debug!("network: no room for a {what}"),
    }
}

/// Keeps the DHCP hint's schedule: none while there is a lease, a new one
/// from `now` when there is none (the first request, a lost lease, a new
/// MAC asking afresh); logs the hint when it is due and the link is up (a
/// link that is down has said so itself). Returns when the next is due.
fn tend_lease_hint(hint: &mut Option<LeaseHint>, now: Instant, leased: bool, link_up: bool) -> Option<Instant> {
    if leased {
        *hint = None;
        return None;
    }
    let hint = hint.get_or_insert_with(|| LeaseHint::new(now));
    if let Some(waited) = hint.due(now)
        && link_up
    {
        log::warn!("{}", lease_hint::hint(waited));
    }
    Some(hint.deadline())
}

/// Acts on the DHCP socket's events: a lease configures the interface and
/// is published in xenstore; a lost one unconfigures it and is removed
/// from xenstore.
fn dhcp_events<'p, P: Platform<'p>>(
    platform: &P,
    dhcp: Option<SocketHandle>,
    address: &mut AddressKeys,
    interface: &mut Interface,
    sockets: &mut SocketSet<'static>,
) {
    let Some(handle) = dhcp else { return };
    match sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
        None => {}
        Some(dhcpv4::Event::Configured(config)) => {
            interface.update_ip_addrs(|addresses| {
                addresses.retain(|cidr| !matches!(cidr, IpCidr::Ipv4(_)));
                let _ = addresses.push(IpCidr::Ipv4(config.address));
            });
            match config.router {
                Some(router) => drop(interface.routes_mut().add_default_ipv4_route(router)),
                None => interface.routes_mut().remove_default_ipv4_route().map_or((), drop),
            }
            log::info!("network: DHCP address {} (router {:?})", config.address, config.router);
            address.set_address(&mut platform.xenstore(), Some(&config.address.address().to_string()));
        }
        Some(dhcpv4::Event::Deconfigured) => {
            let had_address = has_ipv4(interface);
            interface.update_ip_addrs(|addresses| addresses.retain(|cidr| !matches!(cidr, IpCidr::Ipv4(_))));
            interface.routes_mut().remove_default_ipv4_route();
            if had_address {
                log::warn!("network: DHCP lease lost");
            }
            address.set_address(&mut platform.xenstore(), None);
        }
    }
}

/// The counters now, but the vif's (which the caller adds: every frontend
/// the vif had).
fn gather_stats<'p, P: Platform<'p>>(platform: &P, table: &Table<'p>, cookies: &SynCookies) -> Stats {
    let events = platform.events().counters();
    let own = platform.stats();
    Stats {
        uptime_ns: platform.now(),
        start_time_ns: own.start_time_ns,
        hypercalls: own.hypercalls,
        events_sent: events.sent.load(Ordering::Relaxed),
        events_received: events.received.load(Ordering::Relaxed),
        polls: events.polls.load(Ordering::Relaxed),
        heap_used: own.heap_used,
        heap_free: own.heap_free,
        console_dropped_bytes: own.console_dropped_bytes,
        netfront: NetfrontCounters::default(),
        dma: DmaCounters::default(),
        grants: table.borrow().counters(),
        syn_cookies: cookies.counters(),
        fragments: crate::fragments::FragmentCounters::default(),
    }
}
