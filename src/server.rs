//! The HTTP echo service: a [`SocketPool`] on the HTTP port whose open
//! connections each drive one [`http::Connection`] engine, and a tiny
//! metrics server.
//!
//! Slots and sockets are sized apart: `connections` engines (the HTTP
//! slots: at most that many requests are served at once) are allocated up
//! front and handed to connections as their handshakes finish; the pool has
//! `connections + backlog` sockets, so half-open handshakes (at most
//! `backlog` of them, oldest dropped first: see [`crate::pool`]) never take
//! a socket an HTTP slot needs. A connection that opens when every engine
//! is busy is answered `503 Service Unavailable` and closed (reset if it
//! has not finished closing [`REFUSAL_LINGER`] later); one whose client
//! address already holds `per_client` of them is reset at once. When every
//! socket is taken, smoltcp answers a SYN with RST. While every engine is
//! busy the service says so ([`HttpService::saturated`]), and the runtime
//! lets the port's SYNs through at the refusal budget's rate only
//! (`runtime::refusals`), so refusals cannot take the packets of the
//! connections being served.
//!
//! Memory is fixed after [`HttpService::start`]: socket buffers and engines
//! are allocated there and reused; nothing a client does allocates. Every
//! engine knows the instance it serves for (one shared [`http::Instance`],
//! set by [`HttpService::set_instance`]) and, from its accept on, its
//! connection's two ends, for the requests that ask who answered.

use crate::http::{self, CloseMode, Connection, Counters, Endpoints, Limits, SERVICE_UNAVAILABLE_RESPONSE, Status};
use crate::pool::{Change, SocketPool, Stage, TcpBounds, earliest};
use alloc::rc::Rc;
#[cfg(test)]
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;
use runtime::budget::RX_FRAMES_PER_TURN;
use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;
use smoltcp::wire::IpAddress;

/// Each connection's socket buffer, each way, unless `socket-buffer=` says
/// otherwise or the heap is small ([`default_socket_bytes`]): the most a
/// connection has in flight each way, so a bulk transfer moves at most this
/// much per round trip.
pub const DEFAULT_SOCKET_BYTES: usize = 16 * 1024;
/// How many connection slots the default socket buffers make room for:
/// where [`DEFAULT_SOCKET_BYTES`] leaves fewer in the heap, the default
/// halves (8K, then 4K) until this many fit. Many connections served at
/// once, each with less in flight, is what an echo appliance is for; 16 is
/// also what the smallest-memory probe of `make bench` opens at once (`wrk
/// -c16`).
pub const SMALL_HEAP_SLOTS: usize = 16;
/// The smallest socket buffer `socket-buffer=` takes.
pub const MIN_SOCKET_BYTES: usize = 4 * 1024;
/// The largest socket buffer `socket-buffer=` takes (smoltcp scales the
/// window beyond 64 KiB).
pub const MAX_SOCKET_BYTES: usize = 256 * 1024;
/// How long a refused connection (503 sent, FIN queued) may take to finish
/// closing before it is reset: refusals happen under overload, when sockets
/// are scarce.
pub const REFUSAL_LINGER: core::time::Duration = core::time::Duration::from_secs(2);

/// How the HTTP service is sized and bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpPlan {
    /// The port.
    pub port: u16,
    /// HTTP slots: engines, requests served at once.
    pub connections: usize,
    /// Sockets beyond the slots, for handshakes and refusals; also the cap
    /// on half-open handshakes.
    pub backlog: usize,
    /// Most connections one client address may hold (`None`: no limit).
    pub per_client: Option<usize>,
    /// The engine's limits.
    pub limits: Limits,
    /// The socket bounds.
    pub bounds: TcpBounds,
    /// Each connection's socket buffer, each way (receive and send).
    pub socket_bytes: usize,
}

impl HttpPlan {
    /// The default backlog for `connections` slots: half as many, and at
    /// least twice the frames one turn takes in (see `runtime::budget`) unless
    /// that is more than the slots (small guests).
    pub fn default_backlog(connections: usize) -> usize {
        (connections / 2).max(connections.min(2 * RX_FRAMES_PER_TURN)).max(1)
    }

    /// How many sockets the pool keeps listening, dropping the oldest
    /// half-open handshakes if need be: a turn's worth of frames, or half the
    /// backlog if that is less.
    pub fn listen_reserve(&self) -> usize {
        RX_FRAMES_PER_TURN.min(self.backlog / 2)
    }

    /// Heap bytes the service takes for `connections` slots and `backlog`,
    /// with socket buffers of `socket_bytes` each way.
    pub fn heap_bytes(connections: usize, backlog: usize, socket_bytes: usize, limits: &Limits) -> usize {
        let spare_socket = 2 * socket_bytes;
        let per_connection = bytes_per_connection(limits, socket_bytes);
        connections.saturating_mul(per_connection).saturating_add(backlog.saturating_mul(spare_socket))
    }
}

/// The socket buffer, each way, when `socket-buffer=` does not say: the
/// largest of [`DEFAULT_SOCKET_BYTES`] and its halves down to
/// [`MIN_SOCKET_BYTES`] with which `budget` heap bytes hold `slots` slots
/// (or [`SMALL_HEAP_SLOTS`], when fewer are asked) beside the backlog
/// `backlog_for` gives them; the smallest if none does.
pub fn default_socket_bytes(
    budget: usize,
    slots: Option<usize>,
    backlog_for: impl Fn(usize) -> usize,
    limits: &Limits,
) -> usize {
    let slots = slots.map_or(SMALL_HEAP_SLOTS, |slots| slots.min(SMALL_HEAP_SLOTS));
    let mut bytes = DEFAULT_SOCKET_BYTES;
    while bytes > MIN_SOCKET_BYTES && HttpPlan::heap_bytes(slots, backlog_for(slots), bytes, limits) > budget {
        bytes /= 2;
    }
    bytes
}

/// What a pooled socket's connection has from the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Serving {
    /// Nothing: listening, half-open, or finished.
    Nothing,
    /// Engine number `n`.
    Engine(usize),
    /// A 503 (queued once the socket can take it), then a close.
    Refusal { queued: bool },
}

/// The HTTP echo service on one port.
pub struct HttpService {
    plan: HttpPlan,
    pool: SocketPool<Serving>,
    engines: Vec<Connection>,
    free_engines: Vec<usize>,
    /// Which instance answers, shared by every engine.
    instance: Rc<http::Instance>,
    /// Counts of connections that have ended.
    finished: Counters,
    /// Connections accepted so far.
    pub accepted: u64,
    /// Connections refused with 503 (every slot busy).
    pub refused: u64,
    /// Connections reset at once because their client address already held
    /// `per_client` of them.
    pub refused_per_client: u64,
    /// What `/readyz` says, shared by every engine.
    readiness: Rc<Cell<http::Readiness>>,
    /// Whether it drains (the domain is asked to end).
    draining: bool,
}

/// Bytes one pooled connection may use at most, for sizing the pool, with
/// socket buffers of `socket_bytes` each way.
pub fn bytes_per_connection(limits: &Limits, socket_bytes: usize) -> usize {
    2 * socket_bytes + limits.memory_bound()
}

fn to_http(now: smoltcp::time::Instant) -> http::Instant {
    http::Instant::from_millis(now.total_millis().max(0) as u64)
}

fn from_http(instant: http::Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_millis(instant.as_millis().min(i64::MAX as u64) as i64)
}

impl HttpService {
    /// A service as `plan` says; nothing is allocated before `start`.
    pub fn new(plan: HttpPlan) -> Self {
        Self {
            pool: SocketPool::new(plan.port, plan.bounds, plan.backlog, plan.listen_reserve()),
            plan,
            engines: Vec::new(),
            free_engines: Vec::new(),
            instance: Rc::new(http::Instance::default()),
            finished: Counters::default(),
            accepted: 0,
            refused: 0,
            refused_per_client: 0,
            readiness: Rc::new(Cell::new(http::Readiness::NoLink)),
            draining: false,
        }
    }

    /// Says what `/readyz` answers from now on.
    pub fn set_readiness(&self, readiness: http::Readiness) {
        self.readiness.set(readiness);
    }

    /// What `/readyz` answers now.
    pub fn readiness(&self) -> http::Readiness {
        self.readiness.get()
    }

    /// Drains: no socket listens any more (a SYN gets RST), half-open
    /// handshakes are reset, every engine takes no further request (an idle
    /// keep-alive connection closes at once, one being answered after its
    /// answer, which says `Connection: close` if it can still), and
    /// `/readyz` says `draining`.
    pub fn drain(&mut self, sockets: &mut SocketSet<'static>) {
        self.draining = true;
        self.set_readiness(http::Readiness::Draining);
        self.pool.stop_listening(sockets);
        for serving in self.pool.states() {
            if let Serving::Engine(engine) = *serving {
                self.engines[engine].drain();
            }
        }
    }

    /// Whether it drains.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Connections still owed an answer or the acknowledgement of one.
    pub fn in_flight(&self, sockets: &SocketSet<'static>) -> usize {
        self.pool.in_flight(sockets)
    }

    /// Resets every connection still in flight; returns how many.
    pub fn cut(&mut self, sockets: &mut SocketSet<'static>, now: smoltcp::time::Instant) -> usize {
        self.pool.cut(sockets, now)
    }

    /// Says which instance answers (before or after `start`).
    pub fn set_instance(&mut self, instance: http::Instance) {
        self.instance = Rc::new(instance);
        for engine in &mut self.engines {
            engine.set_instance(self.instance.clone());
        }
    }

    /// Allocates the engines and the pool's sockets.
    pub fn start(&mut self, sockets: &mut SocketSet<'static>) {
        let HttpPlan { connections, backlog, limits, socket_bytes, .. } = self.plan;
        self.engines = (0..connections)
            .map(|_| {
                let mut engine = Connection::new(limits, http::Instant::ZERO);
                engine.set_instance(self.instance.clone());
                engine.set_readiness(self.readiness.clone());
                engine
            })
            .collect();
        self.free_engines = (0..connections).rev().collect();
        self.pool.add_sockets(sockets, connections + backlog, (socket_bytes, socket_bytes), || Serving::Nothing);
    }

    /// Connection slots.
    pub fn capacity(&self) -> usize {
        self.engines.len()
    }

    /// Sockets in the pool (slots plus backlog).
    pub fn sockets(&self) -> usize {
        self.pool.len()
    }

    /// Each socket's buffer, each way.
    pub fn socket_bytes(&self) -> usize {
        self.plan.socket_bytes
    }

    /// Connections open now (holding a slot).
    pub fn open_connections(&self) -> usize {
        self.engines.len() - self.free_engines.len()
    }

    /// Handshakes unfinished now.
    pub fn half_open(&self) -> usize {
        self.pool.count(|stage| matches!(stage, Stage::HalfOpen { .. }))
    }

    /// Whether half-open handshakes fill half the backlog or more: time for
    /// SYN cookies.
    pub fn syn_pressure(&self) -> bool {
        self.half_open() * 2 >= self.pool.half_open_cap()
    }

    /// Whether every slot is busy (and the service takes connections): a
    /// new connection would be refused with 503, so the runtime lets SYNs
    /// through at the refusal budget's rate only (`runtime::refusals`).
    pub fn saturated(&self) -> bool {
        !self.draining && !self.engines.is_empty() && self.free_engines.is_empty()
    }

    /// The port it serves.
    pub fn port(&self) -> u16 {
        self.plan.port
    }

    /// Sockets listening now.
    pub fn listening(&self) -> usize {
        self.pool.count(|stage| matches!(stage, Stage::Listening))
    }

    /// What the socket bounds did so far.
    pub fn pool_counters(&self) -> crate::pool::PoolCounters {
        self.pool.counters
    }

    /// Counters of every connection, ended and open.
    pub fn counters(&self) -> Counters {
        let mut total = self.finished.clone();
        for serving in self.pool.states() {
            if let Serving::Engine(engine) = *serving {
                total.add(self.engines[engine].counters());
            }
        }
        total
    }

    /// Serves every socket; returns the earliest deadline it needs a poll at.
    pub fn poll(
        &mut self,
        sockets: &mut SocketSet<'static>,
        now: smoltcp::time::Instant,
    ) -> Option<smoltcp::time::Instant> {
        let mut deadline = None;
        for index in 0..self.pool.len() {
            match self.pool.update(index, sockets, now) {
                Change::Freed => self.release(index),
                Change::Opened => self.admit(index, sockets, now),
                Change::None => {}
            }
            deadline = earliest(deadline, self.serve(index, sockets, now));
        }
        self.pool.enforce_half_open_cap(sockets);
        earliest(deadline, self.pool.deadline())
    }

    /// Gives a newly open connection an engine, or a refusal.
    fn admit(&mut self, index: usize, sockets: &mut SocketSet<'static>, now: smoltcp::time::Instant) {
        let socket = sockets.get::<tcp::Socket>(self.pool.handle(index));
        let (remote, local) = (socket.remote_endpoint(), socket.local_endpoint());
        let over_client_limit = match (self.plan.per_client, remote) {
            (Some(limit), Some(remote)) => self.connections_from(remote.addr, sockets) >= limit,
            _ => false,
        };
        if over_client_limit {
            // An address at its limit gets no politeness: a reset, and the
            // socket listens again at the next poll.
            self.refused_per_client += 1;
            self.pool.close(index, sockets, now, false);
            return;
        }
        *self.pool.state_mut(index) = match self.free_engines.pop() {
            Some(engine) => {
                self.accepted += 1;
                // Its counters were collected when it was last freed.
                self.engines[engine].recycle(to_http(now));
                let endpoints = Endpoints { client: remote.map(Into::into), local: local.map(Into::into) };
                self.engines[engine].set_endpoints(endpoints);
                if self.draining {
                    self.engines[engine].drain();
                }
                Serving::Engine(engine)
            }
            None => Serving::Refusal { queued: false },
        };
    }

    /// How many slots' connections come from `address`.
    fn connections_from(&self, address: IpAddress, sockets: &SocketSet<'static>) -> usize {
        (0..self.pool.len())
            .filter(|&index| matches!(self.pool.state(index), Serving::Engine(_)))
            .filter_map(|index| sockets.get::<tcp::Socket>(self.pool.handle(index)).remote_endpoint())
            .filter(|remote| remote.addr == address)
            .count()
    }

    /// Takes back what slot `index`'s finished connection held (the peer
    /// reset it, or the stack timed it out, while its engine served it).
    fn release(&mut self, index: usize) {
        let serving = core::mem::replace(self.pool.state_mut(index), Serving::Nothing);
        if let Serving::Engine(engine) = serving {
            self.release_engine(engine);
        }
    }

    /// Drives slot `index`'s connection; returns when it next needs a poll.
    fn serve(
        &mut self,
        index: usize,
        sockets: &mut SocketSet<'static>,
        now: smoltcp::time::Instant,
    ) -> Option<smoltcp::time::Instant> {
        let stage = self.pool.stage(index);
        let (socket, serving) = self.pool.slot_mut(index, sockets);
        match *serving {
            Serving::Engine(engine) => {
                let connection = &mut self.engines[engine];
                drive(connection, socket, to_http(now));
                let mode = match connection.wants_close() {
                    None => return connection.poll_timeout().map(from_http),
                    Some(mode) => mode,
                };
                // The engine is done: its slot is free at once, and the
                // socket finishes the close on its own, within the pool's
                // close bound.
                *serving = Serving::Nothing;
                self.release_engine(engine);
                self.pool.close(index, sockets, now, mode == CloseMode::Graceful);
                None
            }
            Serving::Refusal { queued: false } => {
                if socket.can_send() {
                    let _ = socket.send_slice(SERVICE_UNAVAILABLE_RESPONSE);
                    *serving = Serving::Refusal { queued: true };
                    self.refused += 1;
                    self.finished.record_response(Status::ServiceUnavailable);
                    self.pool.close(index, sockets, now, true);
                }
                None
            }
            Serving::Refusal { queued: true } => {
                discard_input(socket);
                let Stage::Closing { since } = stage else { return None };
                let linger_end = since + crate::pool::smoltcp_duration(REFUSAL_LINGER);
                if now < linger_end {
                    return Some(linger_end);
                }
                self.pool.close(index, sockets, now, false);
                None
            }
            Serving::Nothing => {
                if matches!(stage, Stage::Closing { .. }) {
                    // Draining, a request that arrives after the close will
                    // never be answered: a reset tells the client at once
                    // (a refused request), where silence would leave it
                    // waiting after the domain is gone.
                    if self.draining && socket.recv_queue() > 0 {
                        self.pool.close(index, sockets, now, false);
                        return None;
                    }
                    discard_input(socket);
                }
                None
            }
        }
    }

    /// Collects engine `engine`'s counters and makes it free.
    fn release_engine(&mut self, engine: usize) {
        let counters = self.engines[engine].recycle(http::Instant::ZERO);
        self.finished.add(&counters);
        self.free_engines.push(engine);
    }
}

/// Reads and drops whatever the peer still sends after the service closed.
fn discard_input(socket: &mut tcp::Socket<'_>) {
    let _ = socket.recv(|bytes| (bytes.len(), ()));
}

/// One round of the engine's caller contract (see [`crate::http`]), but
/// the close: the caller closes through the pool when `wants_close` says.
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
}

/// Whether the client has sent its FIN and every byte before it was read.
fn peer_finished(socket: &tcp::Socket<'_>) -> bool {
    let fin_received = matches!(
        socket.state(),
        tcp::State::CloseWait | tcp::State::LastAck | tcp::State::Closing | tcp::State::TimeWait | tcp::State::Closed
    );
    fin_received && socket.recv_queue() == 0
}

/// The metrics server: `GET /metrics` gets the text, `GET /healthz` and
/// `GET /readyz` what the HTTP port's probes answer (so a management
/// interface can carry them alone), anything else 404. Each connection has
/// [`METRICS_REQUEST_TIMEOUT`] to send its request; the text is rendered
/// into a buffer reserved once.
pub struct MetricsService {
    pool: SocketPool<()>,
    text: alloc::string::String,
    response: alloc::string::String,
}

/// Largest request head the metrics server reads.
const METRICS_REQUEST_BYTES: usize = 2048;
/// Room for the metrics response.
const METRICS_RESPONSE_BYTES: usize = 32 * 1024;
/// Sockets of the metrics server: two scrapes at once, two handshakes.
const METRICS_SOCKETS: usize = 4;
/// How long a metrics client has from its handshake to its whole request.
pub const METRICS_REQUEST_TIMEOUT: core::time::Duration = core::time::Duration::from_secs(5);

impl MetricsService {
    /// A metrics server on `port`, accepting connections to `address`
    /// only (`None`: to any address of the interface).
    pub fn new(port: u16, address: Option<IpAddress>, bounds: TcpBounds) -> Self {
        Self {
            pool: SocketPool::new(port, bounds, METRICS_SOCKETS / 2, 1).bound_to(address),
            text: alloc::string::String::new(),
            response: alloc::string::String::new(),
        }
    }

    /// Adds the sockets and reserves the text buffers.
    pub fn start(&mut self, sockets: &mut SocketSet<'static>) {
        self.pool.add_sockets(sockets, METRICS_SOCKETS, (METRICS_REQUEST_BYTES, METRICS_RESPONSE_BYTES), || ());
        self.text.reserve(METRICS_RESPONSE_BYTES / 2);
        self.response.reserve(METRICS_RESPONSE_BYTES / 2);
    }

    /// Answers complete requests: the metrics with the text `render`
    /// writes, the probes as `readiness` says; returns when it next needs
    /// a poll.
    pub fn poll(
        &mut self,
        sockets: &mut SocketSet<'static>,
        now: smoltcp::time::Instant,
        readiness: http::Readiness,
        render: &mut dyn FnMut(&mut alloc::string::String),
    ) -> Option<smoltcp::time::Instant> {
        let mut deadline = None;
        let request_timeout = crate::pool::smoltcp_duration(METRICS_REQUEST_TIMEOUT);
        for index in 0..self.pool.len() {
            self.pool.update(index, sockets, now);
            let Stage::Open { since } = self.pool.stage(index) else { continue };
            let (socket, ()) = self.pool.slot_mut(index, sockets);
            let request_done = socket.peek(METRICS_REQUEST_BYTES).is_ok_and(ends_head);
            let full = socket.recv_queue() >= METRICS_REQUEST_BYTES || !socket.may_recv();
            if request_done || full {
                let asked = socket.peek(METRICS_REQUEST_BYTES).map_or(Asked::Other, Asked::of);
                let _ = socket.recv(|bytes| (bytes.len(), ()));
                self.text.clear();
                if asked == Asked::Metrics {
                    render(&mut self.text);
                }
                metrics_response(&mut self.response, asked, readiness, &self.text);
                let _ = socket.send_slice(self.response.as_bytes());
                self.pool.close(index, sockets, now, true);
            } else if now >= since + request_timeout {
                self.pool.close(index, sockets, now, false);
            } else {
                deadline = earliest(deadline, Some(since + request_timeout));
            }
        }
        self.pool.enforce_half_open_cap(sockets);
        earliest(deadline, self.pool.deadline())
    }
}

/// What a request to the metrics server asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asked {
    /// `GET /metrics` (a query allowed).
    Metrics,
    /// `GET /healthz` or `GET /readyz` (a query allowed).
    Probe(http::Probe),
    /// Anything else.
    Other,
}

impl Asked {
    fn of(head: &[u8]) -> Asked {
        let Some(rest) = head.strip_prefix(b"GET ") else { return Asked::Other };
        let Some(end) = rest.iter().position(|&byte| byte == b' ') else { return Asked::Other };
        let target = &rest[..end];
        match http::Probe::of(target) {
            Some(probe) => Asked::Probe(probe),
            None if target.split(|&byte| byte == b'?').next() == Some(b"/metrics") => Asked::Metrics,
            None => Asked::Other,
        }
    }
}

fn ends_head(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|window| window == b"\r\n\r\n")
}

fn metrics_response(response: &mut alloc::string::String, asked: Asked, readiness: http::Readiness, text: &str) {
    use core::fmt::Write;
    let (status, kind, body) = match asked {
        Asked::Metrics => ("200 OK", "text/plain; version=0.0.4", text),
        Asked::Probe(probe) => match probe.answer(readiness) {
            (200, body) => ("200 OK", "text/plain", core::str::from_utf8(body).unwrap_or_default()),
            (_, body) => ("503 Service Unavailable", "text/plain", core::str::from_utf8(body).unwrap_or_default()),
        },
        Asked::Other => ("404 Not Found", "text/plain", "try /metrics, /healthz or /readyz\n"),
    };
    response.clear();
    let _ = write!(
        response,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_responses_are_well_formed() {
        let ready = http::Readiness::Ready;
        let mut ok = String::new();
        metrics_response(&mut ok, Asked::Metrics, ready, "xenecho_requests_total 3\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(ok.contains("Content-Length: 25\r\n"));
        assert!(ok.ends_with("\r\n\r\nxenecho_requests_total 3\n"));
        let mut missing = String::new();
        metrics_response(&mut missing, Asked::Other, ready, "");
        assert!(missing.starts_with("HTTP/1.1 404 Not Found\r\n"));
        let mut probe = String::new();
        metrics_response(&mut probe, Asked::Probe(http::Probe::Ready), http::Readiness::NoAddress, "");
        assert!(probe.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{probe}");
        assert!(probe.ends_with("\r\n\r\nno address\n"), "{probe}");
        metrics_response(&mut probe, Asked::Probe(http::Probe::Health), http::Readiness::NoAddress, "");
        assert!(probe.starts_with("HTTP/1.1 200 OK\r\n") && probe.ends_with("\r\n\r\nok\n"), "{probe}");
        assert!(ends_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!ends_head(b"GET / HTTP/1.1\r\nHost: x\r\n"));
    }

    #[test]
    fn only_the_metrics_and_probe_paths_are_served() {
        assert_eq!(Asked::of(b"GET /metrics HTTP/1.1\r\n"), Asked::Metrics);
        assert_eq!(Asked::of(b"GET /metrics?name=x HTTP/1.1\r\n"), Asked::Metrics);
        assert_eq!(Asked::of(b"GET /metricsfoo HTTP/1.1\r\n"), Asked::Other);
        assert_eq!(Asked::of(b"GET /metrics"), Asked::Other);
        assert_eq!(Asked::of(b"POST /metrics HTTP/1.1\r\n"), Asked::Other);
        assert_eq!(Asked::of(b"GET /healthz HTTP/1.1\r\n"), Asked::Probe(http::Probe::Health));
        assert_eq!(Asked::of(b"GET /readyz?x HTTP/1.1\r\n"), Asked::Probe(http::Probe::Ready));
        assert_eq!(Asked::of(b"GET /readyzz HTTP/1.1\r\n"), Asked::Other);
    }

    #[test]
    fn a_connection_costs_a_bounded_number_of_bytes() {
        assert_eq!(bytes_per_connection(&Limits::default(), DEFAULT_SOCKET_BYTES), 32 * 1024 + 24 * 1024);
        assert_eq!(bytes_per_connection(&Limits::default(), 64 * 1024), 128 * 1024 + 24 * 1024);
    }
}

#[cfg(test)]
mod loopback_tests {
    use super::*;
    use smoltcp::iface::{Config, Interface, SocketHandle};
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
            let plan = HttpPlan {
                port: 80,
                connections,
                backlog: 4,
                per_client: None,
                limits: Limits::default(),
                bounds: TcpBounds::default(),
                socket_bytes: DEFAULT_SOCKET_BYTES,
            };
            let mut service = HttpService::new(plan);
            service.start(&mut sockets);
            Self { device, interface, sockets, service, now: Instant::ZERO }
        }

        fn client(&mut self, local_port: u16) -> SocketHandle {
            let buffer = || tcp::SocketBuffer::new(alloc::vec![0; 64 * 1024]);
            let handle = self.sockets.add(tcp::Socket::new(buffer(), buffer()));
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
    fn the_json_description_names_the_client_and_the_instance() {
        let mut rig = Rig::new(2);
        rig.service.set_instance(http::Instance::new(Some("loop"), Some(3)));
        rig.turn();
        let client = rig.client(40004);
        let response = rig.exchange(client, b"GET /?format=json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let head_end = response.windows(4).position(|window| window == b"\r\n\r\n").unwrap() + 4;
        let json: serde_json::Value = serde_json::from_slice(&response[head_end..]).unwrap();
        assert_eq!((&json["client"]["address"], &json["client"]["port"]), (&"127.0.0.1".into(), &40004.into()));
        let instance = &json["instance"];
        assert_eq!((&instance["name"], &instance["domid"]), (&"loop".into(), &3.into()));
        assert_eq!((&instance["address"], &instance["port"]), (&"127.0.0.1".into(), &80.into()));
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
