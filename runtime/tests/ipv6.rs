//! IPv6 on the production event loop ([`runtime::run`]) on the simulated
//! Xen, with real frames through the simulated netback (built and read
//! with smoltcp's wire types): the link-local address answers neighbour
//! solicitation and ICMPv6 echo and is published at
//! `attr/vif/0/ipv6/0`; the guest solicits routers three times, 4 s apart,
//! when none answers; a router advertisement brings a SLAAC address, its
//! key and TCP service on it, until its valid lifetime ends; a static
//! `ip6=` is configured, published and served; a solicitation that falls
//! due while the link is down waits for the link.
#![forbid(unsafe_code)]

use dma::sim::SimPageSource;
use netfront::NetfrontConfig;
use runtime::testing::{
    Advertised, DOM0_ADDRESS6, DOM0_MAC, Dom0, EchoService, PREFIX6, SimPlatform, World, icmpv6_frame,
};
use runtime::{Ipv6Static, NetConfig, RuntimeConfig, ShutdownRequest};
use smoltcp::iface::SocketHandle;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, HardwareAddress, Icmpv6Packet, Icmpv6Repr, IpAddress, Ipv6Address, Ipv6Cidr,
    Ipv6Packet, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};
use xen_pv::event_channel::EventChannels;
use xen_sim::SimXen;
use xen_sim::netback::NetbackOptions;

/// Simulated time after which the world gives up and asks the guest to end.
const GIVE_UP_NS: u64 = 90_000_000_000;
const GREETING: &[u8] = b"hello over IPv6";

/// Runs the production loop with `ipv6` beside DHCP against `world`.
fn run<W: World>(world: W, xen: &SimXen, ipv6: Ipv6Static) -> (ShutdownRequest, W) {
    let events = EventChannels::new(xen, xen.shared_info());
    let pages = SimPageSource::new(xen.grants());
    let platform = SimPlatform::new(xen, &events, &pages, world);
    let config = RuntimeConfig {
        netfront: NetfrontConfig { rx_buffers: 32, tx_buffers: 32, ..NetfrontConfig::default() },
        ipv6,
        ..RuntimeConfig::new(NetConfig::Dhcp)
    };
    let mut service = EchoService::default();
    let request = runtime::run(&platform, &config, &mut service);
    (request, platform.into_world())
}

/// The guest's ICMPv6 messages as (source, destination, message), each
/// read by `read` (which sees smoltcp's parse of it).
fn guest_messages<T>(
    dom0: &Dom0<'_>,
    mut read: impl FnMut(Ipv6Address, Ipv6Address, &Icmpv6Repr<'_>) -> Option<T>,
) -> Vec<T> {
    dom0.icmpv6_from_guest
        .iter()
        .filter_map(|frame| {
            let ethernet = EthernetFrame::new_checked(&frame[..]).ok()?;
            let ip = Ipv6Packet::new_checked(ethernet.payload()).ok()?;
            let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
            let (source, destination) = (ip.src_addr(), ip.dst_addr());
            let repr = Icmpv6Repr::parse(&source, &destination, &icmp, &ChecksumCapabilities::default()).ok()?;
            read(source, destination, &repr)
        })
        .collect()
}

fn solicited_node(address: Ipv6Address) -> (Ipv6Address, EthernetAddress) {
    let octets = address.octets();
    let group = Ipv6Address::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(octets[13]),
        u16::from_be_bytes([octets[14], octets[15]]),
    );
    (group, EthernetAddress([0x33, 0x33, 0xff, octets[13], octets[14], octets[15]]))
}

/// Dom0 asks who has the guest's link-local address, then pings it (each
/// sent again every half second until answered: the first may come before
/// the guest's link is up).
struct Neighbour<'x> {
    dom0: Dom0<'x>,
    sent_at: Option<u64>,
    link_local: Option<Ipv6Address>,
    guest_mac: Option<EthernetAddress>,
    echoed: bool,
    done: bool,
}

const DOM0_LINK_LOCAL: fn() -> Ipv6Address = || runtime::slaac::link_local(runtime::testing::DOM0_MAC).address();

impl World for Neighbour<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        if self.done {
            return;
        }
        let now = xen.now();
        let resend = self.sent_at.is_none_or(|at| now >= at + 500_000_000);
        if self.link_local.is_none() {
            self.link_local = self.dom0.published_ipv6(xen, 0).first().map(|first| first.parse().expect("an address"));
        }
        match (self.link_local, self.guest_mac) {
            (None, _) => {}
            (Some(target), None) => {
                if resend {
                    self.sent_at = Some(now);
                    let (group, mac) = solicited_node(target);
                    let solicit = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                        target_addr: target,
                        lladdr: Some(HardwareAddress::Ethernet(runtime::testing::DOM0_MAC).into()),
                    });
                    self.dom0.inject(&icmpv6_frame(DOM0_LINK_LOCAL(), group, mac, &solicit));
                }
                let answers = guest_messages(&self.dom0, |source, destination, repr| match repr {
                    Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { flags, target_addr, lladdr })
                        if *target_addr == target && destination == DOM0_LINK_LOCAL() && source == target =>
                    {
                        assert!(flags.contains(NdiscNeighborFlags::SOLICITED), "a solicited advertisement");
                        Some(*lladdr)
                    }
                    _ => None,
                });
                if let Some(lladdr) = answers.first() {
                    let lladdr: RawHardwareAddress = lladdr.expect("the guest's link-layer address");
                    self.guest_mac = Some(EthernetAddress::from_bytes(lladdr.as_bytes()));
                    self.sent_at = None;
                }
            }
            (Some(target), Some(mac)) => {
                if resend && !self.echoed {
                    self.sent_at = Some(now);
                    let request = Icmpv6Repr::EchoRequest { ident: 7, seq_no: 1, data: GREETING };
                    self.dom0.inject(&icmpv6_frame(DOM0_LINK_LOCAL(), target, mac, &request));
                }
                let replies = guest_messages(&self.dom0, |source, _, repr| match repr {
                    Icmpv6Repr::EchoReply { ident: 7, seq_no: 1, data } if source == target => Some(data.to_vec()),
                    _ => None,
                });
                if let Some(data) = replies.first() {
                    assert_eq!(data, GREETING, "the echo's data");
                    self.echoed = true;
                }
            }
        }
        // The three router solicitations (no router answers) are over by 9 s.
        if (self.echoed && now > 10_000_000_000) || now > GIVE_UP_NS {
            self.dom0.request_shutdown(xen);
            self.done = true;
        }
    }
}

#[test]
fn the_link_local_address_answers_neighbour_solicitation_and_echo_and_routers_are_solicited() {
    let xen = SimXen::new(4);
    let world = Neighbour {
        dom0: Dom0::new(&xen, NetbackOptions::default()),
        sent_at: None,
        link_local: None,
        guest_mac: None,
        echoed: false,
        done: false,
    };
    let (request, world) = run(world, &xen, Ipv6Static::default());
    assert_eq!(request, ShutdownRequest::Poweroff);
    assert!(xen.now() < GIVE_UP_NS, "done in time");
    let mac = world.guest_mac.expect("the guest advertised its MAC");
    assert_eq!(
        world.link_local,
        Some(runtime::slaac::link_local(mac).address()),
        "attr/vif/0/ipv6/0 is fe80::/64 with the MAC's EUI-64"
    );
    assert!(world.echoed, "ICMPv6 echo answered");
    let solicitations = &world.dom0.router_solicitations;
    assert_eq!(solicitations.len(), 3, "three router solicitations: {solicitations:?}");
    for pair in solicitations.windows(2) {
        let apart_ms = (pair[1] - pair[0]) / 1_000_000;
        assert!((4000..4100).contains(&apart_ms), "4 s apart: {apart_ms} ms");
    }
    assert_eq!(world.dom0.published_ipv6(&xen, 0).len(), 1, "only the link-local address");
}

/// Waits for the guest to publish `count` IPv6 addresses; then an echo
/// exchange with the last of them; then (with `until_gone`) for the
/// address to go.
struct Served<'x> {
    dom0: Dom0<'x>,
    count: usize,
    until_gone: bool,
    published: Option<(u64, Vec<String>)>,
    client: Option<SocketHandle>,
    echoed: bool,
    gone_at: Option<u64>,
    done: bool,
}

impl<'x> Served<'x> {
    fn new(xen: &'x SimXen, count: usize, until_gone: bool, advertises: Option<Advertised>) -> Self {
        let mut dom0 = Dom0::new(xen, NetbackOptions::default());
        dom0.advertises = advertises;
        Served { dom0, count, until_gone, published: None, client: None, echoed: false, gone_at: None, done: false }
    }
}

impl World for Served<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        if self.done {
            return;
        }
        let now = xen.now();
        let keys = self.dom0.published_ipv6(xen, 0);
        if self.published.is_none() && keys.len() == self.count {
            let address: Ipv6Address = keys.last().unwrap().parse().expect("an IPv6 address");
            self.client = Some(self.dom0.connect_to_echo_at(IpAddress::Ipv6(address), 40_000));
            self.published = Some((now, keys.clone()));
        }
        if let Some(client) = self.client
            && !self.echoed
        {
            self.echoed = self.dom0.greet(client, GREETING);
        }
        if self.echoed && self.published.is_some() && keys.len() < self.count && self.gone_at.is_none() {
            self.gone_at = Some(now);
        }
        let finished = self.echoed && (!self.until_gone || self.gone_at.is_some());
        if finished || now > GIVE_UP_NS {
            self.dom0.request_shutdown(xen);
            self.done = true;
        }
    }
}

#[test]
fn a_router_advertisement_brings_an_address_its_key_and_service_until_its_lifetime_ends() {
    let xen = SimXen::new(4);
    let advertised = Advertised { prefix: PREFIX6, valid_seconds: 20, router_seconds: 20 };
    let world = Served::new(&xen, 2, true, Some(advertised));
    let (request, world) = run(world, &xen, Ipv6Static::default());
    assert_eq!(request, ShutdownRequest::Poweroff);
    assert!(xen.now() < GIVE_UP_NS, "done in time");
    let (published_at, keys) = world.published.expect("a SLAAC address published");
    let link_local: Ipv6Address = keys[0].parse().unwrap();
    let slaac: Ipv6Address = keys[1].parse().unwrap();
    assert!(link_local.is_unicast_link_local(), "{link_local}");
    assert!(PREFIX6.contains_addr(&slaac), "{slaac} in {PREFIX6}");
    assert_eq!(slaac.octets()[8..], link_local.octets()[8..], "the same EUI-64 interface identifier");
    assert!(world.echoed, "TCP echo over the SLAAC address");
    assert_eq!(world.dom0.router_solicitations.len(), 1, "answered at once: no more solicitations");
    // The router heard is asked for its link-layer address at once, to its
    // solicited-node group, with the guest's own: smoltcp learns none from
    // the advertisement, and a reply to the router would be dropped while
    // smoltcp asked.
    let router = runtime::slaac::link_local(DOM0_MAC).address();
    let (group, _) = solicited_node(router);
    let solicitations = guest_messages(&world.dom0, |source, destination, repr| match repr {
        Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, lladdr: Some(_) })
            if *target_addr == router && destination == group && source == link_local =>
        {
            Some(())
        }
        _ => None,
    });
    // Once when the router came (with its SLAAC address), and once more when
    // the DHCP lease changed the interface's addresses after it: smoltcp
    // empties its neighbour cache whenever they change.
    assert_eq!(solicitations.len(), 2, "a neighbour solicitation for the router each time the cache was emptied");
    let gone_at = world.gone_at.expect("the address went");
    let held_ms = (gone_at - published_at) / 1_000_000;
    assert!((19_000..=20_500).contains(&held_ms), "gone {held_ms} ms after it came, for a 20 s lifetime");
    assert_eq!(world.dom0.published_ipv6(&xen, 0), [keys[0].clone()], "its key removed, the link-local kept");
}

#[test]
fn a_static_ip6_address_is_configured_published_and_served() {
    let xen = SimXen::new(4);
    let address = Ipv6Address::new(0xfd00, 0x88, 0, 0, 0, 0, 0, 9);
    let ipv6 = Ipv6Static { address: Some(Ipv6Cidr::new(address, 64)), gateway: Some(DOM0_ADDRESS6) };
    let world = Served::new(&xen, 2, false, None);
    let (request, world) = run(world, &xen, ipv6);
    assert_eq!(request, ShutdownRequest::Poweroff);
    assert!(xen.now() < GIVE_UP_NS, "done in time");
    let (_, keys) = world.published.expect("published");
    assert_eq!(keys[1], "fd00:88::9", "attr/vif/0/ipv6/1 is ip6='s address");
    assert!(world.echoed, "TCP echo over the static address");
}

/// The vif goes away right after the guest's first router solicitation
/// and comes back 10 s later.
struct Flap<'x> {
    dom0: Dom0<'x>,
    detached_at: Option<u64>,
    attached_again_at: Option<u64>,
    done: bool,
}

impl World for Flap<'_> {
    fn step(&mut self, xen: &SimXen) {
        self.dom0.step(xen);
        if self.done {
            return;
        }
        let now = xen.now();
        let attachment = self.dom0.netback.attachment();
        if self.detached_at.is_none() && self.dom0.router_solicitations.len() == 1 {
            self.dom0.netback.detach(xen_sim::netback::Detach::Graceful);
            self.detached_at = Some(now);
        }
        if let Some(detached) = self.detached_at
            && self.attached_again_at.is_none()
            && now >= detached + 10_000_000_000
            && attachment == xen_sim::netback::Attachment::Detached
        {
            self.dom0.netback.attach();
            self.attached_again_at = Some(now);
        }
        if self.dom0.router_solicitations.len() == 3 || now > GIVE_UP_NS {
            self.dom0.request_shutdown(xen);
            self.done = true;
        }
    }
}

/// A solicitation that falls due while the link is down waits for the
/// link: the loop sleeps meanwhile (a deadline in the past would be a busy
/// loop, in which the simulated time would stand still and this test never
/// end), and the other two go once the vif is back.
#[test]
fn solicitations_wait_for_a_link_that_went_down() {
    let xen = SimXen::new(4);
    let world = Flap {
        dom0: Dom0::new(&xen, NetbackOptions::default()),
        detached_at: None,
        attached_again_at: None,
        done: false,
    };
    let (request, world) = run(world, &xen, Ipv6Static::default());
    assert_eq!(request, ShutdownRequest::Poweroff);
    assert!(xen.now() < GIVE_UP_NS, "done in time");
    let back = world.attached_again_at.expect("attached again");
    let solicitations = &world.dom0.router_solicitations;
    assert_eq!(solicitations.len(), 3, "{solicitations:?}");
    assert!(solicitations[1] >= back, "the second once the link came back: {solicitations:?}, back at {back}");
}
