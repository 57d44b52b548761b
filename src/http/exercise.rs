//! A scripted peer that drives a [`Connection`] and checks the engine's
//! invariants after every call: the shared core of the cargo-fuzz target
//! (`fuzz/fuzz_targets/http_connection.rs`) and the stable fuzz smoke test.
//!
//! A script is arbitrary bytes: the first byte picks the limits and how many
//! of the following bytes are control bytes (each one an action: offer input
//! in a piece of some size, drain some output, let time pass); the rest is
//! the peer's input. Once the control bytes are used up, the rest of the input
//! is offered with output fully drained, then the peer closes. Whenever the
//! connection waits out a delay its request asked for (`delay=`), the peer
//! lets that time pass. Generated bodies (`bytes=`) are capped at
//! [`FUZZ_MAX_GENERATED_BYTES`] in every limit set, so one input stays fast;
//! the rest of a script's meaning is what it was before the echo options.
//!
//! Contract: [`drive`] panics (that is its purpose) exactly when the engine
//! breaks an invariant: a buffer over its bound, a byte taken that was not
//! offered, output after an error response, a close that is taken back, no
//! progress while the output is empty, or a connection that does not ask to
//! be closed once the peer has closed and every byte was sent; a response
//! (final status, from the engine or asked for) after an error response. It
//! is compiled
//! only for tests and with the `fuzzing` feature, never into the appliance.

use super::connection::{CloseMode, Connection};
use super::counters::Counters;
use super::limits::Limits;
use super::response::Status;
use super::time::Instant;
use alloc::vec::Vec;
use core::time::Duration;

/// What a driven connection did.
#[derive(Debug)]
pub struct Outcome {
    /// Every byte the connection sent, in order.
    pub output: Vec<u8>,
    /// Its counters at the end.
    pub counters: Counters,
    /// How it asked to be closed at the end.
    pub close: Option<CloseMode>,
    /// The most bytes it buffered at any point.
    pub peak_buffered_bytes: usize,
}

/// The most bytes a script's requests may have generated (`bytes=`).
pub const FUZZ_MAX_GENERATED_BYTES: u64 = 64 * 1024;

/// The limits a script can pick: the defaults, or small ones that make
/// every limit easy to reach; generated bodies are capped in both.
pub fn limits_for(selector: u8) -> Limits {
    if selector & 1 == 0 {
        return Limits { max_generated_bytes: FUZZ_MAX_GENERATED_BYTES, ..Limits::default() };
    }
    Limits {
        max_head_bytes: 96 + usize::from(selector >> 1),
        max_body_bytes: Some(u64::from(selector) * 4),
        output_bytes: 0,
        idle_timeout: Duration::from_secs(5),
        head_timeout: Duration::from_secs(2),
        min_rate_bytes_per_second: u32::from(selector >> 3) * 16,
        rate_grace: Duration::from_secs(3),
        max_generated_bytes: u64::from(selector) * 64,
    }
}

/// Checks that `bytes`, written as HTML text (as the HTML page writes
/// every byte of a request), can be no markup: valid UTF-8 without `<`,
/// `>`, `"` or `'`, every `&` the start of one of the five character
/// references used, no control character but tab, CR and LF.
pub fn check_html_text(bytes: &[u8]) {
    let mut written = Vec::new();
    super::html::put_text(&mut written, bytes);
    let text = core::str::from_utf8(&written).expect("HTML text is UTF-8");
    assert!(!text.contains(['<', '>', '"', '\'']), "markup in {text:?}");
    for (index, _) in text.match_indices('&') {
        let rest = &text[index..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|reference| rest.starts_with(reference)),
            "a bare & in {text:?}"
        );
    }
    assert!(
        !text.chars().any(|character| character.is_ascii_control() && !"\t\r\n".contains(character)),
        "a control byte in {text:?}"
    );
}

/// Runs the script in `data` (see the module documentation).
pub fn drive(data: &[u8]) -> Outcome {
    let Some((&selector, rest)) = data.split_first() else {
        return drive_with(Limits::default(), &[], &[]);
    };
    let control_length = usize::from(selector >> 2).min(rest.len());
    let (control, input) = rest.split_at(control_length);
    drive_with(limits_for(selector), control, input)
}

/// Runs `control` against a connection with `limits` fed from `input`.
pub fn drive_with(limits: Limits, control: &[u8], input: &[u8]) -> Outcome {
    let mut driver = Driver::new(limits, input);
    for &action in control {
        driver.act(action);
    }
    driver.finish()
}

struct Driver<'a> {
    connection: Connection,
    input: &'a [u8],
    position: usize,
    now: Instant,
    output: Vec<u8>,
    peak_buffered_bytes: usize,
    final_responses_at_error: Option<u64>,
    close: Option<CloseMode>,
}

impl<'a> Driver<'a> {
    fn new(limits: Limits, input: &'a [u8]) -> Driver<'a> {
        Driver {
            connection: Connection::new(limits, Instant::ZERO),
            input,
            position: 0,
            now: Instant::ZERO,
            output: Vec::new(),
            peak_buffered_bytes: 0,
            final_responses_at_error: None,
            close: None,
        }
    }

    fn act(&mut self, action: u8) {
        let amount = usize::from(action >> 2);
        match action & 3 {
            0 => self.offer(1 + amount * amount),
            1 => self.drain(amount * 16, action & 0x80 != 0),
            2 => self.wait(Duration::from_millis((amount * amount * 50) as u64)),
            _ => {
                self.offer(usize::MAX);
                self.drain(usize::MAX, false);
            }
        }
    }

    fn offer(&mut self, size: usize) {
        let remaining = &self.input[self.position..];
        let offered = &remaining[..size.min(remaining.len())];
        let taken = self.connection.receive(offered, self.now);
        assert!(taken <= offered.len(), "took {taken} of {} bytes offered", offered.len());
        self.position += taken;
        self.check();
    }

    fn drain(&mut self, limit: usize, use_fill: bool) {
        if use_fill {
            let mut buffer = [0u8; 512];
            let size = limit.min(buffer.len());
            let count = self.connection.fill(&mut buffer[..size]);
            self.output.extend_from_slice(&buffer[..count]);
        } else {
            let pending = self.connection.pending_output();
            let count = limit.min(pending.len());
            self.output.extend_from_slice(&pending[..count]);
            self.connection.consume_output(count);
        }
        self.check();
    }

    fn drain_all(&mut self) {
        while !self.connection.pending_output().is_empty() {
            self.drain(usize::MAX, false);
        }
    }

    /// Lets the time pass that a delayed answer waits for, if one waits;
    /// returns whether one did.
    fn wait_out_delay(&mut self) -> bool {
        let Some(until) = self.connection.waiting_until() else { return false };
        let wait = until.saturating_duration_since(self.now);
        self.wait(wait);
        true
    }

    fn wait(&mut self, duration: Duration) {
        self.now = self.now.saturating_add(duration);
        self.connection.on_timeout(self.now);
        self.check();
    }

    /// Offers the rest of the input with output drained, closes the peer's
    /// side, and checks the connection then asks to be closed.
    fn finish(mut self) -> Outcome {
        while self.position < self.input.len() {
            self.drain_all();
            let before = self.position;
            self.offer(usize::MAX);
            let mut progressed = self.position > before || !self.connection.pending_output().is_empty();
            if !progressed && self.wait_out_delay() {
                progressed = true;
            }
            assert!(progressed, "no progress with the output queue empty");
        }
        self.connection.peer_closed(self.now);
        self.check();
        self.drain_all();
        while self.wait_out_delay() {
            self.drain_all();
        }
        assert!(self.connection.wants_close().is_some(), "the peer closed and all was sent, yet the connection lives");
        Outcome {
            output: self.output,
            counters: self.connection.counters().clone(),
            close: self.connection.wants_close(),
            peak_buffered_bytes: self.peak_buffered_bytes,
        }
    }

    fn check(&mut self) {
        let buffered = self.connection.buffered_bytes();
        assert!(buffered <= self.connection.limits().memory_bound(), "buffered {buffered} bytes");
        self.peak_buffered_bytes = self.peak_buffered_bytes.max(buffered);
        let counters = self.connection.counters().clone();
        self.check_error_is_last(&counters, self.connection.is_closing());
        self.check_close_is_final(self.connection.wants_close());
        assert!(self.output.is_empty() || self.output.starts_with(b"HTTP/1.1 "), "output is not a response");
    }

    fn check_error_is_last(&mut self, counters: &Counters, closing: bool) {
        let errors: u64 = Status::ALL.iter().filter(|status| status.is_error()).map(|&s| counters.responses(s)).sum();
        let finals: u64 =
            (2..=5).map(|class| counters.responses_in_class(class) + counters.requested_in_class(class)).sum();
        if errors == 0 {
            return;
        }
        assert!(closing, "an error response was queued but the connection reads on");
        let at_error = *self.final_responses_at_error.get_or_insert(finals);
        assert_eq!(finals, at_error, "a response followed an error response");
    }

    fn check_close_is_final(&mut self, close: Option<CloseMode>) {
        match (self.close, close) {
            (Some(CloseMode::Abort), Some(CloseMode::Abort)) | (Some(CloseMode::Graceful), Some(_)) | (None, _) => {}
            (before, after) => panic!("close request went from {before:?} to {after:?}"),
        }
        self.close = close;
    }
}
