//! Counters: what one connection did, in a form that adds up across
//! connections.
//!
//! Each [`Connection`](super::Connection) keeps a [`Counters`]; the appliance
//! sums them ([`Counters::add`]) over closed and open connections to export
//! totals. Plain integers, no atomics: a connection is served by one loop.
//!
//! Contract: counters only grow, saturating rather than wrapping.

use super::response::Status;

/// The upper bounds of the request-duration histogram's buckets, in
/// microseconds: 0.5 ms to 10 s, about three to a decade (the engine's
/// clock counts milliseconds, so the first bucket holds the answers that
/// took under one).
pub const DURATION_BOUNDS_MICROS: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// [`DURATION_BOUNDS_MICROS`] in seconds, as Prometheus's `le` label writes them.
pub const DURATION_BOUNDS_LABELS: [&str; 14] =
    ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"];

/// How long answers took, from the request head complete to the last byte
/// of the response in the connection's output queue: a count per bucket
/// (the last one past every bound), their sum and their count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Durations {
    buckets: [u64; DURATION_BOUNDS_MICROS.len() + 1],
    sum_micros: u64,
    count: u64,
}

impl Durations {
    /// Counts one answer that took `micros`.
    pub fn record(&mut self, micros: u64) {
        let bucket =
            DURATION_BOUNDS_MICROS.iter().position(|&bound| micros <= bound).unwrap_or(DURATION_BOUNDS_MICROS.len());
        self.buckets[bucket] = self.buckets[bucket].saturating_add(1);
        self.sum_micros = self.sum_micros.saturating_add(micros);
        self.count = self.count.saturating_add(1);
    }

    /// Answers in each bucket of [`DURATION_BOUNDS_MICROS`] alone (not
    /// cumulative); the rest of [`Durations::count`] took longer.
    pub fn buckets(&self) -> &[u64] {
        &self.buckets[..DURATION_BOUNDS_MICROS.len()]
    }

    /// The time all of them took, in microseconds.
    pub fn sum_micros(&self) -> u64 {
        self.sum_micros
    }

    /// How many answers.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn add(&mut self, other: &Durations) {
        for (total, count) in self.buckets.iter_mut().zip(other.buckets) {
            *total = total.saturating_add(count);
        }
        self.sum_micros = self.sum_micros.saturating_add(other.sum_micros);
        self.count = self.count.saturating_add(other.count);
    }
}

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
    /// How long the answers to complete request heads took.
    pub durations: Durations,
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
        self.durations.add(&other.durations);
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

    #[test]
    fn durations_fall_in_the_first_bucket_they_fit_and_add_up() {
        let mut one = Counters::default();
        for micros in [0, 500, 501, 1_000_000, 10_000_000, 10_000_001] {
            one.durations.record(micros);
        }
        let mut total = Counters::default();
        total.add(&one);
        total.add(&one);
        let buckets = total.durations.buckets();
        assert_eq!((buckets[0], buckets[1], buckets[10], buckets[13]), (4, 2, 2, 2));
        assert_eq!(buckets.iter().sum::<u64>(), 10, "the one past 10 s is only in the count");
        assert_eq!(total.durations.count(), 12);
        assert_eq!(total.durations.sum_micros(), 2 * (500 + 501 + 1_000_000 + 10_000_000 + 10_000_001));
        assert!(DURATION_BOUNDS_MICROS.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
