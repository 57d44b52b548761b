//! The real appliance over IPv6 on the production event loop
//! (`runtime::run`), on the simulated Xen: dom0's router advertisement
//! brings a SLAAC address and `ip6=` a static one; a GET over TCP/IPv6 to
//! the static address gets the echo (naming that address as the one the
//! client reached), and the metrics, asked for over the
//! SLAAC address, say what IPv6 has.

use crate::{Appliance, Settings};
use dma::sim::SimPageSource;
use runtime::testing::{Advertised, Dom0, PREFIX6, SimPlatform, World};
use runtime::{Ipv6Static, NetConfig, RuntimeConfig, ShutdownRequest};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, Ipv6Address, Ipv6Cidr};
use std::string::String;
use std::vec::Vec;
use xen_pv::event_channel::EventChannels;
use xen_sim::SimXen;
use xen_sim::netback::NetbackOptions;

/// Simulated time after which the world gives up.
const GIVE_UP_NS: u64 = 60_000_000_000;
const STATIC: Ipv6Address = Ipv6Address::new(0xfd00, 0x88, 0, 0, 0, 0, 0, 0x99);
const GET: &[u8] = b"GET /over-ipv6?instance HTTP/1.1\r\nHost: v6\r\nConnection: close\r\n\r\n";
const METRICS: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: v6\r\nConnection: close\r\n\r\n";

/// A request to `address`:`port`, and what came back until the close.
struct Client {
    handle: SocketHandle,
    request: &'static [u8],
    sent: usize,
    received: Vec<u8>,
}

impl Client {
    fn new(dom0: &mut Dom0<'_>, address: Ipv6Address, port: u16, local_port: u16, request: &'static [u8]) -> Self {
        let socket =
            tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 64 * 1024]), tcp::SocketBuffer::new(vec![0; 4096]));
        let handle = dom0.sockets.add(socket);
        let context = dom0.interface.context();
        dom0.sockets
            .get_mut::<tcp::Socket>(handle)
            .connect(context, (IpAddress::Ipv6(address), port), local_port)
            .expect("connect");
        Client { handle, request, sent: 0, received: Vec::new() }
    }

    /// Sends and reads; whether the server has closed its side.
    fn step(&mut self, dom0: &mut Dom0<'_>) -> bool {
        let socket = dom0.sockets.get_mut::<tcp::Socket>(self.handle);
        if self.sent < self.request.len() && socket.can_send() {
            self.sent += socket.send_slice(&self.request[self.sent..]).unwrap_or(0);
        }
        while socket.can_recv() {
            let _ = socket.recv(|bytes| (bytes.len(), self.received.extend_from_slice(bytes)));
        }
        !self.received.is_empty() && !socket.may_recv()
    }
}

/// Once both IPv6 addresses beyond the link-local one are published: the
/// GET to the static one and the metrics through the SLAAC one.
struct Dual<'x> {
    dom0: Dom0<'x>,
    clients: Vec<Client>,
    done: bool,
}

impl World for Dual<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        if self.done {
            return;
        }
        let keys = self.dom0.published_ipv6(xen, 0);
        if self.clients.is_empty() && keys.len() == 3 {
            let slaac: Ipv6Address = keys[2].parse().expect("an address");
            let http = Client::new(&mut self.dom0, STATIC, crate::DEFAULT_HTTP_PORT, 40_000, GET);
            let metrics = Client::new(&mut self.dom0, slaac, crate::DEFAULT_METRICS_PORT, 40_001, METRICS);
            self.clients = Vec::from([http, metrics]);
        }
        let mut finished = !self.clients.is_empty();
        for client in &mut self.clients {
            finished &= client.step(&mut self.dom0);
        }
        if finished || xen.now() > GIVE_UP_NS {
            self.dom0.request_shutdown(xen);
            self.done = true;
        }
    }
}

fn settings() -> Settings {
    let mut settings = crate::config::Config::read("", 16 << 20).settings;
    settings.http.connections = 4;
    settings.http.backlog = 4;
    settings
}

/// The value of the sample named `series` (no labels) in `text`.
fn sample<'t>(text: &'t str, series: &str) -> Option<&'t str> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
}

#[test]
fn http_and_the_metrics_answer_over_ipv6() {
    let xen: &'static SimXen = Box::leak(Box::new(SimXen::new(4)));
    let events = Box::leak(Box::new(EventChannels::new(xen, xen.shared_info())));
    let pages = Box::leak(Box::new(SimPageSource::new(xen.grants())));
    let mut dom0 = Dom0::new(xen, NetbackOptions::default());
    dom0.advertises = Some(Advertised { prefix: PREFIX6, valid_seconds: 3600, router_seconds: 1800 });
    let world = Dual { dom0, clients: Vec::new(), done: false };
    let platform = SimPlatform::new(xen, events, pages, world);
    let config = RuntimeConfig {
        ipv6: Ipv6Static { address: Some(Ipv6Cidr::new(STATIC, 64)), gateway: None },
        ..RuntimeConfig::new(NetConfig::Dhcp)
    };
    let mut appliance = Appliance::new(&settings());
    let request = runtime::run(&platform, &config, &mut appliance);
    assert_eq!(request, ShutdownRequest::Poweroff);
    assert!(xen.now() < GIVE_UP_NS, "done in time");
    let world = platform.into_world();
    let [http, metrics] = &world.clients[..] else { panic!("both clients ran") };
    let answer = String::from_utf8_lossy(&http.received);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with(core::str::from_utf8(GET).unwrap()), "the request's head echoed: {answer}");
    assert!(answer.contains("\r\nX-Echo-Address: fd00:88::99\r\n"), "the IPv6 address the client reached: {answer}");
    let text = String::from_utf8_lossy(&metrics.received);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    for (series, value) in [
        ("xenecho_ipv6_address_bound", "1"),
        ("xenecho_ipv6_addresses", "3"),
        ("xenecho_ipv6_default_router", "1"),
        ("xenecho_ipv6_router_advertisements_total", "1"),
        ("xenecho_ipv4_address_bound", "1"),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series}\n{text}");
    }
}
