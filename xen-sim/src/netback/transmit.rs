//! The guest's transmit ring, read as Linux netback's
//! `xenvif_tx_build_gops` and `xenvif_count_requests` read it.
//!
//! A packet is a first slot (whose `size` is the whole packet), optional
//! extra-info slots, and follow-up slots while `NETTXF_more_data` is set.
//! The checks, in netback's order: extra-info slots present and of a known
//! type (fatal); for each follow-up slot, published (fatal), at most 20
//! (fatal), at most 18 (drop), no larger than what is left of the packet
//! (drop), not crossing its page (fatal); then the first slot's own share
//! at least `ETH_HLEN` (drop) and inside its page (fatal); a GSO extra with
//! a size and a known type (fatal). A dropped packet gets
//! `NETIF_RSP_ERROR` on every data slot (and `NETIF_RSP_NULL` on extras);
//! a fatal error disables the vif and leaves the packet unanswered.
//!
//! A good packet's slots are mapped read-only (a transmit buffer is
//! `ToDevice`: never mapped writable), copied into one frame for
//! [`super::SimNetback::take_transmitted_frames`], and answered `NETIF_RSP_OKAY`;
//! each mapping lasts until its response is written. A slot whose grant
//! (or, with identity addressing, frame) does not map is answered
//! `NETIF_RSP_ERROR` and the frame is lost, as in netback's
//! `xenvif_tx_check_gop`.
//!
//! A packet with a GSO extra (a large segment) is checked as Linux
//! checks it on its way through dom0, and cut into the segments that leave
//! the vif ([`super::segment`]; [`super::SimNetback::take_transmitted`]
//! gives those): netback requires a GSO packet to have a partial checksum,
//! and fixes one sent without `NETTXF_csum_blank` (counted,
//! [`Violation::GsoWithoutChecksumBlank`], the segments still made right);
//! a partial checksum that is not the pseudo-header sum over the whole TCP
//! length gives segments with bad checksums ([`Violation::GsoBadPartialChecksum`],
//! counted, delivered); a packet that is not TCP over its GSO type's IP
//! version, or whose payload is not larger than its segment size, is
//! dropped after its slots were answered `NETIF_RSP_OKAY`
//! ([`Violation::GsoNotTcp`], [`Violation::GsoNotLarger`]); and a large
//! segment of a type the backend did not advertise is counted
//! ([`Violation::GsoNotAdvertised`]: Linux's netback takes it anyway).
//!
//! Never: read past a slot's page, or consume a slot the frontend has not
//! published.

use super::checksum::{self, IpVersion};
use super::connect::Connection;
use super::hostile::Ring;
use super::segment::{self, Refused};
use super::{SimNetback, Violation};
use crate::grant_table::{SimGrantError, SimMapping};
use std::format;
use std::string::String;
use std::vec::Vec;
use xen_pv::abi::PAGE_SIZE;
use xen_pv::abi::netif::{
    LEGACY_SLOTS_MAX, NETIF_RSP_ERROR, NETIF_RSP_OKAY, NETTXF_CSUM_BLANK, NETTXF_DATA_VALIDATED, NETTXF_EXTRA_INFO,
    NETTXF_MORE_DATA, TX_WORDS, TxRequest,
};

/// `XEN_NETIF_EXTRA_TYPE_GSO`
pub(super) const EXTRA_GSO: u8 = 1;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`
const EXTRA_MULTICAST_ADD: u8 = 2;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`
const EXTRA_MULTICAST_DELETE: u8 = 3;
/// `XEN_NETIF_EXTRA_TYPE_MAX` (GSO, multicast add and delete, hash, XDP).
const EXTRA_TYPE_LIMIT: u8 = 6;
/// `XEN_NETIF_EXTRA_FLAG_MORE`
pub(super) const EXTRA_FLAG_MORE: u8 = 1;
/// `XEN_NETIF_GSO_TYPE_TCPV4`
const GSO_TYPE_TCPV4: u8 = 1;
/// `XEN_NETIF_GSO_TYPE_TCPV4` and `_TCPV6`.
const GSO_TYPES: [u8; 2] = [GSO_TYPE_TCPV4, 2];
/// `ETH_HLEN`
const ETHERNET_HEADER: u16 = 14;
/// Follow-up slots above which netback drops a packet.
const DROP_SLOTS: u32 = LEGACY_SLOTS_MAX as u32;
/// Follow-up slots above which netback disables the vif (`fatal_skb_slots`).
const FATAL_SLOTS: u32 = 20;

/// A frame the guest transmitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransmittedFrame {
    /// The frame, byte for byte as the slots held it.
    pub data: Vec<u8>,
    /// `NETTXF_csum_blank`: its TCP/UDP checksum is partial.
    pub checksum_blank: bool,
    /// `NETTXF_data_validated`.
    pub data_validated: bool,
    /// A GSO extra's (type, segment size).
    pub gso: Option<(u8, u16)>,
    /// The data slots it came in (extra-info slots not counted).
    pub slots: usize,
    /// A large segment (with a GSO extra): the segments it was cut into,
    /// as they leave the vif; empty for any other frame.
    pub segments: Vec<Vec<u8>>,
}

impl TransmittedFrame {
    /// The frames that leave the vif for it: a large segment's segments,
    /// or the frame itself.
    pub fn into_wire_frames(self) -> Vec<Vec<u8>> {
        match self.gso {
            Some(_) => self.segments,
            None => std::vec![self.data],
        }
    }
}

/// An extra-info slot (`struct netif_extra_info`).
#[derive(Debug, Clone, Copy)]
struct ExtraInfo {
    kind: u8,
    flags: u8,
    gso_size: u16,
    gso_type: u8,
}

impl ExtraInfo {
    fn decode(words: [u32; TX_WORDS]) -> Self {
        let [kind, flags, size_low, size_high] = words[0].to_le_bytes();
        let gso_type = words[1].to_le_bytes()[0];
        Self { kind, flags, gso_size: u16::from_le_bytes([size_low, size_high]), gso_type }
    }
}

/// A packet's slots, taken off the ring.
struct Packet {
    first: TxRequest,
    /// What the first slot itself holds: its `size` less the follow-ups'.
    first_size: u16,
    extras: Vec<ExtraInfo>,
    fragments: Vec<TxRequest>,
}

/// A packet's follow-up slots, looked at but not taken.
struct Counted {
    fragments: Vec<TxRequest>,
    /// What is left of the packet's size for the first slot.
    first_size: u16,
    /// Why netback drops the packet, if it does.
    dropped: Option<(Violation, String)>,
}

/// What reading the next packet found.
enum Next {
    Nothing,
    Packet(Packet),
    Dropped(Packet, Violation, String),
    Multicast(TxRequest, usize),
    Fatal(Violation, String),
}

impl SimNetback<'_> {
    /// Serves the transmit ring until it is empty (re-arming `req_event`
    /// and looking again, as netback's NAPI poll does) or the vif is disabled.
    pub(super) fn serve_transmit(&mut self, connection: &mut Connection, awake: bool) {
        if !awake {
            self.check_transmit_notification(connection);
            return;
        }
        loop {
            while !self.disabled && self.transmit_next(connection) {}
            if self.disabled || !connection.transmit.final_check(self.xen.grants()) {
                return;
            }
        }
    }

    /// Counts a missed notification once per request producer value.
    fn check_transmit_notification(&mut self, connection: &mut Connection) {
        let grants = self.xen.grants();
        let ring = &connection.transmit;
        let (producer, consumer) = (ring.request_producer(grants), ring.request_consumer());
        let crossed = producer.wrapping_sub(ring.request_event(grants)) < producer.wrapping_sub(consumer);
        if crossed && connection.transmit_missed_at != Some(producer) {
            connection.transmit_missed_at = Some(producer);
            self.missed_notification(Ring::Transmit);
        }
    }

    /// Handles one packet; false when there is nothing more to do.
    fn transmit_next(&mut self, connection: &mut Connection) -> bool {
        match self.read_packet(connection) {
            Next::Nothing => false,
            Next::Fatal(kind, message) => {
                self.violation(kind, message);
                false
            }
            Next::Multicast(first, extras) => {
                self.answer_slots(connection, &first, extras, &[], NETIF_RSP_OKAY);
                true
            }
            Next::Dropped(packet, kind, message) => {
                self.violation(kind, message);
                self.counters.transmit_errors += 1;
                self.answer_slots(connection, &packet.first, packet.extras.len(), &packet.fragments, NETIF_RSP_ERROR);
                true
            }
            Next::Packet(packet) => {
                self.deliver(connection, packet);
                true
            }
        }
    }

    fn read_packet(&mut self, connection: &mut Connection) -> Next {
        let grants = self.xen.grants();
        let Some(available) = connection.transmit.unconsumed(grants) else {
            let producer = connection.transmit.request_producer(grants);
            let consumer = connection.transmit.request_consumer();
            let message = format!("Impossible number of requests. req_prod {producer}, req_cons {consumer}, size 256");
            return Next::Fatal(Violation::ImpossibleRequestCount, message);
        };
        if available == 0 {
            return Next::Nothing;
        }
        let first = TxRequest::decode(connection.transmit.take(grants));
        self.note_transmit_request(connection, first.id);
        let mut work = available - 1;
        let extras = match self.read_extras(connection, &first, &mut work) {
            Ok(extras) => extras,
            Err(next) => return next,
        };
        if extras.iter().any(|extra| matches!(extra.kind, EXTRA_MULTICAST_ADD | EXTRA_MULTICAST_DELETE)) {
            return Next::Multicast(first, extras.len());
        }
        self.read_fragments(connection, first, extras, work)
    }

    fn note_transmit_request(&mut self, connection: &mut Connection, id: u16) {
        self.counters.transmit_requests += 1;
        if connection.transmit_ids.posted(id) {
            self.violation(Violation::DuplicateRequestId, format!("tx request id {id} is already in flight"));
        }
    }

    /// Netback's `xenvif_get_extras`.
    fn read_extras(
        &mut self,
        connection: &mut Connection,
        first: &TxRequest,
        work: &mut u32,
    ) -> Result<Vec<ExtraInfo>, Next> {
        let mut extras = Vec::new();
        let mut more = first.flags & NETTXF_EXTRA_INFO != 0;
        while more {
            if *work == 0 {
                return Err(Next::Fatal(Violation::MissingSlots, String::from("Missing extra info")));
            }
            let extra = ExtraInfo::decode(connection.transmit.take(self.xen.grants()));
            *work -= 1;
            self.counters.transmit_requests += 1;
            if extra.kind == 0 || extra.kind >= EXTRA_TYPE_LIMIT {
                return Err(Next::Fatal(Violation::BadExtraInfo, format!("Invalid extra type: {}", extra.kind)));
            }
            more = extra.flags & EXTRA_FLAG_MORE != 0;
            extras.push(extra);
        }
        Ok(extras)
    }

    /// Netback's `xenvif_count_requests`, then the first slot's checks.
    fn read_fragments(
        &mut self,
        connection: &mut Connection,
        first: TxRequest,
        extras: Vec<ExtraInfo>,
        work: u32,
    ) -> Next {
        let Counted { fragments, first_size, dropped } = match self.count_fragments(connection, &first, work) {
            Ok(counted) => counted,
            Err(next) => return next,
        };
        connection.transmit.skip(fragments.len() as u32);
        fragments.iter().for_each(|fragment| self.note_transmit_request(connection, fragment.id));
        let packet = Packet { first, first_size, extras, fragments };
        match dropped {
            Some((kind, message)) => Next::Dropped(packet, kind, message),
            None => check_first_slot(packet),
        }
    }

    /// Looks at the follow-up slots without taking them.
    fn count_fragments(&self, connection: &Connection, first: &TxRequest, work: u32) -> Result<Counted, Next> {
        let (mut fragments, mut remaining, mut dropped) = (Vec::new(), first.size, None);
        let mut more = first.flags & NETTXF_MORE_DATA != 0;
        while more {
            let slots = fragments.len() as u32;
            check_fragment_count(slots, work)?;
            if dropped.is_none() && slots >= DROP_SLOTS {
                let message = format!("Too many slots ({slots}) exceeding limit ({DROP_SLOTS}), dropping packet");
                dropped = Some((Violation::TooManySlots, message));
            }
            let request = TxRequest::decode(connection.transmit.peek(self.xen.grants(), slots));
            if dropped.is_none() && request.size > remaining {
                let message = format!("Invalid tx request, slot size {} > remaining size {remaining}", request.size);
                dropped = Some((Violation::SlotLargerThanPacket, message));
            }
            remaining = remaining.wrapping_sub(request.size);
            check_in_page(&request, request.size)?;
            more = request.flags & NETTXF_MORE_DATA != 0;
            fragments.push(request);
        }
        Ok(Counted { fragments, first_size: remaining, dropped })
    }

    /// Answers a packet's slots: `status` for the data slots, `NETIF_RSP_NULL`
    /// for the extras, in ring order.
    fn answer_slots(
        &mut self,
        connection: &mut Connection,
        first: &TxRequest,
        extras: usize,
        fragments: &[TxRequest],
        status: i16,
    ) {
        self.answer_transmit(connection, first.id, status, None);
        (0..extras).for_each(|_| self.answer_extra_info(connection));
        fragments.iter().for_each(|fragment| self.answer_transmit(connection, fragment.id, status, None));
    }

    /// Copies a good packet out of its slots and answers them.
    fn deliver(&mut self, connection: &mut Connection, packet: Packet) {
        if 1 + packet.fragments.len() > LEGACY_SLOTS_MAX {
            let message =
                format!("a packet of {} slots: more than the 18 the protocol promises", 1 + packet.fragments.len());
            self.violation(Violation::MoreSlotsThanProtocolMinimum, message);
        }
        let slots = core::iter::once((packet.first, packet.first_size))
            .chain(packet.fragments.iter().map(|fragment| (*fragment, fragment.size)));
        let mut frame = Vec::with_capacity(usize::from(packet.first.size));
        let mappings: Vec<Option<SimMapping>> =
            slots.map(|(request, size)| self.read_slot(request, size, &mut frame)).collect();
        let complete = mappings.iter().all(Option::is_some);
        let mut mappings = mappings.into_iter();
        self.answer_mapped(connection, packet.first.id, mappings.next().flatten());
        (0..packet.extras.len()).for_each(|_| self.answer_extra_info(connection));
        for (fragment, mapping) in packet.fragments.iter().zip(mappings) {
            self.answer_mapped(connection, fragment.id, mapping);
        }
        match complete {
            true => self.hand_over(frame, &packet),
            false => self.counters.transmit_errors += 1,
        }
    }

    /// Answers a slot `NETIF_RSP_OKAY` if it mapped, `NETIF_RSP_ERROR` if not.
    fn answer_mapped(&mut self, connection: &mut Connection, id: u16, mapping: Option<SimMapping>) {
        let status = if mapping.is_some() { NETIF_RSP_OKAY } else { NETIF_RSP_ERROR };
        self.answer_transmit(connection, id, status, mapping);
    }

    /// Maps a slot read-only and appends its bytes to `frame`; `None` (and
    /// a violation) if the grant does not map.
    fn read_slot(&mut self, request: TxRequest, size: u16, frame: &mut Vec<u8>) -> Option<SimMapping> {
        let grants = self.xen.grants();
        let mapping = match self.map_reference(request.gref, false) {
            Ok(mapping) => mapping,
            Err(error) => return self.bad_transmit_grant(request.gref, error),
        };
        let start = frame.len();
        frame.resize(start + usize::from(size), 0);
        grants
            .read(&mapping, usize::from(request.offset), &mut frame[start..])
            .expect("the slot was checked to lie inside its page");
        Some(mapping)
    }

    fn bad_transmit_grant(&mut self, reference: u32, error: SimGrantError) -> Option<SimMapping> {
        self.violation(Violation::BadTransmitGrant, format!("Grant map of ref {reference} failed: {error:?}"));
        None
    }

    /// Hands a frame to the test, unless its checksum flags are impossible
    /// or it is a large segment Linux would drop.
    fn hand_over(&mut self, data: Vec<u8>, packet: &Packet) {
        let flags = packet.first.flags;
        let checksum_blank = flags & NETTXF_CSUM_BLANK != 0;
        if checksum_blank && !checksum::is_tcp_or_udp(&data) {
            let message = String::from("Can't setup checksum in net_tx_action: csum_blank on a frame not TCP/UDP");
            self.violation(Violation::ChecksumBlankNotTcpUdp, message);
            return;
        }
        let gso = packet.extras.iter().find(|extra| extra.kind == EXTRA_GSO).map(|gso| (gso.gso_type, gso.gso_size));
        let segments = match gso {
            Some((gso_type, size)) => match self.cut_large_segment(&data, gso_type, size, checksum_blank) {
                Some(segments) => segments,
                None => return,
            },
            None => Vec::new(),
        };
        self.counters.transmitted_frames += 1;
        self.counters.transmitted_bytes += data.len() as u64;
        let data_validated = flags & NETTXF_DATA_VALIDATED != 0;
        let slots = 1 + packet.fragments.len();
        self.transmitted.push_back(TransmittedFrame { data, checksum_blank, data_validated, gso, slots, segments });
    }

    /// A large segment's checks and segments (see the module
    /// documentation); `None` when it is dropped. Its GSO type is TCPv4 or
    /// TCPv6 (anything else was fatal before).
    fn cut_large_segment(&mut self, data: &[u8], gso_type: u8, size: u16, blank: bool) -> Option<Vec<Vec<u8>>> {
        let features = self.options.features;
        let (version, advertised) = match gso_type {
            GSO_TYPE_TCPV4 => (IpVersion::V4, features.gso_tcpv4),
            _ => (IpVersion::V6, features.gso_tcpv6),
        };
        if !advertised {
            let message = format!("a GSO packet of type {gso_type}, which the backend does not advertise");
            self.violation(Violation::GsoNotAdvertised, message);
        }
        if !blank {
            let message = String::from("a GSO packet without NETTXF_csum_blank (rx_gso_checksum_fixup)");
            self.violation(Violation::GsoWithoutChecksumBlank, message);
        }
        match segment::cut(data, version, size, blank) {
            Ok(cut) => {
                if cut.partial_wrong {
                    let message = String::from("a GSO packet's partial checksum is not its pseudo-header sum");
                    self.violation(Violation::GsoBadPartialChecksum, message);
                }
                self.counters.transmitted_large_segments += 1;
                self.counters.transmitted_segments += cut.frames.len() as u64;
                Some(cut.frames)
            }
            Err(Refused::NotTcp) => {
                let message = format!("a GSO packet of type {gso_type} that is not TCP over that IP version: dropped");
                self.violation(Violation::GsoNotTcp, message);
                None
            }
            Err(Refused::NotLarger) => {
                let message = format!("a GSO packet whose payload is not larger than its size {size}: dropped");
                self.violation(Violation::GsoNotLarger, message);
                None
            }
        }
    }
}

/// The fatal limits on follow-up slots: published, and at most 20.
fn check_fragment_count(slots: u32, work: u32) -> Result<(), Next> {
    if slots >= work {
        let message = format!("Asked for {slots} slots but exceeds this limit");
        return Err(Next::Fatal(Violation::MissingSlots, message));
    }
    if slots >= FATAL_SLOTS {
        let message = format!("Malicious frontend using {slots} slots, threshold {FATAL_SLOTS}");
        return Err(Next::Fatal(Violation::TooManySlotsFatal, message));
    }
    Ok(())
}

/// Fatal unless `size` bytes at the slot's offset fit in its page.
fn check_in_page(request: &TxRequest, size: u16) -> Result<(), Next> {
    if usize::from(request.offset) + usize::from(size) <= PAGE_SIZE {
        return Ok(());
    }
    let message = format!("Cross page boundary, txp->offset: {}, size: {size}", request.offset);
    Err(Next::Fatal(Violation::SlotCrossesPage, message))
}

/// The first slot's own share: at least a header (else dropped), inside
/// its page (else fatal); and the GSO extra's fields (else fatal).
fn check_first_slot(packet: Packet) -> Next {
    if packet.first_size < ETHERNET_HEADER {
        let message = format!("Bad packet size: {}", packet.first_size);
        return Next::Dropped(packet, Violation::FirstSlotTooSmall, message);
    }
    if let Err(next) = check_in_page(&packet.first, packet.first_size) {
        return next;
    }
    match packet.extras.iter().find(|extra| extra.kind == EXTRA_GSO) {
        Some(gso) if gso.gso_size == 0 => Next::Fatal(Violation::BadGso, String::from("GSO size must not be zero.")),
        Some(gso) if !GSO_TYPES.contains(&gso.gso_type) => {
            Next::Fatal(Violation::BadGso, format!("Bad GSO type {}.", gso.gso_type))
        }
        _ => Next::Packet(packet),
    }
}
