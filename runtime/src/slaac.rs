//! IPv6 addresses from router advertisements (stateless address
//! autoconfiguration, RFC 4862) and the default router they name; the
//! link-local address; the router solicitations that ask for an
//! advertisement.
//!
//! smoltcp 0.14 has a SLAAC of its own, but the runtime does not use it:
//! with it on, `Interface::poll_at` takes the minimum of the sockets'
//! deadline and SLAAC's as `Option`s, so whenever SLAAC has no deadline (no
//! router heard after its three solicitations, the usual case on a bridge
//! with no router) the interface reports none at all, and a TCP
//! retransmission would wait for the next frame. It also keeps one prefix
//! only. This module is the small part of SLAAC the appliance needs, pure
//! and tested here; the event loop feeds it the frames it receives
//! ([`Watched`]) and applies what it learned to the interface.
//!
//! What it takes from an advertisement (checked as RFC 4861 says: from a
//! link-local source, hop limit 255, a valid ICMPv6 checksum, code 0):
//!
//! - each prefix information option with the autonomous flag (A), a prefix
//!   of 64 bits that is neither link-local nor multicast, and a preferred
//!   lifetime no longer than its valid lifetime, forms the address
//!   prefix + EUI-64 of the MAC, for its valid lifetime (with RFC 4862's
//!   two-hour rule for a shorter lifetime of a known prefix: an
//!   advertisement cannot take an address away at once). At most
//!   [`MAX_ADDRESSES`] addresses are kept; further prefixes are ignored;
//! - a router lifetime other than 0 makes the source a default router for
//!   that long (0 removes it). At most [`MAX_ROUTERS`] routers are kept;
//!   the first one known is the one used.

use core::net::Ipv6Addr;
use smoltcp::phy::{Device, DeviceCapabilities, RxToken};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, HardwareAddress, Icmpv6Message, Icmpv6Packet,
    Icmpv6Repr, IpProtocol, Ipv6Address, Ipv6Cidr, Ipv6Packet, Ipv6Repr, NdiscOption, NdiscOptionRepr,
    NdiscPrefixInfoFlags, NdiscRepr,
};

/// The most addresses kept from advertisements.
pub const MAX_ADDRESSES: usize = 2;
/// The most default routers kept from advertisements.
pub const MAX_ROUTERS: usize = 2;
/// The most prefix information options read from one advertisement.
pub const MAX_PREFIXES_READ: usize = 4;
/// Router solicitations sent when the link comes up (RFC 4861's
/// MAX_RTR_SOLICITATIONS), until an advertisement comes.
pub const SOLICITATIONS: u8 = 3;
/// Between two router solicitations (RFC 4861's RTR_SOLICITATION_INTERVAL).
pub const SOLICITATION_INTERVAL: Duration = Duration::from_secs(4);
/// RFC 4862's two hours: the shortest an advertisement may cut a known
/// address's remaining lifetime to.
const TWO_HOURS: Duration = Duration::from_secs(2 * 60 * 60);
/// A lifetime of all ones is infinite (RFC 4861).
const INFINITE_SECONDS: u64 = 0xffff_ffff;
/// The link-local prefix, fe80::/64.
const LINK_LOCAL_PREFIX: Ipv6Cidr = Ipv6Cidr::new(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 64);
/// All routers on the link, where solicitations go.
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// The interface's link-local address: fe80::/64 and the MAC's EUI-64.
pub fn link_local(mac: EthernetAddress) -> Ipv6Cidr {
    address_for(LINK_LOCAL_PREFIX, mac)
}

/// The address `prefix` (64 bits) forms with the MAC's EUI-64.
fn address_for(prefix: Ipv6Cidr, mac: EthernetAddress) -> Ipv6Cidr {
    let mut octets = prefix.address().octets();
    let eui64 = mac.as_eui_64().unwrap_or([0; 8]);
    octets[8..].copy_from_slice(&eui64);
    Ipv6Cidr::new(Ipv6Addr::from(octets), 64)
}

/// A lifetime as advertised: `None` is infinite.
pub type Lifetime = Option<Duration>;

fn lifetime(advertised: Duration) -> Lifetime {
    (advertised.secs() != INFINITE_SECONDS).then_some(advertised)
}

/// A prefix an advertisement offers for addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// The prefix (64 bits).
    pub prefix: Ipv6Cidr,
    /// How long addresses in it are valid.
    pub valid: Lifetime,
}

/// What a router advertisement says that SLAAC uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advertisement {
    /// The router (the source address, link-local).
    pub router: Ipv6Address,
    /// How long it is a default router (zero: it is not).
    pub router_lifetime: Duration,
    /// The usable prefixes, in the order advertised.
    pub prefixes: [Option<Prefix>; MAX_PREFIXES_READ],
}

/// The router advertisement in Ethernet frame `frame`, if it is one that
/// passes RFC 4861's checks; its usable prefixes (see the module).
pub fn parse_advertisement(frame: &[u8]) -> Option<Advertisement> {
    // Cheap checks first: most frames are not advertisements.
    const ICMP_TYPE_AT: usize = EthernetFrame::<&[u8]>::header_len() + 40;
    if frame.len() < ICMP_TYPE_AT + 16
        || frame[12..14] != [0x86, 0xdd]
        || frame[20] != u8::from(IpProtocol::Icmpv6)
        || frame[ICMP_TYPE_AT] != u8::from(Icmpv6Message::RouterAdvert)
    {
        return None;
    }
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new_checked(ethernet.payload()).ok()?;
    let (source, destination) = (ip.src_addr(), ip.dst_addr());
    if ip.next_header() != IpProtocol::Icmpv6 || ip.hop_limit() != 255 || !source.is_unicast_link_local() {
        return None;
    }
    let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
    if icmp.msg_type() != Icmpv6Message::RouterAdvert
        || icmp.msg_code() != 0
        || !icmp.verify_checksum(&source, &destination)
    {
        return None;
    }
    // The header's checks (length) by smoltcp's own reading.
    NdiscRepr::parse(&icmp).ok()?;
    let mut advertisement =
        Advertisement { router: source, router_lifetime: icmp.router_lifetime(), prefixes: [None; MAX_PREFIXES_READ] };
    let mut found = 0;
    let options = icmp.payload();
    let mut offset = 0;
    while offset < options.len() {
        let option = NdiscOption::new_checked(&options[offset..]).ok()?;
        let length = usize::from(option.data_len()) * 8;
        if length == 0 {
            return None;
        }
        offset += length;
        let Ok(NdiscOptionRepr::PrefixInformation(info)) = NdiscOptionRepr::parse(&option) else { continue };
        let usable = info.flags.contains(NdiscPrefixInfoFlags::ADDRCONF)
            && info.prefix_len == 64
            && !info.prefix.is_unicast_link_local()
            && !info.prefix.is_multicast()
            && info.preferred_lifetime.secs() <= info.valid_lifetime.secs();
        if usable && found < MAX_PREFIXES_READ {
            // The prefix's own bits only (a sender may set the rest).
            let mut octets = info.prefix.octets();
            octets[8..].fill(0);
            let prefix = Ipv6Cidr::new(Ipv6Addr::from(octets), 64);
            advertisement.prefixes[found] = Some(Prefix { prefix, valid: lifetime(info.valid_lifetime) });
            found += 1;
        }
    }
    Some(advertisement)
}

/// An address learned, and until when it is valid (`None`: for ever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Learned {
    address: Ipv6Cidr,
    valid_until: Option<Instant>,
}

/// A default router, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Router {
    address: Ipv6Address,
    until: Instant,
}

/// What advertisements taught: addresses and default routers, bounded,
/// each with its lifetime.
#[derive(Debug, Default, Clone)]
pub struct Slaac {
    addresses: heapless_vec::Bounded<Learned, MAX_ADDRESSES>,
    routers: heapless_vec::Bounded<Router, MAX_ROUTERS>,
    /// An address or router came or went since [`Self::take_changed`].
    changed: bool,
    /// Advertisements taken in, for the metrics.
    advertisements: u64,
    /// A router newly heard, whose link-layer address the interface should
    /// learn now ([`Self::take_router_to_solicit`]).
    to_solicit: Option<Ipv6Address>,
}

/// A tiny fixed-capacity list (no heap: frames are handled without
/// allocating).
mod heapless_vec {
    /// At most `N` items, kept in order.
    #[derive(Debug, Clone, Copy)]
    pub struct Bounded<T: Copy, const N: usize> {
        items: [Option<T>; N],
    }

    impl<T: Copy, const N: usize> Default for Bounded<T, N> {
        fn default() -> Self {
            Self { items: [None; N] }
        }
    }

    impl<T: Copy, const N: usize> Bounded<T, N> {
        pub fn iter(&self) -> impl Iterator<Item = &T> {
            self.items.iter().flatten()
        }

        pub fn find_mut(&mut self, mut wanted: impl FnMut(&T) -> bool) -> Option<&mut T> {
            self.items.iter_mut().flatten().find(|item| wanted(item))
        }

        /// Adds `item` at the end; `false` when full.
        pub fn push(&mut self, item: T) -> bool {
            match self.items.iter_mut().find(|slot| slot.is_none()) {
                Some(slot) => {
                    *slot = Some(item);
                    true
                }
                None => false,
            }
        }

        /// Keeps the items `keep` says, in order; whether any went.
        pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) -> bool {
            let before = self.iter().count();
            let mut kept = [None; N];
            for (slot, item) in kept.iter_mut().zip(self.iter().copied().filter(|item| keep(item))) {
                *slot = Some(item);
            }
            self.items = kept;
            self.iter().count() != before
        }

        pub fn clear(&mut self) -> bool {
            self.retain(|_| false)
        }
    }
}

impl Slaac {
    /// Takes in `advertisement` at `now` for the interface with MAC `mac`.
    pub fn advertised(&mut self, advertisement: &Advertisement, mac: EthernetAddress, now: Instant) {
        self.advertisements += 1;
        for prefix in advertisement.prefixes.iter().flatten() {
            let address = address_for(prefix.prefix, mac);
            let offered = prefix.valid.map(|valid| now + valid);
            match self.addresses.find_mut(|learned| learned.address == address) {
                Some(learned) => {
                    // RFC 4862, 5.5.3 (e): the two-hour rule.
                    let remaining = learned.valid_until.map(|until| until - now);
                    let until = match (prefix.valid, remaining) {
                        (None, _) => None,
                        (Some(valid), Some(left)) if valid > TWO_HOURS || valid > left => offered,
                        (Some(valid), None) if valid > TWO_HOURS => offered,
                        (Some(_), Some(left)) if left <= TWO_HOURS => learned.valid_until,
                        (Some(_), _) => Some(now + TWO_HOURS),
                    };
                    learned.valid_until = until;
                }
                None if prefix.valid != Some(Duration::ZERO) => {
                    if self.addresses.push(Learned { address, valid_until: offered }) {
                        self.changed = true;
                    } else {
                        log::debug!("network: no room for a SLAAC address in {}", prefix.prefix);
                    }
                }
                None => {}
            }
        }
        let router = advertisement.router;
        if advertisement.router_lifetime == Duration::ZERO {
            self.changed |= self.routers.retain(|known| known.address != router);
        } else {
            let until = now + advertisement.router_lifetime;
            match self.routers.find_mut(|known| known.address == router) {
                Some(known) => known.until = until,
                None => {
                    if self.routers.push(Router { address: router, until }) {
                        self.changed = true;
                        self.to_solicit = Some(router);
                    }
                }
            }
        }
    }

    /// Drops what has expired at `now`.
    pub fn expire(&mut self, now: Instant) {
        self.changed |= self.addresses.retain(|learned| learned.valid_until.is_none_or(|until| until > now));
        self.changed |= self.routers.retain(|router| router.until > now);
    }

    /// Whether an address or router came or went since the last call.
    pub fn take_changed(&mut self) -> bool {
        core::mem::take(&mut self.changed)
    }

    /// When something next expires.
    pub fn deadline(&self) -> Option<Instant> {
        let addresses = self.addresses.iter().filter_map(|learned| learned.valid_until);
        addresses.chain(self.routers.iter().map(|router| router.until)).min()
    }

    /// A router heard for the first time since the last call, or asked for
    /// again ([`Self::solicit_router_again`]): the loop
    /// sends it a neighbour solicitation ([`neighbour_solicitation`]).
    /// smoltcp learns no link-layer address from an advertisement, and a
    /// router that learned the guest's from its router solicitation never
    /// solicits it; without this the guest's first answer to the router
    /// (a ping from it, say) would be dropped while smoltcp asks.
    pub fn take_router_to_solicit(&mut self) -> Option<Ipv6Address> {
        self.to_solicit.take()
    }

    /// Asks for the router known, if any, to be solicited again: smoltcp
    /// empties its neighbour cache whenever the interface's addresses
    /// change (a DHCP lease, a SLAAC address), the router's link-layer
    /// address with it.
    pub fn solicit_router_again(&mut self) {
        self.to_solicit = self.router();
    }

    /// The addresses learned, in the order they came.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv6Cidr> + '_ {
        self.addresses.iter().map(|learned| learned.address)
    }

    /// The default router to use: the first one known.
    pub fn router(&self) -> Option<Ipv6Address> {
        self.routers.iter().next().map(|router| router.address)
    }

    /// Advertisements taken in so far.
    pub fn advertisements(&self) -> u64 {
        self.advertisements
    }

    /// Forgets every address and router (the MAC changed: the addresses
    /// were made of the old one; the next advertisement brings them back).
    pub fn forget(&mut self) {
        self.changed |= self.addresses.clear();
        self.changed |= self.routers.clear();
        self.to_solicit = None;
    }
}

/// When to send the router solicitations: [`SOLICITATIONS`] of them,
/// [`SOLICITATION_INTERVAL`] apart, from when the link is up, until an
/// advertisement comes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Solicitation {
    sent: u8,
    next_at: Option<Instant>,
}

impl Solicitation {
    /// Whether one is due at `now` (counted as sent).
    pub fn due(&mut self, now: Instant, link_up: bool) -> bool {
        if self.sent >= SOLICITATIONS || !link_up || self.next_at.is_some_and(|at| now < at) {
            return false;
        }
        self.sent += 1;
        self.next_at = Some(now + SOLICITATION_INTERVAL);
        true
    }

    /// An advertisement came: no more.
    pub fn answered(&mut self) {
        self.sent = SOLICITATIONS;
    }

    /// When the next is due, if one is still to go (none before the first:
    /// that one goes when the link is up).
    pub fn deadline(&self) -> Option<Instant> {
        self.next_at.filter(|_| self.sent < SOLICITATIONS)
    }
}

/// A router solicitation from `mac` at link-local `source`, to all routers,
/// with the source's link-layer address (RFC 4861, 4.1), as an Ethernet
/// frame.
pub fn router_solicitation(mac: EthernetAddress, source: Ipv6Address) -> alloc::vec::Vec<u8> {
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit { lladdr: Some(HardwareAddress::Ethernet(mac).into()) });
    neighbour_discovery_frame(mac, source, ALL_ROUTERS, &icmp)
}

/// A neighbour solicitation from `mac` at link-local `source` for `target`,
/// to its solicited-node multicast group, with the source's link-layer
/// address (RFC 4861, 4.3), as an Ethernet frame. The answer (a neighbour
/// advertisement with the target's link-layer address) fills smoltcp's
/// neighbour cache.
pub fn neighbour_solicitation(mac: EthernetAddress, source: Ipv6Address, target: Ipv6Address) -> alloc::vec::Vec<u8> {
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: Some(HardwareAddress::Ethernet(mac).into()),
    });
    // ff02::1:ff00:0/104 and the target's last 24 bits (RFC 4291, 2.7.1).
    let low = target.octets();
    let group =
        Ipv6Address::from([0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(low[13]), u16::from_be_bytes([low[14], low[15]])]);
    neighbour_discovery_frame(mac, source, group, &icmp)
}

/// `icmp` (a neighbour-discovery message) from `mac` at `source` to the
/// multicast group `group` (Ethernet 33:33 and the group's last 32 bits),
/// hop limit 255 as RFC 4861 asks, as an Ethernet frame.
fn neighbour_discovery_frame(
    mac: EthernetAddress,
    source: Ipv6Address,
    group: Ipv6Address,
    icmp: &Icmpv6Repr<'_>,
) -> alloc::vec::Vec<u8> {
    let ip = Ipv6Repr {
        src_addr: source,
        dst_addr: group,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: 255,
    };
    let octets = group.octets();
    let ethernet = EthernetRepr {
        src_addr: mac,
        dst_addr: EthernetAddress([0x33, 0x33, octets[12], octets[13], octets[14], octets[15]]),
        ethertype: EthernetProtocol::Ipv6,
    };
    let mut frame = alloc::vec![0; ethernet.buffer_len() + ip.buffer_len() + icmp.buffer_len()];
    let mut ethernet_frame = EthernetFrame::new_unchecked(&mut frame[..]);
    ethernet.emit(&mut ethernet_frame);
    let mut ip_packet = Ipv6Packet::new_unchecked(ethernet_frame.payload_mut());
    ip.emit(&mut ip_packet);
    let mut icmp_packet = Icmpv6Packet::new_unchecked(ip_packet.payload_mut());
    icmp.emit(&source, &group, &mut icmp_packet, &smoltcp::phy::ChecksumCapabilities::default());
    frame
}

/// A device whose received frames pass by SLAAC first: router
/// advertisements are taken in ([`Slaac::advertised`]) and still go on to
/// smoltcp (which ignores them), everything else untouched.
pub struct Watched<'a, D> {
    device: &'a mut D,
    slaac: &'a mut Slaac,
    mac: EthernetAddress,
}

impl<'a, D> Watched<'a, D> {
    /// `device`, its frames watched for `slaac` on the interface with MAC
    /// `mac`.
    pub fn new(device: &'a mut D, slaac: &'a mut Slaac, mac: EthernetAddress) -> Self {
        Self { device, slaac, mac }
    }

    /// The device underneath.
    pub fn device(&self) -> &D {
        self.device
    }
}

/// A received frame on its way through [`Watched`], and when it came.
pub struct WatchedRx<'a, R> {
    token: R,
    slaac: &'a mut Slaac,
    mac: EthernetAddress,
    now: Instant,
}

impl<R: RxToken> RxToken for WatchedRx<'_, R> {
    fn consume<T, F: FnOnce(&[u8]) -> T>(self, f: F) -> T {
        let Self { token, slaac, mac, now } = self;
        token.consume(|frame| {
            if let Some(advertisement) = parse_advertisement(frame) {
                slaac.advertised(&advertisement, mac, now);
            }
            f(frame)
        })
    }

    fn meta(&self) -> smoltcp::phy::PacketMeta {
        self.token.meta()
    }
}

impl<D: Device> Device for Watched<'_, D> {
    type RxToken<'r>
        = WatchedRx<'r, D::RxToken<'r>>
    where
        Self: 'r;
    type TxToken<'r>
        = D::TxToken<'r>
    where
        Self: 'r;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.device.receive(timestamp)?;
        Some((WatchedRx { token: rx, slaac: &mut *self.slaac, mac: self.mac, now: timestamp }, tx))
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.device.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }
}

#[cfg(test)]
mod tests;
