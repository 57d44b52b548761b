//! Client hosts and the ways their connections behave.

use super::hub::{Hub, Port};
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
    pub ended_at: Option<Instant>,
}

struct Connection {
    handle: SocketHandle,
    behaviour: Behaviour,
    started: Instant,
    /// Request bytes still to send.
    to_send: Vec<u8>,
    /// Body bytes a slow sender sent so far.
    trickled: u64,
    head: Vec<u8>,
    outcome: Outcome,
}

/// A client host: one address, one interface, many connections.
pub struct Client {
    interface: Interface,
    port: Port,
    sockets: SocketSet<'static>,
    connections: Vec<Connection>,
    plugged: bool,
    next_port: u16,
}

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
            plugged: true,
            next_port: 49152,
        }
    }

    pub(super) fn connect(&mut self, server: Ipv4Address, port: u16, behaviour: Behaviour, now: Instant) -> usize {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; behaviour.receive_buffer()]),
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
        );
        let local_port = self.next_port;
        self.next_port = self.next_port.wrapping_add(1).max(49152);
        let context = self.interface.context();
        if let Err(error) = socket.connect(context, (IpAddress::Ipv4(server), port), local_port) {
            panic!("harness client cannot connect: {error:?}");
        }
        let handle = self.sockets.add(socket);
        self.connections.push(Connection {
            handle,
            to_send: behaviour.first_bytes(),
            behaviour,
            started: now,
            trickled: 0,
            head: Vec::new(),
            outcome: Outcome::default(),
        });
        self.connections.len() - 1
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
        for connection in &mut self.connections {
            connection.drive(self.sockets.get_mut::<tcp::Socket>(connection.handle), now);
        }
        self.interface.poll(now, &mut self.port, &mut self.sockets);
    }
}

impl Connection {
    fn drive(&mut self, socket: &mut tcp::Socket<'static>, now: Instant) {
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
