//! A host harness for the appliance's TCP services: the real [`Appliance`]
//! (the same `runtime::Service` the guest runs) on a smoltcp interface,
//! clients on interfaces of their own, all joined by a simulated Ethernet
//! hub, with a simulated clock. Scripted attackers ([`Behaviour`]) play the
//! clients an appliance facing the network meets: half-open SYN floods,
//! silent clients, clients that vanish, zero-window and slow readers, slow
//! bodies, abandoned closes; a [`Behaviour::Fetch`] client checks that a
//! fresh client is still served.
//!
//! One [`Network::step`] is one turn of the guest's loop, through the
//! function the guest runs (`runtime::data_path::pass`: a budget of frames
//! in through the SYN cookies, the services, the output) at the current
//! simulated instant, with every client's turn before it, and frames
//! delivered until the hub is quiet. Time only moves in `step`.
//!
//! By default the appliance keeps up with anything within a step (up to
//! 256 turns of it). [`Network::limit_guest_frames`] makes it a host that
//! pays per packet, as the emulated Xen host does: at most about that many
//! frames, received and sent, per step, the rest waiting at its port. The
//! hub counts every port's frames ([`PortCounts`]), so a test can say how
//! the appliance's packets were shared out among the client hosts.
//!
//! Used by the scenario tests and, through [`script`] (an attacker script
//! read from arbitrary bytes), by the `hostile_clients` fuzz target and its
//! stable smoke test.

mod clients;
mod flood;
mod hub;
pub mod script;

#[cfg(test)]
mod operations;
#[cfg(test)]
mod refusal_tests;
#[cfg(test)]
mod tests;

pub use clients::{Behaviour, LoadCounts, Outcome};
pub use flood::SynFlood;
pub use hub::PortCounts;

use crate::{Appliance, Settings};
use alloc::vec::Vec;
use clients::Client;
use hub::{Hub, Port};
use runtime::Service;
use runtime::syn_cookies::SynCookies;
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::socket::{AnySocket, tcp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv4Address};

/// The appliance's address on the simulated network.
pub const SERVER_ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
/// The appliance's gateway, behind which the SYN flood's spoofed sources
/// are.
pub const GATEWAY_ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 0, 254);
/// Most SYNs the flood sends before one turn of the appliance.
const FLOOD_BURST: u64 = 12;
/// The HTTP port the harness serves on.
pub const HTTP_PORT: u16 = 80;
/// The domain name the harness's appliance is told it has (domain id 1).
pub const HARNESS_INSTANCE_NAME: &str = "xenecho-harness";

/// Runs `work` without counting its allocations against the appliance (in
/// the host tests, which count the appliance's own).
pub(crate) fn uncounted<R>(work: impl FnOnce() -> R) -> R {
    #[cfg(test)]
    {
        let mut result = None;
        allocation_counter::opt_out(|| result = Some(work()));
        result.expect("opt_out runs its closure")
    }
    #[cfg(not(test))]
    work()
}

/// The appliance, its interface and its sockets.
struct Server {
    interface: Interface,
    sockets: SocketSet<'static>,
    appliance: Appliance,
    port: Port,
    cookies: SynCookies,
    fragments: runtime::fragments::FragmentScreen,
}

/// The simulated network: the appliance, the clients, the flood, the hub.
pub struct Network {
    now: Instant,
    hub: Hub,
    server: Server,
    clients: Vec<Client>,
    flood: Option<SynFlood>,
    /// Most frames the appliance handles in a step (`None`: no limit).
    guest_frames_per_step: Option<u64>,
}

/// A client host: its own address and interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostId(usize);

/// One connection a client host opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionId {
    host: HostId,
    index: usize,
}

fn interface_for(mac: EthernetAddress, address: Ipv4Address, port: &mut Port, now: Instant) -> Interface {
    let mut interface = Interface::new(Config::new(mac.into()), port, now);
    interface.update_ip_addrs(|addresses| {
        let _ = addresses.push(IpCidr::new(IpAddress::Ipv4(address), 8));
    });
    interface
}

impl Network {
    /// The appliance as `settings` say, alone on the hub.
    pub fn new(settings: &Settings) -> Network {
        let now = Instant::ZERO;
        let mut hub = Hub::default();
        let mut port = hub.plug(EthernetAddress([0x02, 0, 0, 0, 0, 1]));
        let mut interface = interface_for(port.mac(), SERVER_ADDRESS, &mut port, now);
        let mut fragments = runtime::fragments::FragmentScreen::default();
        runtime::fragments::configure(&mut interface, &mut fragments);
        let _ = interface.routes_mut().add_default_ipv4_route(GATEWAY_ADDRESS);
        let mut sockets = SocketSet::new(Vec::new());
        let mut appliance = Appliance::new(settings);
        // As runtime::run does: the instance first, then the sockets.
        appliance.identify(&runtime::Instance { name: Some(HARNESS_INSTANCE_NAME.into()), domid: Some(1) });
        appliance.start(runtime::InterfaceId::Main, &mut sockets);
        // The harness's link is up and its address bound from the start.
        appliance.network(
            runtime::InterfaceId::Main,
            runtime::NetworkState { link_up: true, address_bound: true, ..Default::default() },
        );
        let server = Server { interface, sockets, appliance, port, cookies: SynCookies::new(0x5eed), fragments };
        Network { now, hub, server, clients: Vec::new(), flood: None, guest_frames_per_step: None }
    }

    /// From now on the appliance handles about `frames` frames (received
    /// and sent) per step at most, as a host that pays per packet: it takes
    /// turns while fewer have gone through its port this step (a turn
    /// takes at most a budget of frames in, so a step may go over by one
    /// turn's worth); the rest wait at its port for the next step (beyond
    /// the port's queue they are dropped, as by a full ring).
    pub fn limit_guest_frames(&mut self, frames: u64) {
        self.guest_frames_per_step = Some(frames);
    }

    /// The frames the appliance's port sent and took in so far.
    pub fn guest_frames(&self) -> PortCounts {
        self.server.port.counts()
    }

    /// The frames a client host's port sent and took in so far.
    pub fn host_frames(&self, host: HostId) -> PortCounts {
        self.clients[host.0].frames()
    }

    /// Tells the appliance the network is as `state` says (as the runtime
    /// does every turn).
    pub fn set_network(&mut self, state: runtime::NetworkState) {
        self.server.appliance.network(runtime::InterfaceId::Main, state);
    }

    /// Makes the appliance drain, as the runtime does when the domain is
    /// asked to end.
    pub fn drain(&mut self) {
        self.server.appliance.drain(runtime::InterfaceId::Main, &mut self.server.sockets, self.now);
    }

    /// How many of the appliance's connections are still in flight.
    pub fn in_flight(&self) -> usize {
        self.server.appliance.in_flight(runtime::InterfaceId::Main, &self.server.sockets)
    }

    /// The metrics page as a scrape would get it now (of the runtime's
    /// counters, only the SYN guard's: the harness has no netfront or Xen).
    pub fn metrics_page(&self) -> alloc::string::String {
        let mut text = alloc::string::String::new();
        let stats = runtime::Stats { syn_cookies: self.server.cookies.counters(), ..runtime::Stats::default() };
        self.server.appliance.render_metrics(&mut text, &stats);
        text
    }

    /// The simulated time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The appliance, for its counters.
    pub fn appliance(&self) -> &Appliance {
        &self.server.appliance
    }

    /// Plugs in a client host with address 10.0.1.`number` (so hosts are
    /// told apart by address, as the per-client limit does).
    pub fn add_host(&mut self) -> HostId {
        let number = self.clients.len() + 1;
        let octets = [(number >> 8) as u8, number as u8];
        let mut port = self.hub.plug(EthernetAddress([0x02, 0, 0, 1, octets[0], octets[1]]));
        let address = Ipv4Address::new(10, 0, 1 + octets[0], octets[1]);
        let interface = interface_for(port.mac(), address, &mut port, self.now);
        self.clients.push(Client::new(interface, port, address));
        HostId(self.clients.len() - 1)
    }

    /// Opens a connection from `host` to the appliance's HTTP port that
    /// behaves as `behaviour` says from now on.
    pub fn connect(&mut self, host: HostId, behaviour: Behaviour) -> ConnectionId {
        let index = self.clients[host.0].connect(SERVER_ADDRESS, HTTP_PORT, behaviour, self.now);
        ConnectionId { host, index }
    }

    /// Opens a connection to another port of the appliance (metrics, echo).
    pub fn connect_to(&mut self, host: HostId, port: u16, behaviour: Behaviour) -> ConnectionId {
        let index = self.clients[host.0].connect(SERVER_ADDRESS, port, behaviour, self.now);
        ConnectionId { host, index }
    }

    /// What a connection has seen so far.
    pub fn outcome(&self, connection: ConnectionId) -> &Outcome {
        self.clients[connection.host.0].outcome(connection.index)
    }

    /// Takes a host off the network: it neither sends nor receives again,
    /// and its sockets are left as they were (a vanished client).
    pub fn unplug(&mut self, host: HostId) {
        self.clients[host.0].unplug(&mut self.hub);
    }

    /// Starts a SYN flood (replacing any running one, whose port is
    /// unplugged first: a port left plugged with no reader would keep the
    /// hub from ever being quiet).
    pub fn start_flood(&mut self, flood: SynFlood) {
        self.stop_flood();
        let port = self.hub.plug(EthernetAddress([0x02, 0, 0, 0xee, 0, 1]));
        self.flood = Some(flood.plugged(port));
    }

    /// SYNs the running flood sent so far (0 without one).
    pub fn flood_sent(&self) -> u64 {
        self.flood.as_ref().map_or(0, SynFlood::sent)
    }

    /// Stops the SYN flood.
    pub fn stop_flood(&mut self) {
        if let Some(flood) = self.flood.take() {
            self.hub.unplug(flood.mac());
        }
    }

    /// Runs the network for `duration` in steps of `step`.
    pub fn run(&mut self, duration: Duration, step: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.step(step);
        }
    }

    /// Runs until `done` holds or `limit` passes; returns whether it held.
    pub fn run_until(&mut self, limit: Duration, step: Duration, mut done: impl FnMut(&Network) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step(step);
        }
        done(self)
    }

    /// Moves time on by `duration` and runs one turn of everything.
    pub fn step(&mut self, duration: Duration) {
        self.now += duration;
        let now = self.now;
        uncounted(|| self.clients_turn(now));
        let frames_before = self.server.port.counts().frames();
        for _ in 0..256 {
            let busy = self
                .guest_frames_per_step
                .is_some_and(|limit| self.server.port.counts().frames() - frames_before >= limit);
            if busy {
                // The appliance has spent this step; what waits for it
                // waits for the next.
                break;
            }
            uncounted(|| {
                if let Some(flood) = self.flood.as_mut() {
                    flood.send(now, FLOOD_BURST);
                }
                self.hub.deliver();
                if let Some(flood) = self.flood.as_mut() {
                    flood.answer_arp();
                }
                self.hub.deliver();
            });
            // The guest's turn: the data path the guest's loop runs.
            let server = &mut self.server;
            runtime::data_path::pass(
                &mut server.interface,
                &mut server.port,
                &mut server.cookies,
                &mut server.fragments,
                &mut server.sockets,
                &mut server.appliance,
                runtime::InterfaceId::Main,
                now,
                |_, _| {},
                |_, _, _| runtime::Stats::default(),
            );
            uncounted(|| {
                self.hub.deliver();
                self.clients_turn(now);
            });
            if self.hub.is_quiet() && !self.server.cookies.has_replay() {
                break;
            }
        }
    }

    fn clients_turn(&mut self, now: Instant) {
        for client in &mut self.clients {
            client.turn(now);
        }
    }

    /// What the SYN cookies in front of the appliance did so far.
    pub fn syn_cookies(&self) -> runtime::syn_cookies::SynCookieCounters {
        self.server.cookies.counters()
    }

    /// Whether every HTTP socket is listening again and no slot is held:
    /// what the appliance looks like with no client.
    pub fn http_is_idle(&self) -> bool {
        let http = self.server.appliance.http();
        http.open_connections() == 0 && http.listening() == http.sockets()
    }

    /// Whether every TCP socket of the appliance (HTTP, metrics and echo
    /// alike) is in `LISTEN`: no connection state of any kind is left.
    pub fn all_sockets_listen(&self) -> bool {
        self.server
            .sockets
            .iter()
            .all(|(_, socket)| tcp::Socket::downcast(socket).is_none_or(|socket| socket.state() == tcp::State::Listen))
    }

    /// The appliance's TCP sockets not in `LISTEN`, by local port and
    /// state, for failure reports.
    pub fn busy_sockets(&self) -> Vec<(u16, tcp::State)> {
        self.server
            .sockets
            .iter()
            .filter_map(|(_, socket)| tcp::Socket::downcast(socket))
            .filter(|socket| socket.state() != tcp::State::Listen)
            .map(|socket| (socket.local_endpoint().map_or(0, |endpoint| endpoint.port), socket.state()))
            .collect()
    }
}
