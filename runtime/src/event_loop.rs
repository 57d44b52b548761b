//! The appliance's event loop: netfront, smoltcp and the service, until the
//! toolstack asks the domain to end.
//!
//! One turn: route xenstore watch events (shutdown requests, vif changes),
//! move the netfront handshake on, let smoltcp take in at most a budget of
//! frames (`crate::budget`), let the service read and write its sockets, let
//! smoltcp send, do the rings' housekeeping (another turn at once if frames
//! are left), then sleep on the xenstore and vif ports until an event or
//! the earliest deadline (see `docs/event-loop.md`).

use crate::Service;
use crate::data_path;
use crate::lifecycle::{Lifecycle, SHUTDOWN_TOKEN, ShutdownRequest};
use crate::netconfig::NetConfig;
use crate::platform::Platform;
use crate::running_clock::RunningClock;
use crate::stats::Stats;
use crate::syn_cookies::SynCookies;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::sync::atomic::Ordering;
use dma::{BackendTrust, BounceCapacity, GrantDma};
use netfront::{Netfront, NetfrontConfig, NetfrontError};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr};
use xen_pv::grant_table::GrantTable;
use xen_pv::xenstore::{DEFAULT_REQUEST_TIMEOUT_NS, XenstoreError};

/// The grant table the DMA device allocates references from.
type Table<'p> = RefCell<GrantTable<'p>>;
/// The DMA device for the vif's backend.
type Dma<'p, 't, P> = GrantDma<&'t Table<'p>, <P as Platform<'p>>::Pages>;
/// The frontend on it.
type Frontend<'p, 't, P> = Netfront<'t, <P as Platform<'p>>::Hypervisor, &'t Table<'p>, <P as Platform<'p>>::Pages>;

/// Bounce pages for an untrusted backend: one per ring slot each way.
pub const BOUNCE_PAGES: BounceCapacity = BounceCapacity { read_only_pages: 256, writable_pages: 256 };

/// How often the stack is polled while the vif has no link.
const LINK_DOWN_POLL: smoltcp::time::Duration = smoltcp::time::Duration::from_millis(100);

/// How the runtime sets up the network.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How the interface gets its address.
    pub net: NetConfig,
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
}

impl RuntimeConfig {
    /// The guest's configuration for `net`.
    pub fn new(net: NetConfig) -> Self {
        Self {
            net,
            force_untrusted: false,
            netfront: NetfrontConfig::default(),
            bounce: BOUNCE_PAGES,
            xenstore_timeout_ns: DEFAULT_REQUEST_TIMEOUT_NS,
        }
    }
}

/// Runs `service` on the network until the toolstack asks the domain to
/// end; returns that request.
pub fn run<'p, P: Platform<'p>, S: Service>(platform: &P, config: &RuntimeConfig, service: &mut S) -> ShutdownRequest {
    let mut lifecycle = start_lifecycle(platform);
    let Some((backend, trusted)) = find_vif_backend(platform) else {
        log::warn!("no network device (device/vif): the appliance has no network");
        return wait_for_shutdown(platform, &mut lifecycle);
    };
    let trust = if trusted && !config.force_untrusted {
        BackendTrust::Trusted
    } else {
        log::info!("backend domain {backend} is not trusted: bouncing every buffer");
        BackendTrust::Untrusted(config.bounce)
    };
    let table = RefCell::new(GrantTable::new(platform.grant_entries()));
    let dma = match GrantDma::new(&table, platform.pages(), backend, trust) {
        Ok(dma) => dma,
        Err(error) => {
            log::error!("DMA set-up for domain {backend} failed: {error:?}; the network stays down");
            return wait_for_shutdown(platform, &mut lifecycle);
        }
    };
    let mut sockets = SocketSet::new(Vec::new());
    service.start(&mut sockets);
    EventLoop::new(platform, &table, &dma, config, sockets, service, lifecycle).run()
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

/// The first vif's backend domain and whether it is trusted (`trusted`,
/// default yes).
fn find_vif_backend<'p, P: Platform<'p>>(platform: &P) -> Option<(u16, bool)> {
    let mut store = platform.xenstore();
    let names = store.directory("device/vif").ok()?;
    let name = names.into_iter().min_by_key(|name| name.parse::<u32>().unwrap_or(u32::MAX))?;
    let backend = store.read(&alloc::format!("device/vif/{name}/backend-id")).ok()?;
    let backend = netfront::xenbus::parse_domain_id(&backend)?;
    let trusted = store.read(&alloc::format!("device/vif/{name}/trusted")).map_or(true, |value| value.trim() != "0");
    Some((backend, trusted))
}

/// Sleeps until the toolstack asks the domain to end (no network).
fn wait_for_shutdown<'p, P: Platform<'p>>(platform: &P, lifecycle: &mut Lifecycle) -> ShutdownRequest {
    loop {
        let (request, _) = route_watch_events(platform, lifecycle, &mut |_| {});
        if let Some(request) = request {
            return request;
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
) -> (Option<ShutdownRequest>, bool) {
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
    netfront: Frontend<'p, 't, P>,
    interface: Option<Interface>,
    sockets: SocketSet<'static>,
    service: &'t mut S,
    config: NetConfig,
    xenstore_timeout_ns: u64,
    lifecycle: Lifecycle,
    dhcp: Option<SocketHandle>,
    /// A handshake step timed out: take it again once xenstored answers
    /// (no watch event will ask).
    control_owed: bool,
    /// SYN cookies in front of smoltcp (on while the service reports SYN
    /// pressure).
    cookies: SynCookies,
    /// The network's time: system time less pauses.
    clock: RunningClock,
}

impl<'p, 't, P: Platform<'p>, S: Service> EventLoop<'p, 't, P, S> {
    fn new(
        platform: &'t P,
        table: &'t Table<'p>,
        dma: &'t Dma<'p, 't, P>,
        config: &RuntimeConfig,
        sockets: SocketSet<'static>,
        service: &'t mut S,
        lifecycle: Lifecycle,
    ) -> Self {
        let netfront = Netfront::new(platform.events(), dma, config.netfront);
        Self {
            platform,
            table,
            netfront,
            interface: None,
            sockets,
            service,
            config: config.net,
            xenstore_timeout_ns: config.xenstore_timeout_ns,
            lifecycle,
            dhcp: None,
            control_owed: false,
            cookies: SynCookies::new(platform.secret_seed()),
            clock: RunningClock::default(),
        }
    }

    fn run(mut self) -> ShutdownRequest {
        if let Err(error) = self.netfront.watch(&mut self.platform.xenstore()) {
            log::error!("netfront: cannot watch device/vif: {error:?}");
        }
        self.control();
        // Serving from now on: a stalled xenstored may hold a turn this long.
        self.platform.xenstore().set_request_timeout(self.xenstore_timeout_ns);
        loop {
            let netfront = &mut self.netfront;
            let (request, vif_changed) =
                route_watch_events(self.platform, &mut self.lifecycle, &mut |path| netfront.watch_event(path));
            if let Some(request) = request {
                return request;
            }
            if vif_changed || (self.control_owed && !self.platform.xenstore().daemon_stalled()) {
                self.control();
            }
            let deadline = self.turn();
            self.sleep(deadline);
        }
    }

    /// Moves the vif handshake on; brings the interface up the first time.
    fn control(&mut self) {
        let outcome = self.netfront.poll_control(&mut self.platform.xenstore());
        self.control_owed = outcome == Err(NetfrontError::Xenstore(XenstoreError::TimedOut));
        if let Err(error) = outcome {
            log::error!("netfront: {error:?}");
        }
        let Some(mac) = self.netfront.device().map(|device| EthernetAddress(device.mac.0)) else { return };
        match self.interface.as_mut() {
            None => self.interface = Some(self.make_interface(mac)),
            Some(interface) if interface.hardware_addr() != HardwareAddress::Ethernet(mac) => {
                // A new vif (xl network-attach) brings a new address: use it,
                // and ask for a lease for it.
                log::info!("network: the interface's address is now {mac}");
                interface.set_hardware_addr(HardwareAddress::Ethernet(mac));
                if let Some(handle) = self.dhcp {
                    self.sockets.get_mut::<dhcpv4::Socket>(handle).reset();
                }
            }
            Some(_) => {}
        }
    }

    fn make_interface(&mut self, mac: EthernetAddress) -> Interface {
        let config = Config::new(HardwareAddress::Ethernet(mac));
        let now = self.now();
        let mut interface = Interface::new(config, &mut self.netfront, now);
        match self.config {
            NetConfig::Static { address, gateway } => {
                interface.update_ip_addrs(|addresses| {
                    let _ = addresses.push(IpCidr::Ipv4(address));
                });
                if let Some(gateway) = gateway {
                    let _ = interface.routes_mut().add_default_ipv4_route(gateway);
                }
                log::info!("network: static address {address}");
                publish_address(self.platform, &address.address().to_string());
            }
            NetConfig::Dhcp => {
                self.dhcp = Some(self.sockets.add(dhcpv4::Socket::new()));
                log::info!("network: asking for an address by DHCP");
            }
        }
        interface
    }

    /// One pass over the data path; returns the earliest deadline.
    fn turn(&mut self) -> Option<Instant> {
        if self.netfront.take_notification() {
            log::trace!("netfront: notified");
        }
        let now = self.now();
        let interface = self.interface.as_mut()?;
        let (platform, table, dhcp) = (self.platform, self.table, self.dhcp);
        let pass = data_path::pass(
            interface,
            &mut self.netfront,
            &mut self.cookies,
            &mut self.sockets,
            &mut *self.service,
            now,
            |interface, sockets| dhcp_events(platform, dhcp, interface, sockets),
            |netfront, cookies| gather_stats(platform, netfront, table, cookies),
        );
        let more_waiting = pass.frames_left;
        let service_deadline = pass.service_deadline;
        let interface = self.interface.as_mut()?;
        if self.netfront.poll_rings() || more_waiting || self.cookies.has_replay() {
            return Some(now);
        }
        let mut stack_deadline = interface.poll_at(now, &self.sockets);
        if !self.netfront.is_up() {
            // Nothing can be sent: a retransmission due now would be due
            // again at once, a busy loop until the link is back. Xenstore
            // events bring the link back; until then, look now and then.
            stack_deadline = stack_deadline.map(|deadline| deadline.max(now + LINK_DOWN_POLL));
        }
        [service_deadline, stack_deadline].into_iter().flatten().min()
    }

    /// Sleeps until an event on the xenstore or vif port, or the deadline.
    fn sleep(&mut self, deadline: Option<Instant>) {
        if self.netfront.broken_link() {
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
        ports.extend(self.netfront.port());
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

/// Acts on the DHCP socket's events: a lease configures the interface and
/// is published in xenstore; a lost one unconfigures it.
fn dhcp_events<'p, P: Platform<'p>>(
    platform: &P,
    dhcp: Option<SocketHandle>,
    interface: &mut Interface,
    sockets: &mut SocketSet<'static>,
) {
    let Some(handle) = dhcp else { return };
    match sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
        None => {}
        Some(dhcpv4::Event::Configured(config)) => {
            interface.update_ip_addrs(|addresses| {
                addresses.clear();
                let _ = addresses.push(IpCidr::Ipv4(config.address));
            });
            match config.router {
                Some(router) => drop(interface.routes_mut().add_default_ipv4_route(router)),
                None => interface.routes_mut().remove_default_ipv4_route().map_or((), drop),
            }
            log::info!("network: DHCP address {} (router {:?})", config.address, config.router);
            publish_address(platform, &config.address.address().to_string());
        }
        Some(dhcpv4::Event::Deconfigured) => {
            let had_address = !interface.ip_addrs().is_empty();
            interface.update_ip_addrs(|addresses| addresses.clear());
            interface.routes_mut().remove_default_ipv4_route();
            if had_address {
                log::warn!("network: DHCP lease lost");
            }
        }
    }
}

/// Writes the interface's address to `data/ipv4-address` in xenstore,
/// where dom0's tools (and the test host) find it.
fn publish_address<'p, P: Platform<'p>>(platform: &P, address: &str) {
    if let Err(error) = platform.xenstore().write("data/ipv4-address", address) {
        log::warn!("publishing the address in xenstore: {error:?}");
    }
}

/// The counters now.
fn gather_stats<'p, P: Platform<'p>>(
    platform: &P,
    netfront: &Frontend<'p, '_, P>,
    table: &Table<'p>,
    cookies: &SynCookies,
) -> Stats {
    let events = platform.events().counters();
    let own = platform.stats();
    Stats {
        uptime_ns: platform.now(),
        hypercalls: own.hypercalls,
        events_sent: events.sent.load(Ordering::Relaxed),
        events_received: events.received.load(Ordering::Relaxed),
        polls: events.polls.load(Ordering::Relaxed),
        heap_used: own.heap_used,
        heap_free: own.heap_free,
        console_dropped_bytes: own.console_dropped_bytes,
        netfront: netfront.counters(),
        dma: netfront.dma_counters(),
        grants: table.borrow().counters(),
        syn_cookies: cookies.counters(),
    }
}
