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

use super::identity::Identity;
use super::options::{EchoOptions, ExtraHeader, extra_headers};
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
        reason_phrase(self.code())
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

/// The reason phrase of `code`: the registered one (IANA's HTTP Status Code
/// Registry), or its class's name for an unregistered code.
pub const fn reason_phrase(code: u16) -> &'static str {
    if code == 200 {
        return "OK"; // the echo's, without a search
    }
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => match code / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
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
    /// No body, so neither, and no `Content-Type` (1xx, 204, 304).
    NoBody,
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
    pub(crate) status: u16,
    pub(crate) content_type: &'a [u8],
    pub(crate) framing: ResponseFraming,
    pub(crate) connection: ConnectionHeader,
    /// The header fields the request asked for (none for the plain echo).
    pub(crate) shaping: Option<&'a Shaping<'a>>,
}

impl ResponseHead<'_> {
    /// Writes the head, up to and including the empty line: status line,
    /// `Content-Type` (unless there is no body), framing, `Connection`,
    /// then the fields the request asked for.
    pub(crate) fn write(&self, sink: &mut impl ByteSink) {
        write_status_line(sink, self.status);
        let has_body = self.framing != ResponseFraming::NoBody;
        if has_body {
            sink.put(b"Content-Type: ");
            match self.shaping.and_then(Shaping::content_type) {
                Some(replacement) => replacement.write_value(sink),
                None => sink.put(self.content_type),
            }
            sink.put(b"\r\n");
        }
        match self.framing {
            ResponseFraming::Length(length) => {
                sink.put(b"Content-Length: ");
                put_decimal(sink, length);
                sink.put(b"\r\n");
            }
            ResponseFraming::Chunked => sink.put(b"Transfer-Encoding: chunked\r\n"),
            ResponseFraming::NoBody => {}
        }
        match self.connection {
            ConnectionHeader::Omitted => {}
            ConnectionHeader::Close => sink.put(b"Connection: close\r\n"),
            ConnectionHeader::KeepAlive => sink.put(b"Connection: keep-alive\r\n"),
        }
        if let Some(shaping) = self.shaping {
            shaping.write_fields(sink, has_body);
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

/// What a request asked to be added to its response head: the extra
/// header fields (read from the request head again), and the instance's
/// name if asked for.
pub(crate) struct Shaping<'a> {
    /// The request head the extra fields are read from.
    pub(crate) head: &'a [u8],
    /// What the request asked.
    pub(crate) options: &'a EchoOptions,
    /// Which instance answers, on which address.
    pub(crate) identity: Identity<'a>,
}

impl Shaping<'_> {
    /// The extra `Content-Type` that replaces the response's own (the last
    /// one given), if any.
    fn content_type(&self) -> Option<ExtraHeader<'_>> {
        if !self.options.replaces_content_type() {
            return None;
        }
        extra_headers(self.head).filter(ExtraHeader::is_content_type).last()
    }

    /// Writes the extra fields (a `Content-Type` only when the response has
    /// no body, since otherwise it replaced the response's own), then the
    /// instance's fields if asked for.
    fn write_fields(&self, sink: &mut impl ByteSink, has_body: bool) {
        if self.options.extra_headers() > 0 {
            for extra in extra_headers(self.head) {
                if has_body && extra.is_content_type() {
                    continue;
                }
                extra.write_name(sink);
                sink.put(b": ");
                extra.write_value(sink);
                sink.put(b"\r\n");
            }
        }
        if self.options.instance() {
            self.identity.write_fields(sink);
        }
    }
}

/// Writes a complete error response that closes the connection: the status,
/// and (unless `head_only`, for HEAD requests) its reason as a text body.
pub(crate) fn write_error_response(sink: &mut impl ByteSink, status: Status, head_only: bool) {
    let reason = status.reason().as_bytes();
    let framing = ResponseFraming::Length(reason.len() as u64 + 1);
    let head = ResponseHead {
        status: status.code(),
        content_type: b"text/plain",
        framing,
        connection: ConnectionHeader::Close,
        shaping: None,
    };
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

fn write_status_line(sink: &mut impl ByteSink, code: u16) {
    sink.put(b"HTTP/1.1 ");
    put_decimal(sink, u64::from(code));
    sink.put(b" ");
    sink.put(reason_phrase(code).as_bytes());
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
    fn reason_phrases_are_the_registered_ones_or_the_class() {
        assert_eq!(Status::ContentTooLarge.reason(), "Content Too Large");
        assert_eq!(reason_phrase(418), "Client Error", "not registered");
        assert_eq!(reason_phrase(599), "Server Error");
        assert_eq!(reason_phrase(103), "Early Hints");
        assert_eq!(reason_phrase(299), "Success");
        for code in 100..=599 {
            assert!(reason_phrase(code).bytes().all(|byte| byte == b' ' || byte.is_ascii_graphic()), "{code}");
        }
    }

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
            status: 200,
            content_type: b"image/png",
            framing: ResponseFraming::Length(5),
            connection: ConnectionHeader::KeepAlive,
            shaping: None,
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
