//! The appliance's event loop: netfront, smoltcp and the service, until the
//! toolstack asks the domain to end.
//!
//! One turn: route xenstore watch events (shutdown requests, vif changes),
//! move the netfront handshake on, let smoltcp take in at most a budget of
//! frames (`crate::budget`), let the service read and write its sockets, let
//! smoltcp send, do the rings' housekeeping (another turn at once if frames
//! are left), then sleep in `SCHEDOP_poll` on the xenstore and vif ports
//! until an event or the earliest deadline (see `docs/event-loop.md`).

use crate::budget::Budgeted;
use crate::lifecycle::{self, SHUTDOWN_TOKEN, ShutdownRequest};
use crate::memory::pages::KernelPages;
use crate::netconfig::NetConfig;
use crate::running_clock::RunningClock;
use crate::stats::KernelStats;
use crate::syn_cookies::{Guarded, SynCookies};
use crate::{CommandLine, Service, pv};
use alloc::boxed::Box;
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
use xen_pv::hypercall::Xen;
use xen_pv::xenstore::XenstoreError;

type KernelDma<'a> = GrantDma<&'a RefCell<GrantTable<'static>>, KernelPages>;
type KernelNetfront<'a> = Netfront<'a, Xen, &'a RefCell<GrantTable<'static>>, KernelPages>;

/// Bounce pages for an untrusted backend: one per ring slot each way.
const BOUNCE_PAGES: BounceCapacity = BounceCapacity { read_only_pages: 256, writable_pages: 256 };

/// Runs `service` on the network until a shutdown request.
pub fn run(mut service: Box<dyn Service>, command_line: &CommandLine<'_>) -> ShutdownRequest {
    let config = match NetConfig::from_command_line(command_line) {
        Ok(config) => config,
        Err(error) => {
            log::error!("network configuration: {error:?}; the network stays down");
            return wait_for_shutdown();
        }
    };
    let Some((backend, trusted)) = find_vif_backend() else {
        log::warn!("no network device (device/vif): the appliance has no network");
        return wait_for_shutdown();
    };
    let trust = if trusted && !command_line.has("untrusted-backend") {
        BackendTrust::Trusted
    } else {
        log::info!("backend domain {backend} is not trusted: bouncing every buffer");
        BackendTrust::Untrusted(BOUNCE_PAGES)
    };
    let table = RefCell::new(GrantTable::new(pv::grant_entries()));
    let dma = match GrantDma::new(&table, KernelPages, backend, trust) {
        Ok(dma) => dma,
        Err(error) => {
            log::error!("DMA set-up for domain {backend} failed: {error:?}; the network stays down");
            return wait_for_shutdown();
        }
    };
    let mut sockets = SocketSet::new(Vec::new());
    service.start(&mut sockets);
    EventLoop::new(&table, &dma, config, sockets, service).run()
}

/// The first vif's backend domain and whether it is trusted (`trusted`,
/// default yes).
fn find_vif_backend() -> Option<(u16, bool)> {
    let mut store = pv::xenstore();
    let names = store.directory("device/vif").ok()?;
    let name = names.into_iter().min_by_key(|name| name.parse::<u32>().unwrap_or(u32::MAX))?;
    let backend = store.read(&alloc::format!("device/vif/{name}/backend-id")).ok()?;
    let backend = netfront::xenbus::parse_domain_id(&backend)?;
    let trusted = store.read(&alloc::format!("device/vif/{name}/trusted")).map_or(true, |value| value.trim() != "0");
    Some((backend, trusted))
}

/// Sleeps until the toolstack asks the domain to end (no network).
fn wait_for_shutdown() -> ShutdownRequest {
    let ports = [pv::xenstore_port()];
    loop {
        let (request, _) = route_watch_events();
        if let Some(request) = request {
            return request;
        }
        if let Err(error) = pv::wait(&ports, None) {
            log::error!("waiting for events: {error:?}");
        }
    }
}

/// Drains the xenstore watch events: a shutdown request, and whether the
/// vif's nodes changed. However many events came, `control/shutdown` is
/// read at most once.
fn route_watch_events() -> (Option<ShutdownRequest>, bool) {
    let mut store = pv::xenstore();
    let (mut shutdown_changed, mut vif_changed) = (false, false);
    loop {
        match store.next_watch_event() {
            Ok(Some(event)) if event.token == SHUTDOWN_TOKEN => shutdown_changed = true,
            Ok(Some(event)) if event.token == netfront::WATCH_TOKEN => vif_changed = true,
            Ok(Some(event)) => log::debug!("watch event for {} ignored", event.path),
            Ok(None) => break,
            Err(error) => {
                log::warn!("xenstore: {error:?}");
                break;
            }
        }
    }
    // A read that timed out is owed, and taken again once xenstored answers.
    let owed = lifecycle::check_owed() && !store.daemon_stalled();
    let request = if shutdown_changed || owed { lifecycle::on_watch_event(&mut store) } else { None };
    (request, vif_changed)
}

struct EventLoop<'a> {
    table: &'a RefCell<GrantTable<'static>>,
    netfront: KernelNetfront<'a>,
    interface: Option<Interface>,
    sockets: SocketSet<'static>,
    service: Box<dyn Service>,
    config: NetConfig,
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

impl<'a> EventLoop<'a> {
    fn new(
        table: &'a RefCell<GrantTable<'static>>,
        dma: &'a KernelDma<'a>,
        config: NetConfig,
        sockets: SocketSet<'static>,
        service: Box<dyn Service>,
    ) -> Self {
        let netfront = Netfront::new(pv::events(), dma, NetfrontConfig::default());
        // The cookies' key: boot time in nanoseconds and the wall clock, which
        // a client on the network cannot read.
        let seed = pv::now() ^ pv::wall_clock().seconds.rotate_left(32);
        let cookies = SynCookies::new(seed);
        Self {
            table,
            netfront,
            interface: None,
            sockets,
            service,
            config,
            dhcp: None,
            control_owed: false,
            cookies,
            clock: RunningClock::default(),
        }
    }

    fn run(mut self) -> ShutdownRequest {
        if let Err(error) = self.netfront.watch(&mut pv::xenstore()) {
            log::error!("netfront: cannot watch device/vif: {error:?}");
        }
        self.control();
        // Serving from now on: a stalled xenstored may hold a turn this long.
        pv::xenstore().set_request_timeout(pv::XENSTORE_TIMEOUT_NS);
        loop {
            let (request, vif_changed) = route_watch_events();
            if let Some(request) = request {
                return request;
            }
            if vif_changed || (self.control_owed && !pv::xenstore().daemon_stalled()) {
                self.control();
            }
            let deadline = self.turn();
            self.sleep(deadline);
        }
    }

    /// Moves the vif handshake on; brings the interface up the first time.
    fn control(&mut self) {
        let outcome = self.netfront.poll_control(&mut pv::xenstore());
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
                publish_address(&address.address().to_string());
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
        let mut guarded = Guarded::new(&mut self.netfront, &mut self.cookies);
        let mut budgeted = Budgeted::new(&mut guarded);
        interface.poll(now, &mut budgeted, &mut self.sockets);
        let more_waiting = budgeted.exhausted();
        self.dhcp_events();
        let (netfront, table, cookies) = (&self.netfront, self.table, &self.cookies);
        let stats = || gather_stats(netfront, table, cookies);
        let service_deadline = self.service.poll(&mut self.sockets, now, &stats);
        let interface = self.interface.as_mut()?;
        interface.poll_egress(now, &mut Guarded::new(&mut self.netfront, &mut self.cookies), &mut self.sockets);
        self.cookies.note_pressure(self.service.syn_pressure(), now);
        if self.netfront.poll_rings() || more_waiting || self.cookies.has_replay() {
            return Some(now);
        }
        let stack_deadline = interface.poll_at(now, &self.sockets);
        [service_deadline, stack_deadline].into_iter().flatten().min()
    }

    fn dhcp_events(&mut self) {
        let (Some(handle), Some(interface)) = (self.dhcp, self.interface.as_mut()) else { return };
        match self.sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
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
                publish_address(&config.address.address().to_string());
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

    /// Sleeps until an event on the xenstore or vif port, or the deadline.
    fn sleep(&mut self, deadline: Option<Instant>) {
        if self.netfront.broken_link() {
            self.control();
            return;
        }
        // Requests made this turn may have taken the xenstore port's pending
        // bit and queued watch events: route them before sleeping.
        if pv::xenstore().queued_watch_events() > 0 {
            return;
        }
        let mut ports = Vec::with_capacity(2);
        ports.push(pv::xenstore_port());
        ports.extend(self.netfront.port());
        let deadline_ns =
            deadline.map(|instant| self.clock.system_time_of(instant.total_micros().max(0) as u64 * 1000));
        self.clock.sleeping(deadline_ns);
        if let Err(error) = pv::wait(&ports, deadline_ns) {
            log::error!("waiting for events: {error:?}");
        }
    }

    /// smoltcp's and the service's clock: system time less the time the
    /// domain did not run (`crate::running_clock`).
    fn now(&mut self) -> Instant {
        Instant::from_micros((self.clock.now(pv::now()) / 1000) as i64)
    }
}

/// Writes the interface's address to `data/ipv4-address` in xenstore, where
/// dom0's tools (and the test host) find it.
fn publish_address(address: &str) {
    if let Err(error) = pv::xenstore().write("data/ipv4-address", address) {
        log::warn!("publishing the address in xenstore: {error:?}");
    }
}

/// The kernel's counters now.
fn gather_stats(
    netfront: &KernelNetfront<'_>,
    table: &RefCell<GrantTable<'static>>,
    cookies: &SynCookies,
) -> KernelStats {
    let events = pv::events().counters();
    let heap = crate::heap_stats();
    KernelStats {
        uptime_ns: pv::now(),
        hypercalls: xen_pv::hypercall::HYPERCALLS.load(Ordering::Relaxed),
        events_sent: events.sent.load(Ordering::Relaxed),
        events_received: events.received.load(Ordering::Relaxed),
        polls: events.polls.load(Ordering::Relaxed),
        heap_used: heap.used as u64,
        heap_free: heap.free as u64,
        console_dropped_bytes: crate::console::DROPPED_BYTES.load(Ordering::Relaxed),
        netfront: netfront.counters(),
        dma: netfront.dma_counters(),
        grants: table.borrow().counters(),
        syn_cookies: cookies.counters(),
    }
}
