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
//! page is dropped when the frontend has no `feature-sg`. A grant the
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

use super::checksum;
use super::connect::Connection;
use super::hostile::Ring;
use super::options::ReceiveChecksum;
use super::{SimNetback, Violation};
use crate::grant_table::SimGrantError;
use std::format;
use std::vec::Vec;
use xen_pv::abi::PAGE_SIZE;
use xen_pv::abi::netif::{NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED, NETRXF_EXTRA_INFO, NETRXF_MORE_DATA, RxRequest};
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
            let extras = self.hostility.receive_extras(false);
            match self.receive_room(connection, length.div_ceil(PAGE_SIZE) as u32 + extras) {
                Room::Enough => {}
                Room::Waiting => {
                    self.counters.receive_waits += 1;
                    return;
                }
                Room::Broken => return,
            }
            let frame = self.receive_queue.pop_front().expect("a front was just seen");
            self.receive_frame(connection, frame);
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

    /// Copies one frame into as many requests' pages as it needs, with the
    /// extra-info slots a [`super::Hostility::ReceiveExtraInfo`] asks for
    /// after its first slot.
    fn receive_frame(&mut self, connection: &mut Connection, mut frame: Vec<u8>) {
        let flags = self.checksum_flags(connection, &mut frame);
        let extras = self.hostility.receive_extras(true);
        let extra_flag = if extras > 0 { NETRXF_EXTRA_INFO } else { 0 };
        let slots = frame.len().div_ceil(PAGE_SIZE);
        for (index, chunk) in frame.chunks(PAGE_SIZE).enumerate() {
            let request = RxRequest::decode(connection.receive.take(self.xen.grants()));
            self.counters.receive_requests += 1;
            let status = self.copy_to_guest(request, chunk);
            let more = if index + 1 < slots { NETRXF_MORE_DATA } else { 0 };
            let first = if index == 0 { flags | extra_flag } else { 0 };
            self.answer_receive(connection, request, status, more | first);
            for extra in (0..extras).filter(|_| index == 0) {
                let request = RxRequest::decode(connection.receive.take(self.xen.grants()));
                self.counters.receive_requests += 1;
                self.answer_receive_extra(connection, request, extra + 1 < extras);
            }
        }
        self.counters.received_frames += 1;
        self.counters.received_bytes += frame.len() as u64;
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
    /// goes to the guest the way dom0's own traffic does.
    fn checksum_flags(&self, connection: &Connection, frame: &mut [u8]) -> u16 {
        match self.options.receive_checksum {
            ReceiveChecksum::Validated => NETRXF_DATA_VALIDATED,
            ReceiveChecksum::Unflagged => 0,
            ReceiveChecksum::PartialLikeDom0 | ReceiveChecksum::PartialRegardless => {
                let asked = self.options.receive_checksum == ReceiveChecksum::PartialRegardless;
                let offload = asked || !connection.features.no_checksum_offload;
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
