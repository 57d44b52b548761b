//! Client hosts and the ways their connections behave.

use super::hub::{Hub, Port};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, Ipv4Address};

/// How a client connection behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Sends `request` and reads everything that comes back: a well-behaved
    /// client.
    Fetch(Vec<u8>),
    /// Connects and sends nothing.
    Silent,
    /// Sends a POST head announcing a large body, then one body byte every
    /// `every`.
    SlowBody {
        /// The gap between body bytes.
        every: Duration,
    },
    /// Sends a 256 KiB POST and reads the echo at `bytes_per_second` through
    /// a small receive window.
    SlowReader {
        /// How fast it reads.
        bytes_per_second: u64,
    },
    /// Sends a 256 KiB POST and never reads: its window closes.
    ZeroWindow,
    /// Sends one keep-alive GET, reads the answer, then sits idle with the
    /// connection open (unplug its host to make it vanish).
    KeepAlive,
    /// Sends a GET with `Connection: close`, reads the answer and the
    /// server's FIN, and never closes its own side.
    AbandonedClose,
    /// One of a load generator's connections, as wrk's: a keep-alive GET,
    /// its whole answer read, the next GET at once; when the connection
    /// ends (an answer saying `Connection: close`, such as a 503, or a
    /// reset, or the server's FIN) it closes its side and opens a new
    /// connection at once, for ever (unplug its host to stop it). What it
    /// saw is counted in [`Outcome::load`].
    Load,
}

/// What a client connection has seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// When the handshake finished, if it did.
    pub connected_at: Option<Instant>,
    /// The first response's status code, once its status line arrived.
    pub status: Option<u16>,
    /// When that status line arrived.
    pub answered_at: Option<Instant>,
    /// Bytes received in all.
    pub received: usize,
    /// When the connection ended (reset, or closed both ways), if it did.
    /// A [`Behaviour::Load`] connection never ends: it opens another.
    pub ended_at: Option<Instant>,
    /// What a [`Behaviour::Load`] connection and its successors saw.
    pub load: LoadCounts,
}

/// What a [`Behaviour::Load`] connection and the ones it opened after it
/// saw, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadCounts {
    /// Connections opened (the first one included).
    pub connects: u64,
    /// Handshakes that finished.
    pub connected: u64,
    /// Complete answers with status 200.
    pub ok: u64,
    /// Complete answers with status 503.
    pub unavailable: u64,
    /// Complete answers with any other status.
    pub other: u64,
    /// Connections that ended with a request unanswered (reset, or closed
    /// by the server before the answer was whole).
    pub errors: u64,
}

/// Reads HTTP/1.1 answers off a byte stream: status, `Content-Length`,
/// `Connection: close`.
#[derive(Debug, Default)]
struct AnswerReader {
    head: Vec<u8>,
    /// Body bytes of the current answer still to come, once its head is in.
    body_left: Option<usize>,
    status: u16,
    close: bool,
}

/// A complete answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    close: bool,
}

impl AnswerReader {
    /// Takes `bytes`; returns the answers they completed.
    fn take(&mut self, mut bytes: &[u8], answers: &mut Vec<Answer>) {
        while !bytes.is_empty() {
            if let Some(left) = self.body_left {
                let taken = left.min(bytes.len());
                bytes = &bytes[taken..];
                self.body_left = Some(left - taken);
            } else {
                let Some(end) = self.head_end(bytes) else {
                    self.head.extend_from_slice(bytes);
                    return;
                };
                self.head.extend_from_slice(&bytes[..end]);
                bytes = &bytes[end..];
                self.parse_head();
            }
            if self.body_left == Some(0) {
                answers.push(Answer { status: self.status, close: self.close });
                self.body_left = None;
            }
        }
    }

    /// Where the head ends in `bytes` (just past its blank line), given what
    /// `head` already holds.
    fn head_end(&self, bytes: &[u8]) -> Option<usize> {
        let kept = self.head.len().min(3);
        let mut window: Vec<u8> = self.head[self.head.len() - kept..].to_vec();
        window.extend_from_slice(&bytes[..bytes.len().min(8192)]);
        let at = window.windows(4).position(|four| four == b"\r\n\r\n")?;
        Some(at + 4 - kept)
    }

    fn parse_head(&mut self) {
        let text = String::from_utf8_lossy(&self.head).to_ascii_lowercase();
        self.status = text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
        let field =
            |name: &str| text.lines().find_map(|line| line.strip_prefix(name).map(|value| String::from(value.trim())));
        self.close = field("connection:").is_some_and(|value| value == "close");
        self.body_left = Some(field("content-length:").and_then(|value| value.parse().ok()).unwrap_or(0));
        self.head.clear();
    }
}

struct Connection {
    handle: SocketHandle,
    /// Where it connects to.
    remote: (IpAddress, u16),
    behaviour: Behaviour,
    started: Instant,
    /// Request bytes still to send.
    to_send: Vec<u8>,
    /// Body bytes a slow sender sent so far.
    trickled: u64,
    head: Vec<u8>,
    outcome: Outcome,
    /// A load connection's answers, as they arrive.
    answers: AnswerReader,
    /// A load connection's request is out and its answer not yet whole.
    awaiting: bool,
    /// A load connection is done with its socket: open another.
    replace: bool,
    /// A load connection's current socket finished its handshake.
    handshaken: bool,
}

/// A client host: one address, one interface, many connections.
pub struct Client {
    interface: Interface,
    port: Port,
    sockets: SocketSet<'static>,
    connections: Vec<Connection>,
    /// Sockets of load connections that were replaced, finishing their
    /// close (removed once closed, or after [`RETIRED_LINGER`]).
    retired: Vec<(SocketHandle, Instant)>,
    plugged: bool,
    next_port: u16,
}

/// How long a replaced load connection's socket may take to finish its
/// close before it is dropped (its peer then hears nothing more).
const RETIRED_LINGER: Duration = Duration::from_secs(10);

/// The request a load connection sends, again and again.
const LOAD_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: appliance\r\n\r\n";

const LARGE_BODY: usize = 256 * 1024;

fn post_head(length: usize) -> Vec<u8> {
    alloc::format!("POST /upload HTTP/1.1\r\nHost: appliance\r\nContent-Length: {length}\r\n\r\n").into_bytes()
}

impl Behaviour {
    /// A keep-alive GET of `path`, closed after its answer.
    pub fn get(path: &str) -> Behaviour {
        Behaviour::Fetch(
            alloc::format!("GET {path} HTTP/1.1\r\nHost: appliance\r\nConnection: close\r\n\r\n").into_bytes(),
        )
    }

    fn first_bytes(&self) -> Vec<u8> {
        match self {
            Behaviour::Fetch(request) => request.clone(),
            Behaviour::Silent => Vec::new(),
            Behaviour::SlowBody { .. } => post_head(1_000_000),
            Behaviour::SlowReader { .. } | Behaviour::ZeroWindow => {
                let mut request = post_head(LARGE_BODY);
                request.resize(request.len() + LARGE_BODY, b'z');
                request
            }
            Behaviour::KeepAlive => b"GET /keep HTTP/1.1\r\nHost: appliance\r\n\r\n".to_vec(),
            Behaviour::AbandonedClose => b"GET /bye HTTP/1.1\r\nHost: appliance\r\nConnection: close\r\n\r\n".to_vec(),
            Behaviour::Load => LOAD_REQUEST.to_vec(),
        }
    }

    fn receive_buffer(&self) -> usize {
        match self {
            Behaviour::SlowReader { .. } | Behaviour::ZeroWindow => 4096,
            _ => 64 * 1024,
        }
    }
}

impl Client {
    pub(super) fn new(interface: Interface, port: Port, _address: Ipv4Address) -> Client {
        Client {
            interface,
            port,
            sockets: SocketSet::new(Vec::new()),
            connections: Vec::new(),
            retired: Vec::new(),
            plugged: true,
            next_port: 49152,
        }
    }

    /// A new socket connecting to `server`:`port` from the next local port.
    fn open(&mut self, server: IpAddress, port: u16, behaviour: &Behaviour) -> SocketHandle {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; behaviour.receive_buffer()]),
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
        );
        let local_port = self.next_port;
        self.next_port = self.next_port.wrapping_add(1).max(49152);
        let context = self.interface.context();
        if let Err(error) = socket.connect(context, (server, port), local_port) {
            panic!("harness client cannot connect: {error:?}");
        }
        self.sockets.add(socket)
    }

    pub(super) fn connect(&mut self, server: Ipv4Address, port: u16, behaviour: Behaviour, now: Instant) -> usize {
        let remote = (IpAddress::Ipv4(server), port);
        let handle = self.open(remote.0, remote.1, &behaviour);
        let mut outcome = Outcome::default();
        outcome.load.connects = 1;
        self.connections.push(Connection {
            handle,
            remote,
            to_send: behaviour.first_bytes(),
            behaviour,
            started: now,
            trickled: 0,
            head: Vec::new(),
            outcome,
            answers: AnswerReader::default(),
            awaiting: false,
            replace: false,
            handshaken: false,
        });
        self.connections.len() - 1
    }

    /// Replaces load connection `index`'s socket by a new one to the same
    /// place; the old one finishes its close on its own.
    fn reconnect(&mut self, index: usize, now: Instant) {
        let (old, (address, port)) = (self.connections[index].handle, self.connections[index].remote);
        self.retired.push((old, now));
        let handle = self.open(address, port, &Behaviour::Load);
        let connection = &mut self.connections[index];
        connection.handle = handle;
        connection.to_send = LOAD_REQUEST.to_vec();
        connection.answers = AnswerReader::default();
        connection.awaiting = false;
        connection.replace = false;
        connection.handshaken = false;
        connection.outcome.load.connects += 1;
    }

    /// Drops the replaced sockets whose close is done or took too long.
    fn forget_retired(&mut self, now: Instant) {
        let sockets = &mut self.sockets;
        self.retired.retain(|&(handle, since)| {
            let state = sockets.get::<tcp::Socket>(handle).state();
            let done = matches!(state, tcp::State::Closed | tcp::State::TimeWait) || now >= since + RETIRED_LINGER;
            if done {
                sockets.remove(handle);
            }
            !done
        });
    }

    /// What the host's port sent and took in so far.
    pub(super) fn frames(&self) -> super::hub::PortCounts {
        self.port.counts()
    }

    pub(super) fn outcome(&self, index: usize) -> &Outcome {
        &self.connections[index].outcome
    }

    pub(super) fn unplug(&mut self, hub: &mut Hub) {
        self.plugged = false;
        hub.unplug(self.port.mac());
    }

    pub(super) fn turn(&mut self, now: Instant) {
        if !self.plugged {
            return;
        }
        self.interface.poll(now, &mut self.port, &mut self.sockets);
        for index in 0..self.connections.len() {
            let connection = &mut self.connections[index];
            connection.drive(self.sockets.get_mut::<tcp::Socket>(connection.handle), now);
            if connection.replace {
                self.reconnect(index, now);
                let connection = &mut self.connections[index];
                connection.drive(self.sockets.get_mut::<tcp::Socket>(connection.handle), now);
            }
        }
        self.forget_retired(now);
        self.interface.poll(now, &mut self.port, &mut self.sockets);
    }
}

impl Connection {
    fn drive(&mut self, socket: &mut tcp::Socket<'static>, now: Instant) {
        if self.behaviour == Behaviour::Load {
            return self.drive_load(socket, now);
        }
        if self.outcome.ended_at.is_some() {
            return;
        }
        let state = socket.state();
        if self.outcome.connected_at.is_none() && !matches!(state, tcp::State::SynSent | tcp::State::Closed) {
            self.outcome.connected_at = Some(now);
        }
        if state == tcp::State::Closed || state == tcp::State::TimeWait {
            self.outcome.ended_at = Some(now);
            return;
        }
        if self.outcome.connected_at.is_none() {
            return;
        }
        self.send(socket, now);
        self.read(socket, now);
        let finished = !socket.may_recv();
        match self.behaviour {
            Behaviour::Fetch(_) if finished => socket.close(),
            _ => {}
        }
    }

    /// A load connection's turn: connect, send, read answers, send the
    /// next request; ask for a new connection once this one is over.
    fn drive_load(&mut self, socket: &mut tcp::Socket<'static>, now: Instant) {
        let state = socket.state();
        if state == tcp::State::SynSent {
            return;
        }
        if self.outcome.connected_at.is_none() && state != tcp::State::Closed {
            self.outcome.connected_at = Some(now);
        }
        let handshaken = !matches!(state, tcp::State::SynReceived | tcp::State::Closed);
        if handshaken && !self.handshaken {
            self.handshaken = true;
            self.outcome.load.connected += 1;
        }
        let mut close = false;
        let mut answers = Vec::new();
        while socket.can_recv() {
            let Ok(bytes) = socket.recv(|bytes| (bytes.len(), bytes.to_vec())) else { break };
            if bytes.is_empty() {
                break;
            }
            self.outcome.received += bytes.len();
            self.answers.take(&bytes, &mut answers);
        }
        for answer in answers {
            let load = &mut self.outcome.load;
            match answer.status {
                200 => load.ok += 1,
                503 => load.unavailable += 1,
                _ => load.other += 1,
            }
            if self.outcome.status.is_none() {
                self.outcome.status = Some(answer.status);
                self.outcome.answered_at = Some(now);
            }
            self.awaiting = false;
            close |= answer.close;
            if !close {
                self.to_send = LOAD_REQUEST.to_vec();
            }
        }
        let over = close || !socket.may_recv() || matches!(state, tcp::State::Closed | tcp::State::TimeWait);
        if over {
            if !close && (self.awaiting || !self.to_send.is_empty()) {
                self.outcome.load.errors += 1;
            }
            socket.close();
            self.replace = true;
            return;
        }
        if !self.to_send.is_empty() && socket.can_send() {
            let sent = socket.send_slice(&self.to_send).unwrap_or(0);
            self.to_send.drain(..sent);
            if self.to_send.is_empty() {
                self.awaiting = true;
            }
        }
    }

    fn send(&mut self, socket: &mut tcp::Socket<'static>, now: Instant) {
        if let Behaviour::SlowBody { every } = self.behaviour {
            let every_ms = every.total_millis().max(1);
            let due = (now - self.started).total_millis() / every_ms;
            if self.to_send.is_empty() && self.trickled < due {
                self.to_send.push(b'x');
                self.trickled += 1;
            }
        }
        if !self.to_send.is_empty() && socket.can_send() {
            let sent = socket.send_slice(&self.to_send).unwrap_or(0);
            self.to_send.drain(..sent);
        }
    }

    fn read(&mut self, socket: &mut tcp::Socket<'static>, now: Instant) {
        let allowance = match self.behaviour {
            Behaviour::ZeroWindow => 0,
            Behaviour::SlowReader { bytes_per_second } => {
                let due = (now - self.started).total_millis() * bytes_per_second / 1000;
                (due as usize).saturating_sub(self.outcome.received)
            }
            _ => usize::MAX,
        };
        let mut left = allowance;
        while left > 0 && socket.can_recv() {
            let Ok(taken) = socket.recv(|bytes| {
                let count = bytes.len().min(left);
                (count, bytes[..count].to_vec())
            }) else {
                break;
            };
            if taken.is_empty() {
                break;
            }
            left -= taken.len();
            self.observe(&taken, now);
        }
    }

    fn observe(&mut self, bytes: &[u8], now: Instant) {
        self.outcome.received += bytes.len();
        if self.outcome.status.is_some() {
            return;
        }
        self.head.extend_from_slice(&bytes[..bytes.len().min(64)]);
        if let Some(end) = self.head.iter().position(|&byte| byte == b'\n') {
            let line = &self.head[..end];
            let code = line.split(|&byte| byte == b' ').nth(1).and_then(|code| core::str::from_utf8(code).ok());
            self.outcome.status = code.and_then(|code| code.parse().ok());
            self.outcome.answered_at = Some(now);
        }
    }
}
