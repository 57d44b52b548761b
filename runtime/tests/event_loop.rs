//! The production event loop ([`runtime::run`]) on the simulated Xen: the
//! vif found in xenstore, the handshake with the simulated netback, a DHCP
//! lease from dom0, a TCP connection from dom0 served, the vif detached and
//! attached again with another MAC, served by another (untrusted) backend
//! domain (a new DMA device: bouncing, granting to the new domain; the old
//! one closed; a new lease, served again), and the toolstack's shutdown
//! request ending the run. And a domain started with no vif, served once
//! one is attached. The service learns the domain's name and id before it
//! starts (from the keys the toolstack wrote, or none).
#![forbid(unsafe_code)]

use dma::sim::SimPageSource;
use netfront::NetfrontConfig;
use runtime::testing::{Dom0, GUEST_ADDRESS, SimPlatform, World};
use runtime::{Instance, NetConfig, RuntimeConfig, Service, ShutdownRequest, Stats};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::IpAddress;
use std::sync::atomic::Ordering;
use xen_pv::abi::DomainId;
use xen_pv::event_channel::EventChannels;
use xen_sim::SimXen;
use xen_sim::netback::{Attachment, Detach, NetbackOptions};

/// The port the test service echoes on.
const ECHO_PORT: u16 = 7;
/// Simulated time after which the world gives up and asks the guest to end.
const GIVE_UP_NS: u64 = 120_000_000_000;
/// The driver domain the vif is attached to the second time.
const DRIVER_DOMAIN: DomainId = 2;

/// A TCP echo service on one socket; notes which instance it was told it
/// is (and whether before it started), and the runtime's counters each
/// time it echoes.
#[derive(Default)]
struct Echo {
    socket: Option<SocketHandle>,
    stats_when_echoing: Vec<Stats>,
    identified_before_start: Option<Instance>,
}

impl Service for Echo {
    fn identify(&mut self, instance: &Instance) {
        assert!(self.socket.is_none(), "identified before start");
        self.identified_before_start = Some(instance.clone());
    }

    fn start(&mut self, sockets: &mut SocketSet<'static>) {
        let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 2048]), tcp::SocketBuffer::new(vec![0; 2048]));
        self.socket = Some(sockets.add(socket));
    }

    fn poll(&mut self, sockets: &mut SocketSet<'static>, _: Instant, stats: &dyn Fn() -> Stats) -> Option<Instant> {
        let socket = sockets.get_mut::<tcp::Socket>(self.socket.expect("started"));
        if !socket.is_open() {
            socket.listen(ECHO_PORT).expect("listen");
        }
        while socket.can_recv() && socket.can_send() {
            let mut buffer = [0; 512];
            let read = socket.recv_slice(&mut buffer).expect("recv");
            socket.send_slice(&buffer[..read]).expect("send");
            self.stats_when_echoing.push(stats());
        }
        if socket.state() == tcp::State::CloseWait {
            socket.close();
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The domain has no vif until this simulated time: then one is
    /// attached (`xl network-attach` after boot).
    NoVif { attach_at: u64 },
    /// Until the guest publishes its leased address.
    Lease,
    /// A client connects, sends, and waits for the echo.
    Echo { round: u32 },
    /// The vif is being detached.
    Detaching,
    /// Attached again with another MAC, to another backend domain: until
    /// the next lease.
    NewLease,
    /// Asked the guest to end.
    Done,
}

/// Dom0 and the test's script.
struct Script<'x> {
    dom0: Dom0<'x>,
    phase: Phase,
    client: Option<SocketHandle>,
    echoed: Vec<u32>,
    leases_before_reattach: u64,
    /// The backend domains the guest's live grants were for, at each echo.
    granted_to: Vec<Vec<DomainId>>,
    /// After the first echo, move the vif to the driver domain (else end).
    move_after_first_echo: bool,
}

const GREETING: &[u8] = b"hello from dom0";

impl World for Script<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        let now = xen.now();
        if now > GIVE_UP_NS && self.phase != Phase::Done {
            self.dom0.request_shutdown(xen);
            self.phase = Phase::Done;
        }
        match self.phase {
            Phase::NoVif { attach_at } if now >= attach_at => {
                self.dom0.netback.attach();
                self.phase = Phase::Lease;
            }
            Phase::Lease if self.dom0.published_address(xen).as_deref() == Some("10.88.0.2") => {
                self.connect(1);
            }
            Phase::Echo { round, .. } => {
                let socket = self.dom0.sockets.get_mut::<tcp::Socket>(self.client.expect("connected"));
                if socket.can_send()
                    && socket.send_queue() == 0
                    && socket.recv_queue() == 0
                    && self.echoed.len() < round as usize
                {
                    let _ = socket.send_slice(GREETING);
                }
                if socket.recv_queue() >= GREETING.len() {
                    let mut answer = [0; 64];
                    let read = socket.recv_slice(&mut answer).expect("recv");
                    assert_eq!(&answer[..read], GREETING, "the echo");
                    socket.close();
                    self.echoed.push(round);
                    self.granted_to.push(live_grant_domains(xen));
                    if round == 1 && self.move_after_first_echo {
                        self.dom0.netback.detach(Detach::Graceful);
                        self.phase = Phase::Detaching;
                    } else {
                        self.dom0.request_shutdown(xen);
                        self.phase = Phase::Done;
                    }
                }
            }
            Phase::Detaching if self.dom0.netback.attachment() == Attachment::Detached => {
                self.leases_before_reattach = self.dom0.leases;
                let options = NetbackOptions {
                    mac: [0x00, 0x16, 0x3e, 0x00, 0x00, 0x02],
                    backend_domain: DRIVER_DOMAIN,
                    trusted: Some(false),
                    ..NetbackOptions::default()
                };
                self.dom0.netback.attach_with(options);
                // Dom0's own neighbour entry for the guest names the old MAC:
                // start its stack afresh, as a new client host.
                self.dom0.forget_neighbours(xen);
                self.phase = Phase::NewLease;
            }
            Phase::NewLease if self.dom0.leases > self.leases_before_reattach => self.connect(2),
            _ => {}
        }
    }
}

impl Script<'_> {
    fn connect(&mut self, round: u32) {
        let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 2048]), tcp::SocketBuffer::new(vec![0; 2048]));
        let handle = self.dom0.sockets.add(socket);
        let context = self.dom0.interface.context();
        self.dom0
            .sockets
            .get_mut::<tcp::Socket>(handle)
            .connect(context, (IpAddress::Ipv4(GUEST_ADDRESS), ECHO_PORT), 40_000 + round as u16)
            .expect("connect");
        self.client = Some(handle);
        self.phase = Phase::Echo { round };
    }
}

/// The domains the guest's live grants are for, each once, in order.
fn live_grant_domains(xen: &SimXen) -> Vec<DomainId> {
    let mut domains: Vec<DomainId> = xen
        .grants()
        .current_entries()
        .iter()
        .filter(|entry| entry.flags.load(Ordering::SeqCst) != 0)
        .map(|entry| entry.domid.load(Ordering::SeqCst))
        .collect();
    domains.sort_unstable();
    domains.dedup();
    domains
}

/// Prints the runtime's log when `TRACE_WORLD` is set.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        eprintln!("[{}] {}", record.level(), record.args());
    }
    fn flush(&self) {}
}

/// Runs the production loop against `script`; returns the service, the
/// request the run ended with, and the script.
fn run_world<'x>(mut script: Script<'x>, xen: &'x SimXen) -> (Echo, ShutdownRequest, Script<'x>) {
    if std::env::var_os("TRACE_WORLD").is_some() {
        let _ = log::set_logger(&StderrLog).map(|()| log::set_max_level(log::LevelFilter::Debug));
    }
    let events = EventChannels::new(xen, xen.shared_info());
    let pages = SimPageSource::new(xen.grants());
    if let Phase::NoVif { .. } = script.phase {
        script.dom0.netback.detach(Detach::Forced);
    }
    let platform = SimPlatform::new(xen, &events, &pages, script);
    let config = RuntimeConfig {
        netfront: NetfrontConfig { rx_buffers: 32, tx_buffers: 32 },
        ..RuntimeConfig::new(NetConfig::Dhcp)
    };
    let mut service = Echo::default();
    let request = runtime::run(&platform, &config, &mut service);
    let script = platform.into_world();
    assert!(xen.now() < GIVE_UP_NS, "done in time (ended in {:?})", script.phase);
    assert_eq!(
        xen.with_xenstore(|store| store.read_as_dom0("/local/domain/1/control/shutdown")).as_deref(),
        Some(""),
        "the request acknowledged"
    );
    (service, request, script)
}

fn script(xen: &SimXen, phase: Phase, move_after_first_echo: bool) -> Script<'_> {
    Script {
        dom0: Dom0::new(xen, NetbackOptions::default()),
        phase,
        client: None,
        echoed: Vec::new(),
        leases_before_reattach: 0,
        granted_to: Vec::new(),
        move_after_first_echo,
    }
}

#[test]
fn the_production_loop_leases_serves_moves_to_a_new_backend_domain_and_shuts_down() {
    let xen = SimXen::new(4);
    xen.with_xenstore(|store| {
        store.write_as_dom0("/local/domain/1/name", "xenecho-sim");
        store.write_as_dom0("/local/domain/1/domid", "1");
    });
    let (service, request, script) = run_world(script(&xen, Phase::Lease, true), &xen);
    assert_eq!(request, ShutdownRequest::Poweroff);
    let told = Instance { name: Some("xenecho-sim".into()), domid: Some(1) };
    assert_eq!(service.identified_before_start, Some(told), "the toolstack's name and domain id");
    assert_eq!(script.echoed, [1, 2], "served before and after the new vif");
    assert!(script.dom0.leases >= 2, "a lease for each MAC");
    // The new vif's backend got a DMA device of its own: every live grant
    // is for the driver domain (the first device, granting to dom0, is
    // closed), and it bounces, as the toolstack said it is untrusted.
    assert_eq!(script.granted_to, [vec![0], vec![DRIVER_DOMAIN]], "the domains granted to, at each echo");
    let (first, last) = (&service.stats_when_echoing[0], service.stats_when_echoing.last().expect("echoed"));
    assert_eq!(first.dma.bounce_copies, 0, "the first backend is trusted");
    assert!(last.dma.bounce_copies > 0, "the untrusted backend's device bounces");
    assert!(last.netfront.connects >= 2 && last.netfront.rx_frames > first.netfront.rx_frames, "counters carry over");
}

/// A domain started with no vif waits for one, and serves once one is
/// attached.
#[test]
fn a_vif_attached_after_boot_is_used() {
    let xen = SimXen::new(4);
    let (service, request, script) = run_world(script(&xen, Phase::NoVif { attach_at: 5_000_000_000 }, false), &xen);
    assert_eq!(request, ShutdownRequest::Poweroff);
    assert_eq!(service.identified_before_start, Some(Instance::default()), "no keys: nothing known, still told");
    assert_eq!(script.echoed, [1], "served on the vif attached after boot");
    assert_eq!(script.granted_to, [vec![0]]);
    assert_eq!(script.dom0.leases, 1);
}

/// Dom0 keeps the vif's transmit ring mapped past a detach (a slow or
/// stuck backend), then lets go with no event to tell the guest: the loop
/// still offers the page back within about a second and frees it.
struct HeldRing<'x> {
    dom0: Dom0<'x>,
    pages: &'x SimPageSource<'x>,
    held: Option<xen_sim::grant_table::SimMapping>,
    /// When dom0 let go of the ring, and when the guest had freed every page.
    released_at: Option<u64>,
    freed_at: Option<u64>,
}

/// How long dom0 holds the ring after the detach.
const HOLD_NS: u64 = 3_000_000_000;

impl World for HeldRing<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        let now = xen.now();
        if now > GIVE_UP_NS && self.freed_at.is_none() {
            self.freed_at = Some(now);
            self.dom0.request_shutdown(xen);
        }
        if self.held.is_none() && self.released_at.is_none() && self.dom0.netback.is_connected() {
            let reference = xen.with_xenstore(|store| store.read_as_dom0("/local/domain/1/device/vif/0/tx-ring-ref"));
            let reference = reference.and_then(|text| text.parse().ok()).expect("the ring's grant");
            self.held = Some(xen.grants().map(0, reference, true).expect("dom0 maps the ring"));
            self.dom0.netback.detach(Detach::Graceful);
            self.released_at = Some(now + HOLD_NS);
        }
        if let Some(release) = self.released_at
            && now >= release
            && let Some(mapping) = self.held.take()
        {
            xen.grants().unmap(mapping).expect("dom0 lets go");
            self.released_at = Some(now);
        }
        if self.held.is_none()
            && self.released_at.is_some()
            && self.freed_at.is_none()
            && self.dom0.netback.attachment() == Attachment::Detached
            && self.pages.outstanding_pages() == 0
        {
            self.freed_at = Some(now);
            self.dom0.request_shutdown(xen);
        }
    }
}

#[test]
fn a_ring_the_backend_held_is_freed_within_a_second_of_its_release() {
    let xen = SimXen::new(4);
    let events = EventChannels::new(&xen, xen.shared_info());
    let pages = SimPageSource::new(xen.grants());
    let world = HeldRing {
        dom0: Dom0::new(&xen, NetbackOptions::default()),
        pages: &pages,
        held: None,
        released_at: None,
        freed_at: None,
    };
    let platform = SimPlatform::new(&xen, &events, &pages, world);
    let config = RuntimeConfig {
        netfront: NetfrontConfig { rx_buffers: 32, tx_buffers: 32 },
        ..RuntimeConfig::new(NetConfig::Dhcp)
    };
    assert_eq!(runtime::run(&platform, &config, &mut Echo::default()), ShutdownRequest::Poweroff);
    let world = platform.into_world();
    let (released, freed) = (world.released_at.expect("held and released"), world.freed_at.expect("ended"));
    assert!(freed < GIVE_UP_NS, "every page freed");
    assert!(freed - released <= 1_100_000_000, "freed {} ms after the release", (freed - released) / 1_000_000);
}
