//! A TCP echo service (RFC 862): every byte received on the port is sent
//! back. The network's first user; the HTTP appliance will sit beside it.
//!
//! Each listening socket serves one connection at a time and listens again
//! when it closes; backpressure is smoltcp's: bytes stay in the receive
//! buffer until the send buffer has room.

use alloc::vec;
use alloc::vec::Vec;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;

/// Bytes of receive and of send buffer per connection.
const BUFFER_BYTES: usize = 16 * 1024;

/// The echo service on one port.
pub struct EchoService {
    port: u16,
    connections: usize,
    handles: Vec<SocketHandle>,
    /// Bytes echoed so far.
    pub bytes_echoed: u64,
}

impl EchoService {
    /// An echo service on `port` with room for `connections` at once.
    pub fn new(port: u16, connections: usize) -> Self {
        Self { port, connections, handles: Vec::new(), bytes_echoed: 0 }
    }

    /// Adds the listening sockets.
    pub fn start(&mut self, sockets: &mut SocketSet<'static>) {
        for _ in 0..self.connections {
            let socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; BUFFER_BYTES]),
                tcp::SocketBuffer::new(vec![0; BUFFER_BYTES]),
            );
            self.handles.push(sockets.add(socket));
        }
    }

    /// Echoes what arrived; re-arms closed sockets.
    pub fn poll(&mut self, sockets: &mut SocketSet<'static>) {
        for &handle in &self.handles {
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            if !socket.is_open() {
                if let Err(error) = socket.listen(self.port) {
                    log::error!("echo: listen on {}: {error:?}", self.port);
                }
                continue;
            }
            self.bytes_echoed += echo_some(socket) as u64;
            if socket.state() == tcp::State::CloseWait && socket.recv_queue() == 0 {
                socket.close();
            }
        }
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
