//! The control plane: finding the vif, the xenbus handshake, teardown and
//! reconnection.
//!
//! [`Netfront::poll_control`] is level-triggered: whenever xenstore reports
//! a change (the driver watches `device/vif` and the backend's `state`), it
//! re-reads the backend's state and moves one phase on:
//!
//! ```text
//! Absent --(vif found; write Initialising)--> Initialising
//! Initialising --(backend InitWait; rings, port, keys; write Connected)--> Connecting
//! Connecting --(backend Connected)--> Connected
//! Connecting/Connected --(backend Closing/Closed/gone, or a violation; write Closing)--> Closing
//! Closing --(backend Closing: write Closed)--> Closing
//! Closing --(backend Closed or gone; revoke, free)--> Detached
//! Detached --(backend online: write Initialising)--> Initialising
//! Detached --(toolstack removing it, online = 0: wait; vif gone)--> Absent
//! ```
//!
//! Grants of a closed link are revoked only once the backend has reached
//! Closed (it unmaps first); anything it still holds is kept and retried on
//! later polls, never freed early. Over a translation that cannot refuse a
//! revoke (the identity translation of bare metal) that wait is all that
//! keeps the backend off freed pages, so it is kept whatever the
//! translation.

use crate::NetfrontCounters;
use crate::link::{Link, LinkError, Malformed, RxRing, RxRules, TxRing};
use crate::tx_merge::TxRules;
use crate::xenbus::{MacAddress, XenbusState, parse_domain_id, parse_mtu};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use dma::{BusPage, DmaDevice, DmaPool, PageSource, Released, SharedPage, StillShared, Translation};
use xen_pv::abi::DomainId;
use xen_pv::abi::netif::{RX_WORDS, TX_WORDS};
use xen_pv::event_channel::EventChannels;
use xen_pv::hypervisor::Hypervisor;
use xen_pv::ring::{FrontRing, SharedRing};
use xen_pv::xenstore::{Xenstore, XenstoreError};

/// The watch token for every netfront watch.
pub const WATCH_TOKEN: &str = "xenecho-netfront";
/// How many times the key-writing transaction is retried on EAGAIN.
const TRANSACTION_ATTEMPTS: u32 = 8;
/// The MTU when the toolstack does not say.
const DEFAULT_MTU: u16 = 1500;

/// Sizes of the buffer pools, and whether to ask for large segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetfrontConfig {
    /// rx pages kept posted (at most 256, the ring's size).
    pub rx_buffers: usize,
    /// tx pages (at most 256).
    pub tx_buffers: usize,
    /// Ask the backend for received TCP segments over IPv4 and IPv6 of up
    /// to 64 KiB (`feature-gso-tcpv4` and `feature-gso-tcpv6`, which need
    /// checksum offload: `feature-no-csum-offload=0` and
    /// `feature-ipv6-csum-offload=1`), when the rx pool has at least
    /// [`LARGE_SEGMENT_RX_BUFFERS`] pages.
    pub large_segments: bool,
    /// Send large TCP segments (several of the stack's segments merged,
    /// zero-copy: [`crate::tx_merge`]) over IPv4 and IPv6, to a backend
    /// that takes them (`feature-gso-tcpv4`, `feature-gso-tcpv6` with
    /// `feature-ipv6-csum-offload`, and `feature-sg`). Only with
    /// [`Self::large_segments`] on as well: that switch turns segmentation
    /// offload off both ways.
    pub tx_large_segments: bool,
}

impl Default for NetfrontConfig {
    fn default() -> Self {
        Self { rx_buffers: 256, tx_buffers: 256, large_segments: true, tx_large_segments: true }
    }
}

/// rx slots the largest segment takes: 17 pages of data (65 535 bytes of
/// IPv4 packet and the Ethernet header) and its GSO extra-info slot, what
/// Linux netback waits for before it sends one.
pub const LARGE_SEGMENT_SLOTS: usize = 18;

/// The fewest rx pages with which large segments are asked for: one
/// largest segment on the ring leaves 14 pages posted for other frames
/// (the pages come back as soon as the frame is copied out, so a segment
/// delays other frames, never starves them). A smaller pool (a guest short
/// of memory) asks for none: the backend then cuts segments to the MTU.
pub const LARGE_SEGMENT_RX_BUFFERS: usize = 32;

/// Who serves a vif, as the toolstack says: what a frontend's DMA device
/// and event channel are made for. Read in one place ([`find_vif`] and the
/// frontend's own bind); a vif with another identity needs another
/// frontend ([`NetfrontError::IdentityChanged`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VifIdentity {
    /// The backend's domain (`backend-id`): grants and the event channel go
    /// to it.
    pub backend: DomainId,
    /// Whether the toolstack trusts the backend (`trusted`: absent or `1`
    /// yes, anything else no).
    pub trusted: bool,
}

/// What the toolstack says about the vif.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VifDevice {
    /// The frontend directory, relative to the domain (`device/vif/0`).
    pub path: String,
    /// The backend directory (absolute).
    pub backend_path: String,
    /// Who serves it.
    pub identity: VifIdentity,
    /// The interface's Ethernet address.
    pub mac: MacAddress,
    /// The MTU.
    pub mtu: u16,
}

/// Why the control plane failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetfrontError {
    /// A xenstore request failed.
    Xenstore(XenstoreError),
    /// A xenstore value the toolstack or backend wrote makes no sense.
    BadValue {
        /// The node.
        path: String,
    },
    /// Out of pages, grants or ports while connecting (try again later).
    Resources(&'static str),
    /// The vif found is served by another backend domain, or with another
    /// trust, than this frontend's DMA device was made for: it needs a new
    /// frontend (this one stays unbound and keeps what the old backend
    /// still holds until [`Netfront::close`]).
    IdentityChanged(VifIdentity),
}

impl From<XenstoreError> for NetfrontError {
    fn from(error: XenstoreError) -> Self {
        NetfrontError::Xenstore(error)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Absent,
    Initialising,
    Connecting,
    Connected,
    Closing,
    /// Closed because the toolstack is removing the vif (`online` = 0):
    /// waiting for the directories to go (or the backend to come back).
    Detached,
}

/// Pieces of closed links still held by a backend, retried until released.
#[derive(Default)]
struct Retired {
    tx_pages: Vec<StillShared<SharedRing<TX_WORDS>>>,
    rx_pages: Vec<StillShared<SharedRing<RX_WORDS>>>,
    tx_pools: Vec<DmaPool<dma::ToDevice>>,
    rx_pools: Vec<DmaPool<dma::FromDevice>>,
}

/// The network frontend of one vif, and the DMA device it owns.
///
/// A frontend serves vifs of one [`VifIdentity`]: its DMA device's backend
/// domain (where its event channel goes too) and the trust it was made
/// for. A vif of another identity is refused with
/// [`NetfrontError::IdentityChanged`].
pub struct Netfront<'a, H: Hypervisor, T: Translation, S: PageSource> {
    pub(crate) events: &'a EventChannels<'a, H>,
    pub(crate) dma: DmaDevice<T, S>,
    /// The toolstack's trust in the backend when the DMA device was made.
    trusted: bool,
    config: NetfrontConfig,
    /// Which vif it binds to.
    choice: VifChoice,
    device: Option<VifDevice>,
    phase: Phase,
    /// While closing: `Closed` was written since the backend last wrote its
    /// state ([`Self::watch_event`]). Written once per backend write: every
    /// write fires the frontend's own watch too, and answering those would
    /// keep the loop busy until the backend moves.
    said_closed: bool,
    pub(crate) link: RefCell<Option<Link>>,
    pub(crate) counters: RefCell<NetfrontCounters>,
    pub(crate) broken: Cell<Option<LinkError>>,
    retired: RefCell<Retired>,
    /// The domain is about to suspend: no frame in or out, no page posted.
    pub(crate) quiesced: Cell<bool>,
}

impl<'a, H: Hypervisor, T: Translation, S: PageSource> Netfront<'a, H, T, S> {
    /// A frontend that will bind to the first vif it finds, if that vif's
    /// backend is `dma`'s and the toolstack's trust in it is `trusted`.
    pub fn new(events: &'a EventChannels<'a, H>, dma: DmaDevice<T, S>, trusted: bool, config: NetfrontConfig) -> Self {
        Self::for_vif(events, dma, trusted, config, VifChoice::default())
    }

    /// A frontend that will bind to the vif `choice` names, if that vif's
    /// backend is `dma`'s and the toolstack's trust in it is `trusted`.
    pub fn for_vif(
        events: &'a EventChannels<'a, H>,
        dma: DmaDevice<T, S>,
        trusted: bool,
        config: NetfrontConfig,
        choice: VifChoice,
    ) -> Self {
        Self {
            events,
            dma,
            trusted,
            config,
            choice,
            device: None,
            phase: Phase::Absent,
            said_closed: false,
            link: RefCell::new(None),
            counters: RefCell::new(NetfrontCounters::default()),
            broken: Cell::new(None),
            retired: RefCell::new(Retired::default()),
            quiesced: Cell::new(false),
        }
    }

    /// The domain is about to suspend: from now on no frame is received
    /// or sent and no receive page posted; transmit completions are still
    /// taken ([`Self::poll_rings`]), so the frames already on the ring can
    /// be seen out ([`Self::tx_in_flight`]). Undone by
    /// [`Self::resume_in_place`] when the suspend is cancelled; after a
    /// resume in a new domain the frontend is dropped
    /// ([`Self::forget_after_resume`]).
    pub fn quiesce(&self) {
        // A segment held for a large one was sent before the suspend.
        self.flush_transmit();
        self.quiesced.set(true);
    }

    /// The suspend was cancelled: the same backend, rings and grants go on
    /// serving.
    pub fn resume_in_place(&self) {
        self.quiesced.set(false);
    }

    /// Frames on the transmit ring the backend has not completed.
    pub fn tx_in_flight(&self) -> usize {
        self.link.borrow().as_ref().map_or(0, Link::tx_outstanding)
    }

    /// Transmit buffers idle in the current link's pool (none without a
    /// link): all of them once every frame sent was completed.
    pub fn idle_tx_buffers(&self) -> usize {
        self.link.borrow().as_ref().map_or(0, |link| link.tx_pool.available())
    }

    /// Drops a frontend of a domain that was restored in a new one. Its
    /// backend, ring grants and event channel belong to the old domain and
    /// are gone with it: nothing is revoked (the grant table was reset:
    /// [`dma::GrantDma::bus_pages_void`]), no port is closed (its number may
    /// be another channel's in the new domain), nothing is written to
    /// xenstore (the new domain's vif is another's to connect). Every page
    /// goes back to the page source. Refused, with the frontend given back,
    /// while its DMA device's grants are not void: then they may be live.
    pub fn forget_after_resume(self: Box<Self>) -> Result<(), Box<Self>> {
        if !self.dma.bus_pages_void() {
            return Err(self);
        }
        self.release_link();
        self.close()
    }

    /// Who this frontend serves: its DMA device's backend and trust.
    pub fn identity(&self) -> VifIdentity {
        VifIdentity { backend: self.dma.backend(), trusted: self.trusted }
    }

    /// The DMA device.
    pub fn dma(&self) -> &DmaDevice<T, S> {
        &self.dma
    }

    /// The vif bound to, if any.
    pub fn device(&self) -> Option<&VifDevice> {
        self.device.as_ref()
    }

    /// Whether frames flow (both ends Connected).
    pub fn is_up(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// The event channel of the current link (none once it is closing).
    pub fn port(&self) -> Option<xen_pv::abi::event_channel::Port> {
        if !matches!(self.phase, Phase::Connecting | Phase::Connected) {
            return None;
        }
        self.link.borrow().as_ref().map(|link| link.port)
    }

    /// Whether the data path found a violation that `poll_control` must
    /// act on.
    pub fn broken_link(&self) -> bool {
        let broken = self.broken.get();
        broken.is_some()
    }

    /// The DMA device's counters.
    pub fn dma_counters(&self) -> dma::DmaCounters {
        self.dma.counters()
    }

    /// What the current link negotiated about received frames (none
    /// without a link).
    pub fn rx_rules(&self) -> Option<RxRules> {
        self.link.borrow().as_ref().map(Link::rules)
    }

    /// Which large segments the current link sends (none without a link).
    pub fn tx_rules(&self) -> Option<TxRules> {
        self.link.borrow().as_ref().map(Link::tx_rules)
    }

    /// The stack's segments held in the open large segment, not yet on the
    /// ring ([`Self::flush_transmit`] puts them there).
    pub fn tx_held(&self) -> usize {
        self.link.borrow().as_ref().map_or(0, Link::tx_held)
    }

    /// Why the current link last dropped a malformed received frame.
    pub fn last_malformed(&self) -> Option<Malformed> {
        self.link.borrow().as_ref().and_then(Link::last_malformed)
    }

    /// Counters so far.
    pub fn counters(&self) -> NetfrontCounters {
        *self.counters.borrow()
    }

    /// Notes a watch event of [`WATCH_TOKEN`] before the next
    /// [`Self::poll_control`]: an event on the backend's `state` means the
    /// backend wrote it, and a `Closing` seen after it is a request to
    /// answer again (even if the state read the same: the backend may have
    /// passed through `Closed` meanwhile).
    pub fn watch_event(&mut self, path: &str) {
        if let Some(device) = &self.device
            && path.strip_prefix(device.backend_path.as_str()) == Some("/state")
        {
            self.said_closed = false;
        }
    }

    /// Shuts down a frontend that is no longer used (another took its
    /// place after [`NetfrontError::IdentityChanged`]): once it has no link,
    /// the old backend holds nothing any more, and its DMA device closes.
    /// Until then it is given back: call again later.
    pub fn close(self: Box<Self>) -> Result<(), Box<Self>> {
        self.retry_retired();
        if self.link.borrow().is_some() || self.retired_count() > 0 || self.dma.deferred_len() > 0 {
            return Err(self);
        }
        let Self {
            events,
            dma,
            trusted,
            config,
            choice,
            device,
            phase,
            said_closed,
            link,
            counters,
            broken,
            retired,
            quiesced,
        } = *self;
        match dma.close() {
            Ok(_) => Ok(()),
            Err(error) => Err(Box::new(Self {
                events,
                dma: *error.device,
                trusted,
                config,
                choice,
                device,
                phase,
                said_closed,
                link,
                counters,
                broken,
                retired,
                quiesced,
            })),
        }
    }

    /// Moves the handshake on after a xenstore change (or a data-path
    /// violation). Cheap when nothing changed.
    pub fn poll_control(&mut self, store: &mut Xenstore<'_, H>) -> Result<(), NetfrontError> {
        self.retry_retired();
        if let Some(error) = self.broken.take()
            && matches!(self.phase, Phase::Connecting | Phase::Connected)
        {
            log::error!("netfront: {error:?}: disconnecting from the backend");
            self.counters.borrow_mut().violations += 1;
            self.start_closing(store)?;
        }
        if self.phase == Phase::Absent && !self.bind(store)? {
            return Ok(());
        }
        let backend = self.backend_state(store)?;
        match (self.phase, backend) {
            (Phase::Initialising, Some(XenbusState::InitWait)) => self.connect(store),
            // The backend closes before we connected: close with it (as
            // Linux's netfront does in any state), then start again.
            (Phase::Initialising, Some(XenbusState::Closing)) => {
                self.phase = Phase::Closing;
                self.said_closed = true;
                write_state_if_present(store, &self.path(), XenbusState::Closed)
            }
            (Phase::Connecting, Some(XenbusState::Connected)) => {
                self.phase = Phase::Connected;
                self.counters.borrow_mut().connects += 1;
                let mtu = self.device.as_ref().map_or(DEFAULT_MTU, |device| device.mtu);
                let TxRules { tcpv4, tcpv6 } = self.tx_rules().unwrap_or_default();
                let sent = match (tcpv4, tcpv6) {
                    (true, true) => ", large segments sent over IPv4 and IPv6",
                    (true, false) => ", large segments sent over IPv4",
                    (false, true) => ", large segments sent over IPv6",
                    (false, false) => "",
                };
                log::info!("netfront: {} connected (mac {}, mtu {mtu}{sent})", self.path(), self.mac());
                Ok(())
            }
            (Phase::Connecting | Phase::Connected, Some(XenbusState::Connected | XenbusState::InitWait)) => Ok(()),
            (Phase::Connecting | Phase::Connected, _) => {
                log::warn!("netfront: backend went to {backend:?}: disconnecting");
                self.start_closing(store)
            }
            // The backend has disconnected (netback unmaps on entering
            // Closing): say Closed so it can reach Closed too.
            (Phase::Closing, Some(XenbusState::Closing)) if !self.said_closed => {
                self.said_closed = true;
                write_state_if_present(store, &self.path(), XenbusState::Closed)
            }
            // Closed, gone, or already a new backend (a detach and an attach
            // faster than this guest looked: the old one has let go).
            (Phase::Closing, None | Some(XenbusState::Closed | XenbusState::Initialising | XenbusState::InitWait)) => {
                self.finish_closing(store)
            }
            (Phase::Detached, _) => self.follow_detach(store, backend),
            _ => Ok(()),
        }
    }

    /// Finds a vif and reads its description; false if there is none.
    fn bind(&mut self, store: &mut Xenstore<'_, H>) -> Result<bool, NetfrontError> {
        let Some(path) = chosen_vif(store, &self.choice)? else { return Ok(false) };
        let device = read_device(store, &path)?;
        if device.identity != self.identity() {
            return Err(NetfrontError::IdentityChanged(device.identity));
        }
        match store.watch(&format!("{}/state", device.backend_path), WATCH_TOKEN) {
            // Watched already: the same backend path came back after a detach.
            Ok(()) | Err(XenstoreError::AlreadyExists) => {}
            Err(error) => return Err(error.into()),
        }
        store.write(&format!("{}/state", device.path), XenbusState::Initialising.as_str())?;
        log::info!(
            "netfront: found {} (backend {} in domain {})",
            device.path,
            device.backend_path,
            device.identity.backend
        );
        self.device = Some(device);
        self.phase = Phase::Initialising;
        Ok(true)
    }

    fn backend_state(&self, store: &mut Xenstore<'_, H>) -> Result<Option<XenbusState>, NetfrontError> {
        let Some(device) = &self.device else { return Ok(None) };
        match store.read(&format!("{}/state", device.backend_path)) {
            Ok(text) => Ok(XenbusState::parse(&text)),
            // Once the toolstack has removed the backend's directory, the
            // guest may not even look in dom0's (EACCES): gone either way.
            Err(XenstoreError::NotFound | XenstoreError::PermissionDenied) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Grants the rings, allocates the port and the pools, writes the keys,
    /// and switches to Connected.
    fn connect(&mut self, store: &mut Xenstore<'_, H>) -> Result<(), NetfrontError> {
        let (tx_ring, rx_ring) = self.share_rings()?;
        let port = match self.events.alloc_unbound(self.dma.backend()) {
            Ok(port) => port,
            Err(_) => {
                self.retire_rings(tx_ring, rx_ring);
                return Err(NetfrontError::Resources("event channel"));
            }
        };
        let (tx_pool, rx_pool) = match self.make_pools() {
            Ok(pools) => pools,
            Err(error) => {
                let _ = self.events.close(port);
                self.retire_rings(tx_ring, rx_ring);
                return Err(error);
            }
        };
        let mtu = self.device.as_ref().map_or(DEFAULT_MTU, |device| device.mtu);
        let large_segments = self.config.large_segments && rx_pool.available() >= LARGE_SEGMENT_RX_BUFFERS;
        let flag = |on: bool| String::from(if on { "1" } else { "0" });
        let keys = [
            ("tx-ring-ref", format!("{}", tx_ring_reference(&tx_ring))),
            ("rx-ring-ref", format!("{}", rx_ring_reference(&rx_ring))),
            ("event-channel", format!("{port}")),
            // Linux netback turns TSO on for the vif only with checksum
            // offload (`netdev_fix_features` drops TSO without IP_CSUM, and
            // TSO6 without IPV6_CSUM), so large segments mean partial
            // checksums, completed here, for IPv4 and IPv6 alike.
            ("feature-gso-tcpv4", flag(large_segments)),
            ("feature-no-csum-offload", flag(!large_segments)),
            ("feature-gso-tcpv6", flag(large_segments)),
            ("feature-ipv6-csum-offload", flag(large_segments)),
        ];
        let rules = RxRules { large_segments, mtu };
        let tx_rules = self.backend_tx_rules(store);
        let mut link = Link::new(tx_ring, rx_ring, port, tx_pool, rx_pool, rules, tx_rules);
        if let Err(error) = self.write_keys(store, &keys) {
            let _ = self.events.close(port);
            self.link.replace(Some(link));
            self.release_link();
            return Err(error);
        }
        let refill = link.refill_rx(self.events, &mut self.counters.borrow_mut());
        self.link.replace(Some(link));
        if let Err(error) = refill {
            self.broken.set(Some(error));
        }
        store.write(&format!("{}/state", self.path()), XenbusState::Connected.as_str())?;
        self.phase = Phase::Connecting;
        Ok(())
    }

    /// Which large segments to send: those the backend advertises in its
    /// directory (read as Linux's netfront reads them: an unsigned number,
    /// absent or unreadable being 0), if the configuration allows. TCPv4
    /// needs `feature-sg` and `feature-gso-tcpv4`; TCPv6 also
    /// `feature-gso-tcpv6` and `feature-ipv6-csum-offload` (a large segment
    /// is sent with a partial checksum).
    fn backend_tx_rules(&self, store: &mut Xenstore<'_, H>) -> TxRules {
        let Some(device) = self.device.as_ref().filter(|_| self.config.large_segments && self.config.tx_large_segments)
        else {
            return TxRules::default();
        };
        let mut advertised = |key: &str| {
            store
                .read(&format!("{}/{key}", device.backend_path))
                .is_ok_and(|value| value.trim().parse::<u32>().is_ok_and(|value| value != 0))
        };
        if !advertised("feature-sg") {
            return TxRules::default();
        }
        let tcpv4 = advertised("feature-gso-tcpv4");
        let tcpv6 = advertised("feature-gso-tcpv6") && advertised("feature-ipv6-csum-offload");
        TxRules { tcpv4, tcpv6 }
    }

    fn share_rings(&self) -> Result<(TxRing, RxRing), NetfrontError> {
        let tx_page: SharedPage<SharedRing<TX_WORDS>> =
            self.dma.share().map_err(|_| NetfrontError::Resources("tx ring page"))?;
        let rx_page: SharedPage<SharedRing<RX_WORDS>> = match self.dma.share() {
            Ok(page) => page,
            Err(_) => {
                if let Err(still) = self.dma.unshare(tx_page) {
                    self.retired.borrow_mut().tx_pages.push(still);
                }
                return Err(NetfrontError::Resources("rx ring page"));
            }
        };
        Ok((FrontRing::new(tx_page), FrontRing::new(rx_page)))
    }

    /// The buffer pools, as large as configured if memory allows; when it
    /// does not, both are halved until they fit, down to
    /// [`MIN_POOL_BUFFERS`] each (fewer buffers in flight, the same frames):
    /// a short guest runs slower instead of staying off the network.
    fn make_pools(&self) -> Result<(DmaPool<dma::ToDevice>, DmaPool<dma::FromDevice>), NetfrontError> {
        let wanted = (self.config.tx_buffers.min(256), self.config.rx_buffers.min(256));
        let (mut tx_buffers, mut rx_buffers) = wanted;
        loop {
            match self.try_pools(tx_buffers, rx_buffers) {
                Ok(pools) => {
                    if (tx_buffers, rx_buffers) != wanted {
                        log::warn!(
                            "netfront: short of memory: {tx_buffers} tx and {rx_buffers} rx buffers instead of {} and {}",
                            wanted.0,
                            wanted.1
                        );
                    }
                    return Ok(pools);
                }
                Err(error) => {
                    let smaller = (shrink(tx_buffers), shrink(rx_buffers));
                    if smaller == (tx_buffers, rx_buffers) {
                        return Err(error);
                    }
                    (tx_buffers, rx_buffers) = smaller;
                }
            }
        }
    }

    fn try_pools(
        &self,
        tx_buffers: usize,
        rx_buffers: usize,
    ) -> Result<(DmaPool<dma::ToDevice>, DmaPool<dma::FromDevice>), NetfrontError> {
        let tx_pool = DmaPool::new(&self.dma, tx_buffers).map_err(|_| NetfrontError::Resources("tx buffers"))?;
        match DmaPool::new(&self.dma, rx_buffers) {
            Ok(rx_pool) => Ok((tx_pool, rx_pool)),
            Err(_) => {
                self.retire_tx_pool(tx_pool);
                Err(NetfrontError::Resources("rx buffers"))
            }
        }
    }

    fn write_keys(&self, store: &mut Xenstore<'_, H>, keys: &[(&str, String)]) -> Result<(), NetfrontError> {
        let path = self.path();
        let fixed = [("request-rx-copy", "1"), ("feature-rx-notify", "1"), ("feature-sg", "1")];
        store.transaction(TRANSACTION_ATTEMPTS, |transaction| {
            for (key, value) in keys.iter().map(|(key, value)| (*key, value.as_str())).chain(fixed) {
                transaction.write(&format!("{path}/{key}"), value)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Stops using the link and tells the backend we are closing; the
    /// grants stay until the backend reaches Closed.
    fn start_closing(&mut self, store: &mut Xenstore<'_, H>) -> Result<(), NetfrontError> {
        if let Some(port) = self.port() {
            let _ = self.events.close(port);
        }
        self.phase = Phase::Closing;
        self.said_closed = false;
        self.counters.borrow_mut().disconnects += 1;
        write_state_if_present(store, &self.path(), XenbusState::Closing)
    }

    /// The backend has let go: revoke and free everything, then start over.
    fn finish_closing(&mut self, store: &mut Xenstore<'_, H>) -> Result<(), NetfrontError> {
        self.release_link();
        let path = self.path();
        write_state_if_present(store, &path, XenbusState::Closed)?;
        self.phase = Phase::Detached;
        self.follow_detach(store, None)
    }

    /// After a close: start again if the backend is still wanted, wait while
    /// the toolstack removes the vif, forget it once it is gone.
    fn follow_detach(
        &mut self,
        store: &mut Xenstore<'_, H>,
        backend: Option<XenbusState>,
    ) -> Result<(), NetfrontError> {
        let path = self.path();
        let backend_path = self.device.as_ref().map(|device| device.backend_path.clone()).unwrap_or_default();
        let Ok(current_backend) = store.read(&format!("{path}/backend")) else {
            log::info!("netfront: {path} was removed");
            self.forget_device(store);
            // Another vif may be there already (attached under another
            // device number in the same batch of events): no further event
            // would say so.
            return self.bind(store).map(drop);
        };
        if current_backend != backend_path {
            // Removed and added again (another backend) before this guest
            // looked: a new vif, bound afresh.
            log::info!("netfront: {path} now has backend {current_backend}");
            self.forget_device(store);
            return self.bind(store).map(drop);
        }
        let online = store.read(&format!("{backend_path}/online")).is_ok_and(|value| value.trim() == "1");
        if online && matches!(backend, None | Some(XenbusState::Closed | XenbusState::InitWait)) {
            // A broken link, not a detach: connect again.
            let device = read_device(store, &path)?;
            if device.identity != self.identity() {
                self.forget_device(store);
                return Err(NetfrontError::IdentityChanged(device.identity));
            }
            self.device = Some(device);
            write_state_if_present(store, &path, XenbusState::Initialising)?;
            self.phase = Phase::Initialising;
        }
        Ok(())
    }

    /// Lets go of a closed vif: its backend's state is watched no more (a
    /// domain's watches are limited), and the next poll looks for a vif.
    fn forget_device(&mut self, store: &mut Xenstore<'_, H>) {
        if let Some(device) = self.device.take()
            && let Err(error) = store.unwatch(&format!("{}/state", device.backend_path), WATCH_TOKEN)
        {
            log::debug!("netfront: unwatching {}/state: {error:?}", device.backend_path);
        }
        self.phase = Phase::Absent;
    }

    fn release_link(&self) {
        let Some(mut link) = self.link.borrow_mut().take() else { return };
        for handle in link.reclaim_all() {
            if let Released::Now(buffer) = self.dma.unmap_or_defer(handle) {
                buffer.free(self.dma.source());
            }
        }
        self.retire_tx_pool(link.tx_pool);
        self.retire_rx_pool(link.rx_pool);
        self.retire_rings(link.tx_ring, link.rx_ring);
    }

    fn retire_rings(&self, tx_ring: TxRing, rx_ring: RxRing) {
        let mut retired = self.retired.borrow_mut();
        if let Err(still) = self.dma.unshare(tx_ring.into_inner()) {
            retired.tx_pages.push(still);
        }
        if let Err(still) = self.dma.unshare(rx_ring.into_inner()) {
            retired.rx_pages.push(still);
        }
    }

    fn retire_tx_pool(&self, pool: DmaPool<dma::ToDevice>) {
        if let Err(pool) = pool.close(&self.dma) {
            self.retired.borrow_mut().tx_pools.push(pool);
        }
    }

    fn retire_rx_pool(&self, pool: DmaPool<dma::FromDevice>) {
        if let Err(pool) = pool.close(&self.dma) {
            self.retired.borrow_mut().rx_pools.push(pool);
        }
    }

    /// Retries releasing what a backend held when its link closed.
    fn retry_retired(&self) {
        let mut retired = self.retired.borrow_mut();
        retired.tx_pages = retry(core::mem::take(&mut retired.tx_pages), |page| self.dma.unshare_retry(page));
        retired.rx_pages = retry(core::mem::take(&mut retired.rx_pages), |page| self.dma.unshare_retry(page));
        retired.tx_pools = retry(core::mem::take(&mut retired.tx_pools), |pool| pool.close(&self.dma));
        retired.rx_pools = retry(core::mem::take(&mut retired.rx_pools), |pool| pool.close(&self.dma));
        for buffer in self.dma.reclaim() {
            buffer.free(self.dma.source());
        }
    }

    /// Whether anything is waiting for the backend to let go: buffers in
    /// the DMA layer's deferred queue, or pieces of closed links.
    pub fn releases_pending(&self) -> bool {
        self.dma.deferred_len() > 0 || self.retired_count() > 0
    }

    /// Tries again to release what [`Self::releases_pending`] reports. The
    /// caller does so now and then (the runtime: once a second), so that
    /// nothing waits for a ring or xenstore event that may never come.
    pub fn retry_releases(&self) {
        self.retry_retired();
    }

    /// Pieces of closed links a backend still holds (for tests and metrics).
    pub fn retired_count(&self) -> usize {
        let retired = self.retired.borrow();
        retired.tx_pages.len() + retired.rx_pages.len() + retired.tx_pools.len() + retired.rx_pools.len()
    }

    fn path(&self) -> String {
        self.device.as_ref().map(|device| device.path.clone()).unwrap_or_default()
    }

    fn mac(&self) -> MacAddress {
        self.device.as_ref().map(|device| device.mac).unwrap_or_default()
    }
}

/// Starts watching for vifs (`device/vif`, with [`WATCH_TOKEN`]); call once
/// before the first frontend's first poll.
pub fn watch_vifs<H: Hypervisor>(store: &mut Xenstore<'_, H>) -> Result<(), NetfrontError> {
    store.watch("device/vif", WATCH_TOKEN)?;
    Ok(())
}

/// Which vif a frontend binds to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VifChoice {
    /// The lowest-numbered vif but those listed (vifs other frontends
    /// bind to by number): when it goes, the next one found.
    Lowest {
        /// Device numbers left to other frontends.
        except: Vec<u32>,
    },
    /// `device/vif/<n>` only.
    Number(u32),
}

impl Default for VifChoice {
    fn default() -> Self {
        VifChoice::Lowest { except: Vec::new() }
    }
}

impl VifChoice {
    /// Whether device number `number` is this choice's to take, among
    /// the device numbers there are.
    fn takes(&self, number: u32) -> bool {
        match self {
            VifChoice::Lowest { except } => !except.contains(&number),
            VifChoice::Number(wanted) => *wanted == number,
        }
    }
}

/// The vif `choice` names and who serves it; none if there is no such vif.
pub fn find_vif<H: Hypervisor>(
    store: &mut Xenstore<'_, H>,
    choice: &VifChoice,
) -> Result<Option<VifIdentity>, NetfrontError> {
    match chosen_vif(store, choice)? {
        Some(path) => read_identity(store, &path).map(Some),
        None => Ok(None),
    }
}

/// The directory of the vif `choice` names (`device/vif/<n>`).
fn chosen_vif<H: Hypervisor>(store: &mut Xenstore<'_, H>, choice: &VifChoice) -> Result<Option<String>, NetfrontError> {
    let names = match store.directory("device/vif") {
        Ok(names) => names,
        Err(XenstoreError::NotFound) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let chosen = names.iter().filter_map(|name| name.parse::<u32>().ok()).filter(|&number| choice.takes(number)).min();
    Ok(chosen.map(|number| format!("device/vif/{number}")))
}

/// Who serves the vif at `path`.
fn read_identity<H: Hypervisor>(store: &mut Xenstore<'_, H>, path: &str) -> Result<VifIdentity, NetfrontError> {
    let backend = parse_domain_id(&store.read(&format!("{path}/backend-id"))?)
        .ok_or_else(|| NetfrontError::BadValue { path: format!("{path}/backend-id") })?;
    let trusted = match store.read(&format!("{path}/trusted")) {
        Ok(value) => value.trim() == "1",
        Err(XenstoreError::NotFound) => true,
        Err(error) => return Err(error.into()),
    };
    Ok(VifIdentity { backend, trusted })
}

/// The fewest buffers a pool shrinks to when memory is short.
pub const MIN_POOL_BUFFERS: usize = 16;

/// Half of `buffers`, but not below [`MIN_POOL_BUFFERS`] (nor above
/// `buffers`, for pools configured smaller than that).
fn shrink(buffers: usize) -> usize {
    (buffers / 2).max(MIN_POOL_BUFFERS.min(buffers))
}

fn retry<T>(items: Vec<T>, mut attempt: impl FnMut(T) -> Result<(), T>) -> Vec<T> {
    items.into_iter().filter_map(|item| attempt(item).err()).collect()
}

fn tx_ring_reference(ring: &TxRing) -> BusPage {
    ring_reference(ring)
}

fn rx_ring_reference(ring: &RxRing) -> BusPage {
    ring_reference(ring)
}

/// What the backend is told for a ring page (`tx-ring-ref`, `rx-ring-ref`):
/// its bus page, a grant reference on Xen.
fn ring_reference<const WORDS: usize>(ring: &FrontRing<SharedPage<SharedRing<WORDS>>, WORDS>) -> BusPage
where
    SharedRing<WORDS>: dma::SharedMemory,
{
    ring.page().bus_page()
}

fn write_state_if_present<H: Hypervisor>(
    store: &mut Xenstore<'_, H>,
    path: &str,
    state: XenbusState,
) -> Result<(), NetfrontError> {
    if path.is_empty() || store.read(&format!("{path}/backend")).is_err() {
        return Ok(());
    }
    match store.write(&format!("{path}/state"), state.as_str()) {
        // The toolstack removed the device meanwhile (xl network-detach):
        // there is nobody left to tell.
        Ok(()) | Err(XenstoreError::NotFound | XenstoreError::PermissionDenied) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Reads and checks a vif's description.
fn read_device<H: Hypervisor>(store: &mut Xenstore<'_, H>, path: &str) -> Result<VifDevice, NetfrontError> {
    let bad = |key: &str| NetfrontError::BadValue { path: format!("{path}/{key}") };
    let backend_path = store.read(&format!("{path}/backend"))?;
    if !backend_path.starts_with("/local/domain/") || backend_path.len() > 256 || backend_path.contains("//") {
        return Err(bad("backend"));
    }
    let identity = read_identity(store, path)?;
    let mac = MacAddress::parse(&store.read(&format!("{path}/mac"))?)
        .filter(MacAddress::is_unicast)
        .ok_or_else(|| bad("mac"))?;
    let mtu = match store.read(&format!("{path}/mtu")) {
        Ok(text) => parse_mtu(&text).ok_or_else(|| bad("mtu"))?,
        Err(XenstoreError::NotFound) => DEFAULT_MTU,
        Err(error) => return Err(error.into()),
    };
    Ok(VifDevice { path: String::from(path), backend_path, identity, mac, mtu })
}

#[cfg(test)]
mod tests {
    use super::VifChoice;

    #[test]
    fn a_choice_takes_its_vifs_only() {
        let main = VifChoice::Lowest { except: alloc::vec![1, 3] };
        assert_eq!([0, 1, 2, 3, 4].map(|number| main.takes(number)), [true, false, true, false, true]);
        let numbered = VifChoice::Number(1);
        assert_eq!([0, 1, 2].map(|number| numbered.takes(number)), [false, true, false]);
        assert!(VifChoice::default().takes(7), "the default takes any vif");
    }
}
