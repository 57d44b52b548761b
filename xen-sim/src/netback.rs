//! A simulated netback: the backend half of the Xen network protocol, in
//! ordinary memory, for host tests of a netfront.
//!
//! [`SimNetback`] plays what dom0 (or a driver domain:
//! [`NetbackOptions::backend_domain`]) does for one `vif` of the guest
//! (domain 1): the toolstack's xenstore nodes, then Linux xen-netback with
//! `request-rx-copy`. It runs only when a test calls [`SimNetback::step`]
//! (no threads): each step follows the frontend's xenbus `state` the way
//! netback's `frontend_changed` / `set_backend_state` do, and once
//! connected serves the guest's transmit ring and fills its receive ring
//! from frames the test [`SimNetback::inject`]s.
//!
//! Everything the frontend writes is checked, because the frontend is the
//! code under test: the handshake keys (`request-rx-copy` is mandatory, the
//! ring references must map, the event channel must be unbound for the
//! backend's domain), and on the transmit ring the rules of netback's
//! `xenvif_count_requests` and `xenvif_tx_build_gops`: a slot crossing a page end, more than 20
//! follow-up slots, missing slots or bad extra-info are fatal (the vif is
//! disabled and served no more); more than 18 follow-up slots, a first slot
//! under `ETH_HLEN` or a follow-up slot larger than what is left of the
//! packet drop it with `NETIF_RSP_ERROR` on every slot. Each finding is a
//! [`Violation`], counted by kind. A large segment (a packet with a GSO
//! extra) is checked as Linux treats one on its way through dom0 and cut
//! into the segments that leave the vif, as Linux's GSO cuts it:
//! [`SimNetback::take_transmitted`] gives those, and
//! [`SimNetback::take_transmitted_frames`] the packets as the ring held them. Grants go through the simulated grant
//! table with Xen's permission rules: transmit slots are mapped read-only
//! (never writable) and stay mapped until their response is written;
//! receive buffers are filled by grant copy.
//!
//! With [`Addressing::Identity`] the backend plays a device on bare metal
//! instead: every reference the frontend writes (ring references, request
//! `gref`s) is a guest frame number, reached directly
//! ([`crate::grant_table::SimGrantTable::map_frame`]) with the same
//! mappings held for the same time, the same bounds checks, and a frame
//! outside the guest's live RAM counted as the same violation a bad grant
//! is. The frontend then has no grant to revoke: a page it frees while the
//! backend still holds it is refused by the simulated RAM (and fails a test
//! through the DMA layer's simulated page source), the bug a real machine
//! would not report.
//!
//! Notifications follow the ring rules both ways: the backend raises the
//! guest's port only when `rsp_event` asks for it, and (unless
//! [`NetbackOptions::notifications_required`] is off) it serves a ring only
//! after a notification, counting a [`Violation::MissedNotification`] when
//! the guest published past `req_event` without notifying.
//!
//! For tests of the frontend's defences the backend can misbehave on
//! request ([`Hostility`]: unknown or duplicate ids, impossible receive
//! statuses or offsets, stray receive flags, extra-info slots the frontend
//! never asked for, a transmit extra-info slot answered as data or a data
//! slot answered as an extra, a producer index ahead of the requests,
//! delayed responses), send partial checksums it was asked not to
//! ([`ReceiveChecksum::PartialRegardless`]), flap its state ([`SimNetback::flap_state`]), and be detached
//! and attached again like `xl network-detach` / `network-attach`.
//!
//! ```
//! use xen_sim::SimXen;
//! use xen_sim::netback::{NetbackOptions, SimNetback, XenbusState};
//!
//! let xen = SimXen::new(4);
//! let mut netback = SimNetback::new(&xen, NetbackOptions::default());
//! assert_eq!(netback.state(), XenbusState::InitWait);
//! // The frontend under test writes its keys and `state` = 4, then:
//! netback.step(); // the backend follows: maps the rings, goes Connected
//! // Frames: `netback.inject(&frame)` for the guest, `netback.step()`,
//! // `netback.take_transmitted()` for what the guest sent.
//! assert!(!netback.is_connected(), "no frontend in this example");
//! ```
//!
//! Contract: single-threaded, deterministic; a step does a bounded amount of
//! work. Never: write a guest page it was not granted, map a transmit grant
//! writable, keep a grant mapped after the connection is torn down, or
//! panic because of anything the frontend wrote (only a test's misuse of
//! this API panics).

mod checksum;
mod connect;
mod counters;
mod hostile;
mod options;
mod receive;
mod responses;
mod ring;
mod segment;
mod transmit;
mod xenbus;

#[cfg(test)]
mod tests;

pub use connect::FrontendFeatures;
pub use counters::{NetbackCounters, Violation};
pub use hostile::{GsoFault, Hostility, Lasting, NullFault, Ring};
pub use options::{Addressing, AdvertisedFeatures, NetbackOptions, ReceiveChecksum};
pub use transmit::TransmittedFrame;
pub use xenbus::{Attachment, Detach, XenbusState};

use super::SimXen;
use crate::grant_table::{SimGrantError, SimMapping};
use connect::Connection;
use std::collections::VecDeque;
use std::string::String;
use std::vec::Vec;
use xen_pv::abi::DomainId;
use xenbus::{FrontendSeen, Paths};

/// The guest's domain id, whose home the simulated xenstore keeps at
/// `/local/domain/1` ([`super::xenstore::GUEST_HOME`]).
pub const GUEST_DOMAIN: DomainId = 1;

/// The backend side of one simulated `vif`.
pub struct SimNetback<'x> {
    xen: &'x SimXen,
    options: NetbackOptions,
    paths: Paths,
    attachment: Attachment,
    state: XenbusState,
    frontend_seen: Option<FrontendSeen>,
    /// When the frontend's `state` was last written (the store's
    /// generation then), as of the last look.
    store_generation_seen: u64,
    connection: Option<Connection>,
    disabled: bool,
    transmitted: VecDeque<TransmittedFrame>,
    receive_queue: VecDeque<Vec<u8>>,
    injected: bool,
    hostility: hostile::Active,
    counters: NetbackCounters,
    errors: Vec<String>,
    step_number: u64,
}

impl<'x> SimNetback<'x> {
    /// Creates the vif as the toolstack and netback's probe do: the frontend
    /// and backend directories, the advertised features, and the backend in
    /// `InitWait`.
    pub fn new(xen: &'x SimXen, options: NetbackOptions) -> Self {
        let mut netback = Self {
            xen,
            paths: Paths::new(&options),
            options,
            attachment: Attachment::Detached,
            state: XenbusState::Initialising,
            frontend_seen: None,
            store_generation_seen: 0,
            connection: None,
            disabled: false,
            transmitted: VecDeque::new(),
            receive_queue: VecDeque::new(),
            injected: false,
            hostility: hostile::Active::default(),
            counters: NetbackCounters::default(),
            errors: Vec::new(),
            step_number: 0,
        };
        netback.create_device();
        netback
    }

    /// Runs the backend once: follows the frontend's state, serves both
    /// rings if connected, writes the responses that are due, and applies
    /// the hostile behaviour in force.
    pub fn step(&mut self) {
        self.step_number += 1;
        if self.attachment == Attachment::Detached {
            return;
        }
        self.follow_frontend();
        self.serve();
        self.hostility.end_step();
        self.finish_detach_if_closed();
    }

    /// Queues `frame` for the guest, as a packet reaching the vif from dom0.
    /// Returns false, counting it dropped, when the vif is not connected or
    /// is disabled (netback's carrier is off then). Panics on an empty
    /// frame or one longer than 65 549 bytes, the largest IPv4 packet with
    /// its Ethernet header (a broken test).
    pub fn inject(&mut self, frame: &[u8]) -> bool {
        let longest = 0xffff + 14;
        assert!(!frame.is_empty() && frame.len() <= longest, "simulated netback: a frame of {} bytes", frame.len());
        if self.connection.is_none() || self.disabled {
            self.counters.receive_dropped_disconnected += 1;
            return false;
        }
        self.receive_queue.push_back(frame.to_vec());
        self.injected = true;
        true
    }

    /// The frames the guest transmitted since the last call, byte for
    /// byte, as they leave the vif: a large segment cut into its segments
    /// as Linux's GSO cuts it (see [`TransmittedFrame::into_wire_frames`]).
    pub fn take_transmitted(&mut self) -> Vec<Vec<u8>> {
        self.transmitted.drain(..).flat_map(TransmittedFrame::into_wire_frames).collect()
    }

    /// The packets the guest transmitted since the last call, as the slots
    /// held them (a large segment whole), with each one's flags, GSO
    /// information, slots and segments.
    pub fn take_transmitted_frames(&mut self) -> Vec<TransmittedFrame> {
        self.transmitted.drain(..).collect()
    }

    /// The backend's own xenbus state (what netback believes, which the
    /// toolstack may have overwritten in xenstore during a detach).
    pub fn state(&self) -> XenbusState {
        self.state
    }

    /// Whether the rings are mapped and the event channel bound.
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// Whether a fatal error disabled the vif: the rings stay mapped until
    /// the frontend disconnects, but nothing is served.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// Whether the device exists in xenstore.
    pub fn attachment(&self) -> Attachment {
        self.attachment
    }

    /// What the frontend wrote at the last successful connect.
    pub fn frontend_features(&self) -> Option<&FrontendFeatures> {
        self.connection.as_ref().map(|connection| &connection.features)
    }

    /// Counters so far (they survive detach and attach).
    pub fn counters(&self) -> &NetbackCounters {
        &self.counters
    }

    /// How many times the frontend committed `kind`.
    pub fn violations(&self, kind: Violation) -> u64 {
        self.counters.violations.get(&kind).copied().unwrap_or(0)
    }

    /// Every error netback reported, oldest first, as `xenbus_dev_fatal`
    /// and `netdev_err` would log them.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Frames waiting for the guest to post receive buffers.
    pub fn queued_for_guest(&self) -> usize {
        self.receive_queue.len()
    }

    /// What the backend was made with.
    pub fn options(&self) -> &NetbackOptions {
        &self.options
    }

    /// The guest's domain goes away (suspended, to be restored in a new
    /// one): the backend disconnects, its grant mappings ending as when a
    /// frontend's domain dies, and serves no more. The toolstack removes
    /// its nodes ([`super::SimXen::restore_in_new_domain`]); the new
    /// domain's vif gets a new backend.
    pub fn end_with_domain(&mut self) {
        self.disconnect();
        self.attachment = Attachment::Detached;
    }

    /// `/local/domain/1/device/vif/<device>`.
    pub fn frontend_path(&self) -> &str {
        &self.paths.frontend
    }

    /// `/local/domain/0/backend/vif/1/<device>`.
    pub fn backend_path(&self) -> &str {
        &self.paths.backend
    }

    /// Steps run so far.
    pub fn step_number(&self) -> u64 {
        self.step_number
    }

    /// Starts misbehaving as `hostility` says, for as long as `lasting`
    /// says; several behaviours can be in force at once.
    pub fn misbehave(&mut self, hostility: Hostility, lasting: Lasting) {
        self.hostility.add(hostility, lasting);
    }

    /// Stops every misbehaviour (responses already held stay held).
    pub fn behave(&mut self) {
        self.hostility = hostile::Active::default();
    }

    /// Serves both rings if connected, then writes the responses due.
    fn serve(&mut self) {
        let Some(mut connection) = self.connection.take() else { return };
        if !self.disabled {
            let awake = self.take_notifications(&connection);
            self.serve_transmit(&mut connection, awake.transmit);
            self.serve_receive(&mut connection, awake.receive);
        }
        self.release_due(&mut connection);
        self.push_producers_ahead(&mut connection);
        connection.just_connected = false;
        self.connection = Some(connection);
    }

    /// Records a violation; a fatal one disables the vif as
    /// `xenvif_fatal_tx_err` does.
    fn violation(&mut self, kind: Violation, message: String) {
        *self.counters.violations.entry(kind).or_default() += 1;
        if kind.is_fatal() {
            self.disabled = true;
            self.errors.push(std::format!("{message}; fatal error, disabling device"));
        } else {
            self.errors.push(message);
        }
    }

    /// Maps the page the frontend named by `reference`, as
    /// [`NetbackOptions::addressing`] reads it: a grant to the backend's
    /// domain, or a guest frame reached directly.
    fn map_reference(&self, reference: u32, writable: bool) -> Result<SimMapping, SimGrantError> {
        let grants = self.xen.grants();
        match self.options.addressing {
            Addressing::Grants => grants.map(self.options.backend_domain, reference, writable),
            Addressing::Identity => grants.map_frame(u64::from(reference), writable),
        }
    }

    /// Writes `bytes` at `offset` of the page the frontend named by
    /// `reference`: a grant copy, or a direct write of the frame.
    fn copy_to_reference(&self, reference: u32, offset: usize, bytes: &[u8]) -> Result<(), SimGrantError> {
        let grants = self.xen.grants();
        match self.options.addressing {
            Addressing::Grants => grants.copy_to_grant(self.options.backend_domain, reference, offset, bytes),
            Addressing::Identity => grants.copy_to_frame(u64::from(reference), offset, bytes),
        }
    }

    /// Raises the guest's `port`.
    fn notify_guest(&mut self, port: xen_pv::abi::event_channel::Port) {
        self.xen.raise(port);
        self.counters.backend_notifications += 1;
    }
}

impl Drop for SimNetback<'_> {
    /// The backend going away: like Xen when a backend domain dies, its
    /// grant mappings end, so the guest can revoke its grants. The xenstore
    /// nodes stay, as a dead backend leaves them.
    fn drop(&mut self) {
        self.disconnect();
    }
}
