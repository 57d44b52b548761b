//! Notifications both ways, and writing responses.
//!
//! The guest's notifications wake the backend's rings (unless
//! [`super::NetbackOptions::notifications_required`] is off, or the backend
//! is awake anyway: just connected, or a frame was injected). Responses are
//! created by the transmit and receive paths, mangled there if a
//! [`super::Hostility`] says so, and queued as [`Held`]; here the ones that
//! are due are written in order, their grant mappings ended, and the ring
//! published, the guest being notified only if `rsp_event` asks for it.
//!
//! Never: write a response before one created earlier on the same ring, or
//! notify the guest when the ring rules say it did not ask.

use super::connect::{Connection, IdTracker};
use super::hostile::{Held, NullFault, Ring};
use super::ring::MappedRing;
use super::{SimNetback, Violation};
use crate::grant_table::{SimGrantTable, SimMapping};
use std::collections::VecDeque;
use xen_pv::abi::netif::{ExtraInfo, NETIF_RSP_NULL, NETIF_RSP_OKAY, RxRequest, RxResponse, TxResponse};

/// A transmit response writes `id` and `status` only.
const TRANSMIT_MASK: [u32; 3] = [u32::MAX, 0, 0];
/// A `NETIF_RSP_NULL` response writes `status` only.
const NULL_MASK: [u32; 3] = [0xffff_0000, 0, 0];
/// A receive response writes the whole slot.
const RECEIVE_MASK: [u32; 2] = [u32::MAX, u32::MAX];

/// Which rings the backend serves this step.
pub(super) struct Awake {
    pub transmit: bool,
    pub receive: bool,
}

/// What releasing a ring's due responses did.
struct Released {
    written: u64,
    notify: bool,
}

impl SimNetback<'_> {
    /// Takes the guest's notifications and says which rings are awake.
    pub(super) fn take_notifications(&mut self, connection: &Connection) -> Awake {
        let features = &connection.features;
        let split = features.split_event_channels;
        let transmit = self.xen.take_notifications(features.transmit_port);
        let receive = if split { self.xen.take_notifications(features.receive_port) } else { 0 };
        self.counters.frontend_notifications += transmit + receive;
        let receive = if split { receive } else { transmit };
        let always = !self.options.notifications_required || connection.just_connected;
        let injected = core::mem::take(&mut self.injected);
        Awake { transmit: always || transmit > 0, receive: always || injected || receive > 0 }
    }

    /// Counts a missed notification on `ring` if the guest published
    /// requests past the `req_event` the backend set, without notifying.
    pub(super) fn missed_notification(&mut self, ring: Ring) {
        let message = std::format!("{ring:?} requests published past req_event without a notification");
        self.violation(Violation::MissedNotification, message);
    }

    /// Queues the response to transmit request `id`; `mapping` is the
    /// slot's grant mapping, ended when the response is written.
    pub(super) fn answer_transmit(
        &mut self,
        connection: &mut Connection,
        id: u16,
        status: i16,
        mapping: Option<SimMapping>,
    ) {
        let sent = self.hostility.mangle_id(Ring::Transmit, id, &connection.transmit_ids);
        connection.transmit_ids.sent(sent);
        let status = if self.hostility.null_fault(NullFault::OnData) { NETIF_RSP_NULL } else { status };
        let words = TxResponse { id: sent, status }.encode();
        let release_at = self.step_number + self.hostility.delay();
        let held = Held { words, mask: TRANSMIT_MASK, release_at, mapping, request_id: Some(id) };
        connection.held_transmit.push_back(held);
    }

    /// Queues the `NETIF_RSP_NULL` response of an extra-info slot.
    pub(super) fn answer_extra_info(&mut self, connection: &mut Connection) {
        let status = if self.hostility.null_fault(NullFault::Withheld) { NETIF_RSP_OKAY } else { NETIF_RSP_NULL };
        let words = TxResponse { id: 0, status }.encode();
        let release_at = self.step_number + self.hostility.delay();
        let held = Held { words, mask: NULL_MASK, release_at, mapping: None, request_id: None };
        connection.held_transmit.push_back(held);
    }

    /// Queues the response to receive `request`.
    pub(super) fn answer_receive(&mut self, connection: &mut Connection, request: RxRequest, status: i16, flags: u16) {
        let id = self.hostility.mangle_id(Ring::Receive, request.id, &connection.receive_ids);
        connection.receive_ids.sent(id);
        let (offset, status) = self.hostility.mangle_receive(status);
        let flags = self.hostility.mangle_receive_flags(flags);
        let words = RxResponse { id, offset, flags, status }.encode();
        let release_at = self.step_number + self.hostility.delay();
        let held = Held { words, mask: RECEIVE_MASK, release_at, mapping: None, request_id: Some(request.id) };
        connection.held_receive.push_back(held);
    }

    /// Queues an extra-info slot (`struct netif_extra_info`) in the place
    /// of receive `request`, which it uses up.
    pub(super) fn answer_receive_extra(&mut self, connection: &mut Connection, request: RxRequest, extra: ExtraInfo) {
        let words = extra.encode();
        let release_at = self.step_number + self.hostility.delay();
        let held = Held { words, mask: RECEIVE_MASK, release_at, mapping: None, request_id: Some(request.id) };
        connection.held_receive.push_back(held);
    }

    /// Writes the responses that are due on both rings, publishes, and
    /// notifies the guest where it asked.
    pub(super) fn release_due(&mut self, connection: &mut Connection) {
        let (grants, now) = (self.xen.grants(), self.step_number);
        let transmit =
            release(grants, &mut connection.transmit, &mut connection.held_transmit, &mut connection.transmit_ids, now);
        let receive =
            release(grants, &mut connection.receive, &mut connection.held_receive, &mut connection.receive_ids, now);
        self.counters.transmit_responses += transmit.written;
        self.counters.receive_responses += receive.written;
        let features = &connection.features;
        let (transmit_port, receive_port) = (features.transmit_port, features.receive_port);
        if transmit.notify {
            self.notify_guest(transmit_port);
        }
        if receive.notify && !(transmit.notify && transmit_port == receive_port) {
            self.notify_guest(receive_port);
        }
    }

    /// Sets the response producers the hostile modes push ahead, and
    /// notifies the guest so it looks.
    pub(super) fn push_producers_ahead(&mut self, connection: &mut Connection) {
        let grants = self.xen.grants();
        for (ring, by) in self.hostility.producers_ahead() {
            let features = &connection.features;
            let port = match ring {
                Ring::Transmit => {
                    push_ahead(grants, &mut connection.transmit, by);
                    features.transmit_port
                }
                Ring::Receive => {
                    push_ahead(grants, &mut connection.receive, by);
                    features.receive_port
                }
            };
            self.notify_guest(port);
        }
    }
}

fn push_ahead<const WORDS: usize>(grants: &SimGrantTable, ring: &mut MappedRing<WORDS>, by: u32) {
    ring.force_response_producer(grants, ring.response_producer().wrapping_add(by));
}

/// Writes `held`'s due responses in order and publishes them.
fn release<const WORDS: usize>(
    grants: &SimGrantTable,
    ring: &mut MappedRing<WORDS>,
    held: &mut VecDeque<Held<WORDS>>,
    ids: &mut IdTracker,
    now: u64,
) -> Released {
    let mut written = 0;
    while held.front().is_some_and(|response| response.release_at <= now) {
        let response = held.pop_front().expect("a front was just seen");
        ring.push_with(grants, |slot| {
            core::array::from_fn(|word| merge(slot[word], response.words[word], response.mask[word]))
        });
        if let Some(mapping) = response.mapping {
            grants.unmap(mapping).expect("the backend's own mapping is live");
        }
        if let Some(id) = response.request_id {
            ids.answered(id);
        }
        written += 1;
    }
    Released { written, notify: written > 0 && ring.publish(grants) }
}

/// `new`'s bits where `mask` is set, `old`'s elsewhere.
fn merge(old: u32, new: u32, mask: u32) -> u32 {
    (old & !mask) | (new & mask)
}
