//! One HTTP/1.1 connection as a state machine: bytes in, bytes out, time
//! passed in.
//!
//! The caller owns the socket and the clock. It hands received bytes to
//! [`Connection::receive`], which takes as many as it can use now (fewer
//! than offered when the output side is full: backpressure, the rest stays
//! in the socket); it sends what [`Connection::pending_output`] holds and
//! reports what the socket took with [`Connection::consume_output`]; it
//! calls [`Connection::on_timeout`] when [`Connection::poll_timeout`]'s
//! deadline has passed, [`Connection::peer_closed`] once the peer's FIN has
//! been seen and every received byte taken, and closes the socket when
//! [`Connection::wants_close`] says how.
//!
//! Phases: reading a head → (a delay the request asked for) → (an interim
//! response it asked for) → answering it (no body), echoing its body, or a
//! shaped answer (read the body, then write what was asked for) → reading
//! the next head (keep-alive) or closing. Any error becomes a *failing*
//! phase (queue the error response, which says `Connection: close`) and then
//! *closing*, where input is discarded; nothing leaves closing.
//!
//! Contract: never panics and never blocks; holds at most
//! [`Limits::memory_bound`] bytes of buffers, allocated in `new`; answers
//! pipelined requests in order; after an error response, sends nothing but
//! that response and asks to close.

use super::counters::Counters;
use super::echo::{BodyEcho, BodyStep, EchoContext, EchoFailure, write_head_echo};
use super::health::Readiness;
use super::identity::{Endpoints, Identity, Instance};
use super::limits::Limits;
use super::output::OutputQueue;
use super::request::{HeadBuffer, RequestFraming, RequestHead};
use super::response::{ConnectionHeader, ResponseFraming, ResponseHead, Shaping, Status, write_error_response};
use super::shaped::{BodyDigest, ShapedAnswer};
use super::time::Instant;
use alloc::rc::Rc;
use core::cell::Cell;

/// How the caller should close the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseMode {
    /// Everything queued has been taken: close normally (FIN after the
    /// socket's own buffer drains). Input may still be offered; it is discarded.
    Graceful,
    /// The peer stopped taking output, or a response was abandoned: reset
    /// the connection (RST); queued output has been dropped.
    Abort,
}

// The phase lives inline in each connection, allocated with it: boxing
// the answer (a SHA-256 state among it) would allocate for every request.
#[allow(clippy::large_enum_variant)]
enum Phase {
    ReadingHead,
    /// Waiting until `until` before answering, as the request asked.
    Delaying {
        until: Instant,
        request: RequestHead,
    },
    /// Queuing the interim (1xx) response the request asked for.
    Interim(RequestHead),
    AnsweringHead(RequestHead),
    Answering(Answer),
    Failing {
        status: Status,
        head_only: bool,
    },
    Closing(CloseMode),
}

/// An answer that reads a body: the streamed echo, or a shaped answer.
#[allow(clippy::large_enum_variant)]
enum Answer {
    Echo(BodyEcho),
    Shaped(ShapedAnswer),
}

impl Answer {
    fn request(&self) -> &RequestHead {
        match self {
            Answer::Echo(echo) => echo.request(),
            Answer::Shaped(shaped) => shaped.request(),
        }
    }

    fn is_committed(&self) -> bool {
        match self {
            Answer::Echo(echo) => echo.is_committed(),
            Answer::Shaped(shaped) => shaped.is_committed(),
        }
    }

    fn has_read_body(&self) -> bool {
        match self {
            Answer::Echo(echo) => echo.has_read_body(),
            Answer::Shaped(shaped) => shaped.has_read_body(),
        }
    }

    fn step(&mut self, input: &[u8], context: &mut EchoContext<'_>) -> Result<BodyStep, EchoFailure> {
        match self {
            Answer::Echo(echo) => echo.step(input, context),
            Answer::Shaped(shaped) => shaped.step(input, context),
        }
    }
}

/// Whether `request` announces a body with at least one byte.
fn expects_body(request: &RequestHead) -> bool {
    !matches!(request.framing, RequestFraming::NoBody | RequestFraming::Length(0))
}

/// What one step of the state machine did.
struct Step {
    consumed: usize,
    moved: bool,
}

impl Step {
    const STUCK: Step = Step { consumed: 0, moved: false };

    fn took(consumed: usize) -> Step {
        Step { consumed, moved: false }
    }

    fn moved(consumed: usize) -> Step {
        Step { consumed, moved: true }
    }
}

/// The connection's view of time: the latest instant it was given, the
/// last progress, when the current head began, and the deadline the minimum
/// transfer rate sets while a request is being answered. Progress is stamped
/// with the latest instant (so output taken is stamped with the time of the
/// last `receive` or `on_timeout` call); time never runs backwards here.
struct Clock {
    latest: Instant,
    last_progress: Instant,
    head_started: Option<Instant>,
    rate_deadline: Option<Instant>,
    /// When the head of the request being answered was complete (for the
    /// request-duration histogram).
    answer_started: Option<Instant>,
}

impl Clock {
    fn starting_at(now: Instant) -> Clock {
        // The first head's timer runs from the accept: a client that sends
        // nothing, or only empty lines, meets it.
        Clock { latest: now, last_progress: now, head_started: Some(now), rate_deadline: None, answer_started: None }
    }

    fn observe(&mut self, now: Instant) {
        self.latest = self.latest.max(now);
    }

    fn progress(&mut self) {
        self.last_progress = self.latest;
    }

    /// Moves the rate deadline for `moved` bytes while a transfer runs
    /// (starting it `rate_grace` from now), or drops it when none does.
    fn track_rate(&mut self, transferring: bool, moved: usize, limits: &Limits) {
        if !transferring || limits.min_rate_bytes_per_second == 0 {
            self.rate_deadline = None;
            return;
        }
        let ceiling = self.latest.saturating_add(limits.rate_grace);
        let deadline = match self.rate_deadline {
            None => ceiling,
            Some(deadline) => deadline.saturating_add(limits.rate_credit(moved)).min(ceiling),
        };
        self.rate_deadline = Some(deadline);
    }
}

/// One HTTP/1.1 echo connection. See the module documentation for the
/// caller's side of the contract.
pub struct Connection {
    limits: Limits,
    head: HeadBuffer,
    output: OutputQueue,
    phase: Phase,
    clock: Clock,
    input_finished: bool,
    counters: Counters,
    /// Which instance answers (shared by every connection).
    instance: Option<Rc<Instance>>,
    /// The connection's two ends, as the caller knows them.
    endpoints: Endpoints,
    /// The length and hash of the body a shaped answer reads.
    digest: BodyDigest,
    /// What `/readyz` says (shared by every connection; ready without it).
    readiness: Option<Rc<Cell<Readiness>>>,
    /// The appliance is draining: no request after the one being read or
    /// answered, which says `Connection: close`.
    draining: bool,
}

impl Connection {
    /// A connection accepted at `now`, with its buffers allocated.
    pub fn new(limits: Limits, now: Instant) -> Connection {
        Connection {
            head: HeadBuffer::new(limits.max_head_bytes),
            output: OutputQueue::new(limits.output_queue_bytes()),
            limits,
            phase: Phase::ReadingHead,
            clock: Clock::starting_at(now),
            input_finished: false,
            counters: Counters::default(),
            instance: None,
            endpoints: Endpoints::default(),
            digest: BodyDigest::default(),
            readiness: None,
            draining: false,
        }
    }

    /// Says where to read what `/readyz` answers (kept across
    /// [`Connection::recycle`]).
    pub fn set_readiness(&mut self, readiness: Rc<Cell<Readiness>>) {
        self.readiness = Some(readiness);
    }

    /// The appliance is draining: this connection takes no further request.
    /// Between requests (no byte of a next head, no output waiting) it asks
    /// to close at once; a request being read or answered is answered, with
    /// `Connection: close` if its response head is not queued yet, and the
    /// connection closes after it. Forgotten by [`Connection::recycle`].
    pub fn drain(&mut self) {
        self.draining = true;
        match &mut self.phase {
            Phase::ReadingHead if self.head.is_empty() && self.output.is_empty() => {
                self.phase = Phase::Closing(CloseMode::Graceful);
            }
            Phase::Delaying { request, .. } | Phase::Interim(request) | Phase::AnsweringHead(request) => {
                request.keep_alive = false;
            }
            Phase::Answering(Answer::Echo(echo)) => echo.request_mut().keep_alive = false,
            Phase::Answering(Answer::Shaped(shaped)) => shaped.request_mut().keep_alive = false,
            Phase::ReadingHead | Phase::Failing { .. } | Phase::Closing(_) => {}
        }
    }

    /// Says which instance answers (for the requests that ask); kept
    /// across [`Connection::recycle`].
    pub fn set_instance(&mut self, instance: Rc<Instance>) {
        self.instance = Some(instance);
    }

    /// Says who the client is and which address it reached (for the
    /// requests that ask); forgotten by [`Connection::recycle`].
    pub fn set_endpoints(&mut self, endpoints: Endpoints) {
        self.endpoints = endpoints;
    }

    /// Makes this connection a fresh one accepted at `now`, keeping its
    /// buffers (no allocation); returns the counters of the one it was.
    pub fn recycle(&mut self, now: Instant) -> Counters {
        self.head.clear();
        self.output.clear();
        self.phase = Phase::ReadingHead;
        self.clock = Clock::starting_at(now);
        self.input_finished = false;
        self.endpoints = Endpoints::default();
        self.draining = false;
        core::mem::take(&mut self.counters)
    }

    /// Takes bytes received from the peer; returns how many it took (the
    /// rest must be offered again later, after output has drained). Call it
    /// with an empty slice too: it also moves work along.
    pub fn receive(&mut self, input: &[u8], now: Instant) -> usize {
        self.clock.observe(now);
        let consumed = self.run(input);
        if consumed > 0 {
            self.clock.progress();
            self.counters.count_received(consumed);
        }
        self.track_rate(consumed);
        consumed
    }

    /// The bytes waiting to be sent, oldest first.
    pub fn pending_output(&self) -> &[u8] {
        self.output.pending()
    }

    /// Reports that the first `count` bytes of [`Connection::pending_output`]
    /// were sent (stamped as progress at the latest instant given to
    /// `receive`, `on_timeout` or `peer_closed`); more output may be queued
    /// as a result.
    pub fn consume_output(&mut self, count: usize) {
        let consumed = self.output.consume(count);
        if consumed > 0 {
            self.counters.count_sent(consumed);
            self.clock.progress();
            self.run(&[]);
        }
        self.track_rate(consumed);
    }

    /// Copies pending output into `destination` and consumes it; returns
    /// how many bytes it copied.
    pub fn fill(&mut self, destination: &mut [u8]) -> usize {
        let pending = self.output.pending();
        let count = pending.len().min(destination.len());
        destination[..count].copy_from_slice(&pending[..count]);
        self.consume_output(count);
        count
    }

    /// When [`Connection::on_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.wants_close().is_some() {
            return None;
        }
        if let Phase::Delaying { until, .. } = self.phase {
            // Neither the idle nor the head timer runs while the answer
            // waits; the rate floor does for output still being taken.
            return Some(self.clock.rate_deadline.map_or(until, |deadline| deadline.min(until)));
        }
        let idle_deadline = self.clock.last_progress.saturating_add(self.limits.idle_timeout);
        let head_deadline = match (&self.phase, self.clock.head_started) {
            (Phase::ReadingHead, Some(started)) => started.saturating_add(self.limits.head_timeout),
            _ => idle_deadline,
        };
        let rate_deadline = self.clock.rate_deadline.unwrap_or(idle_deadline);
        Some(idle_deadline.min(head_deadline).min(rate_deadline))
    }

    /// Ends what has run out of time at `now` (408, a quiet close, or an
    /// abort); does nothing before the deadline.
    pub fn on_timeout(&mut self, now: Instant) {
        self.clock.observe(now);
        if matches!(self.phase, Phase::Delaying { .. }) {
            // A delay that is over is no timeout: the answer begins.
            self.run(&[]);
        }
        if self.poll_timeout().is_some_and(|deadline| deadline <= now) {
            self.counters.count_timeout();
            self.clock.progress();
            self.expire();
        }
        self.track_rate(0);
    }

    /// Reports the peer's end of stream. Call it only once every received
    /// byte has been taken; calling it again changes nothing. Between
    /// requests this closes quietly; in the middle of a request it is an
    /// error (400, or a cut response if its echo had begun).
    pub fn peer_closed(&mut self, now: Instant) {
        self.clock.observe(now);
        self.input_finished = true;
        match &self.phase {
            Phase::ReadingHead if self.head.is_empty() => self.phase = Phase::Closing(CloseMode::Graceful),
            Phase::ReadingHead => self.fail(Status::BadRequest, false),
            Phase::Answering(answer) if answer.has_read_body() => {}
            Phase::Answering(answer) if !answer.is_committed() => {
                let head_only = answer.request().is_head_method;
                self.fail(Status::BadRequest, head_only);
            }
            Phase::Answering(_) => self.cut(CloseMode::Graceful),
            // A delayed or interim answer has taken no body byte yet: if one
            // was announced, it can no longer come.
            Phase::Delaying { request, .. } | Phase::Interim(request) if expects_body(request) => {
                let head_only = request.is_head_method;
                self.fail(Status::BadRequest, head_only);
            }
            Phase::Delaying { .. }
            | Phase::Interim(_)
            | Phase::AnsweringHead(_)
            | Phase::Failing { .. }
            | Phase::Closing(_) => {}
        }
        self.run(&[]);
        self.track_rate(0);
    }

    /// While a request's answer waits out the delay it asked for: the
    /// instant it begins.
    pub fn waiting_until(&self) -> Option<Instant> {
        match self.phase {
            Phase::Delaying { until, .. } => Some(until),
            _ => None,
        }
    }

    /// Whether, and how, the caller should close the socket now.
    pub fn wants_close(&self) -> Option<CloseMode> {
        match self.phase {
            Phase::Closing(CloseMode::Abort) => Some(CloseMode::Abort),
            Phase::Closing(CloseMode::Graceful) if self.output.is_empty() => Some(CloseMode::Graceful),
            _ => None,
        }
    }

    /// Whether the connection will read no further request (an error, a
    /// `close`, the peer's end of stream or a timeout ended it).
    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Failing { .. } | Phase::Closing(_))
    }

    /// What this connection has done so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The limits it was made with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes it holds now: the head being read plus queued output. Never
    /// more than [`Limits::memory_bound`].
    pub fn buffered_bytes(&self) -> usize {
        self.head.held() + self.output.len()
    }

    /// Whether a request is being answered: output waits, or a request's
    /// answer or body is under way. Only then does the rate floor apply.
    fn transferring(&self) -> bool {
        !self.output.is_empty()
            || matches!(
                self.phase,
                Phase::Interim(_) | Phase::AnsweringHead(_) | Phase::Answering(_) | Phase::Failing { .. }
            )
    }

    fn track_rate(&mut self, moved: usize) {
        let transferring = self.transferring();
        self.clock.track_rate(transferring, moved, &self.limits);
    }

    /// Runs steps until one neither takes input nor changes phase.
    fn run(&mut self, input: &[u8]) -> usize {
        let mut consumed = 0;
        loop {
            let step = self.step(&input[consumed..]);
            consumed += step.consumed;
            if step.consumed == 0 && !step.moved {
                return consumed;
            }
        }
    }

    fn step(&mut self, input: &[u8]) -> Step {
        match self.phase {
            Phase::ReadingHead => self.read_head(input),
            Phase::Delaying { until, .. } => self.end_delay(until),
            Phase::Interim(_) => self.send_interim(),
            Phase::AnsweringHead(_) => self.answer_head(),
            Phase::Answering(_) => self.answer(input),
            Phase::Failing { status, head_only } => self.send_error(status, head_only, input.len()),
            Phase::Closing(_) => Step::took(input.len()),
        }
    }

    fn read_head(&mut self, input: &[u8]) -> Step {
        let consumed = self.head.absorb(input);
        if self.clock.head_started.is_none() && consumed > 0 {
            // Empty lines before a head start its timer too.
            self.clock.head_started = Some(self.clock.latest);
        }
        match self.head.check() {
            Ok(None) => Step::took(consumed),
            Ok(Some(request)) => {
                self.accept(request);
                Step::moved(consumed)
            }
            Err(status) => {
                self.fail(status, false);
                Step::moved(consumed)
            }
        }
    }

    fn accept(&mut self, mut request: RequestHead) {
        self.clock.head_started = None;
        self.clock.answer_started = Some(self.clock.latest);
        request.keep_alive &= !self.draining;
        self.counters.count_request();
        let too_large = |length| self.limits.max_body_bytes.is_some_and(|max| length > max);
        if let RequestFraming::Length(length) = request.framing
            && too_large(length)
        {
            let head_only = request.is_head_method;
            return self.fail(Status::ContentTooLarge, head_only);
        }
        if request.probe.is_some() {
            // A probe: its body (if any) read and dropped, then the answer.
            self.phase = Phase::Answering(Answer::Shaped(ShapedAnswer::new(request, &self.limits, &mut self.digest)));
            return;
        }
        if request.options.is_plain() {
            // The plain echo, the way it went before there were options.
            self.phase = match request.framing {
                RequestFraming::NoBody => Phase::AnsweringHead(request),
                _ => Phase::Answering(Answer::Echo(BodyEcho::new(request, &self.limits))),
            };
            return;
        }
        if request.options.bytes().is_some_and(|bytes| bytes > self.limits.max_generated_bytes) {
            let head_only = request.is_head_method;
            return self.fail(Status::BadRequest, head_only);
        }
        let delay = request.options.delay();
        if !delay.is_zero() {
            let until = self.clock.latest.saturating_add(delay);
            self.phase = Phase::Delaying { until, request };
            return;
        }
        self.begin(request);
    }

    /// Starts answering `request` (its delay, if any, is over).
    fn begin(&mut self, request: RequestHead) {
        let options = &request.options;
        self.phase = if options.is_interim() {
            Phase::Interim(request)
        } else if options.is_plain() && request.framing == RequestFraming::NoBody {
            Phase::AnsweringHead(request)
        } else if options.echoes() && request.framing != RequestFraming::NoBody {
            Phase::Answering(Answer::Echo(BodyEcho::new(request, &self.limits)))
        } else {
            Phase::Answering(Answer::Shaped(ShapedAnswer::new(request, &self.limits, &mut self.digest)))
        };
    }

    /// Begins the answer once the delay is over.
    fn end_delay(&mut self, until: Instant) -> Step {
        if self.clock.latest < until {
            return Step::STUCK;
        }
        let Phase::Delaying { request, .. } = core::mem::replace(&mut self.phase, Phase::ReadingHead) else {
            return Step::STUCK;
        };
        // The timers run again from here.
        self.clock.progress();
        self.begin(request);
        Step::moved(0)
    }

    /// Queues the interim response the request asked for, then answers it
    /// as if it had not asked for a status.
    fn send_interim(&mut self) -> Step {
        let Phase::Interim(request) = &self.phase else { return Step::STUCK };
        let code = request.options.status().unwrap_or(100);
        let identity = Identity { instance: self.instance.as_deref(), local: self.endpoints.local.as_ref() };
        let shaping = Shaping { head: self.head.bytes(), options: &request.options, identity };
        let response = ResponseHead {
            status: code,
            content_type: b"",
            framing: ResponseFraming::NoBody,
            connection: ConnectionHeader::Omitted,
            shaping: Some(&shaping),
        };
        if !self.output.write_whole(|sink| response.write(sink)) {
            return Step::STUCK;
        }
        self.counters.record_requested(code);
        let Phase::Interim(mut request) = core::mem::replace(&mut self.phase, Phase::ReadingHead) else {
            return Step::STUCK;
        };
        request.options.clear_status();
        self.begin(request);
        Step::moved(0)
    }

    fn answer_head(&mut self) -> Step {
        let Phase::AnsweringHead(request) = &self.phase else { return Step::STUCK };
        if !write_head_echo(&mut self.output, self.head.bytes(), request) {
            return Step::STUCK;
        }
        let keep_alive = request.keep_alive;
        self.counters.record_response(Status::Ok);
        self.head.clear();
        self.end_exchange(keep_alive);
        Step::moved(0)
    }

    fn answer(&mut self, input: &[u8]) -> Step {
        let Phase::Answering(answer) = &mut self.phase else { return Step::STUCK };
        let mut context = EchoContext {
            output: &mut self.output,
            head: &mut self.head,
            counters: &mut self.counters,
            endpoints: &self.endpoints,
            identity: Identity { instance: self.instance.as_deref(), local: self.endpoints.local.as_ref() },
            digest: &mut self.digest,
            readiness: self.readiness.as_ref().map_or(Readiness::Ready, |readiness| readiness.get()),
        };
        let keep_alive = answer.request().keep_alive;
        let head_only = answer.request().is_head_method;
        match answer.step(input, &mut context) {
            Ok(step) if step.finished => {
                self.head.clear();
                self.end_exchange(keep_alive);
                Step::moved(step.consumed)
            }
            Ok(step) => Step::took(step.consumed),
            Err(EchoFailure::Refused(status)) => {
                self.fail(status, head_only);
                Step::moved(0)
            }
            Err(EchoFailure::Cut) => {
                self.cut(CloseMode::Graceful);
                Step::moved(0)
            }
        }
    }

    fn send_error(&mut self, status: Status, head_only: bool, discarded: usize) -> Step {
        if !self.output.write_whole(|sink| write_error_response(sink, status, head_only)) {
            return Step::took(discarded);
        }
        self.counters.record_response(status);
        self.answered();
        self.phase = Phase::Closing(CloseMode::Graceful);
        Step::moved(discarded)
    }

    /// After a complete response: the next request, or the end.
    fn end_exchange(&mut self, keep_alive: bool) {
        self.answered();
        let more = keep_alive && !self.input_finished && !self.draining;
        self.phase = if more { Phase::ReadingHead } else { Phase::Closing(CloseMode::Graceful) };
    }

    /// Answers with `status` and closes.
    fn fail(&mut self, status: Status, head_only: bool) {
        self.head.clear();
        self.clock.head_started = None;
        self.phase = Phase::Failing { status, head_only };
    }

    /// The answer to the request whose head was complete is all in the
    /// output queue: the histogram counts how long that took.
    fn answered(&mut self) {
        if let Some(started) = self.clock.answer_started.take() {
            let took = self.clock.latest.saturating_duration_since(started);
            self.counters.durations.record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        }
    }

    /// Abandons a response that has begun.
    fn cut(&mut self, mode: CloseMode) {
        self.clock.answer_started = None;
        self.counters.count_cut_response();
        self.close(mode);
    }

    fn close(&mut self, mode: CloseMode) {
        if mode == CloseMode::Abort {
            self.output.clear();
        }
        self.head.clear();
        self.phase = Phase::Closing(mode);
    }

    /// What a timeout does in each phase.
    fn expire(&mut self) {
        match &self.phase {
            Phase::ReadingHead if self.head.is_empty() && self.output.is_empty() => self.close(CloseMode::Graceful),
            Phase::ReadingHead if !self.head.is_empty() => self.fail(Status::RequestTimeout, false),
            Phase::Answering(answer) if !answer.is_committed() => {
                let head_only = answer.request().is_head_method;
                self.fail(Status::RequestTimeout, head_only);
            }
            Phase::Answering(_) => self.cut(CloseMode::Abort),
            _ => self.close(CloseMode::Abort),
        }
        self.run(&[]);
    }
}
