//! xenecho's network runtime: everything between the netfront driver and
//! the appliance's services, and nothing that touches the machine.
//!
//! [`run`] is the appliance's event loop. For each of its interfaces (the
//! main one, and one per vif the configuration numbers: [`InterfaceId`]) it
//! finds the vif in xenstore (or waits for one), decides whether its backend
//! is trusted, builds the DMA device and the netfront that owns it (a new
//! pair when the vif comes back with another backend domain or trust),
//! brings up the smoltcp interface, with its own sockets (DHCP or a static
//! address, published in xenstore where dom0's tools and toolstacks look:
//! [`address_keys`]; while DHCP brings no lease it says so, with a hint:
//! [`lease_hint`]), and turns: xenstore watch events (the toolstack's
//! requests, [`lifecycle`]: an end, or a suspend, after which a domain
//! restored elsewhere sets its network up again and announces itself,
//! [`announce`]; vif changes), the netfront handshake, at most a
//! budget of received frames ([`budget`]) through SYN cookies
//! ([`syn_cookies`]) and the refusal budget ([`refusals`]) into smoltcp, the [`Service`], smoltcp's output, the
//! rings' housekeeping, then a sleep until an event or the earliest deadline
//! on the network's own clock ([`running_clock`]). Before the first turn it
//! tells the service which domain it runs as ([`instance`]).
//!
//! It reaches the machine only through the [`Platform`] seam: the xenstore
//! client, the event channels, the grant-table entries, a page source for
//! DMA, the clock and the wait primitive. On Xen the appliance wires the
//! kernel's PV services into it; host tests and fuzz targets wire the
//! simulated Xen (`testing`, feature `test-utils`), so the loop they drive
//! is the one the guest runs.
//!
//! This crate holds no `unsafe` code.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod address_keys;
pub mod announce;
pub mod budget;
pub mod data_path;
mod event_loop;
pub mod fragments;
pub mod instance;
pub mod lease_hint;
pub mod lifecycle;
pub mod netconfig;
mod platform;
pub mod refusals;
pub mod running_clock;
pub mod slaac;
pub mod stats;
pub mod syn_cookies;
#[cfg(feature = "test-utils")]
pub mod testing;
mod vif;

pub use event_loop::{
    BOUNCE_PAGES, LARGE_FRAME_BOUNCE_PAGES, MAX_NUMBERED_VIFS, RuntimeConfig, VifConfig, run, run_without_network,
};
pub use event_loop::{DEFAULT_DRAIN, MAX_DRAIN};
pub use instance::Instance;
pub use lifecycle::ShutdownRequest;
pub use netconfig::{Ipv6Static, NetConfig};
pub use netfront::NetfrontConfig;
pub use platform::{Platform, PlatformStats};
pub use stats::Stats;
pub use xen_pv::SuspendOutcome;

/// One of the runtime's interfaces, as the service is told: each has its
/// own sockets (see [`Service::start`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InterfaceId {
    /// The main interface: on the lowest-numbered vif no other interface
    /// is for (the first vif, unless the configuration numbers it), and on
    /// the next one found when that one goes.
    Main,
    /// The interface on vif `n` alone ([`RuntimeConfig::vifs`]).
    Vif(u32),
}

impl InterfaceId {
    /// How its log lines begin: `network`, or `network (vif N)`.
    pub(crate) fn log_tag(self) -> alloc::string::String {
        match self {
            InterfaceId::Main => alloc::string::String::from("network"),
            InterfaceId::Vif(number) => alloc::format!("network (vif {number})"),
        }
    }
}

/// A network service the runtime runs on its TCP/IP stack.
///
/// The runtime owns the event loop: on every turn, for each interface, it
/// lets smoltcp process what arrived, calls [`Service::poll`] with that
/// interface's sockets, lets smoltcp send what the service wrote; then it
/// sleeps until the next event or the earliest deadline.
pub trait Service {
    /// Learns which domain it runs as (its name and domain id, read from
    /// xenstore by the runtime; see [`instance`]): before
    /// [`Service::start`], and again after a resume in a new domain (a
    /// restore or a migration gives the guest a new domain id). Does nothing
    /// unless the service wants it.
    fn identify(&mut self, _instance: &Instance) {}

    /// Adds the service's sockets for interface `interface` (none, if it
    /// serves nothing there), once per interface, before the first poll.
    /// smoltcp sends each socket through the interface whose set holds it,
    /// so a socket serves one interface.
    fn start(&mut self, interface: InterfaceId, sockets: &mut smoltcp::iface::SocketSet<'static>);

    /// Serves the sockets of `interface`; returns the latest time it wants
    /// to be polled again (`None`: only when something happens). `stats`
    /// gathers the runtime's and the platform's counters, for a metrics
    /// request.
    fn poll(
        &mut self,
        interface: InterfaceId,
        sockets: &mut smoltcp::iface::SocketSet<'static>,
        now: smoltcp::time::Instant,
        stats: &dyn Fn() -> Stats,
    ) -> Option<smoltcp::time::Instant>;

    /// Whether half-open handshakes crowd the service's backlog on
    /// `interface`, so that SYNs should be answered with cookies there (see
    /// [`syn_cookies`]).
    fn syn_pressure(&self, _interface: InterfaceId) -> bool {
        false
    }

    /// The port on `interface` whose every connection slot is busy now, if
    /// any: a new connection there would only be refused, so its SYNs are
    /// let through at the refusal budget's rate and the rest dropped
    /// unanswered (see [`refusals`]). Asked after every [`Service::poll`];
    /// `None` (the default) meters nothing.
    fn saturated_port(&self, _interface: InterfaceId) -> Option<u16> {
        None
    }

    /// Learns the state of `interface` (the link, the addresses), each turn
    /// before [`Service::poll`]. Does nothing unless the service wants it.
    fn network(&mut self, _interface: InterfaceId, _state: NetworkState) {}

    /// The toolstack asked the domain to end and the runtime drains: the
    /// service stops taking new connections on `interface` and lets the
    /// ones in flight finish. Called once per interface; [`Service::poll`]
    /// goes on as before.
    fn drain(
        &mut self,
        _interface: InterfaceId,
        _sockets: &mut smoltcp::iface::SocketSet<'static>,
        _now: smoltcp::time::Instant,
    ) {
    }

    /// While draining: how many connections on `interface` are still owed
    /// something (an answer, or the acknowledgement of what was sent); 0 on
    /// every interface ends the drain.
    fn in_flight(&self, _interface: InterfaceId, _sockets: &smoltcp::iface::SocketSet<'static>) -> usize {
        0
    }

    /// The drain's deadline passed: resets every connection still in
    /// flight on `interface`; returns how many.
    fn cut(
        &mut self,
        _interface: InterfaceId,
        _sockets: &mut smoltcp::iface::SocketSet<'static>,
        _now: smoltcp::time::Instant,
    ) -> usize {
        0
    }
}

/// What the runtime knows of the network, told to the service each turn
/// ([`Service::network`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkState {
    /// Whether the vif's frontend is connected to its backend (the link is
    /// up).
    pub link_up: bool,
    /// Whether the interface has an IPv4 address (a DHCP lease, or the
    /// static one).
    pub address_bound: bool,
    /// IPv6 addresses on the interface, the link-local one included.
    pub ipv6_addresses: usize,
    /// Whether the interface has an IPv6 address beyond the link-local one
    /// (the static `ip6=`, or one from a router advertisement).
    pub ipv6_address_bound: bool,
    /// Whether there is an IPv6 default router (`gw6=`, or one a router
    /// advertisement named).
    pub ipv6_default_router: bool,
    /// Router advertisements taken in so far.
    pub router_advertisements: u64,
}
