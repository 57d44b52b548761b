//! A TCP echo service (RFC 862): every byte received on the port is sent
//! back.
//!
//! A [`SocketPool`] of a few sockets, each serving one connection at a time;
//! backpressure is smoltcp's: bytes stay in the receive buffer until the
//! send buffer has room. A connection that moves no byte for
//! [`ECHO_IDLE_TIMEOUT`] is closed (the pool then bounds the close), so idle
//! clients cannot hold the port.

use crate::pool::{SocketPool, Stage, TcpBounds, earliest, smoltcp_duration};
use core::time::Duration;
use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

/// Bytes of receive and of send buffer per connection.
const BUFFER_BYTES: usize = 16 * 1024;
/// How long an echo connection may move no byte before it is closed.
pub const ECHO_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The echo service on one port.
pub struct EchoService {
    connections: usize,
    /// Per socket: when it last moved a byte (or opened).
    pool: SocketPool<Instant>,
    /// Bytes echoed so far.
    pub bytes_echoed: u64,
}

impl EchoService {
    /// An echo service on `port` with room for `connections` at once.
    pub fn new(port: u16, connections: usize, bounds: TcpBounds) -> Self {
        Self { connections, pool: SocketPool::new(port, bounds, connections.div_ceil(2), 1), bytes_echoed: 0 }
    }

    /// Adds the listening sockets.
    pub fn start(&mut self, sockets: &mut SocketSet<'static>) {
        self.pool.add_sockets(sockets, self.connections, (BUFFER_BYTES, BUFFER_BYTES), || Instant::ZERO);
    }

    /// Drains: no socket listens any more, and every open connection
    /// closes once what it has echoed is sent.
    pub fn drain(&mut self, sockets: &mut SocketSet<'static>, now: Instant) {
        self.pool.stop_listening(sockets);
        for index in 0..self.pool.len() {
            if matches!(self.pool.stage(index), Stage::Open { .. }) {
                self.pool.close(index, sockets, now, true);
            }
        }
    }

    /// Connections still owed something (see [`SocketPool::in_flight`]).
    pub fn in_flight(&self, sockets: &SocketSet<'static>) -> usize {
        self.pool.in_flight(sockets)
    }

    /// Resets every connection still in flight; returns how many.
    pub fn cut(&mut self, sockets: &mut SocketSet<'static>, now: Instant) -> usize {
        self.pool.cut(sockets, now)
    }

    /// Echoes what arrived, closes idle and finished connections; returns
    /// when it next needs a poll.
    pub fn poll(&mut self, sockets: &mut SocketSet<'static>, now: Instant) -> Option<Instant> {
        let idle_timeout = smoltcp_duration(ECHO_IDLE_TIMEOUT);
        let mut deadline = None;
        for index in 0..self.pool.len() {
            if self.pool.update(index, sockets, now) == crate::pool::Change::Opened {
                *self.pool.state_mut(index) = now;
            }
            if !matches!(self.pool.stage(index), Stage::Open { .. }) {
                continue;
            }
            let (socket, last_moved) = self.pool.slot_mut(index, sockets);
            let moved = echo_some(socket);
            if moved > 0 {
                *last_moved = now;
                self.bytes_echoed += moved as u64;
            }
            let idle_until = *last_moved + idle_timeout;
            let finished = socket.state() == tcp::State::CloseWait && socket.recv_queue() == 0;
            if finished || now >= idle_until {
                self.pool.close(index, sockets, now, true);
            } else {
                deadline = earliest(deadline, Some(idle_until));
            }
        }
        self.pool.enforce_half_open_cap(sockets);
        earliest(deadline, self.pool.deadline())
    }
}

/// Moves as many bytes as fit from the receive buffer to the send buffer.
fn echo_some(socket: &mut tcp::Socket<'_>) -> usize {
    let mut moved = 0;
    while socket.can_recv() && socket.can_send() {
        let room = socket.send_capacity() - socket.send_queue();
        let mut chunk = [0u8; 2048];
        let wanted = room.min(chunk.len());
        let Ok(count) = socket.recv_slice(&mut chunk[..wanted]) else { break };
        if count == 0 {
            break;
        }
        // The send buffer had `room` bytes free, so all of `count` fits.
        let sent = socket.send_slice(&chunk[..count]).unwrap_or(0);
        moved += sent;
        if sent < count {
            break;
        }
    }
    moved
}
