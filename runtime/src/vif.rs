//! One of the runtime's interfaces: the vif it is for, that vif's frontend
//! (and DMA device) while there is one, the smoltcp interface and its own
//! sockets, and everything that gives the interface its addresses (DHCP or
//! the static words, SLAAC, the xenstore keys, the announcements after a
//! resume).
//!
//! The interface outlives its vif's frontends: a frontend for a new
//! backend (or a new vif, for the main interface) only changes what is
//! under it. Each interface has its own [`SocketSet`]: smoltcp sends every
//! socket of a set through the interface it polls, so a connection lives
//! and dies with the interface it came in on.

use crate::address_keys::{AddressKeys, vif_number};
use crate::announce::{Announcement, gratuitous_arp};
use crate::data_path;
use crate::event_loop::{
    DHCP_DISCOVER_RETRY, Frontend, LINK_DOWN_POLL, MAX_RETIRING, RELEASE_RETRY, RuntimeConfig, Table,
};
use crate::fragments::{FragmentCounters, FragmentScreen};
use crate::lease_hint::{self, LeaseHint};
use crate::netconfig::{Ipv6Static, NetConfig};
use crate::platform::Platform;
use crate::slaac::{self, Slaac, Solicitation, Watched};
use crate::stats::Stats;
use crate::syn_cookies::{SynCookieCounters, SynCookies};
use crate::{InterfaceId, NetworkState, Service};
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use dma::{BackendTrust, DmaCounters, DmaDevice};
use netfront::{Netfront, NetfrontCounters, NetfrontError, VifChoice, VifIdentity};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, TxToken};
use smoltcp::socket::dhcpv4;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv6Cidr};
use xen_pv::xenstore::XenstoreError;

/// What every interface's frontends counted, and the screens in front of
/// their stacks: the network's part of [`Stats`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Totals {
    /// Interfaces made (each once its vif was first found).
    pub interfaces: u64,
    pub netfront: NetfrontCounters,
    pub dma: DmaCounters,
    pub syn_cookies: SynCookieCounters,
    pub fragments: FragmentCounters,
}

impl core::ops::AddAssign for Totals {
    fn add_assign(&mut self, other: Self) {
        self.interfaces += other.interfaces;
        self.netfront += other.netfront;
        self.dma += other.dma;
        self.syn_cookies += other.syn_cookies;
        self.fragments += other.fragments;
    }
}

/// What a turn of one interface needs from the loop around it.
pub(crate) struct Shared<'a, 'p, 't, P: Platform<'p>> {
    pub platform: &'t P,
    pub table: &'t Table<'p>,
    pub config: &'a RuntimeConfig,
    /// Frontends replaced by one for another backend (any interface's).
    pub retiring: &'a mut Vec<Box<Frontend<'p, 't, P>>>,
    /// The network's clock (see `crate::running_clock`).
    pub now: &'a mut dyn FnMut() -> Instant,
}

/// One interface (see the module documentation).
pub(crate) struct Vif<'p, 't, P: Platform<'p>> {
    pub id: InterfaceId,
    /// How its log lines begin: `network`, or `network (vif N)`.
    tag: String,
    /// Which vif its frontends bind to.
    choice: VifChoice,
    net: NetConfig,
    ipv6: Ipv6Static,
    /// The frontend of its vif, once there is one.
    pub netfront: Option<Frontend<'p, 't, P>>,
    pub interface: Option<Interface>,
    pub sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    /// While DHCP has brought no lease: when to say so
    /// ([`crate::lease_hint`]).
    lease_hint: Option<LeaseHint>,
    /// A handshake step timed out: take it again once xenstored answers
    /// (no watch event will ask).
    pub control_owed: bool,
    /// SYN cookies in front of smoltcp (on while the service reports SYN
    /// pressure on this interface).
    pub cookies: SynCookies,
    /// The IPv4 fragment screen.
    fragments: FragmentScreen,
    /// When the frontend's held buffers are next offered back, while it has
    /// any.
    release_retry_at: Option<Instant>,
    /// The interface's addresses as published in xenstore, and the vif
    /// number they are published under.
    pub address: AddressKeys,
    /// After a resume in a new domain: the gratuitous ARPs still due.
    announcement: Option<Announcement>,
    /// IPv6 addresses and routers from router advertisements.
    slaac: Slaac,
    /// The router solicitations still to send.
    solicitation: Solicitation,
    /// The interface's addresses as last seen: smoltcp empties its
    /// neighbour cache whenever they change, and the router is then asked
    /// for its link-layer address again ([`Slaac::solicit_router_again`]).
    addresses_seen: Vec<IpCidr>,
}

impl<'p, 't, P: Platform<'p>> Vif<'p, 't, P> {
    /// The main interface (`numbered`: the vifs the other interfaces are
    /// for) or the one for vif `n`, with no frontend yet; the service adds
    /// its sockets.
    pub fn new<S: Service + ?Sized>(id: InterfaceId, config: &RuntimeConfig, seed: u64, service: &mut S) -> Self {
        let numbered = || config.numbered_vifs().map(|vif| vif.number).collect();
        let (choice, net, ipv6, address) = match id {
            InterfaceId::Main => {
                (VifChoice::Lowest { except: numbered() }, config.net, config.ipv6, AddressKeys::default())
            }
            InterfaceId::Vif(number) => {
                let vif = config.numbered_vifs().find(|vif| vif.number == number);
                (
                    VifChoice::Number(number),
                    vif.map_or(NetConfig::Dhcp, |vif| vif.net),
                    vif.map_or_else(Ipv6Static::default, |vif| vif.ipv6),
                    AddressKeys::for_vif_only(),
                )
            }
        };
        let mut sockets = SocketSet::new(Vec::new());
        service.start(id, &mut sockets);
        Self {
            id,
            tag: id.log_tag(),
            choice,
            net,
            ipv6,
            netfront: None,
            interface: None,
            sockets,
            dhcp: None,
            lease_hint: None,
            control_owed: false,
            cookies: SynCookies::new(seed),
            fragments: FragmentScreen::default(),
            release_retry_at: None,
            address,
            announcement: None,
            slaac: Slaac::default(),
            solicitation: Solicitation::default(),
            addresses_seen: Vec::new(),
        }
    }

    /// What its frontend and screens counted (not the frontends it had
    /// before: those are counted where they closed or retire).
    pub fn totals(&self) -> Totals {
        let (netfront, dma) =
            self.netfront.as_ref().map(|netfront| (netfront.counters(), netfront.dma_counters())).unwrap_or_default();
        Totals {
            interfaces: u64::from(self.interface.is_some()),
            netfront,
            dma,
            syn_cookies: self.cookies.counters(),
            fragments: self.fragments.counters(),
        }
    }

    /// After a resume in a new domain, the old frontend dropped: the
    /// addresses published again, the announcements due, the routers asked
    /// again (perhaps another host, another link).
    pub fn resumed(&mut self, store: &mut xen_pv::xenstore::Xenstore<'p, P::Hypervisor>) {
        self.address.resumed(store);
        self.release_retry_at = None;
        self.announcement = Some(Announcement::new());
        self.solicitation = Solicitation::default();
    }

    /// Moves the vif handshake on (making the frontend the vif's backend
    /// needs first); brings the interface up the first time.
    pub fn control(&mut self, shared: &mut Shared<'_, 'p, 't, P>) {
        let mut outcome = self.poll_frontend(shared);
        if let Err(NetfrontError::IdentityChanged(identity)) = outcome {
            log::info!(
                "{}: the vif is now served by domain {} (trusted: {})",
                self.tag,
                identity.backend,
                identity.trusted
            );
            self.retire_frontend(shared);
            outcome = self.poll_frontend(shared);
        }
        // A timed-out step is taken again once xenstored answers; a vif with
        // no frontend yet, once a replaced one has closed.
        self.control_owed = outcome == Err(NetfrontError::Xenstore(XenstoreError::TimedOut))
            || (self.netfront.is_none() && !shared.retiring.is_empty());
        if let Err(error) = outcome {
            log::error!("netfront: {error:?}");
        }
        let Some((mac, vif)) = self
            .netfront
            .as_ref()
            .and_then(Netfront::device)
            .map(|device| (EthernetAddress(device.mac.0), vif_number(&device.path)))
        else {
            return;
        };
        let platform = shared.platform;
        // The address, if any, is published under the vif's current number.
        if let Some(vif) = vif {
            self.address.set_vif(&mut platform.xenstore(), vif);
        }
        match self.interface.as_mut() {
            None => self.interface = self.make_interface(platform, mac, (shared.now)()),
            Some(interface) if interface.hardware_addr() != HardwareAddress::Ethernet(mac) => {
                // A new vif (xl network-attach) brings a new address: use it,
                // and ask for a lease for it.
                log::info!("{}: the interface's address is now {mac}", self.tag);
                interface.set_hardware_addr(HardwareAddress::Ethernet(mac));
                if let Some(handle) = self.dhcp {
                    self.sockets.get_mut::<dhcpv4::Socket>(handle).reset();
                }
                // The IPv6 addresses were made of the old MAC: a new
                // link-local one now, and new ones from the next
                // advertisement, asked for at once.
                self.slaac.forget();
                self.slaac.take_changed();
                self.solicitation = Solicitation::default();
                apply_ipv6(platform, &self.tag, &self.ipv6, &self.slaac, interface, &mut self.address);
            }
            Some(_) => {}
        }
    }

    /// Polls the frontend's control plane; makes one for the vif when there
    /// is none (the first time, or for a new backend).
    fn poll_frontend(&mut self, shared: &mut Shared<'_, 'p, 't, P>) -> Result<(), NetfrontError> {
        if self.netfront.is_none() {
            if shared.retiring.len() >= MAX_RETIRING {
                return Err(NetfrontError::Resources("frontends of earlier backends still held"));
            }
            let found = netfront::find_vif(&mut shared.platform.xenstore(), &self.choice)?;
            let Some(identity) = found else { return Ok(()) };
            self.netfront = Some(self.open_frontend(shared, identity)?);
        }
        match self.netfront.as_mut() {
            Some(netfront) => netfront.poll_control(&mut shared.platform.xenstore()),
            None => Ok(()),
        }
    }

    /// The vif is now served by another backend (or with another trust):
    /// the frontend joins the retiring, which the loop closes once their
    /// old backend lets go (at once if it holds nothing, at the end of the
    /// control pass: their grants are then free for the new device).
    fn retire_frontend(&mut self, shared: &mut Shared<'_, 'p, 't, P>) {
        shared.retiring.extend(self.netfront.take().map(Box::new));
    }

    /// A frontend for the vif, served as `identity` says, with its own DMA
    /// device: granting to that backend, bouncing unless it is trusted.
    fn open_frontend(
        &self,
        shared: &Shared<'_, 'p, 't, P>,
        identity: VifIdentity,
    ) -> Result<Frontend<'p, 't, P>, NetfrontError> {
        let backend = identity.backend;
        let trust = if identity.trusted && !shared.config.force_untrusted {
            BackendTrust::Trusted
        } else {
            log::info!("backend domain {backend} is not trusted: bouncing every buffer");
            BackendTrust::Untrusted(shared.config.bounce)
        };
        let dma = DmaDevice::new(shared.table, shared.platform.pages(), backend, trust).map_err(|error| {
            log::error!("DMA set-up for domain {backend} failed: {error:?}");
            NetfrontError::Resources("DMA device")
        })?;
        log::info!("{}: a DMA device for backend domain {backend}", self.tag);
        let events = shared.platform.events();
        Ok(Netfront::for_vif(events, dma, identity.trusted, shared.config.netfront, self.choice.clone()))
    }

    /// The interface on the vif, with its address or asking for one.
    fn make_interface(&mut self, platform: &P, mac: EthernetAddress, now: Instant) -> Option<Interface> {
        let netfront = self.netfront.as_mut()?;
        let mut interface = Interface::new(Config::new(HardwareAddress::Ethernet(mac)), netfront, now);
        crate::fragments::configure(&mut interface, &mut self.fragments);
        match self.net {
            NetConfig::Static { address, gateway } => {
                interface.update_ip_addrs(|addresses| {
                    let _ = addresses.push(IpCidr::Ipv4(address));
                });
                if let Some(gateway) = gateway {
                    let _ = interface.routes_mut().add_default_ipv4_route(gateway);
                }
                log::info!("{}: static address {address}", self.tag);
                self.address.set_address(&mut platform.xenstore(), Some(&address.address().to_string()));
            }
            NetConfig::Dhcp => {
                let mut dhcp = dhcpv4::Socket::new();
                let mut retry = dhcpv4::RetryConfig::default();
                retry.discover_timeout = DHCP_DISCOVER_RETRY;
                dhcp.set_retry_config(retry);
                self.dhcp = Some(self.sockets.add(dhcp));
                self.lease_hint = Some(LeaseHint::new(now));
                log::info!("{}: asking for an address by DHCP", self.tag);
            }
        }
        apply_ipv6(platform, &self.tag, &self.ipv6, &self.slaac, &mut interface, &mut self.address);
        Some(interface)
    }

    /// One pass over the data path at `now`; returns the earliest deadline.
    /// `others` sums what the rest of the network counted, for a metrics
    /// request.
    pub fn turn<S: Service + ?Sized>(
        &mut self,
        platform: &P,
        table: &Table<'p>,
        service: &mut S,
        others: &dyn Fn() -> Totals,
        now: Instant,
    ) -> Option<Instant> {
        let (Some(interface), Some(netfront)) = (self.interface.as_mut(), self.netfront.as_mut()) else {
            return None;
        };
        if netfront.take_notification() {
            log::trace!("netfront: notified");
        }
        let (dhcp, tag, id) = (self.dhcp, self.tag.as_str(), self.id);
        let address = &mut self.address;
        service.network(id, network_state(interface, netfront.is_up(), &self.ipv6, &self.slaac));
        let HardwareAddress::Ethernet(mac) = interface.hardware_addr();
        let advertisements = self.slaac.advertisements();
        let pass = data_path::pass(
            interface,
            &mut Watched::new(netfront, &mut self.slaac, mac),
            &mut self.cookies,
            &mut self.fragments,
            &mut self.sockets,
            &mut *service,
            id,
            now,
            |interface, sockets| dhcp_events(platform, tag, dhcp, address, interface, sockets),
            |watched, cookies, fragments| {
                let netfront = watched.device();
                let mut totals = others();
                totals += Totals {
                    interfaces: 1,
                    netfront: netfront.counters(),
                    dma: netfront.dma_counters(),
                    syn_cookies: cookies.counters(),
                    fragments: *fragments,
                };
                gather_stats(platform, table, totals)
            },
        );
        if self.slaac.advertisements() != advertisements {
            self.solicitation.answered();
        }
        self.slaac.expire(now);
        if self.slaac.take_changed() {
            apply_ipv6(platform, tag, &self.ipv6, &self.slaac, interface, &mut self.address);
        }
        if self.solicitation.due(now, netfront.is_up()) {
            solicit_routers::<P>(interface, netfront, now);
        }
        if interface.ip_addrs() != self.addresses_seen.as_slice() {
            self.addresses_seen = interface.ip_addrs().to_vec();
            self.slaac.solicit_router_again();
        }
        if let Some(router) = self.slaac.take_router_to_solicit() {
            solicit_neighbour::<P>(interface, netfront, router, now);
        }
        // A solicitation due while the link is down waits for the link (a
        // vif event), not for its time: that would be a busy loop.
        let solicit_deadline = self.solicitation.deadline().filter(|_| netfront.is_up());
        let slaac_deadline = [self.slaac.deadline(), solicit_deadline].into_iter().flatten().min();
        let announce_deadline = announce::<P>(tag, &mut self.announcement, interface, netfront, now);
        let hint_deadline = if self.dhcp.is_some() {
            tend_lease_hint(id, &mut self.lease_hint, now, has_ipv4(interface), netfront.is_up())
        } else {
            None
        };
        let release_deadline = if netfront.releases_pending() {
            let due = *self.release_retry_at.get_or_insert(now + RELEASE_RETRY);
            if now >= due {
                netfront.retry_releases();
                self.release_retry_at = netfront.releases_pending().then(|| now + RELEASE_RETRY);
            }
            self.release_retry_at
        } else {
            self.release_retry_at = None;
            None
        };
        if netfront.poll_rings() || pass.frames_left || self.cookies.has_replay() {
            return Some(now);
        }
        let mut stack_deadline = interface.poll_at(now, &self.sockets);
        if !netfront.is_up() {
            // Nothing can be sent: a retransmission due now would be due
            // again at once, a busy loop until the link is back. Xenstore
            // events bring the link back; until then, look now and then.
            stack_deadline = stack_deadline.map(|deadline| deadline.max(now + LINK_DOWN_POLL));
        }
        [pass.service_deadline, stack_deadline, release_deadline, hint_deadline, announce_deadline, slaac_deadline]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Sends the gratuitous ARPs due after a resume (one per IPv4 address of
/// the interface) once the link is up; returns when the next is due. An
/// interface with no address has nothing to announce: DHCP's own exchange
/// will show where it is.
fn announce<'p, 't, P: Platform<'p>>(
    tag: &str,
    announcement: &mut Option<Announcement>,
    interface: &Interface,
    netfront: &mut Frontend<'p, 't, P>,
    now: Instant,
) -> Option<Instant> {
    let schedule = announcement.as_mut()?;
    let addresses: Vec<_> = interface
        .ip_addrs()
        .iter()
        .filter_map(|cidr| match cidr.address() {
            IpAddress::Ipv4(address) => Some(address),
            IpAddress::Ipv6(_) => None,
        })
        .collect();
    let HardwareAddress::Ethernet(mac) = interface.hardware_addr();
    if addresses.is_empty() {
        *announcement = None;
        return None;
    }
    if schedule.due(now, netfront.is_up()) {
        for address in addresses {
            let frame = gratuitous_arp(mac, address);
            match netfront.transmit(now) {
                Some(token) => token.consume(frame.len(), |buffer| buffer.copy_from_slice(&frame)),
                None => log::debug!("{tag}: no room to announce {address}"),
            }
        }
        log::info!("{tag}: announced {mac} after the resume");
    }
    let deadline = schedule.deadline();
    if schedule.is_done() {
        *announcement = None;
    }
    deadline
}

/// Whether the interface has an IPv4 address.
fn has_ipv4(interface: &Interface) -> bool {
    interface.ip_addrs().iter().any(|cidr| matches!(cidr, IpCidr::Ipv4(_)))
}

/// The network's state as the service hears it.
fn network_state(interface: &Interface, link_up: bool, config: &Ipv6Static, slaac: &Slaac) -> NetworkState {
    let ipv6 = || {
        interface.ip_addrs().iter().filter_map(|cidr| match cidr {
            IpCidr::Ipv6(cidr) => Some(cidr.address()),
            IpCidr::Ipv4(_) => None,
        })
    };
    NetworkState {
        link_up,
        address_bound: has_ipv4(interface),
        ipv6_addresses: ipv6().count(),
        ipv6_address_bound: ipv6().any(|address| !address.is_unicast_link_local()),
        ipv6_default_router: config.gateway.or(slaac.router()).is_some(),
        router_advertisements: slaac.advertisements(),
    }
}

/// Gives the interface its IPv6 addresses (the link-local one of its MAC,
/// the static `ip6=`, those from router advertisements) and default router
/// (`gw6=`, else the first an advertisement named), leaving its IPv4
/// address alone; logs what came and went, and publishes the addresses in
/// xenstore, in that order.
fn apply_ipv6<'p, P: Platform<'p>>(
    platform: &P,
    tag: &str,
    config: &Ipv6Static,
    slaac: &Slaac,
    interface: &mut Interface,
    keys: &mut AddressKeys,
) {
    let HardwareAddress::Ethernet(mac) = interface.hardware_addr();
    let mut wanted: Vec<Ipv6Cidr> = Vec::from([slaac::link_local(mac)]);
    for cidr in config.address.into_iter().chain(slaac.addresses()) {
        if !wanted.contains(&cidr) {
            wanted.push(cidr);
        }
    }
    let had: Vec<Ipv6Cidr> = interface
        .ip_addrs()
        .iter()
        .filter_map(|cidr| match cidr {
            IpCidr::Ipv6(cidr) => Some(*cidr),
            IpCidr::Ipv4(_) => None,
        })
        .collect();
    let mut kept = Vec::with_capacity(wanted.len());
    interface.update_ip_addrs(|addresses| {
        addresses.retain(|cidr| !matches!(cidr, IpCidr::Ipv6(_)));
        for cidr in &wanted {
            match addresses.push(IpCidr::Ipv6(*cidr)) {
                Ok(()) => kept.push(*cidr),
                Err(_) => log::warn!("{tag}: no room on the interface for IPv6 address {cidr}"),
            }
        }
    });
    for cidr in kept.iter().filter(|cidr| !had.contains(cidr)) {
        log::info!("{tag}: IPv6 address {cidr}");
    }
    for cidr in had.iter().filter(|cidr| !kept.contains(cidr)) {
        log::info!("{tag}: IPv6 address {cidr} is gone");
    }
    let router = config.gateway.or(slaac.router());
    let routes = interface.routes_mut();
    let old = routes.remove_default_ipv6_route().map(|route| route.via_router);
    if let Some(router) = router {
        let _ = routes.add_default_ipv6_route(router);
    }
    if old != router.map(IpAddress::Ipv6) {
        match router {
            Some(router) => log::info!("{tag}: IPv6 default router {router}"),
            None => log::info!("{tag}: no IPv6 default router"),
        }
    }
    keys.set_ipv6(&mut platform.xenstore(), kept.iter().map(|cidr| cidr.address().to_string()).collect());
}

/// Sends a router solicitation from the interface's link-local address.
fn solicit_routers<'p, 't, P: Platform<'p>>(interface: &Interface, netfront: &mut Frontend<'p, 't, P>, now: Instant) {
    let HardwareAddress::Ethernet(mac) = interface.hardware_addr();
    let frame = slaac::router_solicitation(mac, slaac::link_local(mac).address());
    send_frame::<P>(netfront, &frame, "router solicitation", now);
}

/// Sends a neighbour solicitation for `target` from the interface's
/// link-local address (see [`Slaac::take_router_to_solicit`]).
fn solicit_neighbour<'p, 't, P: Platform<'p>>(
    interface: &Interface,
    netfront: &mut Frontend<'p, 't, P>,
    target: smoltcp::wire::Ipv6Address,
    now: Instant,
) {
    let HardwareAddress::Ethernet(mac) = interface.hardware_addr();
    let frame = slaac::neighbour_solicitation(mac, slaac::link_local(mac).address(), target);
    send_frame::<P>(netfront, &frame, "neighbour solicitation", now);
}

/// Sends `frame` (a `what`) if the ring has room; if not, it is not sent
/// (a router solicitation's schedule sends another; smoltcp asks for a
/// neighbour itself when it first needs one).
fn send_frame<'p, 't, P: Platform<'p>>(netfront: &mut Frontend<'p, 't, P>, frame: &[u8], what: &str, now: Instant) {
    match netfront.transmit(now) {
        Some(token) => {
            token.consume(frame.len(), |buffer| buffer.copy_from_slice(frame));
            log::debug!("network: {what} sent");
        }
        None => log::debug!("network: no room for a {what}"),
    }
}

/// Keeps the DHCP hint's schedule: none while there is a lease, a new one
/// from `now` when there is none (the first request, a lost lease, a new
/// MAC asking afresh); logs the hint when it is due and the link is up (a
/// link that is down has said so itself). Returns when the next is due.
fn tend_lease_hint(
    id: InterfaceId,
    hint: &mut Option<LeaseHint>,
    now: Instant,
    leased: bool,
    link_up: bool,
) -> Option<Instant> {
    if leased {
        *hint = None;
        return None;
    }
    let hint = hint.get_or_insert_with(|| LeaseHint::new(now));
    if let Some(waited) = hint.due(now)
        && link_up
    {
        log::warn!("{}", lease_hint::hint(id, waited));
    }
    Some(hint.deadline())
}

/// Acts on the DHCP socket's events: a lease configures the interface and
/// is published in xenstore; a lost one unconfigures it and is removed
/// from xenstore.
fn dhcp_events<'p, P: Platform<'p>>(
    platform: &P,
    tag: &str,
    dhcp: Option<SocketHandle>,
    address: &mut AddressKeys,
    interface: &mut Interface,
    sockets: &mut SocketSet<'static>,
) {
    let Some(handle) = dhcp else { return };
    match sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
        None => {}
        Some(dhcpv4::Event::Configured(config)) => {
            interface.update_ip_addrs(|addresses| {
                addresses.retain(|cidr| !matches!(cidr, IpCidr::Ipv4(_)));
                let _ = addresses.push(IpCidr::Ipv4(config.address));
            });
            match config.router {
                Some(router) => drop(interface.routes_mut().add_default_ipv4_route(router)),
                None => interface.routes_mut().remove_default_ipv4_route().map_or((), drop),
            }
            log::info!("{tag}: DHCP address {} (router {:?})", config.address, config.router);
            address.set_address(&mut platform.xenstore(), Some(&config.address.address().to_string()));
        }
        Some(dhcpv4::Event::Deconfigured) => {
            let had_address = has_ipv4(interface);
            interface.update_ip_addrs(|addresses| addresses.retain(|cidr| !matches!(cidr, IpCidr::Ipv4(_))));
            interface.routes_mut().remove_default_ipv4_route();
            if had_address {
                log::warn!("{tag}: DHCP lease lost");
            }
            address.set_address(&mut platform.xenstore(), None);
        }
    }
}

/// The counters now, with the network's `totals`.
pub(crate) fn gather_stats<'p, P: Platform<'p>>(platform: &P, table: &Table<'p>, totals: Totals) -> Stats {
    use core::sync::atomic::Ordering;
    let events = platform.events().counters();
    let own = platform.stats();
    Stats {
        uptime_ns: platform.now(),
        start_time_ns: own.start_time_ns,
        hypercalls: own.hypercalls,
        events_sent: events.sent.load(Ordering::Relaxed),
        events_received: events.received.load(Ordering::Relaxed),
        polls: events.polls.load(Ordering::Relaxed),
        heap_used: own.heap_used,
        heap_free: own.heap_free,
        console_dropped_bytes: own.console_dropped_bytes,
        interfaces: totals.interfaces,
        netfront: totals.netfront,
        dma: totals.dma,
        grants: table.borrow().counters(),
        syn_cookies: totals.syn_cookies,
        fragments: totals.fragments,
    }
}
