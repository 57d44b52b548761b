//! A TCP echo service on one socket per interface for the production
//! loop's tests: it notes what the runtime told it about the domain (and
//! whether that came before it started), and the runtime's counters and
//! the interface each time it echoes.

use crate::{Instance, InterfaceId, Service, Stats};
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
    sockets: Vec<(InterfaceId, SocketHandle)>,
    /// The runtime's counters at each echo.
    pub stats: Vec<Stats>,
    /// The interface of each echo.
    pub echoed_on: Vec<InterfaceId>,
    /// What the runtime said about the domain, each time.
    pub identified: Vec<Instance>,
    /// Whether the first [`Service::identify`] came before [`Service::start`].
    pub identified_before_start: bool,
}

impl EchoService {
    /// The interfaces it was started on, in order.
    pub fn interfaces(&self) -> Vec<InterfaceId> {
        self.sockets.iter().map(|(interface, _)| *interface).collect()
    }
}

impl Service for EchoService {
    fn identify(&mut self, instance: &Instance) {
        if self.identified.is_empty() {
            self.identified_before_start = self.sockets.is_empty();
        }
        self.identified.push(instance.clone());
    }

    fn start(&mut self, interface: InterfaceId, sockets: &mut SocketSet<'static>) {
        let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 2048]), tcp::SocketBuffer::new(vec![0; 2048]));
        self.sockets.push((interface, sockets.add(socket)));
    }

    fn poll(
        &mut self,
        interface: InterfaceId,
        sockets: &mut SocketSet<'static>,
        _: Instant,
        stats: &dyn Fn() -> Stats,
    ) -> Option<Instant> {
        let handle = self.sockets.iter().find(|(id, _)| *id == interface).expect("started on the interface").1;
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        if !socket.is_open() {
            socket.listen(ECHO_PORT).expect("listen");
        }
        while socket.can_recv() && socket.can_send() {
            let mut buffer = [0; 512];
            let read = socket.recv_slice(&mut buffer).expect("recv");
            socket.send_slice(&buffer[..read]).expect("send");
            self.stats.push(stats());
            self.echoed_on.push(interface);
        }
        if socket.state() == tcp::State::CloseWait {
            socket.close();
        }
        None
    }
}

/// A service with no sockets: the loop and the stack alone are under test
/// (the stack answers pings and refuses TCP with resets).
pub struct NoService;

impl Service for NoService {
    fn start(&mut self, _: InterfaceId, _: &mut SocketSet<'static>) {}

    fn poll(
        &mut self,
        _: InterfaceId,
        _: &mut SocketSet<'static>,
        _: Instant,
        _: &dyn Fn() -> Stats,
    ) -> Option<Instant> {
        None
    }
}
