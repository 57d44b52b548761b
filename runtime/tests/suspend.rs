//! Suspend and resume on the production loop ([`runtime::run`]) over the
//! simulated Xen: a TCP connection open across the suspend keeps working,
//! whether the toolstack restores the domain in a new one (the grant table
//! reset and every grant of the old domain forgotten, not revoked; the
//! timer and xenstore on new ports; the vif connected to its new backend
//! with the same MAC; the address written again in the new home; the
//! appliance announcing itself with gratuitous ARPs) or cancels the
//! suspend (everything as it was, nothing connected again).
#![forbid(unsafe_code)]

use dma::sim::SimPageSource;
use netfront::NetfrontConfig;
use runtime::testing::{Dom0, ECHO_PORT, EchoService, GUEST_ADDRESS, SimPlatform, World};
use runtime::{Instance, NetConfig, RuntimeConfig, ShutdownRequest};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, IpAddress};
use xen_pv::abi::vcpu::VIRQ_TIMER;
use xen_pv::event_channel::EventChannels;
use xen_sim::netback::NetbackOptions;
use xen_sim::{Binding, SimXen, XENSTORE_PORT};

const GIVE_UP_NS: u64 = 120_000_000_000;
const LEASED: &str = "10.88.0.2";
/// How long the toolstack takes between the suspend and the resume.
const SUSPENDED_NS: u64 = 3_000_000_000;
/// How long the world runs on once the guest served after the suspend.
const LINGER_NS: u64 = 4_000_000_000;

/// What the toolstack does with the suspended domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Toolstack {
    /// `xl save` + `xl restore`, or `xl migrate`.
    RestoreInNewDomain,
    /// Resumes it in place, and Xen's return value says so (1).
    CancelReported,
    /// Resumes it in place, and the guest sees 0 (libxc reports a
    /// cancellation only to guests with a callback interrupt).
    CancelUnreported,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Lease,
    /// The first message on the connection, before the suspend.
    Before,
    /// Asked to suspend; waiting for the hypercall.
    Suspending,
    /// Back: the second message on the same connection.
    After,
    /// Served again: a few seconds more for the announcements, then end.
    Linger {
        until: u64,
    },
    Done,
}

/// What the world saw of the guest, for the assertions.
#[derive(Debug, Default)]
struct Seen {
    /// When the suspend hypercall was made, and `control/shutdown` then.
    suspended_at: Option<u64>,
    acknowledged: Option<String>,
    /// Guest pages in use just before the suspend and once served again.
    pages_before: usize,
    pages_after: usize,
    /// The echoes on the one connection, in order.
    echoes: Vec<&'static [u8]>,
    /// The address keys and the vif's backend state when served again.
    address_after: Option<String>,
    feature_suspend_after: Option<String>,
}

struct Script<'x, 'p> {
    dom0: Dom0<'x>,
    pages: &'p SimPageSource<'x>,
    toolstack: Toolstack,
    phase: Phase,
    client: Option<SocketHandle>,
    seen: Seen,
}

const BEFORE: &[u8] = b"said before the suspend";
const AFTER: &[u8] = b"and after it";

impl World for Script<'_, '_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        if xen.now() > GIVE_UP_NS && self.phase != Phase::Done {
            self.end(xen);
        }
        let phase = self.phase;
        match phase {
            Phase::Lease if self.dom0.published_address(xen).as_deref() == Some(LEASED) => {
                self.client = Some(connect(&mut self.dom0));
                self.phase = Phase::Before;
            }
            Phase::Before if self.exchange(BEFORE) => {
                self.seen.pages_before = self.pages.outstanding_pages();
                self.dom0.request_suspend(xen);
                self.phase = Phase::Suspending;
            }
            Phase::After if self.exchange(AFTER) => {
                self.seen.pages_after = self.pages.outstanding_pages();
                self.seen.address_after = self.dom0.published_address(xen);
                self.seen.feature_suspend_after =
                    xen.with_xenstore(|store| store.read_as_dom0("/local/domain/1/control/feature-suspend"));
                self.phase = Phase::Linger { until: xen.now() + LINGER_NS };
            }
            Phase::Linger { until } if xen.now() >= until => self.end(xen),
            _ => {}
        }
    }

    fn suspended(&mut self, xen: &SimXen) {
        assert_eq!(self.phase, Phase::Suspending, "suspended only when asked");
        self.seen.suspended_at = Some(xen.now());
        self.seen.acknowledged = xen.with_xenstore(|store| store.read_as_dom0("/local/domain/1/control/shutdown"));
        match self.toolstack {
            Toolstack::RestoreInNewDomain => {
                self.dom0.restore_in_new_domain();
                // The toolstack's keys for the new domain, as libxl writes them.
                xen.with_xenstore(|store| {
                    store.write_as_dom0("/local/domain/1/name", "xenecho-sim");
                    store.write_as_dom0("/local/domain/1/domid", "7");
                });
            }
            Toolstack::CancelReported => xen.cancel_next_suspend(true),
            Toolstack::CancelUnreported => xen.cancel_next_suspend(false),
        }
        xen.advance(SUSPENDED_NS);
        self.phase = Phase::After;
    }
}

impl Script<'_, '_> {
    /// One step of sending `message` on the client's connection and
    /// reading its echo; true once the echo is back (and checked).
    fn exchange(&mut self, message: &'static [u8]) -> bool {
        let socket = self.dom0.sockets.get_mut::<tcp::Socket>(self.client.expect("connected"));
        assert!(socket.is_open(), "the connection stays open (now {})", socket.state());
        if socket.recv_queue() >= message.len() {
            let mut answer = [0; 64];
            let read = socket.recv_slice(&mut answer).expect("recv");
            assert_eq!(&answer[..read], message, "the echo");
            self.seen.echoes.push(message);
            return true;
        }
        if socket.can_send() && socket.send_queue() == 0 && socket.recv_queue() == 0 {
            let _ = socket.send_slice(message);
        }
        false
    }

    fn end(&mut self, xen: &SimXen) {
        self.dom0.request_shutdown(xen);
        self.phase = Phase::Done;
    }
}

fn connect(dom0: &mut Dom0<'_>) -> SocketHandle {
    let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 2048]), tcp::SocketBuffer::new(vec![0; 2048]));
    let handle = dom0.sockets.add(socket);
    let context = dom0.interface.context();
    dom0.sockets
        .get_mut::<tcp::Socket>(handle)
        .connect(context, (IpAddress::Ipv4(GUEST_ADDRESS), ECHO_PORT), 40_001)
        .expect("connect");
    handle
}

/// Runs the loop through one suspend; returns what was seen, the echo
/// service, dom0, and the port the guest's timer is bound to at the end.
fn run_through_suspend(xen: &SimXen, toolstack: Toolstack) -> (Seen, EchoService, Dom0<'_>, u32) {
    let events = EventChannels::new(xen, xen.shared_info());
    let pages = SimPageSource::new(xen.grants());
    let world = Script {
        dom0: Dom0::new(xen, NetbackOptions::default()),
        pages: &pages,
        toolstack,
        phase: Phase::Lease,
        client: None,
        seen: Seen::default(),
    };
    let platform = SimPlatform::new(xen, &events, &pages, world);
    let config = RuntimeConfig {
        netfront: NetfrontConfig { rx_buffers: 32, tx_buffers: 32, large_segments: true, tx_large_segments: true },
        ..RuntimeConfig::new(NetConfig::Dhcp)
    };
    let mut service = EchoService::default();
    let request = runtime::run(&platform, &config, &mut service);
    assert_eq!(request, ShutdownRequest::Poweroff);
    assert!(xen.now() < GIVE_UP_NS, "done in time");
    let timer_port =
        (1..64).find(|&port| xen.binding(port) == Some(Binding::Virq(VIRQ_TIMER))).expect("the guest's timer is bound");
    let world = platform.into_world();
    assert_eq!(world.phase, Phase::Done);
    (world.seen, service, world.dom0, timer_port)
}

#[test]
fn a_connection_survives_a_restore_in_a_new_domain() {
    let xen = SimXen::new(4);
    let (seen, service, dom0, timer_port) = run_through_suspend(&xen, Toolstack::RestoreInNewDomain);
    assert_eq!(seen.acknowledged.as_deref(), Some(""), "the request was acknowledged before the suspend");
    assert_eq!((xen.suspends(), xen.restores()), (1, 1));
    assert_eq!(seen.echoes, [BEFORE, AFTER], "the same connection, before and after");

    // Xenstore: on the toolstack's new port, with the keys written again
    // in the new home.
    assert_ne!(xen.xenstore_port(), XENSTORE_PORT);
    assert_eq!(seen.address_after.as_deref(), Some(LEASED), "the address written again");
    assert_eq!(seen.feature_suspend_after.as_deref(), Some("1"), "the features written again");
    // The timer bound again, after the toolstack's two ports.
    assert!(timer_port > xen.xenstore_port());

    // The vif: a new backend, connected with the same MAC.
    let mac = EthernetAddress(NetbackOptions::default().mac);
    assert!(dom0.netback.is_connected(), "connected to the new backend");
    assert_eq!(dom0.netback.counters().connects, 1, "this backend is the new domain's");

    // The grant table: every grant of the old domain forgotten, none
    // revoked while doing so; every page of the old link given back.
    let (before, after) = (&service.stats[0], service.stats.last().expect("echoed after"));
    assert!(after.grants.forgotten > 0, "the old link's grants were forgotten");
    assert_eq!(after.grants.forgotten, before.grants.in_use, "all of them, and only them");
    assert_eq!(after.grants.revoked, before.grants.revoked, "nothing was revoked");
    assert_eq!(seen.pages_after, seen.pages_before, "the old link's pages were freed, the new link has as many");
    assert!(after.netfront.connects >= 2, "counters carry over");

    // The service told which domain it now runs as (the echo server's
    // instance headers name the new domain id).
    let new_domain = Instance { name: Some("xenecho-sim".into()), domid: Some(7) };
    assert_eq!(service.identified.len(), 2, "{:?}", service.identified);
    assert_eq!(service.identified.last(), Some(&new_domain));

    // Announced: three gratuitous ARPs from the same MAC for the address,
    // after the resume, a second apart.
    let suspended_at = seen.suspended_at.expect("suspended");
    let announced: Vec<_> = dom0.announcements.iter().filter(|(_, _, at)| *at > suspended_at).collect();
    assert_eq!(announced.len(), 3, "{:?}", dom0.announcements);
    assert!(announced.iter().all(|(from, address, _)| *from == mac && *address == GUEST_ADDRESS));
    assert!(announced[1].2 - announced[0].2 >= 1_000_000_000);
}

#[test]
fn a_cancelled_suspend_resumes_in_place() {
    for toolstack in [Toolstack::CancelReported, Toolstack::CancelUnreported] {
        let xen = SimXen::new(4);
        let (seen, service, dom0, _) = run_through_suspend(&xen, toolstack);
        assert_eq!((xen.suspends(), xen.restores()), (1, 0), "{toolstack:?}");
        assert_eq!(seen.echoes, [BEFORE, AFTER], "{toolstack:?}: the same connection, before and after");
        assert_eq!(xen.xenstore_port(), XENSTORE_PORT, "{toolstack:?}");
        assert_eq!(dom0.netback.counters().connects, 1, "{toolstack:?}: the same link, not connected again");
        assert_eq!(dom0.netback.counters().disconnects, 0, "{toolstack:?}");
        let after = service.stats.last().expect("echoed after");
        assert_eq!((after.grants.forgotten, after.netfront.connects), (0, 1), "{toolstack:?}: nothing forgotten");
        assert!(dom0.announcements.is_empty(), "{toolstack:?}: nothing to announce");
        assert_eq!(service.identified.len(), 1, "{toolstack:?}: the same domain, not told again");
        assert_eq!(seen.pages_after, seen.pages_before, "{toolstack:?}");
    }
}
