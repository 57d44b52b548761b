//! The runtime on the simulated Xen (feature `test-utils`): the event loop
//! the guest runs ([`crate::run`]), with a simulated dom0 on the other side.
//!
//! [`SimPlatform`] is the [`Platform`] over [`SimXen`]: the guest's xenstore
//! client, event channels, grant table and RAM are the simulation's. Its
//! [`Platform::wait`] is where everything outside the guest runs: the
//! [`World`] a test gives it takes a step (the simulated netback, dom0's
//! stack, the test's script), and then, unless one of the guest's ports is
//! pending, simulated time moves on by at most [`TICK_NS`] toward the
//! guest's deadline. A test ends the run the way the toolstack would, by
//! writing `control/shutdown` ([`Dom0::request_shutdown`]); [`crate::run`]
//! then returns. It suspends the guest the same way
//! ([`Dom0::request_suspend`]): when the guest makes its suspend hypercall,
//! the world decides what the toolstack does ([`World::suspended`]: resume
//! it in place, or [`Dom0::restore_in_new_domain`]), and the platform then
//! does what the kernel does after a resume in a new domain (the upcall
//! masked, the timer bound again, xenstore on its new port).
//!
//! [`Dom0`] is what a test's world usually holds: the vif's backend
//! ([`SimNetback`]), a smoltcp interface for dom0 on the bridge
//! ([`DOM0_ADDRESS`]), and a DHCP server that leases [`GUEST_ADDRESS`] to
//! whichever MAC asks, for [`Dom0::lease_seconds`], while
//! [`Dom0::answers_dhcp`]. Dom0's stack has IPv6 too ([`DOM0_ADDRESS6`] and
//! its link-local address); it answers the guest's router solicitations
//! with the advertisement [`Dom0::advertises`] describes, if any, and keeps
//! the ICMPv6 frames the guest sent ([`Dom0::icmpv6_from_guest`]).
//!
//! Never: let the world see the guest's state other than through what a
//! real dom0 sees (frames on the vif, xenstore).

extern crate std;

pub mod backend_script;
mod echo_service;

pub use echo_service::{ECHO_PORT, EchoService, NoService};

use crate::address_keys::{ADDRESS_KEY, vif_address_key, vif_ipv6_key};
use crate::platform::{Platform, PlatformStats};
use core::cell::{Cell, RefCell, RefMut};
use dma::sim::SimPageSource;
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{ChecksumCapabilities, Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame,
    EthernetProtocol, EthernetRepr, HardwareAddress, Icmpv6Message, Icmpv6Packet, Icmpv6Repr, IpAddress, IpCidr,
    IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, Ipv6Address, Ipv6Cidr, Ipv6Packet, Ipv6Repr, NdiscPrefixInfoFlags,
    NdiscPrefixInformation, NdiscRepr, NdiscRouterFlags, UdpPacket, UdpRepr,
};
use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;
use xen_pv::SuspendOutcome;
use xen_pv::abi::event_channel::Port;
use xen_pv::abi::grant_table::GrantEntryV1;
use xen_pv::abi::hvm::HVM_PARAM_STORE_EVTCHN;
use xen_pv::abi::vcpu::VIRQ_TIMER;
use xen_pv::event_channel::EventChannels;
use xen_pv::hypervisor::Hypervisor;
use xen_pv::xenstore::Xenstore;
use xen_sim::netback::{NetbackOptions, SimNetback};
use xen_sim::xenstore::GUEST_HOME;
use xen_sim::{SimXen, XENSTORE_PORT};

/// The longest simulated time one wait lets pass before the world steps
/// again (10 ms): dom0's timers (retransmissions, DHCP) need to run even
/// while the guest sleeps toward a far deadline.
pub const TICK_NS: u64 = 10_000_000;

/// Dom0's address on the bridge (and the DHCP server's, and the router's).
pub const DOM0_ADDRESS: Ipv4Address = Ipv4Address::new(10, 88, 0, 1);
/// The address the DHCP server leases.
pub const GUEST_ADDRESS: Ipv4Address = Ipv4Address::new(10, 88, 0, 2);
/// Dom0's MAC on the bridge.
pub const DOM0_MAC: EthernetAddress = EthernetAddress([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);
/// Dom0's IPv6 address on the bridge (beside its link-local one).
pub const DOM0_ADDRESS6: Ipv6Address = Ipv6Address::new(0xfd00, 0x88, 0, 0, 0, 0, 0, 1);
/// The prefix dom0's advertisements offer unless a test says otherwise:
/// [`DOM0_ADDRESS6`]'s.
pub const PREFIX6: Ipv6Cidr = Ipv6Cidr::new(Ipv6Address::new(0xfd00, 0x88, 0, 0, 0, 0, 0, 0), 64);
/// How long a lease lasts unless a test says otherwise (an hour).
pub const LEASE_SECONDS: u32 = 3600;

/// Everything outside the guest.
pub trait World {
    /// Runs one moment of the world at the simulation's time (`xen.now()`).
    fn step(&mut self, xen: &SimXen);

    /// The guest made its suspend hypercall: the toolstack saves it and
    /// then resumes it where it was (`SimXen::cancel_next_suspend`, or
    /// nothing: a cancellation Xen reports) or restores it in a new domain
    /// ([`Dom0::restore_in_new_domain`]). Time may pass meanwhile.
    fn suspended(&mut self, xen: &SimXen) {
        let _ = xen;
    }
}

/// The simulated Xen as the runtime's platform, with a world around it.
pub struct SimPlatform<'x, W: World> {
    xen: &'x SimXen,
    events: &'x EventChannels<'x, SimXen>,
    store: RefCell<Xenstore<'x, SimXen>>,
    pages: &'x SimPageSource<'x>,
    world: RefCell<W>,
    /// The port of `VIRQ_TIMER`, bound as the kernel binds it (its waits
    /// do not use it: the simulation's clock moves in [`Platform::wait`]);
    /// what tells a cancelled suspend from a new domain.
    timer_port: Cell<Port>,
}

impl<'x, W: World> SimPlatform<'x, W> {
    /// The guest of `xen` (its event channels `events`, its RAM `pages`) in
    /// `world`.
    pub fn new(xen: &'x SimXen, events: &'x EventChannels<'x, SimXen>, pages: &'x SimPageSource<'x>, world: W) -> Self {
        let store = Xenstore::new(events, xen.xenstore_ring(), XENSTORE_PORT, SimXen::clock());
        let timer_port = events.bind_virq(VIRQ_TIMER).expect("the simulated domain binds its timer");
        Self {
            xen,
            events,
            store: RefCell::new(store),
            pages,
            world: RefCell::new(world),
            timer_port: Cell::new(timer_port),
        }
    }

    /// The world, after the run.
    pub fn into_world(self) -> W {
        self.world.into_inner()
    }
}

impl<'x, W: World> Platform<'x> for SimPlatform<'x, W> {
    type Hypervisor = SimXen;
    type Pages = &'x SimPageSource<'x>;
    type Store<'s>
        = RefMut<'s, Xenstore<'x, SimXen>>
    where
        Self: 's;

    fn xenstore(&self) -> RefMut<'_, Xenstore<'x, SimXen>> {
        self.store.borrow_mut()
    }

    fn events(&self) -> &'x EventChannels<'x, SimXen> {
        self.events
    }

    fn grant_entries(&self) -> &'x [GrantEntryV1] {
        self.xen.grants().current_entries()
    }

    fn pages(&self) -> &'x SimPageSource<'x> {
        self.pages
    }

    fn now(&self) -> u64 {
        self.xen.now()
    }

    fn wait(&self, ports: &[Port], deadline: Option<u64>) {
        loop {
            self.world.borrow_mut().step(self.xen);
            if ports.iter().any(|&port| self.xen.is_pending(port)) {
                return;
            }
            let now = self.xen.now();
            match deadline {
                Some(deadline) if deadline <= now => return,
                Some(deadline) => self.xen.advance((deadline - now).min(TICK_NS)),
                None => self.xen.advance(TICK_NS),
            }
        }
    }

    fn suspend(&self) -> SuspendOutcome {
        self.world.borrow_mut().suspended(self.xen);
        let outcome = xen_pv::suspend::suspend(self.xen, self.timer_port.get(), VIRQ_TIMER)
            .expect("the simulated suspend hypercall works");
        if outcome == SuspendOutcome::Resumed {
            // The kernel's part (kernel/src/pv.rs): Xen's pages are mapped
            // again (here they stay where they are), the upcall masked on
            // the new shared info page, the timer bound again, xenstore
            // reached on the port the toolstack allocated.
            self.events.resumed();
            self.timer_port.set(self.events.bind_virq(VIRQ_TIMER).expect("the new domain binds its timer"));
            let store_port = self.xen.hvm_get_param(HVM_PARAM_STORE_EVTCHN).expect("the store port") as Port;
            self.store.borrow_mut().resume(store_port);
        }
        outcome
    }

    fn secret_seed(&self) -> u64 {
        0x5eed_5eed
    }

    fn stats(&self) -> PlatformStats {
        PlatformStats::default()
    }
}

/// Dom0 as a test's world sees it: the vif's backend, dom0's own stack on
/// the bridge, and a DHCP server.
pub struct Dom0<'x> {
    xen: &'x SimXen,
    /// The vif's backend.
    pub netback: SimNetback<'x>,
    /// Dom0's interface on the bridge.
    pub interface: Interface,
    /// Dom0's sockets (a test adds its clients here).
    pub sockets: SocketSet<'static>,
    bridge: Bridge,
    /// Leases handed out (DHCPACKs sent).
    pub leases: u64,
    /// How long the leases handed out from now on last.
    pub lease_seconds: u32,
    /// Whether the DHCP server answers (when not, the guest's requests are
    /// dropped: a server gone away).
    pub answers_dhcp: bool,
    /// The gratuitous ARPs the guest sent (an ARP request for its own
    /// address), as (sender MAC, address), at the simulation's time.
    pub announcements: Vec<(EthernetAddress, Ipv4Address, u64)>,
    /// When `Some`, a copy of every frame the guest sends (a test's tap on
    /// the bridge).
    pub capture: Option<Vec<Vec<u8>>>,
    /// What dom0 answers a router solicitation with (none: it does not).
    pub advertises: Option<Advertised>,
    /// The router solicitations the guest sent, at the simulation's time.
    pub router_solicitations: Vec<u64>,
    /// The ICMPv6 frames the guest sent (the first [`MAX_KEPT_FRAMES`]).
    pub icmpv6_from_guest: Vec<Vec<u8>>,
}

/// The most ICMPv6 frames of the guest [`Dom0`] keeps.
pub const MAX_KEPT_FRAMES: usize = 1000;

/// A router advertisement's content, as dom0 sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advertised {
    /// The prefix offered for autoconfiguration (64 bits).
    pub prefix: Ipv6Cidr,
    /// Its valid lifetime, in seconds.
    pub valid_seconds: u32,
    /// How long dom0 is a default router, in seconds (0: it is not).
    pub router_seconds: u16,
}

impl Default for Advertised {
    fn default() -> Self {
        Self { prefix: PREFIX6, valid_seconds: 3600, router_seconds: 1800 }
    }
}

impl<'x> Dom0<'x> {
    /// Dom0 with a vif for the guest as `options` say.
    pub fn new(xen: &'x SimXen, options: NetbackOptions) -> Self {
        let mut bridge = Bridge::default();
        let interface = dom0_interface(&mut bridge, Instant::ZERO);
        Self {
            xen,
            netback: SimNetback::new(xen, options),
            interface,
            sockets: SocketSet::new(Vec::new()),
            bridge,
            leases: 0,
            lease_seconds: LEASE_SECONDS,
            answers_dhcp: true,
            announcements: Vec::new(),
            capture: None,
            advertises: None,
            router_solicitations: Vec::new(),
            icmpv6_from_guest: Vec::new(),
        }
    }

    /// Sends `frame` to the guest, as a host on the bridge would.
    pub fn inject(&mut self, frame: &[u8]) {
        self.netback.inject(frame);
    }

    /// The IPv6 addresses the guest published for vif number `vif`
    /// (`attr/vif/<vif>/ipv6/<n>`, from 0 to the first missing).
    pub fn published_ipv6(&self, xen: &SimXen, vif: u32) -> Vec<std::string::String> {
        (0..)
            .map_while(|index| {
                xen.with_xenstore(|store| {
                    store.read_as_dom0(&std::format!("{GUEST_HOME}/{}", vif_ipv6_key(vif, index)))
                })
            })
            .collect()
    }

    /// A client of dom0's connecting to the guest's echo port
    /// ([`ECHO_PORT`] at [`GUEST_ADDRESS`]) from `local_port`.
    pub fn connect_to_echo(&mut self, local_port: u16) -> smoltcp::iface::SocketHandle {
        self.connect_to_echo_at(IpAddress::Ipv4(GUEST_ADDRESS), local_port)
    }

    /// A client of dom0's connecting to the guest's echo port at `address`
    /// from `local_port`.
    pub fn connect_to_echo_at(&mut self, address: IpAddress, local_port: u16) -> smoltcp::iface::SocketHandle {
        use smoltcp::socket::tcp;
        let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 2048]), tcp::SocketBuffer::new(vec![0; 2048]));
        let handle = self.sockets.add(socket);
        let context = self.interface.context();
        self.sockets
            .get_mut::<tcp::Socket>(handle)
            .connect(context, (address, ECHO_PORT), local_port)
            .expect("connect");
        handle
    }

    /// One step of `client`'s exchange with the echo service: sends
    /// `greeting` while nothing is in flight; once as many bytes are back,
    /// checks they are the greeting, closes, and returns true.
    pub fn greet(&mut self, client: smoltcp::iface::SocketHandle, greeting: &[u8]) -> bool {
        let socket = self.sockets.get_mut::<smoltcp::socket::tcp::Socket>(client);
        if socket.recv_queue() >= greeting.len() {
            let mut answer = vec![0; greeting.len()];
            let read = socket.recv_slice(&mut answer).expect("recv");
            assert_eq!(&answer[..read], greeting, "the echo");
            socket.close();
            return true;
        }
        if socket.can_send() && socket.send_queue() == 0 && socket.recv_queue() == 0 {
            let _ = socket.send_slice(greeting);
        }
        false
    }

    /// One moment of dom0: the backend runs, frames cross the bridge (DHCP
    /// requests answered, or dropped while the server does not answer),
    /// dom0's stack runs.
    pub fn step(&mut self, xen: &SimXen) {
        let now = Instant::from_micros((xen.now() / 1000) as i64);
        self.netback.step();
        for frame in self.netback.take_transmitted() {
            if let Some(capture) = self.capture.as_mut() {
                capture.push(frame.clone());
            }
            if let Some((mac, address)) = gratuitous_arp_of(&frame) {
                self.announcements.push((mac, address, xen.now()));
            }
            if let Some((message, _)) = icmpv6_of(&frame) {
                if self.icmpv6_from_guest.len() < MAX_KEPT_FRAMES {
                    self.icmpv6_from_guest.push(frame.clone());
                }
                if message == Icmpv6Message::RouterSolicit {
                    self.router_solicitations.push(xen.now());
                    if let Some(advertised) = self.advertises {
                        self.netback.inject(&router_advertisement(advertised));
                    }
                }
            }
            match dhcp_reply(&frame, self.lease_seconds) {
                Some(_) if !self.answers_dhcp => {}
                Some((reply, acked)) => {
                    self.leases += u64::from(acked);
                    self.netback.inject(&reply);
                }
                None => self.bridge.to_dom0.push_back(frame),
            }
        }
        self.interface.poll(now, &mut self.bridge, &mut self.sockets);
        for frame in self.bridge.from_dom0.drain(..) {
            self.netback.inject(&frame);
        }
        self.netback.step();
    }

    /// Starts dom0's stack afresh (its neighbour cache empty, no sockets),
    /// as a new client host would be: after the guest's MAC changed.
    pub fn forget_neighbours(&mut self, xen: &SimXen) {
        let now = Instant::from_micros((xen.now() / 1000) as i64);
        self.interface = dom0_interface(&mut self.bridge, now);
        self.sockets = SocketSet::new(Vec::new());
    }

    /// Asks the guest to suspend as `xl save` and `xl migrate` do.
    pub fn request_suspend(&self, xen: &SimXen) {
        xen.with_xenstore(|store| store.write_as_dom0(&std::format!("{GUEST_HOME}/control/shutdown"), "suspend"));
    }

    /// What the toolstack does when the guest has suspended for a save and
    /// restore (or a migration): the vif's backend goes with the old
    /// domain, Xen and the toolstack make the new one
    /// ([`SimXen::restore_in_new_domain`]), and the vif is made again for
    /// it with the same options (the same MAC), its new backend in
    /// InitWait. Dom0's stack and its connections stay as they were.
    pub fn restore_in_new_domain(&mut self) {
        self.netback.end_with_domain();
        self.xen.restore_in_new_domain();
        let options = self.netback.options().clone();
        self.netback = SimNetback::new(self.xen, options);
    }

    /// Asks the guest to end as `xl shutdown` does.
    pub fn request_shutdown(&self, xen: &SimXen) {
        xen.with_xenstore(|store| store.write_as_dom0(&std::format!("{GUEST_HOME}/control/shutdown"), "poweroff"));
    }

    /// The address the guest published in xenstore (`data/ipv4-address`),
    /// if any.
    pub fn published_address(&self, xen: &SimXen) -> Option<std::string::String> {
        xen.with_xenstore(|store| store.read_as_dom0(&std::format!("{GUEST_HOME}/{ADDRESS_KEY}")))
    }

    /// The address the guest published for vif number `vif`
    /// (`attr/vif/<vif>/ipv4/0`), if any.
    pub fn published_vif_address(&self, xen: &SimXen, vif: u32) -> Option<std::string::String> {
        xen.with_xenstore(|store| store.read_as_dom0(&std::format!("{GUEST_HOME}/{}", vif_address_key(vif))))
    }
}

/// Dom0's interface on the bridge.
fn dom0_interface(bridge: &mut Bridge, now: Instant) -> Interface {
    let mut interface = Interface::new(Config::new(DOM0_MAC.into()), bridge, now);
    interface.update_ip_addrs(|addresses| {
        let _ = addresses.push(IpCidr::new(IpAddress::Ipv4(DOM0_ADDRESS), 24));
        let _ = addresses.push(IpCidr::Ipv6(crate::slaac::link_local(DOM0_MAC)));
        let _ = addresses.push(IpCidr::Ipv6(Ipv6Cidr::new(DOM0_ADDRESS6, 64)));
    });
    interface
}

/// The ICMPv6 message type of `frame` and its IPv6 source, if it is ICMPv6.
pub fn icmpv6_of(frame: &[u8]) -> Option<(Icmpv6Message, Ipv6Address)> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new_checked(ethernet.payload()).ok()?;
    if ip.next_header() != IpProtocol::Icmpv6 {
        return None;
    }
    Some((Icmpv6Packet::new_checked(ip.payload()).ok()?.msg_type(), ip.src_addr()))
}

/// An Ethernet frame carrying the ICMPv6 message `icmp` from dom0 (`source`,
/// [`DOM0_MAC`]) to `destination` at MAC `mac`, with hop limit 255 (what
/// neighbour discovery asks).
pub fn icmpv6_frame(
    source: Ipv6Address,
    destination: Ipv6Address,
    mac: EthernetAddress,
    icmp: &Icmpv6Repr<'_>,
) -> Vec<u8> {
    let ip = Ipv6Repr {
        src_addr: source,
        dst_addr: destination,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: 255,
    };
    let ethernet = EthernetRepr { src_addr: DOM0_MAC, dst_addr: mac, ethertype: EthernetProtocol::Ipv6 };
    let mut bytes = vec![0; ethernet.buffer_len() + ip.buffer_len() + icmp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    ethernet.emit(&mut frame);
    let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet);
    icmp.emit(
        &source,
        &destination,
        &mut Icmpv6Packet::new_unchecked(packet.payload_mut()),
        &ChecksumCapabilities::default(),
    );
    bytes
}

/// Dom0's router advertisement of `advertised`, from its link-local
/// address to all nodes (ff02::1), as radvd sends them.
pub fn router_advertisement(advertised: Advertised) -> Vec<u8> {
    let all_nodes = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let valid = smoltcp::time::Duration::from_secs(advertised.valid_seconds.into());
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
        hop_limit: 64,
        flags: NdiscRouterFlags::empty(),
        router_lifetime: smoltcp::time::Duration::from_secs(advertised.router_seconds.into()),
        reachable_time: smoltcp::time::Duration::ZERO,
        retrans_time: smoltcp::time::Duration::ZERO,
        lladdr: Some(HardwareAddress::Ethernet(DOM0_MAC).into()),
        mtu: None,
        prefix_info: Some(NdiscPrefixInformation {
            prefix_len: 64,
            flags: NdiscPrefixInfoFlags::ADDRCONF | NdiscPrefixInfoFlags::ON_LINK,
            valid_lifetime: valid,
            preferred_lifetime: valid,
            prefix: advertised.prefix.address(),
        }),
    });
    icmpv6_frame(
        crate::slaac::link_local(DOM0_MAC).address(),
        all_nodes,
        EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
        &icmp,
    )
}

/// Dom0's side of the bridge, as a smoltcp device.
#[derive(Default)]
struct Bridge {
    /// Frames from the guest for dom0's stack.
    to_dom0: VecDeque<Vec<u8>>,
    /// Frames dom0's stack sent.
    from_dom0: Vec<Vec<u8>>,
}

struct BridgeRx(Vec<u8>);
struct BridgeTx<'b>(&'b mut Vec<Vec<u8>>);

impl RxToken for BridgeRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for BridgeTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        self.0.push(frame);
        result
    }
}

impl Device for Bridge {
    type RxToken<'a> = BridgeRx;
    type TxToken<'a> = BridgeTx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(BridgeRx, BridgeTx<'_>)> {
        let frame = self.to_dom0.pop_front()?;
        Some((BridgeRx(frame), BridgeTx(&mut self.from_dom0)))
    }

    fn transmit(&mut self, _: Instant) -> Option<BridgeTx<'_>> {
        Some(BridgeTx(&mut self.from_dom0))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = 1514;
        capabilities
    }
}

/// The sender of `frame` and the address it announces, if it is a
/// gratuitous ARP (a request whose sender and target address are the same).
fn gratuitous_arp_of(frame: &[u8]) -> Option<(EthernetAddress, Ipv4Address)> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Arp {
        return None;
    }
    match ArpRepr::parse(&ArpPacket::new_checked(ethernet.payload()).ok()?).ok()? {
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        } if source_protocol_addr == target_protocol_addr => Some((source_hardware_addr, source_protocol_addr)),
        _ => None,
    }
}

/// The DHCP server's answer to `frame` if it is a DHCPDISCOVER (an offer)
/// or a DHCPREQUEST (an ack, `true`), for a lease of `lease_seconds`;
/// `None` for any other frame.
fn dhcp_reply(frame: &[u8], lease_seconds: u32) -> Option<(Vec<u8>, bool)> {
    let checksums = ChecksumCapabilities::default();
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    if ip.next_header() != IpProtocol::Udp {
        return None;
    }
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    if udp.dst_port() != 67 {
        return None;
    }
    let dhcp = DhcpPacket::new_checked(udp.payload()).ok()?;
    let request = DhcpRepr::parse(&dhcp).ok()?;
    let message_type = match request.message_type {
        DhcpMessageType::Discover => DhcpMessageType::Offer,
        DhcpMessageType::Request => DhcpMessageType::Ack,
        _ => return None,
    };
    let reply = DhcpRepr {
        message_type,
        transaction_id: request.transaction_id,
        secs: 0,
        client_hardware_address: request.client_hardware_address,
        client_ip: Ipv4Address::UNSPECIFIED,
        your_ip: GUEST_ADDRESS,
        server_ip: DOM0_ADDRESS,
        router: Some(DOM0_ADDRESS),
        subnet_mask: Some(Ipv4Address::new(255, 255, 255, 0)),
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: false,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(DOM0_ADDRESS),
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: Some(lease_seconds),
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let udp_repr = UdpRepr { src_port: 67, dst_port: 68 };
    let ip_repr = Ipv4Repr {
        src_addr: DOM0_ADDRESS,
        dst_addr: Ipv4Address::BROADCAST,
        next_header: IpProtocol::Udp,
        payload_len: udp_repr.header_len() + reply.buffer_len(),
        hop_limit: 64,
    };
    let ethernet_repr = EthernetRepr {
        src_addr: DOM0_MAC,
        dst_addr: request.client_hardware_address,
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut bytes = vec![0; ethernet_repr.buffer_len() + ip_repr.buffer_len() + ip_repr.payload_len];
    let mut ethernet = EthernetFrame::new_unchecked(&mut bytes[..]);
    ethernet_repr.emit(&mut ethernet);
    let mut ip = Ipv4Packet::new_unchecked(ethernet.payload_mut());
    ip_repr.emit(&mut ip, &checksums);
    let mut udp = UdpPacket::new_unchecked(ip.payload_mut());
    udp_repr.emit(
        &mut udp,
        &IpAddress::Ipv4(DOM0_ADDRESS),
        &IpAddress::Ipv4(Ipv4Address::BROADCAST),
        reply.buffer_len(),
        |payload| {
            let _ = reply.emit(&mut DhcpPacket::new_unchecked(payload));
        },
        &checksums,
    );
    Some((bytes, message_type == DhcpMessageType::Ack))
}

/// The answer of the host at `address` (with MAC `mac`) to `frame`, if
/// `frame` is an ARP request for `address`: a simulated peer's side of ARP.
pub fn arp_reply(frame: &[u8], address: Ipv4Address, mac: EthernetAddress) -> Option<Vec<u8>> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Arp {
        return None;
    }
    let request = ArpRepr::parse(&ArpPacket::new_checked(ethernet.payload()).ok()?).ok()?;
    let ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr,
        source_protocol_addr,
        target_protocol_addr,
        ..
    } = request
    else {
        return None;
    };
    if target_protocol_addr != address {
        return None;
    }
    let reply = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: mac,
        source_protocol_addr: address,
        target_hardware_addr: source_hardware_addr,
        target_protocol_addr: source_protocol_addr,
    };
    let header = EthernetRepr { src_addr: mac, dst_addr: source_hardware_addr, ethertype: EthernetProtocol::Arp };
    let mut bytes = vec![0; header.buffer_len() + reply.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    header.emit(&mut frame);
    reply.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    Some(bytes)
}
