//! What the engine writes: status codes, response heads, chunk frames and
//! the canned error responses.
//!
//! Every response starts with `HTTP/1.1` (the highest version we speak, as
//! RFC 9110 asks, also towards HTTP/1.0 clients). Heads carry no `Date`
//! (the appliance has no trustworthy wall clock, and RFC 9110 §6.6.1 says a
//! server without one must not send it) and no `Server`.
//!
//! Contract: encoders write only bytes that were already validated (status
//! texts from here, a `Content-Type` value that `httparse` accepted, so it
//! holds no line end); they never allocate and never panic.

use super::output::{ByteCounter, ByteSink};

/// The status codes the engine (and the appliance around it) sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// 100: the client may send the body it announced with `Expect: 100-continue`.
    Continue,
    /// 200: the echo.
    Ok,
    /// 400: a malformed request head, framing or chunk; or a request cut short.
    BadRequest,
    /// 408: a request that did not arrive in time.
    RequestTimeout,
    /// 413: a body over [`Limits::max_body_bytes`](super::Limits::max_body_bytes).
    ContentTooLarge,
    /// 431: a request head over [`Limits::max_head_bytes`](super::Limits::max_head_bytes),
    /// or more header fields than the parser holds.
    HeaderFieldsTooLarge,
    /// 501: a transfer coding other than `chunked`.
    NotImplemented,
    /// 503: sent by the appliance, not the engine, when every connection slot is busy.
    ServiceUnavailable,
    /// 505: a well-formed HTTP version other than 1.0 and 1.1.
    HttpVersionNotSupported,
}

impl Status {
    /// Every status, in code order (for exporting counters).
    pub const ALL: [Status; 9] = [
        Status::Continue,
        Status::Ok,
        Status::BadRequest,
        Status::RequestTimeout,
        Status::ContentTooLarge,
        Status::HeaderFieldsTooLarge,
        Status::NotImplemented,
        Status::ServiceUnavailable,
        Status::HttpVersionNotSupported,
    ];

    /// The three-digit code.
    pub const fn code(self) -> u16 {
        match self {
            Status::Continue => 100,
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::RequestTimeout => 408,
            Status::ContentTooLarge => 413,
            Status::HeaderFieldsTooLarge => 431,
            Status::NotImplemented => 501,
            Status::ServiceUnavailable => 503,
            Status::HttpVersionNotSupported => 505,
        }
    }

    /// The reason phrase (RFC 9110's).
    pub const fn reason(self) -> &'static str {
        match self {
            Status::Continue => "Continue",
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::RequestTimeout => "Request Timeout",
            Status::ContentTooLarge => "Content Too Large",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::NotImplemented => "Not Implemented",
            Status::ServiceUnavailable => "Service Unavailable",
            Status::HttpVersionNotSupported => "HTTP Version Not Supported",
        }
    }

    /// The class: 1 for 1xx, 2 for 2xx, and so on.
    pub const fn class(self) -> u16 {
        self.code() / 100
    }

    /// Whether this is a 4xx or 5xx.
    pub const fn is_error(self) -> bool {
        self.code() >= 400
    }

    /// This status's position in [`Status::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// `HTTP/1.1 100 Continue` and its empty header section.
pub(crate) const CONTINUE_RESPONSE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The answer for a connection the appliance cannot serve (every slot busy).
/// The engine never sends it; the TCP glue may write it and close.
pub const SERVICE_UNAVAILABLE_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\nService Unavailable\n";

/// The terminating chunk of a chunked body, with no trailer.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The most bytes a chunk's frame adds around its data (16 hex digits and
/// two line ends).
pub(crate) const CHUNK_FRAME_BYTES: usize = 20;

/// How a response delimits its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResponseFraming {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Which `Connection` header a response carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectionHeader {
    /// None: HTTP/1.1's default, the connection stays open.
    Omitted,
    /// `Connection: close`: this is the last response.
    Close,
    /// `Connection: keep-alive`: an HTTP/1.0 client asked to keep it open.
    KeepAlive,
}

/// A response's status line and header section.
pub(crate) struct ResponseHead<'a> {
    pub(crate) status: Status,
    pub(crate) content_type: &'a [u8],
    pub(crate) framing: ResponseFraming,
    pub(crate) connection: ConnectionHeader,
}

impl ResponseHead<'_> {
    /// Writes the head, up to and including the empty line.
    pub(crate) fn write(&self, sink: &mut impl ByteSink) {
        write_status_line(sink, self.status);
        sink.put(b"Content-Type: ");
        sink.put(self.content_type);
        sink.put(b"\r\n");
        match self.framing {
            ResponseFraming::Length(length) => {
                sink.put(b"Content-Length: ");
                put_decimal(sink, length);
                sink.put(b"\r\n");
            }
            ResponseFraming::Chunked => sink.put(b"Transfer-Encoding: chunked\r\n"),
        }
        match self.connection {
            ConnectionHeader::Omitted => {}
            ConnectionHeader::Close => sink.put(b"Connection: close\r\n"),
            ConnectionHeader::KeepAlive => sink.put(b"Connection: keep-alive\r\n"),
        }
        sink.put(b"\r\n");
    }

    /// How many bytes [`ResponseHead::write`] writes.
    pub(crate) fn encoded_len(&self) -> usize {
        let mut counter = ByteCounter::default();
        self.write(&mut counter);
        counter.count
    }
}

/// Writes a complete error response that closes the connection: the status,
/// and (unless `head_only`, for HEAD requests) its reason as a text body.
pub(crate) fn write_error_response(sink: &mut impl ByteSink, status: Status, head_only: bool) {
    let reason = status.reason().as_bytes();
    let framing = ResponseFraming::Length(reason.len() as u64 + 1);
    let head = ResponseHead { status, content_type: b"text/plain", framing, connection: ConnectionHeader::Close };
    head.write(sink);
    if !head_only {
        sink.put(reason);
        sink.put(b"\n");
    }
}

/// Writes one chunk: its size line, `data`, and its line end.
pub(crate) fn write_chunk(sink: &mut impl ByteSink, data: &[u8]) {
    put_hexadecimal(sink, data.len() as u64);
    sink.put(b"\r\n");
    sink.put(data);
    sink.put(b"\r\n");
}

fn write_status_line(sink: &mut impl ByteSink, status: Status) {
    sink.put(b"HTTP/1.1 ");
    put_decimal(sink, u64::from(status.code()));
    sink.put(b" ");
    sink.put(status.reason().as_bytes());
    sink.put(b"\r\n");
}

/// Writes `value` in decimal.
pub(crate) fn put_decimal(sink: &mut impl ByteSink, value: u64) {
    put_in_base(sink, value, 10);
}

/// Writes `value` in lower-case hexadecimal.
pub(crate) fn put_hexadecimal(sink: &mut impl ByteSink, value: u64) {
    put_in_base(sink, value, 16);
}

fn put_in_base(sink: &mut impl ByteSink, mut value: u64, base: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 20];
    let mut start = text.len();
    loop {
        start -= 1;
        text[start] = DIGITS[(value % base) as usize];
        value /= base;
        if value == 0 {
            break;
        }
    }
    sink.put(&text[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn status_table_is_in_code_order_and_indexed() {
        for (index, status) in Status::ALL.iter().enumerate() {
            assert_eq!(status.index(), index);
        }
        assert!(Status::ALL.windows(2).all(|pair| pair[0].code() < pair[1].code()));
    }

    #[test]
    fn numbers_are_written_in_their_base() {
        let mut text = Vec::new();
        put_decimal(&mut text, 0);
        text.put(b" ");
        put_decimal(&mut text, u64::MAX);
        text.put(b" ");
        put_hexadecimal(&mut text, 0xdead_beef);
        assert_eq!(text, b"0 18446744073709551615 deadbeef");
    }

    #[test]
    fn heads_and_error_responses_are_well_formed() {
        let head = ResponseHead {
            status: Status::Ok,
            content_type: b"image/png",
            framing: ResponseFraming::Length(5),
            connection: ConnectionHeader::KeepAlive,
        };
        let mut text = Vec::new();
        head.write(&mut text);
        assert_eq!(
            text,
            b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n"
        );
        assert_eq!(head.encoded_len(), text.len());
        let mut error = Vec::new();
        write_error_response(&mut error, Status::ContentTooLarge, false);
        assert!(error.starts_with(b"HTTP/1.1 413 Content Too Large\r\n"));
        assert!(error.ends_with(b"Connection: close\r\n\r\nContent Too Large\n"));
    }

    #[test]
    fn the_canned_refusal_declares_its_true_length() {
        let split = SERVICE_UNAVAILABLE_RESPONSE.windows(4).position(|window| window == b"\r\n\r\n").unwrap();
        assert_eq!(SERVICE_UNAVAILABLE_RESPONSE.len() - split - 4, 20);
    }
}
