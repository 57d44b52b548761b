//! Several vifs on the production event loop ([`runtime::run`]): vif 1,
//! named in the configuration, is attached after boot on a second bridge
//! (a second dom0 stack with its own DHCP server) and gets an interface of
//! its own, with its own lease and its own sockets, while the main
//! interface stays on vif 0; each bridge's client is echoed by its own
//! interface, and each address is published under its vif's key
//! (`data/ipv4-address` is the main interface's alone).
#![forbid(unsafe_code)]

use dma::sim::SimPageSource;
use netfront::NetfrontConfig;
use runtime::testing::{Dom0, EchoService, SimPlatform, World};
use runtime::{InterfaceId, NetConfig, RuntimeConfig, ShutdownRequest, VifConfig};
use smoltcp::iface::SocketHandle;
use xen_pv::event_channel::EventChannels;
use xen_sim::SimXen;
use xen_sim::netback::NetbackOptions;

/// Simulated time after which the world gives up and asks the guest to end.
const GIVE_UP_NS: u64 = 120_000_000_000;
/// What each bridge's DHCP server leases, as published.
const LEASED: &str = "10.88.0.2";
/// The second vif's MAC.
const SECOND_MAC: [u8; 6] = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x02];
const GREETING: &[u8] = b"hello, vif";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Until vif 0's lease is published.
    FirstLease,
    /// Vif 1 attached: until its lease is published.
    SecondLease,
    /// Each bridge's client sends and waits for its echo.
    Echo,
    /// Asked the guest to end.
    Done,
}

struct Script<'x> {
    xen: &'x SimXen,
    /// The first bridge, with vif 0.
    dom0: Dom0<'x>,
    /// The second bridge, with vif 1 once attached.
    second: Option<Dom0<'x>>,
    phase: Phase,
    clients: Vec<SocketHandle>,
    /// Which bridges' clients got their echo.
    echoed: [bool; 2],
    /// What vif 0's key said once vif 1 had its lease.
    first_key_then: Option<String>,
}

impl World for Script<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        if let Some(second) = self.second.as_mut() {
            second.step(xen);
        }
        if xen.now() > GIVE_UP_NS && self.phase != Phase::Done {
            self.phase = Phase::Done;
            self.dom0.request_shutdown(xen);
        }
        match self.phase {
            Phase::FirstLease if self.dom0.published_vif_address(xen, 0).as_deref() == Some(LEASED) => {
                let options = NetbackOptions { device: 1, mac: SECOND_MAC, ..NetbackOptions::default() };
                self.second = Some(Dom0::new(self.xen, options));
                self.phase = Phase::SecondLease;
            }
            Phase::SecondLease if self.dom0.published_vif_address(xen, 1).as_deref() == Some(LEASED) => {
                self.first_key_then = self.dom0.published_vif_address(xen, 0);
                let second = self.second.as_mut().expect("attached");
                self.clients = vec![self.dom0.connect_to_echo(40_001), second.connect_to_echo(40_002)];
                self.phase = Phase::Echo;
            }
            Phase::Echo => {
                let second = self.second.as_mut().expect("attached");
                self.echoed[0] = self.echoed[0] || self.dom0.greet(self.clients[0], GREETING);
                self.echoed[1] = self.echoed[1] || second.greet(self.clients[1], GREETING);
                if self.echoed == [true, true] {
                    self.phase = Phase::Done;
                    self.dom0.request_shutdown(xen);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn a_numbered_vif_attached_after_boot_gets_its_own_interface_and_sockets() {
    let xen = SimXen::new(4);
    let events = EventChannels::new(&xen, xen.shared_info());
    let pages = SimPageSource::new(xen.grants());
    let script = Script {
        xen: &xen,
        dom0: Dom0::new(&xen, NetbackOptions::default()),
        second: None,
        phase: Phase::FirstLease,
        clients: Vec::new(),
        echoed: [false; 2],
        first_key_then: None,
    };
    let platform = SimPlatform::new(&xen, &events, &pages, script);
    let config = RuntimeConfig {
        netfront: NetfrontConfig { rx_buffers: 32, tx_buffers: 32, large_segments: true, tx_large_segments: true },
        vifs: vec![VifConfig::dhcp(1)],
        ..RuntimeConfig::new(NetConfig::Dhcp)
    };
    let mut service = EchoService::default();
    let request = runtime::run(&platform, &config, &mut service);
    let script = platform.into_world();
    assert!(xen.now() < GIVE_UP_NS, "done in time (ended in {:?})", script.phase);
    assert_eq!(request, ShutdownRequest::Poweroff);
    assert_eq!(service.interfaces(), [InterfaceId::Main, InterfaceId::Vif(1)], "sockets for each interface");
    assert!(service.echoed_on.contains(&InterfaceId::Main), "vif 0's bridge echoed by the main interface");
    assert!(service.echoed_on.contains(&InterfaceId::Vif(1)), "vif 1's bridge echoed by its own interface");
    let second = script.second.as_ref().expect("attached");
    assert_eq!((script.dom0.leases, second.leases), (1, 1), "one lease on each bridge");
    assert_eq!(script.first_key_then.as_deref(), Some(LEASED), "vif 0 kept its address");
    assert_eq!(script.dom0.published_address(&xen).as_deref(), Some(LEASED), "the main interface's own key");
    let last = service.stats.last().expect("counted");
    assert_eq!(last.netfront.connects, 2, "the counters cover both frontends");
}
