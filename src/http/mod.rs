//! The HTTP/1.1 echo protocol engine, sans-IO: bytes in, bytes out, time
//! passed in.
//!
//! # What it answers
//! - A request with a body (`Content-Length`, or `Transfer-Encoding:
//!   chunked`) gets the same bytes back under `200 OK` with the same
//!   `Content-Type` (`application/octet-stream` if it had none). A
//!   `Content-Length` request gets a `Content-Length` response, its body
//!   streamed through as it arrives; a chunked request gets a chunked
//!   response. `Content-Length: 0` counts as a body (an empty one).
//! - A request without a body gets its own head back (request line and
//!   header fields exactly as received, through the empty line) as
//!   `text/plain`. `HEAD` gets the headers the same request as `GET` would.
//! - HTTP/1.1 keeps the connection open unless the client says `Connection:
//!   close`; HTTP/1.0 closes unless it says `Connection: keep-alive` (and is
//!   then answered with `Connection: keep-alive`). Pipelined requests are
//!   answered in order. `Expect: 100-continue` gets `100 Continue` before
//!   the body is read, unless the body is refused (413): then only the final
//!   status, and the connection closes.
//! - Errors, each answered with `Connection: close` and then a close: 400
//!   for a malformed head, chunk framing or ambiguous length (conflicting
//!   `Content-Length`s, `Content-Length` with `Transfer-Encoding`,
//!   `Transfer-Encoding` from an HTTP/1.0 client, codings not ending in
//!   `chunked`, an HTTP/1.1 request without exactly one `Host`, a request cut
//!   short by the client's end of stream); 408 for a head not complete within
//!   [`Limits::head_timeout`] or a request stalled for [`Limits::idle_timeout`];
//!   413 for a body over [`Limits::max_body_bytes`]; 431 for a head over
//!   [`Limits::max_head_bytes`] or with more than [`MAX_HEADER_FIELDS`]
//!   fields; 501 for transfer codings other than `chunked`; 505 for a
//!   well-formed version other than 1.0 and 1.1.
//! - Once a body's echo has begun (`200` queued), a later problem (bad
//!   chunk framing, a chunked body growing past the maximum, the client's end
//!   of stream, a stall) can no longer change the status: the response is cut
//!   short and the connection closed ([`Counters::cut_responses`]). The `200`
//!   is queued only when the first body byte is ready to go out, so problems
//!   before that still get their status.
//! - A request may ask for more of its answer with query parameters or
//!   `X-Echo-*` header fields ([`EchoOptions`]; the table is in the
//!   `options` module and the README): another status, a delay (the
//!   connection's deadline is the delay's end: the caller's event loop
//!   sleeps until it), extra header fields, a close, a generated body, the
//!   sink (length and SHA-256 of the body), a JSON description of the
//!   request or an HTML page describing it (for a browser, whose `Accept`
//!   prefers `text/html`), the instance's name ([`Instance`], [`Connection::set_instance`],
//!   [`Connection::set_endpoints`]). A request that asks for none of it is
//!   answered exactly as above; a value that does not parse is a 400.
//! - A new connection that sends no request (nothing, or only empty lines)
//!   is closed quietly after [`Limits::head_timeout`], counted from the
//!   accept; an idle keep-alive connection between requests after
//!   [`Limits::idle_timeout`]. A client that stops reading its responses is
//!   reset ([`CloseMode::Abort`]) after the same time.
//! - While a request is answered (its body read, its response written) the
//!   transfer must keep up with [`Limits::min_rate_bytes_per_second`],
//!   falling behind by at most [`Limits::rate_grace`]: a body trickling in
//!   gets a 408 (or its echo is cut), a reader draining a byte at a time is
//!   reset. So one byte every few seconds cannot hold a connection for long.
//!
//! # Bounded memory
//! A [`Connection`] allocates two buffers when it is made and never grows
//! them: the head buffer ([`Limits::max_head_bytes`]) and the output queue
//! ([`Limits::output_queue_bytes`]). Bodies are never buffered: body bytes
//! are taken from the caller's input only when the output queue has room for
//! them, so when the peer does not read, the engine stops reading, and the
//! socket's receive window closes. Memory per connection is at most
//! [`Limits::memory_bound`] whatever the body size.
//!
//! # The caller's contract (TCP glue)
//! ```text
//! now = clock()
//! while socket has received bytes:      taken = connection.receive(bytes, now); dequeue `taken`; stop if 0
//! connection.receive(&[], now)          // (also moves queued work along)
//! if the peer sent FIN and the socket's receive queue is empty: connection.peer_closed(now)
//! if now >= connection.poll_timeout():  connection.on_timeout(now)
//! while connection.pending_output() is not empty and the socket can send:
//!     sent = socket.send_slice(connection.pending_output()); connection.consume_output(sent)
//! match connection.wants_close(): Graceful => socket.close(), Abort => socket.abort()
//! sleep until a socket event or connection.poll_timeout()
//! ```
//! The order matters: `peer_closed` and `on_timeout` may queue a response
//! (a 400 for a request cut short, a 408, answers still waiting for room), so
//! they come before the send loop; otherwise that output waits for the next
//! socket event, which may never come. `consume_output` may queue more output
//! (a response that was waiting for room), so the send loop re-reads
//! `pending_output`. Progress is stamped
//! with the latest instant given, so pass the current time each round.
//! `peer_closed` may be reported again on every round (it is idempotent).
//! After [`Connection::wants_close`] the connection may stay alive for
//! lingering: input offered is discarded.
//!
//! # What it must never do
//! Read a clock, touch a socket, allocate after `new` (the parser's field
//! table lives on the stack), panic on any input, take a byte it cannot
//! answer for, or send anything after an error response.

mod body;
mod connection;
mod counters;
mod echo;
pub mod generate;
mod health;
mod html;
mod identity;
mod json;
mod limits;
mod options;
mod output;
mod request;
mod response;
mod shaped;
mod time;

#[cfg(any(test, feature = "fuzzing"))]
pub mod exercise;

#[cfg(test)]
mod tests;

pub use body::MAX_CHUNK_LINE_BYTES;
pub use connection::{CloseMode, Connection};
pub use counters::{Counters, DURATION_BOUNDS_LABELS, DURATION_BOUNDS_MICROS, Durations};
pub use echo::{DEFAULT_BODY_TYPE, HEAD_ECHO_TYPE};
pub use health::{Probe, Readiness};
pub use html::MAX_HTML_BODY_BYTES;
pub use identity::{Endpoints, Instance, MAX_INSTANCE_NAME_BYTES};
pub use limits::{Limits, RESPONSE_OVERHEAD_BYTES};
pub use options::{EchoOptions, MAX_DELAY, MAX_EXTRA_HEADERS, MAX_GENERATED_BYTES};
pub use request::{MAX_HEADER_FIELDS, RequestFraming, RequestHead, Version, parse_head};
pub use response::{SERVICE_UNAVAILABLE_RESPONSE, Status, reason_phrase};
pub use time::Instant;
