//! Counters: what one connection did, in a form that adds up across
//! connections.
//!
//! Each [`Connection`](super::Connection) keeps a [`Counters`]; the appliance
//! sums them ([`Counters::add`]) over closed and open connections to export
//! totals. Plain integers, no atomics: a connection is served by one loop.
//!
//! Contract: counters only grow, saturating rather than wrapping.

use super::response::Status;

/// Requests, responses by status, bytes and abnormal endings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Request heads that were complete and valid (echoed, or refused with
    /// 413 for the body they announced).
    pub requests: u64,
    /// Bytes taken from the caller's input (including bytes discarded while closing).
    pub bytes_received: u64,
    /// Bytes of response the caller took from the output queue.
    pub bytes_sent: u64,
    /// Connections ended by a timer (idle, slow head, stalled body or output).
    pub timeouts: u64,
    /// Responses that had begun and could not be completed (body cut short,
    /// bad chunk framing after the echo began, a stalled client).
    pub cut_responses: u64,
    responses: [u64; Status::ALL.len()],
    /// Responses whose status the request chose (`status=`), by class:
    /// 1xx (interim) to 5xx.
    requested: [u64; 5],
}

impl Counters {
    /// Responses sent with `status` (100 Continue included, as interim responses).
    pub fn responses(&self, status: Status) -> u64 {
        self.responses[status.index()]
    }

    /// Responses sent whose code is in `class` (1 for 1xx, …, 5 for 5xx).
    pub fn responses_in_class(&self, class: u16) -> u64 {
        Status::ALL.iter().filter(|status| status.class() == class).map(|&status| self.responses(status)).sum()
    }

    /// Responses whose status the request chose, in `class` (1 for 1xx, …,
    /// 5 for 5xx). They are not among [`Counters::responses`]: a 503 asked
    /// for is not the appliance refusing.
    pub fn requested_in_class(&self, class: u16) -> u64 {
        match class {
            1..=5 => self.requested[usize::from(class - 1)],
            _ => 0,
        }
    }

    /// Counts one response with the status `code` (100–599) a request chose.
    pub(crate) fn record_requested(&mut self, code: u16) {
        let class = usize::from(code / 100).clamp(1, 5);
        let count = &mut self.requested[class - 1];
        *count = count.saturating_add(1);
    }

    /// Counts one response with `status`; the appliance uses it for the 503s
    /// it sends itself.
    pub fn record_response(&mut self, status: Status) {
        let count = &mut self.responses[status.index()];
        *count = count.saturating_add(1);
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Counters) {
        self.requests = self.requests.saturating_add(other.requests);
        self.bytes_received = self.bytes_received.saturating_add(other.bytes_received);
        self.bytes_sent = self.bytes_sent.saturating_add(other.bytes_sent);
        self.timeouts = self.timeouts.saturating_add(other.timeouts);
        self.cut_responses = self.cut_responses.saturating_add(other.cut_responses);
        for (total, count) in self.responses.iter_mut().zip(other.responses) {
            *total = total.saturating_add(count);
        }
        for (total, count) in self.requested.iter_mut().zip(other.requested) {
            *total = total.saturating_add(count);
        }
    }

    pub(crate) fn count_request(&mut self) {
        self.requests = self.requests.saturating_add(1);
    }

    pub(crate) fn count_received(&mut self, bytes: usize) {
        self.bytes_received = self.bytes_received.saturating_add(bytes as u64);
    }

    pub(crate) fn count_sent(&mut self, bytes: usize) {
        self.bytes_sent = self.bytes_sent.saturating_add(bytes as u64);
    }

    pub(crate) fn count_timeout(&mut self) {
        self.timeouts = self.timeouts.saturating_add(1);
    }

    pub(crate) fn count_cut_response(&mut self) {
        self.cut_responses = self.cut_responses.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_by_status_and_class() {
        let mut one = Counters::default();
        one.record_response(Status::Ok);
        one.record_response(Status::BadRequest);
        one.count_received(10);
        let mut total = Counters::default();
        total.add(&one);
        total.add(&one);
        assert_eq!(total.responses(Status::Ok), 2);
        assert_eq!(total.responses_in_class(4), 2);
        assert_eq!(total.responses_in_class(5), 0);
        assert_eq!(total.bytes_received, 20);
        one.record_requested(503);
        one.record_requested(103);
        total.add(&one);
        assert_eq!((total.requested_in_class(5), total.requested_in_class(1)), (1, 1));
        assert_eq!(total.responses_in_class(5), 0, "a status asked for is not the appliance's own");
        assert_eq!(total.requested_in_class(6), 0);
    }
}
