//! A TCP echo service on one socket for the production loop's tests: it
//! notes what the runtime told it about the domain (and whether that came
//! before it started) and the runtime's counters each time it echoes.

use crate::{Instance, Service, Stats};
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

/// The port it echoes on.
pub const ECHO_PORT: u16 = 7;

/// See the module's comment.
#[derive(Default)]
pub struct EchoService {
    socket: Option<SocketHandle>,
    /// The runtime's counters at each echo.
    pub stats: Vec<Stats>,
    /// What the runtime said about the domain, each time.
    pub identified: Vec<Instance>,
    /// Whether the first [`Service::identify`] came before [`Service::start`].
    pub identified_before_start: bool,
}

impl Service for EchoService {
    fn identify(&mut self, instance: &Instance) {
        if self.identified.is_empty() {
            self.identified_before_start = self.socket.is_none();
        }
        self.identified.push(instance.clone());
    }

    fn start(&mut self, sockets: &mut SocketSet<'static>) {
        let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 2048]), tcp::SocketBuffer::new(vec![0; 2048]));
        self.socket = Some(sockets.add(socket));
    }

    fn poll(&mut self, sockets: &mut SocketSet<'static>, _: Instant, stats: &dyn Fn() -> Stats) -> Option<Instant> {
        let socket = sockets.get_mut::<tcp::Socket>(self.socket.expect("started"));
        if !socket.is_open() {
            socket.listen(ECHO_PORT).expect("listen");
        }
        while socket.can_recv() && socket.can_send() {
            let mut buffer = [0; 512];
            let read = socket.recv_slice(&mut buffer).expect("recv");
            socket.send_slice(&buffer[..read]).expect("send");
            self.stats.push(stats());
        }
        if socket.state() == tcp::State::CloseWait {
            socket.close();
        }
        None
    }
}
