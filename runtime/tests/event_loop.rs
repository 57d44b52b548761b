//! The production event loop ([`runtime::run`]) on the simulated Xen: the
//! vif found in xenstore, the handshake with the simulated netback, a DHCP
//! lease from dom0, a TCP connection from dom0 served, the vif detached and
//! attached again with another MAC, served by another (untrusted) backend
//! domain (a new DMA device: bouncing, granting to the new domain; the old
//! one closed; a new lease, served again), and the toolstack's shutdown
//! request ending the run. And a domain started with no vif, served once
//! one is attached; requests the guest does not carry out (junk) left
//! unacknowledged while it keeps serving; and the address published
//! where toolstacks look (`attr/vif/<dev>/ipv4/0`) beside
//! `data/ipv4-address`, moved with the vif's number and removed with the
//! lease. The service learns the domain's name and id before it starts
//! (from the keys the toolstack wrote, or none).
#![forbid(unsafe_code)]

use dma::sim::SimPageSource;
use netfront::NetfrontConfig;
use runtime::testing::{Dom0, EchoService, SimPlatform, World};
use runtime::{Instance, NetConfig, RuntimeConfig, ShutdownRequest};
use smoltcp::iface::SocketHandle;
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};
use std::sync::atomic::Ordering;
use xen_pv::abi::DomainId;
use xen_pv::event_channel::EventChannels;
use xen_sim::SimXen;
use xen_sim::netback::{Attachment, Detach, NetbackOptions};

/// Simulated time after which the world gives up and asks the guest to end.
const GIVE_UP_NS: u64 = 120_000_000_000;
/// The driver domain the vif is attached to the second time.
const DRIVER_DOMAIN: DomainId = 2;
/// The toolstack's request key, as dom0 names it.
const SHUTDOWN_PATH: &str = "/local/domain/1/control/shutdown";
/// The address dom0's DHCP server leases, as published.
const LEASED: &str = "10.88.0.2";

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
    /// The IPv6 addresses published for vif 0, at each echo.
    ipv6_published: Vec<Vec<String>>,
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
            Phase::Lease if self.dom0.published_address(xen).as_deref() == Some(LEASED) => {
                self.connect(1);
            }
            Phase::Echo { round, .. } => {
                let echoed = self.dom0.greet(self.client.expect("connected"), GREETING);
                if echoed {
                    self.echoed.push(round);
                    self.granted_to.push(live_grant_domains(xen));
                    self.ipv6_published.push(self.dom0.published_ipv6(xen, 0));
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
        self.client = Some(self.dom0.connect_to_echo(40_000 + round as u16));
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

/// Runs the production loop, addressed as `net` says, against `world`;
/// returns the service, the request the run ended with (acknowledged), and
/// the world.
fn run_loop<W: World>(world: W, xen: &SimXen, net: NetConfig) -> (EchoService, ShutdownRequest, W) {
    if std::env::var_os("TRACE_WORLD").is_some() {
        let _ = log::set_logger(&StderrLog).map(|()| log::set_max_level(log::LevelFilter::Debug));
    }
    let events = EventChannels::new(xen, xen.shared_info());
    let pages = SimPageSource::new(xen.grants());
    let platform = SimPlatform::new(xen, &events, &pages, world);
    let config = RuntimeConfig {
        netfront: NetfrontConfig { rx_buffers: 32, tx_buffers: 32, large_segments: true, tx_large_segments: true },
        ..RuntimeConfig::new(net)
    };
    let mut service = EchoService::default();
    let request = runtime::run(&platform, &config, &mut service);
    let world = platform.into_world();
    assert_eq!(
        xen.with_xenstore(|store| store.read_as_dom0(SHUTDOWN_PATH)).as_deref(),
        Some(""),
        "the request acknowledged"
    );
    (service, request, world)
}

/// Runs the production loop against `script`; returns the service, the
/// request the run ended with, and the script.
fn run_world<'x>(mut script: Script<'x>, xen: &'x SimXen) -> (EchoService, ShutdownRequest, Script<'x>) {
    if let Phase::NoVif { .. } = script.phase {
        script.dom0.netback.detach(Detach::Forced);
    }
    let (service, request, script) = run_loop(script, xen, NetConfig::Dhcp);
    assert!(xen.now() < GIVE_UP_NS, "done in time (ended in {:?})", script.phase);
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
        ipv6_published: Vec::new(),
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
    assert!(service.identified_before_start, "told before it started");
    assert_eq!(service.identified, [told], "the toolstack's name and domain id");
    assert_eq!(script.echoed, [1, 2], "served before and after the new vif");
    assert!(script.dom0.leases >= 2, "a lease for each MAC");
    // The new vif's backend got a DMA device of its own: every live grant
    // is for the driver domain (the first device, granting to dom0, is
    // closed), and it bounces, as the toolstack said it is untrusted.
    assert_eq!(script.granted_to, [vec![0], vec![DRIVER_DOMAIN]], "the domains granted to, at each echo");
    let (first, last) = (&service.stats[0], service.stats.last().expect("echoed"));
    assert_eq!(first.dma.bounce_copies, 0, "the first backend is trusted");
    assert!(last.dma.bounce_copies > 0, "the untrusted backend's device bounces");
    assert!(last.netfront.connects >= 2 && last.netfront.rx_frames > first.netfront.rx_frames, "counters carry over");
    // The new MAC gives a new link-local address, published in place of
    // the old one.
    let new_link_local =
        runtime::slaac::link_local(smoltcp::wire::EthernetAddress([0x00, 0x16, 0x3e, 0x00, 0x00, 0x02])).address();
    assert_eq!(script.ipv6_published.len(), 2);
    assert_eq!(script.ipv6_published[1], [new_link_local.to_string()], "the new MAC's link-local address");
    assert_eq!(script.ipv6_published[0].len(), 1);
    assert_ne!(script.ipv6_published[0], script.ipv6_published[1], "the old MAC's before");
}

/// A domain started with no vif waits for one, and serves once one is
/// attached.
#[test]
fn a_vif_attached_after_boot_is_used() {
    let xen = SimXen::new(4);
    let (service, request, script) = run_world(script(&xen, Phase::NoVif { attach_at: 5_000_000_000 }, false), &xen);
    assert_eq!(request, ShutdownRequest::Poweroff);
    assert_eq!(service.identified, [Instance::default()], "no keys: nothing known, still told");
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
        netfront: NetfrontConfig { rx_buffers: 32, tx_buffers: 32, large_segments: true, tx_large_segments: true },
        ..RuntimeConfig::new(NetConfig::Dhcp)
    };
    assert_eq!(runtime::run(&platform, &config, &mut EchoService::default()), ShutdownRequest::Poweroff);
    let world = platform.into_world();
    let (released, freed) = (world.released_at.expect("held and released"), world.freed_at.expect("ended"));
    assert!(freed < GIVE_UP_NS, "every page freed");
    assert!(freed - released <= 1_100_000_000, "freed {} ms after the release", (freed - released) / 1_000_000);
}

/// What dom0 writes to `control/shutdown` that the guest does not carry
/// out: values no toolstack writes (`suspend` is carried out on x86_64,
/// see `tests/suspend.rs`; where it is not, `lifecycle.rs` tests it).
const UNSUPPORTED: [&str; 2] = ["hibernate", "hibernate and dance"];

/// Dom0 writes each of [`UNSUPPORTED`] in turn, a second apart, reading
/// the key back a second after each; then a client is served, and dom0
/// asks for a poweroff.
struct Unsupported<'x> {
    dom0: Dom0<'x>,
    /// How many of [`UNSUPPORTED`] were written, and when the last was.
    written: usize,
    written_at: u64,
    /// `control/shutdown` as dom0 read it a second after each write.
    left: Vec<Option<String>>,
    client: Option<SocketHandle>,
    served: bool,
    done: bool,
}

impl World for Unsupported<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        let now = xen.now();
        if self.done {
            return;
        }
        if now > GIVE_UP_NS {
            self.end(xen);
            return;
        }
        let a_second_on = now >= self.written_at + 1_000_000_000;
        match self.client {
            Some(client) => {
                let echoed = self.dom0.greet(client, GREETING);
                if echoed {
                    self.served = true;
                    self.end(xen);
                }
            }
            None if self.written == 0 && self.dom0.published_address(xen).as_deref() == Some(LEASED) => self.ask(xen),
            None if self.written > 0 && a_second_on => {
                self.left.push(xen.with_xenstore(|store| store.read_as_dom0(SHUTDOWN_PATH)));
                if self.written < UNSUPPORTED.len() {
                    self.ask(xen);
                } else {
                    self.client = Some(self.dom0.connect_to_echo(40_001));
                }
            }
            None => {}
        }
    }
}

impl Unsupported<'_> {
    /// Writes the next unsupported request.
    fn ask(&mut self, xen: &SimXen) {
        xen.with_xenstore(|store| store.write_as_dom0(SHUTDOWN_PATH, UNSUPPORTED[self.written]));
        self.written += 1;
        self.written_at = xen.now();
    }

    fn end(&mut self, xen: &SimXen) {
        self.dom0.request_shutdown(xen);
        self.done = true;
    }
}

/// Linux's rule: only requests the guest carries out are acknowledged.
/// Junk stays in the key (the toolstack's timeout clears it),
/// the guest serves on, and a poweroff after them is carried out.
#[test]
fn requests_the_guest_does_not_carry_out_are_left_alone_and_it_keeps_serving() {
    let xen = SimXen::new(4);
    let world = Unsupported {
        dom0: Dom0::new(&xen, NetbackOptions::default()),
        written: 0,
        written_at: 0,
        left: Vec::new(),
        client: None,
        served: false,
        done: false,
    };
    let (_, request, world) = run_loop(world, &xen, NetConfig::Dhcp);
    assert!(xen.now() < GIVE_UP_NS, "done in time");
    assert_eq!(request, ShutdownRequest::Poweroff);
    assert_eq!(world.left, UNSUPPORTED.map(|value| Some(value.to_string())), "each left unacknowledged");
    assert!(world.served, "served after them");
    assert_eq!(
        xen.with_xenstore(|store| store.read_as_dom0("/local/domain/1/control/feature-suspend")).as_deref(),
        Some(if runtime::lifecycle::SUSPEND_SUPPORTED { "1" } else { "0" }),
        "suspend is offered where it is carried out"
    );
}

/// The two keys the guest publishes its address in, as dom0 reads them:
/// `data/ipv4-address` and `attr/vif/<vif>/ipv4/0`.
fn address_keys(dom0: &Dom0<'_>, xen: &SimXen, vif: u32) -> (Option<String>, Option<String>) {
    (dom0.published_address(xen), dom0.published_vif_address(xen, vif))
}

/// The DHCP server leases for [`SHORT_LEASE_SECONDS`], then stops
/// answering: the guest loses the lease when it runs out.
struct LostLease<'x> {
    dom0: Dom0<'x>,
    /// When both keys first held the leased address.
    published_at: Option<u64>,
    /// When both were gone again.
    removed_at: Option<u64>,
    /// Steps at which one key held the address and the other did not.
    torn: u32,
}

/// The lease the server of [`LostLease`] hands out.
const SHORT_LEASE_SECONDS: u32 = 20;

impl World for LostLease<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        if self.removed_at.is_some() {
            return;
        }
        let now = xen.now();
        let (data, attr) = address_keys(&self.dom0, xen, 0);
        self.torn += u32::from(data != attr);
        match (self.published_at, data.as_deref(), attr.as_deref()) {
            (None, Some(LEASED), Some(LEASED)) => {
                self.published_at = Some(now);
                self.dom0.answers_dhcp = false;
            }
            (Some(_), None, None) => {
                self.removed_at = Some(now);
                self.dom0.request_shutdown(xen);
            }
            _ if now > GIVE_UP_NS => {
                self.removed_at = Some(now);
                self.dom0.request_shutdown(xen);
            }
            _ => {}
        }
    }
}

/// The leased address is published in both keys at once, and both are
/// removed when the lease runs out with no server to renew it.
#[test]
fn a_lease_is_published_in_both_keys_and_removed_from_both_when_lost() {
    let xen = SimXen::new(4);
    let mut dom0 = Dom0::new(&xen, NetbackOptions::default());
    dom0.lease_seconds = SHORT_LEASE_SECONDS;
    let world = LostLease { dom0, published_at: None, removed_at: None, torn: 0 };
    let (_, request, world) = run_loop(world, &xen, NetConfig::Dhcp);
    assert_eq!(request, ShutdownRequest::Poweroff);
    let (published, removed) = (world.published_at.expect("published"), world.removed_at.expect("ended"));
    assert!(removed < GIVE_UP_NS, "both keys removed");
    let held_ms = (removed - published) / 1_000_000;
    let lease_ms = u64::from(SHORT_LEASE_SECONDS) * 1000;
    assert!(
        (lease_ms..=lease_ms + 1000).contains(&held_ms),
        "removed {held_ms} ms after the lease, which ran {lease_ms} ms"
    );
    assert_eq!(world.torn, 0, "dom0 never saw one key without the other");
    assert_eq!(world.dom0.leases, 1);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    /// Until the address is published for vif 0.
    Lease,
    /// Until the vif is gone.
    Detaching,
    /// Gone since this simulated time: attached again after the world's
    /// delay (a second, as an operator's next command would be; or at once,
    /// so the guest sees the removal and the new vif in one batch).
    Detached {
        since: u64,
    },
    /// Attached again as vif 1 (same MAC): until the address is published
    /// for it.
    Attached,
    Done,
}

/// The vif is detached and attached again under another device number,
/// with the same MAC: the interface keeps its address, which moves to the
/// new number's key.
struct MovedVif<'x> {
    dom0: Dom0<'x>,
    phase: Move,
    /// How long the vif stays away, in simulated nanoseconds.
    away_ns: u64,
    /// Both keys, and vif 0's, once vif 1's held the address.
    after: Option<(Option<String>, Option<String>, Option<String>)>,
}

impl World for MovedVif<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        if xen.now() > GIVE_UP_NS && self.phase != Move::Done {
            self.dom0.request_shutdown(xen);
            self.phase = Move::Done;
        }
        match self.phase {
            Move::Lease if address_keys(&self.dom0, xen, 0) == (Some(LEASED.into()), Some(LEASED.into())) => {
                self.dom0.netback.detach(Detach::Graceful);
                self.phase = Move::Detaching;
            }
            Move::Detaching if self.dom0.netback.attachment() == Attachment::Detached => {
                self.phase = Move::Detached { since: xen.now() };
                if self.away_ns == 0 {
                    self.dom0.netback.attach_with(NetbackOptions { device: 1, ..NetbackOptions::default() });
                    self.phase = Move::Attached;
                }
            }
            Move::Detached { since } if xen.now() >= since + self.away_ns => {
                self.dom0.netback.attach_with(NetbackOptions { device: 1, ..NetbackOptions::default() });
                self.phase = Move::Attached;
            }
            Move::Attached if self.dom0.published_vif_address(xen, 1).is_some() => {
                let (data, vif1) = address_keys(&self.dom0, xen, 1);
                self.after = Some((data, vif1, self.dom0.published_vif_address(xen, 0)));
                self.dom0.request_shutdown(xen);
                self.phase = Move::Done;
            }
            _ => {}
        }
    }
}

#[test]
fn the_address_moves_to_the_vifs_new_device_number() {
    for away_ns in [1_000_000_000, 0] {
        let xen = SimXen::new(4);
        let dom0 = Dom0::new(&xen, NetbackOptions::default());
        let world = MovedVif { dom0, phase: Move::Lease, away_ns, after: None };
        let (_, request, world) = run_loop(world, &xen, NetConfig::Dhcp);
        assert!(xen.now() < GIVE_UP_NS, "away {away_ns} ns: done in time (ended in {:?})", world.phase);
        assert_eq!(request, ShutdownRequest::Poweroff);
        let leased = Some(LEASED.to_string());
        assert_eq!(
            world.after,
            Some((leased.clone(), leased, None)),
            "away {away_ns} ns: data, vif 1's and vif 0's key"
        );
        assert_eq!(world.dom0.leases, 1, "the same MAC kept its lease");
    }
}

/// Until the guest has published an address for vif 0: then the keys are
/// noted and the guest asked to end.
struct Published<'x> {
    dom0: Dom0<'x>,
    keys: Option<(Option<String>, Option<String>)>,
}

impl World for Published<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        if self.keys.is_none() && (self.dom0.published_vif_address(xen, 0).is_some() || xen.now() > GIVE_UP_NS) {
            self.keys = Some(address_keys(&self.dom0, xen, 0));
            self.dom0.request_shutdown(xen);
        }
    }
}

#[test]
fn a_static_address_is_published_in_both_keys() {
    let xen = SimXen::new(4);
    let net = NetConfig::Static {
        address: Ipv4Cidr::new(Ipv4Address::new(10, 88, 0, 9), 24),
        gateway: Some(Ipv4Address::new(10, 88, 0, 1)),
    };
    let world = Published { dom0: Dom0::new(&xen, NetbackOptions::default()), keys: None };
    let (_, request, world) = run_loop(world, &xen, net);
    assert!(xen.now() < GIVE_UP_NS, "done in time");
    assert_eq!(request, ShutdownRequest::Poweroff);
    let address = Some("10.88.0.9".to_string());
    assert_eq!(world.keys, Some((address.clone(), address)));
    assert_eq!(world.dom0.leases, 0);
}
