//! Large transmitted segments through the production event loop
//! ([`runtime::run`]) on the simulated Xen: the guest sends 512 KiB on one
//! TCP connection to a client in dom0, and netfront merges the stack's
//! segments into large ones, so that far fewer packets cross the ring than
//! segments leave the stack; dom0's stack, behind the simulated netback
//! (which cuts them as Linux does), gets every byte, in order. The counters
//! are the ones the metrics page shows. Then the same with the backend not
//! advertising large segments: every segment its own packet.
#![forbid(unsafe_code)]

use dma::sim::SimPageSource;
use netfront::NetfrontConfig;
use runtime::testing::{Dom0, GUEST_ADDRESS, SimPlatform, World};
use runtime::{InterfaceId, NetConfig, RuntimeConfig, Service, ShutdownRequest, Stats};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::IpAddress;
use xen_pv::event_channel::EventChannels;
use xen_sim::SimXen;
use xen_sim::netback::{NetbackCounters, NetbackOptions};

/// The port the guest sends from.
const BULK_PORT: u16 = 9;
/// What it sends: 512 KiB.
const TOTAL: usize = 512 * 1024;
/// Simulated time after which the world gives up and asks the guest to end.
const GIVE_UP_NS: u64 = 60_000_000_000;
/// The address dom0's DHCP server leases, as published.
const LEASED: &str = "10.88.0.2";

/// Byte `index` of what the guest sends.
fn pattern(index: usize) -> u8 {
    (index * 31 + index / 4099) as u8
}

/// A service that sends [`TOTAL`] bytes to whoever connects to
/// [`BULK_PORT`], then closes; it keeps the runtime's counters as of its
/// last poll.
#[derive(Default)]
struct BulkSender {
    socket: Option<SocketHandle>,
    sent: usize,
    stats: Option<Stats>,
}

impl Service for BulkSender {
    fn start(&mut self, interface: InterfaceId, sockets: &mut SocketSet<'static>) {
        if interface == InterfaceId::Main {
            let buffers = (tcp::SocketBuffer::new(vec![0; 1024]), tcp::SocketBuffer::new(vec![0; 64 * 1024]));
            self.socket = Some(sockets.add(tcp::Socket::new(buffers.0, buffers.1)));
        }
    }

    fn poll(
        &mut self,
        interface: InterfaceId,
        sockets: &mut SocketSet<'static>,
        _: Instant,
        stats: &dyn Fn() -> Stats,
    ) -> Option<Instant> {
        let handle = self.socket.filter(|_| interface == InterfaceId::Main)?;
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        if !socket.is_open() && self.sent == 0 {
            socket.listen(BULK_PORT).expect("listen");
        }
        while socket.can_send() && self.sent < TOTAL {
            let start = self.sent;
            let written = socket
                .send(|buffer| {
                    let count = buffer.len().min(TOTAL - start);
                    for (offset, byte) in buffer[..count].iter_mut().enumerate() {
                        *byte = pattern(start + offset);
                    }
                    (count, count)
                })
                .expect("send");
            if written == 0 {
                break;
            }
            self.sent += written;
        }
        if self.sent == TOTAL && socket.state() == tcp::State::Established {
            socket.close();
        }
        if self.sent > 0 {
            self.stats = Some(stats());
        }
        None
    }
}

/// Dom0 with a client that reads what the guest sends.
struct Reader<'x> {
    dom0: Dom0<'x>,
    client: Option<SocketHandle>,
    received: usize,
    in_order: bool,
    asked_to_end: bool,
}

impl World for Reader<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        if self.client.is_none() && self.dom0.published_address(xen).as_deref() == Some(LEASED) {
            let buffers = (tcp::SocketBuffer::new(vec![0; 64 * 1024]), tcp::SocketBuffer::new(vec![0; 1024]));
            let handle = self.dom0.sockets.add(tcp::Socket::new(buffers.0, buffers.1));
            let context = self.dom0.interface.context();
            let destination = (IpAddress::Ipv4(GUEST_ADDRESS), BULK_PORT);
            self.dom0.sockets.get_mut::<tcp::Socket>(handle).connect(context, destination, 41_000).expect("connect");
            self.client = Some(handle);
        }
        if let Some(handle) = self.client {
            let socket = self.dom0.sockets.get_mut::<tcp::Socket>(handle);
            let (received, in_order) = (&mut self.received, &mut self.in_order);
            while let Ok(1..) = socket.recv(|bytes| {
                for (offset, byte) in bytes.iter().enumerate() {
                    *in_order &= *byte == pattern(*received + offset);
                }
                *received += bytes.len();
                (bytes.len(), bytes.len())
            }) {}
        }
        if !self.asked_to_end && (self.received == TOTAL || xen.now() > GIVE_UP_NS) {
            self.dom0.request_shutdown(xen);
            self.asked_to_end = true;
        }
    }
}

/// Runs the loop against a reader, the backend made with `options`;
/// returns the runtime's counters as the service last saw them and the
/// backend's.
fn bulk_transfer(options: NetbackOptions) -> (Stats, NetbackCounters) {
    let xen = SimXen::new(4);
    let events = EventChannels::new(&xen, xen.shared_info());
    let pages = SimPageSource::new(xen.grants());
    let reader =
        Reader { dom0: Dom0::new(&xen, options), client: None, received: 0, in_order: true, asked_to_end: false };
    let platform = SimPlatform::new(&xen, &events, &pages, reader);
    let config = RuntimeConfig {
        netfront: NetfrontConfig { rx_buffers: 32, tx_buffers: 32, large_segments: true, tx_large_segments: true },
        ..RuntimeConfig::new(NetConfig::Dhcp)
    };
    let mut service = BulkSender::default();
    assert_eq!(runtime::run(&platform, &config, &mut service), ShutdownRequest::Poweroff);
    let reader = platform.into_world();
    assert!(xen.now() < GIVE_UP_NS, "done in time");
    assert_eq!(reader.received, TOTAL, "every byte reached dom0");
    assert!(reader.in_order, "as sent");
    let counters = reader.dom0.netback.counters().clone();
    assert!(counters.violations.is_empty(), "{:?}", reader.dom0.netback.errors());
    (service.stats.expect("the service saw the counters"), counters)
}

/// Full segments of data the transfer takes at least (1460 bytes each).
const SEGMENTS: u64 = (TOTAL / 1460) as u64;

#[test]
fn the_production_loop_sends_bulk_data_as_large_segments() {
    let (stats, netback) = bulk_transfer(NetbackOptions::default());
    let net = stats.netfront;
    assert!(net.tx_frames >= SEGMENTS, "{net:?}");
    assert!(net.tx_large_segments > 0, "{net:?}");
    assert!(net.tx_segments_merged * 10 >= SEGMENTS * 9, "most data segments merged: {net:?}");
    assert_eq!((net.tx_dropped, net.violations), (0, 0), "{net:?}");
    // The packets that crossed the ring: a fifth of the frames or fewer.
    let packets = net.tx_frames - net.tx_segments_merged + net.tx_large_segments;
    assert!(packets * 5 <= net.tx_frames, "{packets} packets for {} frames: {net:?}", net.tx_frames);
    assert_eq!(netback.transmitted_large_segments, net.tx_large_segments);
    assert_eq!(netback.transmitted_segments, net.tx_segments_merged);
    assert!(netback.transmitted_frames <= packets, "the backend took what the guest queued by the last poll");
}

#[test]
fn without_the_backend_s_feature_every_segment_is_its_own_packet() {
    let mut options = NetbackOptions::default();
    options.features.gso_tcpv4 = false;
    options.features.gso_tcpv6 = false;
    let (stats, netback) = bulk_transfer(options);
    let net = stats.netfront;
    assert!(net.tx_frames >= SEGMENTS, "{net:?}");
    assert_eq!((net.tx_large_segments, net.tx_segments_merged), (0, 0));
    assert_eq!(netback.transmitted_large_segments, 0);
    assert!(netback.transmitted_frames >= SEGMENTS);
}
