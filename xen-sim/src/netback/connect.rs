//! Connecting the simulated netback to the frontend's rings, and the live
//! connection's state.
//!
//! [`SimNetback::connect`] reads the frontend's keys in the order Linux's
//! `connect` / `read_xenbus_vif_flags` / `connect_data_rings` do, checks
//! every value (plain unsigned decimals; `request-rx-copy` non-zero; one
//! queue; event channels unbound for dom0, distinct when split), and maps
//! both ring pages writable through the simulated grant table (or, with
//! [`super::Addressing::Identity`], maps their frames directly). Any failure
//! is a [`ConnectFailure`] that becomes `xenbus_dev_fatal`: an error node,
//! a counted [`Violation`], the backend in `Closing`, nothing left mapped.
//!
//! Stricter than Linux on purpose: its `read_xenbus_vif_flags` returns
//! `-EOPNOTSUPP` without `request-rx-copy`, but `connect` ignores that and
//! connects anyway; here the connection fails, so a frontend that forgets
//! the mandatory key is caught. Malformed numbers fail too, where Linux's
//! `%u` reads would take a prefix.
//!
//! Never: trust a key's text, or keep one ring mapped when the other failed.

use super::hostile::Held;
use super::ring::MappedRing;
use super::{SimNetback, Violation};
use crate::Binding;
use crate::grant_table::SimGrantTable;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::format;
use std::string::String;
use xen_pv::abi::event_channel::Port;
use xen_pv::abi::grant_table::GrantRef;
use xen_pv::abi::netif::{RX_WORDS, TX_WORDS};

/// `ENOENT`
pub(super) const ENOENT: i32 = 2;
/// `EIO`
pub(super) const EIO: i32 = 5;
/// `EINVAL`
pub(super) const EINVAL: i32 = 22;
/// `EOPNOTSUPP`
pub(super) const EOPNOTSUPP: i32 = 95;

/// What the frontend wrote for the connection, as netback read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendFeatures {
    /// `tx-ring-ref`
    pub transmit_ring_reference: GrantRef,
    /// `rx-ring-ref`
    pub receive_ring_reference: GrantRef,
    /// `event-channel`, or `event-channel-tx` when split.
    pub transmit_port: Port,
    /// `event-channel`, or `event-channel-rx` when split.
    pub receive_port: Port,
    /// `feature-rx-notify`
    pub receive_notify: bool,
    /// `feature-sg`
    pub scatter_gather: bool,
    /// `feature-gso-tcpv4`
    pub gso_tcpv4: bool,
    /// `feature-gso-tcpv6`
    pub gso_tcpv6: bool,
    /// `feature-no-csum-offload`
    pub no_checksum_offload: bool,
    /// `feature-ipv6-csum-offload`
    pub ipv6_checksum_offload: bool,
    /// `request-multicast-control`
    pub multicast_control: bool,
    /// Whether the frontend gave one event channel per ring.
    pub split_event_channels: bool,
}

/// Why a connect failed: `xenbus_dev_fatal`'s errno and message.
pub(super) struct ConnectFailure {
    pub kind: Violation,
    pub errno: i32,
    pub message: String,
}

impl ConnectFailure {
    pub fn new(kind: Violation, errno: i32, message: String) -> Self {
        Self { kind, errno, message }
    }
}

/// The ids of one ring's requests.
#[derive(Default)]
pub(super) struct IdTracker {
    ever_posted: BTreeSet<u16>,
    unanswered: BTreeMap<u16, u32>,
    last_sent: Option<u16>,
}

impl IdTracker {
    /// Notes a request; returns whether its id was already unanswered.
    pub fn posted(&mut self, id: u16) -> bool {
        self.ever_posted.insert(id);
        let count = self.unanswered.entry(id).or_default();
        *count += 1;
        *count > 1
    }

    /// Notes that the response to request `id` was written.
    pub fn answered(&mut self, id: u16) {
        if let Some(count) = self.unanswered.get_mut(&id) {
            *count -= 1;
            if *count == 0 {
                self.unanswered.remove(&id);
            }
        }
    }

    /// Notes the id a response carries.
    pub fn sent(&mut self, id: u16) {
        self.last_sent = Some(id);
    }

    /// The id the last response carried.
    pub fn last_sent(&self) -> Option<u16> {
        self.last_sent
    }

    /// The highest id never seen in a request on this ring.
    pub fn never_posted(&self) -> u16 {
        (0..=u16::MAX).rev().find(|id| !self.ever_posted.contains(id)).unwrap_or(u16::MAX)
    }
}

/// A live connection: both rings mapped, the ports, and the responses
/// not yet written.
pub(super) struct Connection {
    pub features: FrontendFeatures,
    pub transmit: MappedRing<TX_WORDS>,
    pub receive: MappedRing<RX_WORDS>,
    pub held_transmit: VecDeque<Held<TX_WORDS>>,
    pub held_receive: VecDeque<Held<RX_WORDS>>,
    pub transmit_ids: IdTracker,
    pub receive_ids: IdTracker,
    /// Receive requests up to here have had their ids checked.
    pub receive_scanned: u32,
    /// The `req_event` the backend set on the receive ring while a frame waited.
    pub receive_event_armed: Option<u32>,
    /// The transmit producer a missed notification was last counted at.
    pub transmit_missed_at: Option<u32>,
    /// The backend has not slept since it connected.
    pub just_connected: bool,
}

impl Connection {
    fn new(features: FrontendFeatures, transmit: MappedRing<TX_WORDS>, receive: MappedRing<RX_WORDS>) -> Self {
        Self {
            receive_scanned: receive.request_consumer(),
            features,
            transmit,
            receive,
            held_transmit: VecDeque::new(),
            held_receive: VecDeque::new(),
            transmit_ids: IdTracker::default(),
            receive_ids: IdTracker::default(),
            receive_event_armed: None,
            transmit_missed_at: None,
            just_connected: true,
        }
    }

    /// Unmaps both rings and every grant a held response keeps.
    fn tear_down(self, grants: &SimGrantTable) {
        let held = self.held_transmit.into_iter().filter_map(|held| held.mapping);
        let mappings = held.chain([self.transmit.detach(), self.receive.detach()]);
        mappings.for_each(|mapping| grants.unmap(mapping).expect("the backend's own mapping is live"));
    }
}

/// A plain unsigned decimal, as netback's `%u` reads are meant to be.
pub(super) fn parse_unsigned(text: &str) -> Option<u32> {
    let digits = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

impl SimNetback<'_> {
    /// Reads the frontend's keys and maps its rings; on failure reports it
    /// as `xenbus_dev_fatal` and returns false.
    pub(super) fn connect(&mut self) -> bool {
        match self.read_frontend_features().and_then(|features| self.open_connection(features)) {
            Ok(connection) => {
                self.connection = Some(connection);
                self.disabled = false;
                self.counters.connects += 1;
                true
            }
            Err(failure) => {
                self.counters.connect_failures += 1;
                self.xenbus_fatal(failure);
                false
            }
        }
    }

    /// Unmaps everything and forgets the connection (and the frames queued
    /// for the guest, as netback purges its queue).
    pub(super) fn disconnect(&mut self) {
        let Some(connection) = self.connection.take() else { return };
        connection.tear_down(self.xen.grants());
        self.receive_queue.clear();
        self.counters.disconnects += 1;
    }

    fn read_frontend_features(&mut self) -> Result<FrontendFeatures, ConnectFailure> {
        self.check_queue_count()?;
        self.check_receive_copy()?;
        let (transmit_port, receive_port, split_event_channels) = self.frontend_ports()?;
        Ok(FrontendFeatures {
            transmit_ring_reference: self.required("tx-ring-ref")?,
            receive_ring_reference: self.required("rx-ring-ref")?,
            transmit_port,
            receive_port,
            receive_notify: self.flag("feature-rx-notify"),
            scatter_gather: self.flag("feature-sg"),
            gso_tcpv4: self.flag("feature-gso-tcpv4"),
            gso_tcpv6: self.flag("feature-gso-tcpv6"),
            no_checksum_offload: self.flag("feature-no-csum-offload"),
            ipv6_checksum_offload: self.flag("feature-ipv6-csum-offload"),
            multicast_control: self.flag("request-multicast-control"),
            split_event_channels,
        })
    }

    fn check_queue_count(&mut self) -> Result<(), ConnectFailure> {
        match self.unsigned("multi-queue-num-queues")?.unwrap_or(1) {
            1 => Ok(()),
            queues => Err(ConnectFailure::new(
                Violation::BadQueueCount,
                EINVAL,
                format!("guest requested {queues} queues, exceeding the maximum of 1."),
            )),
        }
    }

    fn check_receive_copy(&mut self) -> Result<(), ConnectFailure> {
        match self.unsigned("request-rx-copy")? {
            Some(value) if value != 0 => Ok(()),
            _ => Err(ConnectFailure::new(
                Violation::ReceiveCopyNotRequested,
                EOPNOTSUPP,
                format!("reading {}/request-rx-copy", self.paths.frontend),
            )),
        }
    }

    /// The split ports if the backend offered them and both are written,
    /// else the one `event-channel`; and whether they are split.
    fn frontend_ports(&mut self) -> Result<(Port, Port, bool), ConnectFailure> {
        if self.options.features.split_event_channels {
            let transmit = self.unsigned("event-channel-tx")?;
            if let (Some(transmit), Some(receive)) = (transmit, self.unsigned("event-channel-rx")?) {
                return Ok((transmit, receive, true));
            }
        }
        let port = self.required("event-channel")?;
        Ok((port, port, false))
    }

    fn open_connection(&mut self, features: FrontendFeatures) -> Result<Connection, ConnectFailure> {
        self.check_ports(&features)?;
        let transmit = self.map_ring(features.transmit_ring_reference)?;
        match self.map_ring(features.receive_ring_reference) {
            Ok(receive) => Ok(Connection::new(features, transmit, receive)),
            Err(failure) => {
                self.xen.grants().unmap(transmit.detach()).expect("the backend's own mapping is live");
                Err(failure)
            }
        }
    }

    /// Binding each port: it must be unbound for the backend's domain, and split ports
    /// cannot be the same port bound twice.
    fn check_ports(&self, features: &FrontendFeatures) -> Result<(), ConnectFailure> {
        let unbound = |port| self.xen.binding(port) == Some(Binding::Unbound { remote: self.options.backend_domain });
        let (transmit, receive) = (features.transmit_port, features.receive_port);
        let twice = features.split_event_channels && transmit == receive;
        if unbound(transmit) && unbound(receive) && !twice {
            return Ok(());
        }
        let backend = self.options.backend_domain;
        let message = format!("binding port tx {transmit} rx {receive}: not unbound for domain {backend}");
        Err(ConnectFailure::new(Violation::BadEventChannel, EINVAL, message))
    }

    fn map_ring<const WORDS: usize>(&self, reference: GrantRef) -> Result<MappedRing<WORDS>, ConnectFailure> {
        let grants = self.xen.grants();
        let mapping = self.map_reference(reference, true).map_err(|error| {
            let message = format!("mapping shared-frame {reference}: {error:?}");
            ConnectFailure::new(Violation::BadRingReference, EINVAL, message)
        })?;
        MappedRing::attach(grants, mapping).map_err(|mapping| {
            grants.unmap(mapping).expect("the backend's own mapping is live");
            let message = format!("ring {reference}: request producer more than a ring ahead of responses");
            ConnectFailure::new(Violation::BadRingIndices, EIO, message)
        })
    }

    /// A key that must be there.
    fn required(&mut self, key: &str) -> Result<u32, ConnectFailure> {
        self.unsigned(key)?.ok_or_else(|| {
            let message = format!("reading {}/{key}", self.paths.frontend);
            ConnectFailure::new(Violation::MissingKey, ENOENT, message)
        })
    }

    /// A key that may be missing; present, it must be a plain unsigned decimal.
    fn unsigned(&mut self, key: &str) -> Result<Option<u32>, ConnectFailure> {
        let Some(text) = self.frontend_value(key) else { return Ok(None) };
        parse_unsigned(&text).map(Some).ok_or_else(|| {
            let message = format!("reading {}/{key}: {text:?} is not an unsigned number", self.paths.frontend);
            ConnectFailure::new(Violation::MalformedKey, EINVAL, message)
        })
    }

    /// A feature key, read like `xenbus_read_unsigned(.., 0) != 0`; a value
    /// other than `0` or `1` is counted.
    fn flag(&mut self, key: &str) -> bool {
        let Some(text) = self.frontend_value(key) else { return false };
        let value = parse_unsigned(&text);
        if !matches!(value, Some(0 | 1)) {
            let message = format!("{}/{key} = {text:?}: a feature is 0 or 1", self.paths.frontend);
            self.violation(Violation::BadFeatureValue, message);
        }
        value.is_some_and(|value| value != 0)
    }
}
