//! The drain on the production event loop (`runtime::run`) with the real
//! appliance, on the simulated Xen: dom0 asks the domain to end while
//! requests are in flight. A delayed answer under way completes (with
//! `Connection: close`), a new connection during the drain is refused at
//! once, the domain ends as soon as nothing is in flight; a client that
//! will not read is cut at the deadline and counted, and the domain ends
//! then.

use crate::{Appliance, Settings};
use dma::sim::SimPageSource;
use runtime::testing::{Dom0, GUEST_ADDRESS, SimPlatform, World};
use runtime::{NetConfig, RuntimeConfig, ShutdownRequest};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::IpAddress;
use std::vec::Vec;
use xen_pv::event_channel::EventChannels;
use xen_sim::SimXen;
use xen_sim::netback::NetbackOptions;

/// Simulated time after which the world gives up.
const GIVE_UP_NS: u64 = 60_000_000_000;

/// A client of dom0's on the guest's HTTP port, from `local_port`, with a
/// receive buffer of `receive` bytes.
pub(crate) fn connect(dom0: &mut Dom0<'_>, local_port: u16, receive: usize) -> SocketHandle {
    connect_to(dom0, crate::DEFAULT_HTTP_PORT, local_port, receive)
}

/// As [`connect`], to the guest's port `port`.
pub(crate) fn connect_to(dom0: &mut Dom0<'_>, port: u16, local_port: u16, receive: usize) -> SocketHandle {
    let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; receive]), tcp::SocketBuffer::new(vec![0; 4096]));
    let handle = dom0.sockets.add(socket);
    let context = dom0.interface.context();
    dom0.sockets
        .get_mut::<tcp::Socket>(handle)
        .connect(context, (IpAddress::Ipv4(GUEST_ADDRESS), port), local_port)
        .expect("connect");
    handle
}

/// One client connection: its request, what came back, whether it was
/// ever established and how it ended.
pub(crate) struct Client {
    pub(crate) handle: SocketHandle,
    pub(crate) request: &'static [u8],
    pub(crate) sent: usize,
    /// Whether it reads what comes back.
    pub(crate) reads: bool,
    pub(crate) received: Vec<u8>,
    pub(crate) established: bool,
}

impl Client {
    pub(crate) fn new(dom0: &mut Dom0<'_>, local_port: u16, request: &'static [u8], reads: bool) -> Client {
        let receive = if reads { 64 * 1024 } else { 2048 };
        let handle = connect(dom0, local_port, receive);
        Client { handle, request, sent: 0, reads, received: Vec::new(), established: false }
    }

    pub(crate) fn step(&mut self, dom0: &mut Dom0<'_>) {
        let socket = dom0.sockets.get_mut::<tcp::Socket>(self.handle);
        self.established |= socket.state() == tcp::State::Established;
        if self.sent < self.request.len() && socket.can_send() {
            self.sent += socket.send_slice(&self.request[self.sent..]).unwrap_or(0);
        }
        while self.reads && socket.can_recv() {
            let _ = socket.recv(|bytes| (bytes.len(), self.received.extend_from_slice(bytes)));
        }
    }

    fn state(&self, dom0: &Dom0<'_>) -> tcp::State {
        dom0.sockets.get::<tcp::Socket>(self.handle).state()
    }
}

/// Dom0: leases, starts the clients, asks for the end once they are under
/// way, and starts a late client during the drain.
struct Drain<'x> {
    dom0: Dom0<'x>,
    /// The requests to send once the address is published, and whether
    /// each client reads.
    plan: &'static [(&'static [u8], bool)],
    clients: Vec<Client>,
    started_at: Option<u64>,
    asked_at: Option<u64>,
    late: Option<Client>,
}

impl World for Drain<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        let now = xen.now();
        for client in self.clients.iter_mut().chain(self.late.as_mut()) {
            client.step(&mut self.dom0);
        }
        if self.started_at.is_none() && self.dom0.published_address(xen).is_some() {
            for (index, &(request, reads)) in self.plan.iter().enumerate() {
                self.clients.push(Client::new(&mut self.dom0, 40_000 + index as u16, request, reads));
            }
            self.started_at = Some(now);
        }
        let under_way = self.started_at.is_some_and(|started| now >= started + 300_000_000);
        if self.asked_at.is_none() && (under_way || now > GIVE_UP_NS) {
            self.dom0.request_shutdown(xen);
            self.asked_at = Some(now);
        }
        if self.late.is_none() && self.asked_at.is_some_and(|asked| now >= asked + 200_000_000) {
            self.late = Some(Client::new(&mut self.dom0, 41_000, b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n", true));
        }
    }
}

/// Runs the appliance with a drain of `drain_seconds` against `plan`;
/// returns the request, the appliance, the world, and when the run ended.
fn run(
    plan: &'static [(&'static [u8], bool)],
    drain_seconds: u64,
) -> (ShutdownRequest, Appliance, Drain<'static>, u64) {
    let xen: &'static SimXen = Box::leak(Box::new(SimXen::new(4)));
    let events = Box::leak(Box::new(EventChannels::new(xen, xen.shared_info())));
    let pages = Box::leak(Box::new(SimPageSource::new(xen.grants())));
    let world = Drain {
        dom0: Dom0::new(xen, NetbackOptions::default()),
        plan,
        clients: Vec::new(),
        started_at: None,
        asked_at: None,
        late: None,
    };
    let platform = SimPlatform::new(xen, events, pages, world);
    let config =
        RuntimeConfig { drain: core::time::Duration::from_secs(drain_seconds), ..RuntimeConfig::new(NetConfig::Dhcp) };
    let mut appliance = Appliance::new(&settings());
    let request = runtime::run(&platform, &config, &mut appliance);
    let ended = xen.now();
    let mut world = platform.into_world();
    // What the guest sent last reaches dom0's sockets.
    for _ in 0..10 {
        world.dom0.step(xen);
        for client in world.clients.iter_mut().chain(world.late.as_mut()) {
            client.step(&mut world.dom0);
        }
    }
    (request, appliance, world, ended)
}

fn settings() -> Settings {
    let mut settings = crate::config::Config::read("", 16 << 20).settings;
    settings.http.connections = 4;
    settings.http.backlog = 4;
    settings
}

const DELAYED: &[u8] = b"GET /?delay=2s HTTP/1.1\r\nHost: x\r\n\r\n";
const IDLE_AFTER_ONE: &[u8] = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n";
const UNREAD: &[u8] = b"GET /?bytes=10000000 HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn a_request_in_flight_completes_a_new_connection_is_refused_and_the_domain_ends_after() {
    let (request, appliance, world, ended) = run(&[(DELAYED, true), (IDLE_AFTER_ONE, true)], 5);
    assert_eq!(request, ShutdownRequest::Poweroff);
    let asked = world.asked_at.expect("asked");
    let drained_in = ended - asked;
    assert!(
        (1_500_000_000..5_000_000_000).contains(&drained_in),
        "ended {} ms after the request: after the delayed answer, before the deadline",
        drained_in / 1_000_000
    );
    let delayed = &world.clients[0];
    let text = String::from_utf8_lossy(&delayed.received);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(text.ends_with(core::str::from_utf8(DELAYED).unwrap()), "the whole answer: {text}");
    let idle = &world.clients[1];
    assert!(String::from_utf8_lossy(&idle.received).starts_with("HTTP/1.1 200 OK\r\n"));
    let late = world.late.as_ref().expect("a late client");
    assert!(
        !late.established && late.received.is_empty(),
        "the late client was refused: {:?} {:?}",
        late.state(&world.dom0),
        String::from_utf8_lossy(&late.received)
    );
    assert_eq!(late.state(&world.dom0), tcp::State::Closed, "refused with a reset, not left waiting");
    assert_eq!(appliance.connections_cut(), 0);
}

#[test]
fn a_client_that_does_not_read_is_cut_at_the_deadline_and_counted() {
    let (request, appliance, world, ended) = run(&[(UNREAD, false), (DELAYED, true)], 3);
    assert_eq!(request, ShutdownRequest::Poweroff);
    let drained_in = ended - world.asked_at.expect("asked");
    assert!(
        (3_000_000_000..3_500_000_000).contains(&drained_in),
        "ended {} ms after the request: at the 3 s deadline",
        drained_in / 1_000_000
    );
    assert_eq!(appliance.connections_cut(), 1, "the reader that did not read");
    assert_eq!(world.clients[0].state(&world.dom0), tcp::State::Closed, "reset");
    assert!(String::from_utf8_lossy(&world.clients[1].received).starts_with("HTTP/1.1 200 OK\r\n"));
}

#[test]
fn without_a_drain_the_domain_ends_at_once() {
    let (request, appliance, world, ended) = run(&[(DELAYED, true)], 0);
    assert_eq!(request, ShutdownRequest::Poweroff);
    assert!(ended - world.asked_at.expect("asked") < 100_000_000, "ended at once");
    assert!(world.clients[0].received.is_empty(), "the delayed answer never came");
    assert_eq!(appliance.connections_cut(), 0);
}
