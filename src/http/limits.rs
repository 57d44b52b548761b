//! The limits one connection works within: buffer sizes, body size, timers.
//!
//! Every byte a [`Connection`](super::Connection) holds lives in one of two
//! buffers whose sizes come from here, allocated once when the connection is
//! made: the head buffer (`max_head_bytes`) and the output queue
//! ([`Limits::output_queue_bytes`]). Their sum is the connection's memory
//! bound, whatever the client sends.
//!
//! Contract: any combination of values is accepted and never makes the
//! engine panic; nonsensical ones (a zero head buffer) only make every request
//! fail with the proper status.

use super::options::MAX_GENERATED_BYTES;
use core::time::Duration;

/// The smallest output queue, beyond the head buffer's size, that is always
/// enough for any response head the engine writes plus a chunk frame: what
/// a head copies from the request (a `Content-Type`, extra header fields)
/// is never longer than the request head, and the rest (status line,
/// framing, connection, the instance's fields with a name of at most
/// [`MAX_INSTANCE_NAME_BYTES`](super::identity::MAX_INSTANCE_NAME_BYTES)
/// bytes) stays under 400 bytes.
pub const RESPONSE_OVERHEAD_BYTES: usize = 512;

/// What one connection may hold and how long it may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest request head (request line and header fields, with their
    /// line ends) accepted; beyond it the answer is 431. Also bounds a chunked
    /// body's trailer section.
    pub max_head_bytes: usize,
    /// The largest request body accepted, if any; beyond it the answer is 413
    /// (or, for a chunked body whose echo has begun, the connection is cut).
    pub max_body_bytes: Option<u64>,
    /// The output queue's size: responses wait here until the caller takes
    /// them. Raised to `max_head_bytes + RESPONSE_OVERHEAD_BYTES` if smaller.
    pub output_bytes: usize,
    /// How long a connection may go without progress (no byte consumed in
    /// either direction) before it is ended: quietly between requests, with a
    /// 408 while a request is incomplete, by abort once a response has begun.
    pub idle_timeout: Duration,
    /// How long a request head may take: the first from the moment the
    /// connection is accepted, later ones from their first byte (empty lines
    /// before a head count). A client that sends nothing is closed quietly
    /// after it; slow senders get a 408 even if they trickle bytes in.
    pub head_timeout: Duration,
    /// The slowest a transfer may move once a request is being answered
    /// (its body read, its response written), in bytes a second, counting
    /// both directions; 0 turns the floor off. A transfer may fall behind
    /// this rate by at most `rate_grace`; then it ends as a stall does
    /// (408 before the response began, an abort after).
    pub min_rate_bytes_per_second: u32,
    /// How far behind the minimum rate a transfer may fall (see
    /// `min_rate_bytes_per_second`); also the longest a transfer may stand
    /// still however fast it moved before.
    pub rate_grace: Duration,
    /// The most bytes a request may ask to be generated (`bytes=`; more is
    /// a 400). [`MAX_GENERATED_BYTES`] unless a test wants less.
    pub max_generated_bytes: u64,
}

impl Limits {
    /// The output queue's real size: `output_bytes`, raised so that the
    /// largest response head always fits.
    pub fn output_queue_bytes(&self) -> usize {
        self.output_bytes.max(self.max_head_bytes.saturating_add(RESPONSE_OVERHEAD_BYTES))
    }

    /// How much later a transfer's deadline moves for `bytes` moved at the
    /// minimum rate (nothing when the floor is off).
    pub fn rate_credit(&self, bytes: usize) -> Duration {
        match u64::from(self.min_rate_bytes_per_second) {
            0 => Duration::ZERO,
            rate => Duration::from_millis((bytes as u64).saturating_mul(1000) / rate),
        }
    }

    /// The most bytes a connection with these limits ever buffers.
    pub fn memory_bound(&self) -> usize {
        self.max_head_bytes.saturating_add(self.output_queue_bytes())
    }
}

impl Default for Limits {
    /// 8 KiB heads, no body limit, a 16 KiB output queue, 30 s idle and
    /// 10 s head timeouts, transfers at least 1 KiB/s with 10 s of grace,
    /// generated bodies up to 1 GiB.
    fn default() -> Limits {
        Limits {
            max_head_bytes: 8 * 1024,
            max_body_bytes: None,
            output_bytes: 16 * 1024,
            idle_timeout: Duration::from_secs(30),
            head_timeout: Duration::from_secs(10),
            min_rate_bytes_per_second: 1024,
            rate_grace: Duration::from_secs(10),
            max_generated_bytes: MAX_GENERATED_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_queue_always_fits_a_response_head() {
        let limits = Limits { max_head_bytes: 64 * 1024, output_bytes: 1024, ..Limits::default() };
        assert_eq!(limits.output_queue_bytes(), 64 * 1024 + RESPONSE_OVERHEAD_BYTES);
        assert_eq!(Limits::default().output_queue_bytes(), 16 * 1024);
        assert_eq!(Limits::default().memory_bound(), 24 * 1024);
    }
}
