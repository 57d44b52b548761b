//! What the simulated netback counts: traffic, notifications, and every
//! rule the frontend broke, by kind.
//!
//! A [`Violation`] names one rule of netback or of the protocol; whether it
//! is fatal (the vif is disabled, as `xenvif_fatal_tx_err` does), drops the
//! packet, fails the connection, or is only counted is part of the kind.
//! Never: count a misbehaviour of the backend itself (those are requested
//! by the test) as a violation.

use std::collections::BTreeMap;

/// A rule the frontend broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Violation {
    /// Fatal: `req_prod - req_cons` is more than a ring holds.
    ImpossibleRequestCount,
    /// Fatal: a packet's `NETTXF_more_data` or extra-info flag promises a
    /// slot that is not published.
    MissingSlots,
    /// Fatal: more than 20 follow-up slots (`fatal_skb_slots`).
    TooManySlotsFatal,
    /// Fatal: a slot's `offset + size` is past the end of its page.
    SlotCrossesPage,
    /// Fatal: an extra-info slot of type 0 or of no known type.
    BadExtraInfo,
    /// Fatal: a GSO extra with size 0 or an unknown GSO type.
    BadGso,
    /// Packet dropped: more than 18 follow-up slots (`XEN_NETBK_LEGACY_SLOTS_MAX`).
    TooManySlots,
    /// Packet dropped: a follow-up slot is larger than what is left of the
    /// size the first slot announced.
    SlotLargerThanPacket,
    /// Packet dropped: the first slot holds less than `ETH_HLEN` (14) bytes.
    FirstSlotTooSmall,
    /// Packet dropped: a slot's grant cannot be mapped read-only by dom0
    /// (with identity addressing: its frame is not live guest RAM).
    BadTransmitGrant,
    /// Counted: a packet of more than `XEN_NETIF_NR_SLOTS_MIN` (18) slots in
    /// all; Linux accepts 19, the protocol promises only 18.
    MoreSlotsThanProtocolMinimum,
    /// Counted: a request reuses the id of a request still unanswered.
    DuplicateRequestId,
    /// Frame dropped (its slots answered `NETIF_RSP_OKAY`, as Linux's
    /// `checksum_setup` failure does): `NETTXF_csum_blank` on a frame that
    /// is not TCP or UDP over IPv4 or IPv6.
    ChecksumBlankNotTcpUdp,
    /// Counted: requests published past `req_event` with no notification.
    MissedNotification,
    /// Counted: a GSO packet without `NETTXF_csum_blank` (netback makes its
    /// checksum partial itself and counts `rx_gso_checksum_fixup`).
    GsoWithoutChecksumBlank,
    /// Counted, the segments delivered with bad checksums: a GSO packet
    /// whose TCP checksum field is not the pseudo-header sum over its whole
    /// TCP length, the partial value Linux's segmentation adjusts.
    GsoBadPartialChecksum,
    /// Packet dropped after its slots were answered: a GSO packet that is
    /// not TCP over the IP version of its GSO type.
    GsoNotTcp,
    /// Packet dropped after its slots were answered: a GSO packet whose
    /// payload is not larger than its segment size (Linux's
    /// `tcp_gso_segment` refuses it).
    GsoNotLarger,
    /// Counted: a GSO packet of a type the backend did not advertise
    /// (`feature-gso-tcpv4` or `feature-gso-tcpv6` = 0); Linux's netback
    /// takes it anyway.
    GsoNotAdvertised,
    /// Counted: a feature key whose value is neither `0` nor `1`.
    BadFeatureValue,
    /// Counted, answered with a negative `GNTST_*` status: a receive
    /// buffer's grant cannot be written by dom0 (with identity addressing:
    /// its frame is not live guest RAM).
    BadReceiveGrant,
    /// Connection failed: `request-rx-copy` missing or 0.
    ReceiveCopyNotRequested,
    /// Connection failed: a key the handshake needs is missing.
    MissingKey,
    /// Connection failed: a key is not a plain unsigned decimal.
    MalformedKey,
    /// Connection failed: a ring reference cannot be mapped writable (with
    /// identity addressing: its frame is not live guest RAM).
    BadRingReference,
    /// Connection failed: a ring's indices are more than a ring apart.
    BadRingIndices,
    /// Connection failed: the event channel is not a port unbound for dom0.
    BadEventChannel,
    /// Connection failed: `multi-queue-num-queues` other than 1.
    BadQueueCount,
    /// The frontend's `state` is one a frontend never writes (the backend
    /// goes `Closing`).
    BadFrontendState,
}

impl Violation {
    /// Whether netback disables the vif for it.
    pub fn is_fatal(self) -> bool {
        use Violation::*;
        matches!(
            self,
            ImpossibleRequestCount | MissingSlots | TooManySlotsFatal | SlotCrossesPage | BadExtraInfo | BadGso
        )
    }
}

/// Traffic and events, since the netback was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetbackCounters {
    /// Notifications the guest sent the backend (on its ports, while connected).
    pub frontend_notifications: u64,
    /// Notifications the backend sent the guest.
    pub backend_notifications: u64,
    /// Transmit slots consumed (data and extra-info).
    pub transmit_requests: u64,
    /// Transmit responses written (including `NETIF_RSP_NULL`).
    pub transmit_responses: u64,
    /// Frames the guest transmitted, handed to the test.
    pub transmitted_frames: u64,
    /// Their bytes.
    pub transmitted_bytes: u64,
    /// Packets answered with `NETIF_RSP_ERROR`.
    pub transmit_errors: u64,
    /// Of the frames transmitted, the large segments (a GSO extra), cut
    /// into segments.
    pub transmitted_large_segments: u64,
    /// The segments those were cut into.
    pub transmitted_segments: u64,
    /// Receive requests consumed.
    pub receive_requests: u64,
    /// Receive responses written.
    pub receive_responses: u64,
    /// Frames copied to the guest.
    pub received_frames: u64,
    /// Their bytes.
    pub received_bytes: u64,
    /// Of those frames, the ones sent as large segments: TCPv4 frames
    /// longer than the MTU, with a GSO extra-info slot, to a frontend that
    /// asked for them.
    pub received_large_segments: u64,
    /// Frames dropped because the vif was not connected or was disabled.
    pub receive_dropped_disconnected: u64,
    /// Frames larger than a page dropped because the frontend has no `feature-sg`.
    pub receive_dropped_no_scatter_gather: u64,
    /// Times the backend, woken for the frame at the head of the queue,
    /// found too few receive requests for it (netback's backpressure).
    pub receive_waits: u64,
    /// Successful connections.
    pub connects: u64,
    /// Connections torn down.
    pub disconnects: u64,
    /// Handshakes that failed (`xenbus_dev_fatal`).
    pub connect_failures: u64,
    /// Devices created after the first (`network-attach`).
    pub attaches: u64,
    /// Devices removed (`network-detach`).
    pub detaches: u64,
    /// State changes forced by [`super::SimNetback::flap_state`].
    pub state_flaps: u64,
    /// Rule violations, by kind.
    pub violations: BTreeMap<Violation, u64>,
}
