//! The echo itself: what is written back for one request.
//!
//! A request without a body is answered in one piece: a `text/plain` head
//! and the request head as received ([`write_head_echo`]). A request with a
//! body is answered by a [`BodyEcho`], which streams: it sends
//! `100 Continue` first if the client waits for it, commits the `200` head
//! only when the first body byte is ready to go out (or the body turns out
//! empty), then copies body data from the input to the output queue as the
//! queue has room. Until the commit, a bad body can still be refused with a
//! proper status; after it, only cut short.
//!
//! A request that asked for options ([`super::options`]) and still echoes
//! its body gets them here too: another status, extra header fields, the
//! instance's fields, `Connection: close`, a chunked response.
//!
//! Contract: a `Content-Length` request gets a `Content-Length` response
//! with the same length (unless it asked for `chunked`); a chunked request
//! gets a chunked response, one chunk per piece of data as it arrived
//! (never to an HTTP/1.0 client: such requests are refused before they get
//! here). Data is only taken from the
//! input when the queue has room for it with its framing, so the queue is the
//! whole body window. Nothing here buffers a body.

use super::body::{BodyDecoder, BodyError};
use super::counters::Counters;
use super::health::Readiness;
use super::identity::{Endpoints, Identity};
use super::limits::Limits;
use super::options::EchoOptions;
use super::output::{ByteSink, OutputQueue};
use super::request::{HeadBuffer, RequestFraming, RequestHead, Version};
use super::response::{
    CHUNK_FRAME_BYTES, CONTINUE_RESPONSE, ConnectionHeader, LAST_CHUNK, ResponseFraming, ResponseHead, Shaping, Status,
    write_chunk,
};
use super::shaped::BodyDigest;

/// The `Content-Type` of an echoed body whose request named none.
pub const DEFAULT_BODY_TYPE: &[u8] = b"application/octet-stream";

/// The `Content-Type` of an echoed request head.
pub const HEAD_ECHO_TYPE: &[u8] = b"text/plain";

/// Writes the whole answer to a request without a body (its head echoed);
/// returns false, writing nothing, if the queue has no room for it yet.
pub(crate) fn write_head_echo(output: &mut OutputQueue, head: &[u8], request: &RequestHead) -> bool {
    let response = ResponseHead {
        status: Status::Ok.code(),
        content_type: HEAD_ECHO_TYPE,
        framing: ResponseFraming::Length(head.len() as u64),
        connection: connection_header(request),
        shaping: None,
    };
    output.write_whole(|sink| {
        response.write(sink);
        if !request.is_head_method {
            sink.put(head);
        }
    })
}

/// Counts a final response: under its status, or among the statuses
/// requests asked for.
pub(crate) fn record_final(counters: &mut Counters, options: &EchoOptions) {
    match options.status() {
        Some(code) => counters.record_requested(code),
        None => counters.record_response(Status::Ok),
    }
}

/// The `Connection` field a response to `request` carries.
pub(crate) fn connection_header(request: &RequestHead) -> ConnectionHeader {
    match (request.keep_alive, request.version) {
        (false, _) => ConnectionHeader::Close,
        (true, Version::Http10) => ConnectionHeader::KeepAlive,
        (true, Version::Http11) => ConnectionHeader::Omitted,
    }
}

/// What a [`BodyEcho`] (or a shaped answer) writes to, counts in, and
/// says about the connection.
pub(crate) struct EchoContext<'a> {
    pub(crate) output: &'a mut OutputQueue,
    pub(crate) head: &'a mut HeadBuffer,
    pub(crate) counters: &'a mut Counters,
    pub(crate) endpoints: &'a Endpoints,
    pub(crate) identity: Identity<'a>,
    /// The body's length and hash, for a shaped answer.
    pub(crate) digest: &'a mut BodyDigest,
    /// What `/readyz` says now.
    pub(crate) readiness: Readiness,
}

/// What one [`BodyEcho::step`] achieved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BodyStep {
    /// Input bytes taken.
    pub(crate) consumed: usize,
    /// Whether the whole response has been queued.
    pub(crate) finished: bool,
}

/// Why a body echo stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EchoFailure {
    /// The response has not begun: answer with this status instead.
    Refused(Status),
    /// The response has begun and cannot be completed.
    Cut,
}

/// The streaming echo of one request body.
pub(crate) struct BodyEcho {
    request: RequestHead,
    decoder: BodyDecoder,
    continue_pending: bool,
    committed: bool,
    /// Whether the response is chunked: the request was, or asked for it.
    chunked: bool,
}

impl BodyEcho {
    /// Starts echoing the body `request` announces (its framing must not be `NoBody`).
    pub(crate) fn new(request: RequestHead, limits: &Limits) -> BodyEcho {
        let decoder = BodyDecoder::new(request.framing, limits.max_body_bytes, limits.max_head_bytes);
        let continue_pending = request.expects_continue && request.framing != RequestFraming::Length(0);
        let chunked = decoder.is_chunked() || request.options.chunked();
        BodyEcho { request, decoder, continue_pending, committed: false, chunked }
    }

    /// The request being answered.
    pub(crate) fn request(&self) -> &RequestHead {
        &self.request
    }

    /// The request being answered, to end the connection after it.
    pub(crate) fn request_mut(&mut self) -> &mut RequestHead {
        &mut self.request
    }

    /// Whether the response head has been queued.
    pub(crate) fn is_committed(&self) -> bool {
        self.committed
    }

    /// Whether the whole body has been read (the response may still be finishing).
    pub(crate) fn has_read_body(&self) -> bool {
        self.decoder.is_finished()
    }

    /// Takes what it can of `input` and queues what it can of the response.
    pub(crate) fn step(&mut self, input: &[u8], context: &mut EchoContext<'_>) -> Result<BodyStep, EchoFailure> {
        if self.continue_pending && !self.send_continue(context) {
            return Ok(BodyStep { consumed: 0, finished: false });
        }
        let data_limit = self.data_limit(context);
        let step = self.decoder.decode(input, data_limit).map_err(|error| self.failure(error))?;
        let data = &input[step.data];
        if (!data.is_empty() || self.decoder.is_finished()) && !self.commit(context) {
            return Ok(BodyStep { consumed: step.consumed, finished: false });
        }
        self.write_data(data, context.output);
        let finished = self.decoder.is_finished() && self.finish(context.output);
        Ok(BodyStep { consumed: step.consumed, finished })
    }

    fn send_continue(&mut self, context: &mut EchoContext<'_>) -> bool {
        self.continue_pending = !context.output.write_whole(|sink| sink.put(CONTINUE_RESPONSE));
        if !self.continue_pending {
            context.counters.record_response(Status::Continue);
        }
        !self.continue_pending
    }

    /// How much data the queue can take now, with room kept for the
    /// response head (until it is committed) and a chunk frame.
    fn data_limit(&self, context: &EchoContext<'_>) -> usize {
        let head_bytes = if self.committed {
            0
        } else {
            self.with_response_head(context.head.bytes(), context.identity, |response| response.encoded_len())
        };
        let free = context.output.free();
        if self.request.is_head_method {
            return if free >= head_bytes { usize::MAX } else { 0 };
        }
        let frame_bytes = if self.chunked { CHUNK_FRAME_BYTES } else { 0 };
        free.saturating_sub(head_bytes + frame_bytes)
    }

    fn failure(&self, error: BodyError) -> EchoFailure {
        if self.committed { EchoFailure::Cut } else { EchoFailure::Refused(error.status()) }
    }

    /// Queues the response head, once; false if there is no room yet.
    fn commit(&mut self, context: &mut EchoContext<'_>) -> bool {
        if self.committed {
            return true;
        }
        let output = &mut *context.output;
        let written = self.with_response_head(context.head.bytes(), context.identity, |response| {
            output.write_whole(|sink| response.write(sink))
        });
        if !written {
            return false;
        }
        self.committed = true;
        context.head.clear();
        record_final(context.counters, &self.request.options);
        true
    }

    /// Calls `use_head` with the response head (the request's options
    /// apply unless it asked for none).
    fn with_response_head<R>(
        &self,
        head: &[u8],
        identity: Identity<'_>,
        use_head: impl FnOnce(&ResponseHead<'_>) -> R,
    ) -> R {
        let content_type = self.request.content_type.clone().and_then(|range| head.get(range));
        let framing = match self.request.framing {
            _ if self.chunked => ResponseFraming::Chunked,
            RequestFraming::Length(length) => ResponseFraming::Length(length),
            RequestFraming::NoBody => ResponseFraming::Length(0),
            RequestFraming::Chunked => ResponseFraming::Chunked,
        };
        let options = &self.request.options;
        let shaping = Shaping { head, options, identity };
        use_head(&ResponseHead {
            status: options.status().unwrap_or(Status::Ok.code()),
            content_type: content_type.unwrap_or(DEFAULT_BODY_TYPE),
            framing,
            connection: connection_header(&self.request),
            shaping: (!options.is_plain()).then_some(&shaping),
        })
    }

    /// Queues `data` (which [`BodyEcho::data_limit`] made sure fits).
    fn write_data(&self, data: &[u8], output: &mut OutputQueue) {
        if data.is_empty() || self.request.is_head_method {
            return;
        }
        let chunked = self.chunked;
        let fitted = output.write_whole(|sink| if chunked { write_chunk(sink, data) } else { sink.put(data) });
        debug_assert!(fitted, "the data limit keeps room for the data");
    }

    /// Queues the end of a chunked response; false if there is no room yet.
    fn finish(&self, output: &mut OutputQueue) -> bool {
        if self.request.is_head_method || !self.chunked {
            return true;
        }
        output.write_whole(|sink| sink.put(LAST_CHUNK))
    }
}
