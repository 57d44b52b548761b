//! The guest's receive ring, filled as Linux netback's `xenvif_rx_action`
//! fills it (the copy path, `request-rx-copy`).
//!
//! Frames injected by the test wait in a queue. The frame at its head goes
//! to the guest when enough receive requests are published for it (one per
//! page of frame); until then it waits, and the backend asks through
//! `req_event` to be notified of the next request (netback's
//! backpressure). Each request's page is filled from offset 0 by grant copy;
//! its response carries the request's id, the bytes written as status,
//! `NETRXF_more_data` on all but the last slot, and on the first slot the
//! checksum flags [`super::ReceiveChecksum`] chooses (and, when a hostile
//! mode asks, `NETRXF_extra_info` with extra-info slots after it). A frame larger than a
//! page is dropped when the frontend has no `feature-sg`.
//!
//! Large segments, as netback's `xenvif_rx_skb` sends a GSO packet: when
//! the frontend wrote `feature-sg` and `feature-gso-tcpv4` and did not turn
//! checksum offload off (Linux keeps TSO off a vif without IP checksum
//! offload), an IPv4 TCP frame longer than the MTU goes as one packet; so
//! does an IPv6 TCP frame when it wrote `feature-gso-tcpv6` and
//! `feature-ipv6-csum-offload` (TSO6 needs IPv6 checksum offload the same
//! way). Such a packet has its first slot flagged `NETRXF_extra_info` and
//! `NETRXF_csum_blank | NETRXF_data_validated` (a GSO packet's checksum is
//! always partial), a GSO extra-info slot after it (type TCPv4 or TCPv6,
//! segment size the MTU less 40 or 60 bytes of headers), then its other
//! data slots. It waits until the guest has posted a request for every one
//! of those slots.
//! A frontend that did not ask gets such frames as they are, multi-slot
//! (the simulation does not segment them as Linux's stack would). A grant the
//! backend cannot write gets the copy's negative `GNTST_*` status, as in
//! netback's `xenvif_rx_copy_flush` (with identity addressing the request's
//! `gref` is a frame, written directly, and a frame that is not live guest
//! RAM gets the same status).
//!
//! Every receive request the frontend publishes has its id checked against
//! the ones still unanswered.
//!
//! Never: write a buffer through anything but a grant copy the simulated
//! grant table allows (or, with identity addressing, a write of a live
//! frame), or consume a request a frame does not need.

use super::checksum::{self, IpVersion};
use super::connect::Connection;
use super::hostile::GsoFault;
use super::hostile::Ring;
use super::options::ReceiveChecksum;
use super::{SimNetback, Violation};
use crate::grant_table::SimGrantError;
use std::format;
use std::vec::Vec;
use xen_pv::abi::PAGE_SIZE;
use xen_pv::abi::netif::{
    EXTRA_FLAG_MORE, EXTRA_TYPE_GSO, EXTRA_TYPE_HASH, EXTRA_TYPE_MCAST_ADD, EXTRA_TYPE_MCAST_DEL, EXTRA_TYPE_XDP,
    ExtraInfo, GSO_TYPE_TCPV4, GSO_TYPE_TCPV6, NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED, NETRXF_EXTRA_INFO,
    NETRXF_MORE_DATA, RxRequest,
};
use xen_pv::ring::RING_SLOTS;

/// `GNTST_general_error`
const GNTST_GENERAL_ERROR: i16 = -1;
/// `GNTST_bad_gntref`
const GNTST_BAD_GNTREF: i16 = -3;
/// `GNTST_permission_denied`
const GNTST_PERMISSION_DENIED: i16 = -8;
/// `GNTST_bad_page`
const GNTST_BAD_PAGE: i16 = -9;

/// What a failed grant copy reports, as Xen's `GNTTABOP_copy` would.
fn grant_status(error: SimGrantError) -> i16 {
    match error {
        SimGrantError::BadReference => GNTST_BAD_GNTREF,
        SimGrantError::ReadOnly => GNTST_PERMISSION_DENIED,
        SimGrantError::BadFrame(_) => GNTST_BAD_PAGE,
        _ => GNTST_GENERAL_ERROR,
    }
}

/// The MTU when the toolstack wrote none.
const DEFAULT_MTU: u16 = 1500;
/// IPv4 and TCP headers without options: the MTU less these is the
/// segment size of a TCPv4 large segment.
const IPV4_TCP_HEADERS: u16 = 40;
/// The same over IPv6 (its fixed header is 40 bytes).
const IPV6_TCP_HEADERS: u16 = 60;
/// The types of the well-formed extra slots [`super::Hostility::ReceiveExtraInfo`] adds.
const HOSTILE_EXTRA_TYPES: [u8; 4] = [EXTRA_TYPE_HASH, EXTRA_TYPE_XDP, EXTRA_TYPE_MCAST_ADD, EXTRA_TYPE_MCAST_DEL];

/// How a frame goes on the receive ring.
struct Layout {
    /// Sent as a large segment (a GSO extra, a partial checksum).
    large_segment: bool,
    /// The extra-info slots, in order.
    chain: Vec<ExtraInfo>,
    /// Flag `NETRXF_extra_info` even with no extra slot behind it.
    flag_without_extras: bool,
    /// The data slot the extra slots follow (0: the first).
    extras_after: usize,
    /// Bytes of zeros added after the frame's data.
    padding: usize,
}

impl Layout {
    /// Receive requests the frame uses up.
    fn slots(&self, length: usize) -> u32 {
        ((length + self.padding).div_ceil(PAGE_SIZE) + self.chain.len()) as u32
    }
}

/// Whether the receive ring could take the frame at the head of the queue.
enum Room {
    Enough,
    Waiting,
    Broken,
}

impl SimNetback<'_> {
    /// Checks newly published requests, then moves queued frames to the
    /// guest while it has buffers for them.
    pub(super) fn serve_receive(&mut self, connection: &mut Connection, awake: bool) {
        self.check_posted_receive_requests(connection);
        if !awake {
            self.check_receive_notification(connection);
            return;
        }
        connection.receive_event_armed = None;
        while let Some(length) = self.receive_queue.front().map(Vec::len) {
            if length > PAGE_SIZE && !connection.features.scatter_gather {
                self.receive_queue.pop_front();
                self.counters.receive_dropped_no_scatter_gather += 1;
                continue;
            }
            let tcp = self.receive_queue.front().and_then(|head| checksum::tcp_version(head));
            let needed = self.layout(connection, length, tcp, false).slots(length);
            match self.receive_room(connection, needed) {
                Room::Enough => {}
                Room::Waiting => {
                    self.counters.receive_waits += 1;
                    return;
                }
                Room::Broken => return,
            }
            let frame = self.receive_queue.pop_front().expect("a front was just seen");
            let layout = self.layout(connection, frame.len(), checksum::tcp_version(&frame), true);
            self.receive_frame(connection, frame, layout);
        }
    }

    /// Netback's `xenvif_rx_ring_slots_available`: enough requests, or
    /// `req_event` set to the next one and a last look.
    fn receive_room(&mut self, connection: &mut Connection, needed: u32) -> Room {
        let grants = self.xen.grants();
        loop {
            let producer = connection.receive.request_producer(grants);
            let Some(available) = connection.receive.unconsumed(grants) else {
                let message = format!("Impossible number of rx requests. req_prod {producer}");
                self.violation(Violation::ImpossibleRequestCount, message);
                return Room::Broken;
            };
            if available >= needed {
                return Room::Enough;
            }
            connection.receive.set_request_event(grants, producer.wrapping_add(1));
            connection.receive_event_armed = Some(producer.wrapping_add(1));
            if connection.receive.request_producer(grants) == producer {
                return Room::Waiting;
            }
        }
    }

    /// How a frame of `length` bytes (a TCP one over `tcp`, if any) goes on
    /// the ring: as a large segment or not, with the extra slots and faults
    /// the hostile modes in force ask for (used up only if `take`: the same
    /// call without it counts the slots first).
    fn layout(&mut self, connection: &Connection, length: usize, tcp: Option<IpVersion>, take: bool) -> Layout {
        let features = &connection.features;
        let mtu = self.options.mtu.unwrap_or(DEFAULT_MTU);
        // What Linux's `xenvif_fix_features` and `netdev_fix_features`
        // leave on: TSO with IP checksum offload, TSO6 with IPv6's.
        let (gso_type, headers) = match tcp {
            Some(IpVersion::V4) if features.gso_tcpv4 && !features.no_checksum_offload => {
                (Some(GSO_TYPE_TCPV4), IPV4_TCP_HEADERS)
            }
            Some(IpVersion::V6) if features.gso_tcpv6 && features.ipv6_checksum_offload => {
                (Some(GSO_TYPE_TCPV6), IPV6_TCP_HEADERS)
            }
            _ => (None, IPV4_TCP_HEADERS),
        };
        let offload = features.scatter_gather && gso_type.is_some();
        let large_segment = offload && length > usize::from(mtu) + 14;
        let fault = self.hostility.gso_fault(take);
        let gso = ExtraInfo {
            kind: EXTRA_TYPE_GSO,
            gso_size: mtu.saturating_sub(headers),
            gso_type: gso_type.unwrap_or(GSO_TYPE_TCPV4),
            ..ExtraInfo::default()
        };
        let mut layout = Layout {
            large_segment,
            chain: if large_segment || fault.is_some() { std::vec![gso] } else { Vec::new() },
            flag_without_extras: false,
            extras_after: 0,
            padding: 0,
        };
        match fault {
            None | Some(GsoFault::OnAnyFrame) => {}
            Some(GsoFault::UnknownType) => layout.chain[0].kind = 9,
            Some(GsoFault::SizeZero) => layout.chain[0].gso_size = 0,
            Some(GsoFault::SizeHuge) => layout.chain[0].gso_size = u16::MAX,
            Some(GsoFault::TypeTcpv6) => layout.chain[0].gso_type = GSO_TYPE_TCPV6,
            Some(GsoFault::TypeTcpv4) => layout.chain[0].gso_type = GSO_TYPE_TCPV4,
            Some(GsoFault::DuplicateType) => layout.chain.push(gso),
            Some(GsoFault::ChainTooLong) => {
                let kinds =
                    [EXTRA_TYPE_GSO, EXTRA_TYPE_HASH, EXTRA_TYPE_XDP, EXTRA_TYPE_MCAST_ADD, EXTRA_TYPE_MCAST_DEL];
                let extra = |kind| ExtraInfo { kind, ..gso };
                layout.chain = kinds.into_iter().chain([EXTRA_TYPE_HASH]).map(extra).collect();
            }
            Some(GsoFault::MissingExtraSlot) => {
                layout.chain.clear();
                layout.flag_without_extras = true;
            }
            Some(GsoFault::NotOnFirstSlot) => layout.extras_after = usize::from(length > PAGE_SIZE),
            Some(GsoFault::TooLong) => layout.padding = PAGE_SIZE,
        }
        let extras = self.hostility.receive_extras(take) as usize;
        let hostile = HOSTILE_EXTRA_TYPES.iter().take(extras).map(|&kind| ExtraInfo { kind, ..ExtraInfo::default() });
        layout.chain.extend(hostile);
        let last = layout.chain.len().saturating_sub(1);
        for (index, extra) in layout.chain.iter_mut().enumerate() {
            extra.flags = if index < last { EXTRA_FLAG_MORE } else { 0 };
        }
        layout
    }

    /// Copies one frame into as many requests' pages as it needs, with the
    /// extra-info slots `layout` puts after one of its data slots.
    fn receive_frame(&mut self, connection: &mut Connection, mut frame: Vec<u8>, layout: Layout) {
        let flags = if layout.large_segment && checksum::make_partial(&mut frame) {
            NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED
        } else {
            self.checksum_flags(connection, &mut frame)
        };
        let length = frame.len();
        frame.resize(length + layout.padding, 0);
        let extra_flag = if !layout.chain.is_empty() || layout.flag_without_extras { NETRXF_EXTRA_INFO } else { 0 };
        let slots = frame.len().div_ceil(PAGE_SIZE);
        for (index, chunk) in frame.chunks(PAGE_SIZE).enumerate() {
            let request = RxRequest::decode(connection.receive.take(self.xen.grants()));
            self.counters.receive_requests += 1;
            let status = self.copy_to_guest(request, chunk);
            let more = if index + 1 < slots { NETRXF_MORE_DATA } else { 0 };
            let first = if index == 0 { flags } else { 0 };
            let extras_here = index == layout.extras_after;
            self.answer_receive(connection, request, status, more | first | if extras_here { extra_flag } else { 0 });
            for extra in layout.chain.iter().filter(|_| extras_here) {
                let request = RxRequest::decode(connection.receive.take(self.xen.grants()));
                self.counters.receive_requests += 1;
                self.answer_receive_extra(connection, request, *extra);
            }
        }
        self.counters.received_frames += 1;
        self.counters.received_bytes += length as u64;
        self.counters.received_large_segments += u64::from(layout.large_segment);
    }

    /// Grant-copies `chunk` to the start of the request's page; the bytes
    /// written, or the copy's `GNTST_*` error.
    fn copy_to_guest(&mut self, request: RxRequest, chunk: &[u8]) -> i16 {
        match self.copy_to_reference(request.gref, 0, chunk) {
            Ok(()) => chunk.len() as i16,
            Err(error) => {
                let message = format!("Grant copy to rx ref {} (id {}) failed: {error:?}", request.gref, request.id);
                self.violation(Violation::BadReceiveGrant, message);
                grant_status(error)
            }
        }
    }

    /// The first slot's flags; makes the checksum partial when the frame
    /// goes to the guest the way dom0's own traffic does: IPv4 TCP and UDP
    /// unless the frontend wrote `feature-no-csum-offload=1`, IPv6 TCP and
    /// UDP if it wrote `feature-ipv6-csum-offload=1` (Linux computes the
    /// checksum before the vif when the vif lacks `NETIF_F_IP_CSUM` or
    /// `NETIF_F_IPV6_CSUM`).
    fn checksum_flags(&self, connection: &Connection, frame: &mut [u8]) -> u16 {
        match self.options.receive_checksum {
            ReceiveChecksum::Validated => NETRXF_DATA_VALIDATED,
            ReceiveChecksum::Unflagged => 0,
            ReceiveChecksum::PartialLikeDom0 | ReceiveChecksum::PartialRegardless => {
                let regardless = self.options.receive_checksum == ReceiveChecksum::PartialRegardless;
                let features = &connection.features;
                let offload = match checksum::tcp_or_udp_version(frame) {
                    Some(IpVersion::V4) => regardless || !features.no_checksum_offload,
                    Some(IpVersion::V6) => regardless || features.ipv6_checksum_offload,
                    None => false,
                };
                if offload && checksum::make_partial(frame) { NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED } else { 0 }
            }
        }
    }

    /// Checks the ids of receive requests published since the last look.
    fn check_posted_receive_requests(&mut self, connection: &mut Connection) {
        let grants = self.xen.grants();
        let producer = connection.receive.request_producer(grants);
        if producer.wrapping_sub(connection.receive_scanned) > RING_SLOTS {
            return; // nonsense indices: serving the ring reports them
        }
        while connection.receive_scanned != producer {
            let request = RxRequest::decode(connection.receive.request_at(grants, connection.receive_scanned));
            connection.receive_scanned = connection.receive_scanned.wrapping_add(1);
            if connection.receive_ids.posted(request.id) {
                let message = format!("rx request id {} posted while a request with that id is unanswered", request.id);
                self.violation(Violation::DuplicateRequestId, message);
            }
        }
    }

    /// Counts a missed notification if the backend waited for requests,
    /// set `req_event`, and the guest published past it without notifying.
    fn check_receive_notification(&mut self, connection: &mut Connection) {
        let Some(event) = connection.receive_event_armed else { return };
        let producer = connection.receive.request_producer(self.xen.grants());
        if !self.receive_queue.is_empty() && producer.wrapping_sub(event) < RING_SLOTS {
            connection.receive_event_armed = None;
            self.missed_notification(Ring::Receive);
        }
    }
}
