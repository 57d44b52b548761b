//! The TCP side of the appliance: a pool of smoltcp sockets on the HTTP
//! port, each driving one [`http::Connection`], and a tiny metrics server.
//!
//! Every pooled socket listens on the port; a connection takes one and, when
//! it closes, the socket listens again, so a new client is accepted whenever
//! a slot is free. When every slot is busy, a few overflow sockets (added
//! last, so smoltcp offers SYNs to the pool first) answer `503 Service
//! Unavailable` and close; beyond those, smoltcp answers a SYN with RST.
//! Memory is bounded: each slot has fixed socket buffers and the engine's
//! fixed buffers, allocated when a connection starts.

use crate::http::{self, CloseMode, Connection, Counters, Limits, SERVICE_UNAVAILABLE_RESPONSE, Status};
#[cfg(test)]
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;

/// Socket receive buffer per connection.
pub const SOCKET_RX_BYTES: usize = 16 * 1024;
/// Socket send buffer per connection.
pub const SOCKET_TX_BYTES: usize = 16 * 1024;
/// Overflow sockets that answer 503 when the pool is full.
const OVERFLOW_SOCKETS: usize = 4;

/// One pooled socket and the HTTP connection on it, if any.
struct Slot {
    handle: SocketHandle,
    connection: Option<Connection>,
}

/// The HTTP echo service on one port.
pub struct HttpService {
    port: u16,
    limits: Limits,
    slots: Vec<Slot>,
    overflow: Vec<SocketHandle>,
    /// Counts of connections that have ended.
    finished: Counters,
    /// Connections accepted so far.
    pub accepted: u64,
    /// Connections refused with 503 because the pool was full.
    pub refused: u64,
}

/// Bytes one pooled connection may use at most, for sizing the pool.
pub fn bytes_per_connection(limits: &Limits) -> usize {
    SOCKET_RX_BYTES + SOCKET_TX_BYTES + limits.memory_bound()
}

fn socket(rx: usize, tx: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(tcp::SocketBuffer::new(vec![0; rx]), tcp::SocketBuffer::new(vec![0; tx]))
}

fn to_http(now: smoltcp::time::Instant) -> http::Instant {
    http::Instant::from_millis(now.total_millis().max(0) as u64)
}

fn from_http(instant: http::Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_millis(instant.as_millis().min(i64::MAX as u64) as i64)
}

impl HttpService {
    /// A service on `port` with `connections` slots.
    pub fn new(port: u16, connections: usize, limits: Limits) -> Self {
        Self {
            port,
            limits,
            slots: Vec::with_capacity(connections),
            overflow: Vec::new(),
            finished: Counters::default(),
            accepted: 0,
            refused: 0,
        }
    }

    /// Adds the pool's sockets, then the overflow sockets.
    pub fn start(&mut self, sockets: &mut SocketSet<'static>, connections: usize) {
        for _ in 0..connections {
            let handle = sockets.add(socket(SOCKET_RX_BYTES, SOCKET_TX_BYTES));
            self.slots.push(Slot { handle, connection: None });
        }
        for _ in 0..OVERFLOW_SOCKETS {
            self.overflow.push(sockets.add(socket(256, SERVICE_UNAVAILABLE_RESPONSE.len())));
        }
    }

    /// Connection slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.slots.iter().filter(|slot| slot.connection.is_some()).count()
    }

    /// Counters of every connection, ended and open.
    pub fn counters(&self) -> Counters {
        let mut total = self.finished.clone();
        for connection in self.slots.iter().filter_map(|slot| slot.connection.as_ref()) {
            total.add(connection.counters());
        }
        total
    }

    /// Serves every socket; returns the earliest engine deadline.
    pub fn poll(
        &mut self,
        sockets: &mut SocketSet<'static>,
        now: smoltcp::time::Instant,
    ) -> Option<smoltcp::time::Instant> {
        let now = to_http(now);
        let mut deadline: Option<http::Instant> = None;
        for index in 0..self.slots.len() {
            if let Some(next) = self.serve_slot(index, sockets, now) {
                deadline = Some(deadline.map_or(next, |current| current.min(next)));
            }
        }
        self.serve_overflow(sockets);
        deadline.map(from_http)
    }

    fn serve_slot(
        &mut self,
        index: usize,
        sockets: &mut SocketSet<'static>,
        now: http::Instant,
    ) -> Option<http::Instant> {
        let port = self.port;
        let slot = &mut self.slots[index];
        let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
        if !socket.is_open() {
            if let Some(connection) = slot.connection.take() {
                self.finished.add(connection.counters());
            }
            if let Err(error) = socket.listen(port) {
                log::error!("http: listen on {port}: {error:?}");
            }
            return None;
        }
        if slot.connection.is_none() {
            // Until the handshake completes there is nothing to serve.
            if matches!(socket.state(), tcp::State::Listen | tcp::State::SynReceived | tcp::State::SynSent) {
                return None;
            }
            slot.connection = Some(Connection::new(self.limits, now));
            self.accepted += 1;
        }
        let connection = slot.connection.as_mut()?;
        drive(connection, socket, now);
        connection.poll_timeout()
    }

    fn serve_overflow(&mut self, sockets: &mut SocketSet<'static>) {
        for &handle in &self.overflow {
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            if !socket.is_open() {
                let _ = socket.listen(self.port);
            } else if socket.may_send() && socket.send_queue() == 0 && socket.state() == tcp::State::Established {
                let _ = socket.send_slice(SERVICE_UNAVAILABLE_RESPONSE);
                socket.close();
                self.refused += 1;
                self.finished.record_response(Status::ServiceUnavailable);
            }
        }
    }
}

/// One round of the engine's caller contract (see [`crate::http`]).
fn drive(connection: &mut Connection, socket: &mut tcp::Socket<'_>, now: http::Instant) {
    while socket.can_recv() {
        let taken = socket.recv(|bytes| {
            let taken = connection.receive(bytes, now);
            (taken, taken)
        });
        if !matches!(taken, Ok(count) if count > 0) {
            break;
        }
    }
    connection.receive(&[], now);
    // Both may queue a final response (400, 408): before the send loop.
    if peer_finished(socket) {
        connection.peer_closed(now);
    }
    if connection.poll_timeout().is_some_and(|deadline| deadline <= now) {
        connection.on_timeout(now);
    }
    while !connection.pending_output().is_empty() && socket.can_send() {
        match socket.send_slice(connection.pending_output()) {
            Ok(sent) if sent > 0 => connection.consume_output(sent),
            _ => break,
        }
    }
    match connection.wants_close() {
        Some(CloseMode::Graceful) if connection.pending_output().is_empty() => socket.close(),
        Some(CloseMode::Abort) => socket.abort(),
        _ => {}
    }
}

/// Whether the client has sent its FIN and every byte before it was read.
fn peer_finished(socket: &tcp::Socket<'_>) -> bool {
    let fin_received = matches!(
        socket.state(),
        tcp::State::CloseWait | tcp::State::LastAck | tcp::State::Closing | tcp::State::TimeWait | tcp::State::Closed
    );
    fin_received && socket.recv_queue() == 0
}

/// The metrics server: `GET /metrics` gets the text, anything else 404.
pub struct MetricsService {
    port: u16,
    handles: Vec<SocketHandle>,
}

/// Largest request head the metrics server reads.
const METRICS_REQUEST_BYTES: usize = 2048;
/// Room for the metrics response.
const METRICS_RESPONSE_BYTES: usize = 32 * 1024;

impl MetricsService {
    /// A metrics server on `port`.
    pub fn new(port: u16) -> Self {
        Self { port, handles: Vec::new() }
    }

    /// Adds two sockets (a scrape at a time is plenty; two tolerate a
    /// lingering close).
    pub fn start(&mut self, sockets: &mut SocketSet<'static>) {
        for _ in 0..2 {
            self.handles.push(sockets.add(socket(METRICS_REQUEST_BYTES, METRICS_RESPONSE_BYTES)));
        }
    }

    /// Answers complete requests with `render()`'s text.
    pub fn poll(&mut self, sockets: &mut SocketSet<'static>, render: &mut dyn FnMut() -> alloc::string::String) {
        for &handle in &self.handles {
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            if !socket.is_open() {
                let _ = socket.listen(self.port);
                continue;
            }
            if socket.send_queue() > 0 || !socket.may_send() {
                continue;
            }
            let request_done = socket.peek(METRICS_REQUEST_BYTES).is_ok_and(ends_head);
            let full = socket.recv_queue() >= METRICS_REQUEST_BYTES;
            if !(request_done || full) {
                continue;
            }
            let is_metrics = socket.peek(METRICS_REQUEST_BYTES).is_ok_and(|bytes| bytes.starts_with(b"GET /metrics"));
            let _ = socket.recv(|bytes| (bytes.len(), ()));
            let response = metrics_response(is_metrics, render);
            let _ = socket.send_slice(response.as_bytes());
            socket.close();
        }
    }
}

fn ends_head(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|window| window == b"\r\n\r\n")
}

fn metrics_response(is_metrics: bool, render: &mut dyn FnMut() -> alloc::string::String) -> alloc::string::String {
    use core::fmt::Write;
    let (status, kind, body) = if is_metrics {
        ("200 OK", "text/plain; version=0.0.4", render())
    } else {
        ("404 Not Found", "text/plain", alloc::string::String::from("try /metrics\n"))
    };
    let mut response = alloc::string::String::with_capacity(body.len() + 128);
    let _ = write!(
        response,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_responses_are_well_formed() {
        let mut render = || alloc::string::String::from("xenecho_requests_total 3\n");
        let ok = metrics_response(true, &mut render);
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(ok.contains("Content-Length: 25\r\n"));
        assert!(ok.ends_with("\r\n\r\nxenecho_requests_total 3\n"));
        let missing = metrics_response(false, &mut render);
        assert!(missing.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(ends_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!ends_head(b"GET / HTTP/1.1\r\nHost: x\r\n"));
    }

    #[test]
    fn a_connection_costs_a_bounded_number_of_bytes() {
        assert_eq!(bytes_per_connection(&Limits::default()), 32 * 1024 + 24 * 1024);
    }
}

#[cfg(test)]
mod loopback_tests {
    use super::*;
    use smoltcp::iface::{Config, Interface};
    use smoltcp::phy::{Loopback, Medium};
    use smoltcp::time::Instant;
    use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

    struct Rig {
        device: Loopback,
        interface: Interface,
        sockets: SocketSet<'static>,
        service: HttpService,
        now: Instant,
    }

    impl Rig {
        fn new(connections: usize) -> Self {
            let mut device = Loopback::new(Medium::Ethernet);
            let config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 1]).into());
            let mut interface = Interface::new(config, &mut device, Instant::ZERO);
            interface.update_ip_addrs(|addresses| {
                addresses.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).unwrap();
            });
            let mut sockets = SocketSet::new(Vec::new());
            let mut service = HttpService::new(80, connections, Limits::default());
            service.start(&mut sockets, connections);
            Self { device, interface, sockets, service, now: Instant::ZERO }
        }

        fn client(&mut self, local_port: u16) -> SocketHandle {
            let handle = self.sockets.add(socket(64 * 1024, 64 * 1024));
            let context = self.interface.context();
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            socket.connect(context, (IpAddress::v4(127, 0, 0, 1), 80), local_port).unwrap();
            handle
        }

        fn turn(&mut self) {
            self.now += smoltcp::time::Duration::from_millis(1);
            self.interface.poll(self.now, &mut self.device, &mut self.sockets);
            self.service.poll(&mut self.sockets, self.now);
            self.interface.poll(self.now, &mut self.device, &mut self.sockets);
        }

        fn exchange(&mut self, client: SocketHandle, request: &[u8]) -> Vec<u8> {
            let mut sent = 0;
            let mut received = Vec::new();
            for _ in 0..2000 {
                self.turn();
                let socket = self.sockets.get_mut::<tcp::Socket>(client);
                if sent < request.len() && socket.can_send() {
                    sent += socket.send_slice(&request[sent..]).unwrap();
                }
                while socket.can_recv() {
                    socket.recv(|bytes| (bytes.len(), received.extend_from_slice(bytes))).unwrap();
                }
                let handshaking = matches!(socket.state(), tcp::State::SynSent | tcp::State::SynReceived);
                if !handshaking && !socket.may_recv() && sent == request.len() {
                    break;
                }
            }
            received
        }
    }

    #[test]
    fn answers_a_get_with_its_head_and_closes_on_request() {
        let mut rig = Rig::new(4);
        rig.turn();
        let client = rig.client(40000);
        let request = b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let response = rig.exchange(client, request);
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.ends_with(core::str::from_utf8(request).unwrap()), "{text}");
        assert_eq!(rig.service.counters().requests, 1);
        assert_eq!(rig.service.accepted, 1);
    }

    #[test]
    fn the_pool_refuses_with_503_when_full() {
        let mut rig = Rig::new(1);
        rig.turn();
        let first = rig.client(40001);
        for _ in 0..20 {
            rig.turn();
        }
        assert_eq!(rig.service.open_connections(), 1);
        let second = rig.client(40002);
        let response = rig.exchange(second, b"");
        assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 503"), "{response:?}");
        assert_eq!(rig.service.refused, 1);
        let _ = first;
    }

    #[test]
    fn streams_a_large_post_back_and_keeps_the_connection() {
        let mut rig = Rig::new(2);
        rig.turn();
        let client = rig.client(40003);
        let body: Vec<u8> = (0..1_000_000u32).map(|index| (index.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let mut request =
            alloc::format!("POST /data HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        request.extend_from_slice(&body);
        request.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let response = rig.exchange(client, &request);
        let head_end = response.windows(4).position(|window| window == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&response[..head_end]);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("Content-Length: 1000000\r\n"), "{head}");
        assert!(response[head_end..head_end + body.len()] == body[..], "the body comes back byte for byte");
        let rest = String::from_utf8_lossy(&response[head_end + body.len()..]);
        assert!(rest.starts_with("HTTP/1.1 200 OK\r\n") && rest.ends_with("Connection: close\r\n\r\n"), "{rest}");
        assert_eq!(rig.service.counters().requests, 2);
    }
}
