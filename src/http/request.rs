//! Request heads: gathering their bytes, and checking them once.
//!
//! [`HeadBuffer`] collects a request head (request line and header fields,
//! up to the empty line) from input that may arrive a byte at a time, without
//! taking a byte of what follows it (a body, or the next pipelined request).
//! [`parse_head`] then checks the head with `httparse` and reduces it to the
//! few facts the engine acts on ([`RequestHead`]); after that nothing about
//! the head is parsed again.
//!
//! Contract: the buffer never holds more than its capacity; every malformed,
//! ambiguous or oversized head maps to the status to answer with (400, 431,
//! 501, 505), never to a panic. Framing is strict where lenience lets two
//! parsers disagree about where a body ends (request smuggling): conflicting
//! `Content-Length` values, `Content-Length` with `Transfer-Encoding`,
//! `Transfer-Encoding` in HTTP/1.0, and codings not ending in `chunked` are
//! all rejected.

use super::health::Probe;
use super::options::{EchoOptions, OptionsBuilder};
use super::response::Status;
use alloc::vec::Vec;
use core::ops::Range;

/// The most header fields a request may have (more is a 431). The parser's
/// field table lives on the stack: 64 entries are 2 KiB.
pub const MAX_HEADER_FIELDS: usize = 64;

/// The HTTP version a request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: the connection closes after the response unless the client
    /// asks for `keep-alive`.
    Http10,
    /// HTTP/1.1: the connection stays open unless either side says `close`.
    Http11,
}

/// How a request delimits its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body: the head is echoed.
    NoBody,
    /// `Content-Length`: exactly this many bytes follow.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The facts of a checked request head that the engine acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// The version from the request line.
    pub version: Version,
    /// Whether the method is `HEAD` (the response carries no body).
    pub is_head_method: bool,
    /// Whether the connection may serve another request after this one.
    pub keep_alive: bool,
    /// How the body is delimited.
    pub framing: RequestFraming,
    /// Whether the client waits for `100 Continue` before sending the body.
    pub expects_continue: bool,
    /// Where the first `Content-Type` value lies within the head's bytes.
    pub content_type: Option<Range<usize>>,
    /// What the request asks of its answer (query parameters, `X-Echo-*`
    /// fields; see [`EchoOptions`]). `close` is already in `keep_alive`.
    pub options: EchoOptions,
    /// The probe its target names (`/healthz`, `/readyz`): answered as a
    /// probe, whatever the options say.
    pub probe: Option<Probe>,
}

/// Checks a complete request head (its bytes up to and including the empty
/// line) and returns its facts, or the error status to answer with.
pub fn parse_head(head: &[u8]) -> Result<RequestHead, Status> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADER_FIELDS];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(head) {
        Ok(httparse::Status::Complete(length)) if length == head.len() => {}
        Ok(_) => return Err(Status::BadRequest),
        Err(error) => return Err(status_for_parse_error(error, head)),
    }
    let version = if request.version == Some(0) { Version::Http10 } else { Version::Http11 };
    let mut summary = FieldSummary::default();
    for field in request.headers.iter() {
        summary.add(field.name, field.value, head)?;
    }
    if let Some(target) = request.path.filter(|target| target.as_bytes().contains(&b'?')) {
        summary.options.add_query(target.as_bytes())?;
    }
    let mut facts = summary.into_request_head(version, request.method == Some("HEAD"))?;
    facts.probe = request.path.and_then(|target| Probe::of(target.as_bytes()));
    Ok(facts)
}

/// Checks an incomplete head as far as it goes: `Err` if what has arrived can
/// no longer become a valid head.
pub(crate) fn check_partial_head(head: &[u8]) -> Result<(), Status> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADER_FIELDS];
    match httparse::Request::new(&mut fields).parse(head) {
        Ok(_) => Ok(()),
        Err(error) => Err(status_for_parse_error(error, head)),
    }
}

fn status_for_parse_error(error: httparse::Error, head: &[u8]) -> Status {
    match error {
        httparse::Error::TooManyHeaders => Status::HeaderFieldsTooLarge,
        httparse::Error::Version if names_other_version(head) => Status::HttpVersionNotSupported,
        _ => Status::BadRequest,
    }
}

/// Whether the request line is `method target HTTP/d.d` (a well-formed
/// version we do not speak, since the parser refused it: 505 rather than 400).
fn names_other_version(head: &[u8]) -> bool {
    let line = head.split(|&byte| byte == b'\n').next().unwrap_or(head);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&byte| byte == b' ');
    let version = parts.nth(2);
    let well_formed = matches!(version, Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
        if major.is_ascii_digit() && minor.is_ascii_digit());
    well_formed && parts.next().is_none()
}

/// What the header fields say, gathered one field at a time.
#[derive(Default)]
struct FieldSummary {
    content_length: Option<u64>,
    transfer_codings: u32,
    last_coding_is_chunked: bool,
    connection_close: bool,
    connection_keep_alive: bool,
    expects_continue: bool,
    content_type: Option<Range<usize>>,
    hosts: u32,
    options: OptionsBuilder,
}

impl FieldSummary {
    fn add(&mut self, name: &str, value: &[u8], head: &[u8]) -> Result<(), Status> {
        let is = |expected: &str| name.eq_ignore_ascii_case(expected);
        if is("content-length") {
            self.add_content_length(value)?;
        } else if is("transfer-encoding") {
            self.add_transfer_codings(value);
        } else if is("connection") {
            self.add_connection_options(value);
        } else if is("expect") {
            self.expects_continue |= trim(value).eq_ignore_ascii_case(b"100-continue");
        } else if is("content-type") && self.content_type.is_none() {
            self.content_type = Some(range_within(head, value));
        } else if is("host") {
            self.hosts = self.hosts.saturating_add(1);
        } else {
            self.options.add_field(name, value)?;
        }
        Ok(())
    }

    fn add_content_length(&mut self, value: &[u8]) -> Result<(), Status> {
        for item in value.split(|&byte| byte == b',') {
            let length = parse_decimal(trim(item)).ok_or(Status::BadRequest)?;
            if self.content_length.is_some_and(|earlier| earlier != length) {
                return Err(Status::BadRequest);
            }
            self.content_length = Some(length);
        }
        Ok(())
    }

    fn add_transfer_codings(&mut self, value: &[u8]) {
        for coding in list_items(value) {
            self.transfer_codings = self.transfer_codings.saturating_add(1);
            self.last_coding_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
        }
        if self.transfer_codings == 0 {
            // A `Transfer-Encoding` with no coding: framing we cannot trust.
            self.transfer_codings = u32::MAX;
        }
    }

    fn add_connection_options(&mut self, value: &[u8]) {
        for option in list_items(value) {
            self.connection_close |= option.eq_ignore_ascii_case(b"close");
            self.connection_keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
        }
    }

    fn into_request_head(self, version: Version, is_head_method: bool) -> Result<RequestHead, Status> {
        let hosts_allowed = if version == Version::Http11 { 1..=1 } else { 0..=1 };
        if !hosts_allowed.contains(&self.hosts) {
            return Err(Status::BadRequest);
        }
        let framing = self.framing(version)?;
        let options = self.options.finish(version)?;
        let keep_alive = !options.close()
            && match version {
                Version::Http11 => !self.connection_close,
                Version::Http10 => self.connection_keep_alive && !self.connection_close,
            };
        Ok(RequestHead {
            version,
            is_head_method,
            keep_alive,
            framing,
            expects_continue: self.expects_continue && version == Version::Http11,
            content_type: self.content_type,
            options,
            probe: None,
        })
    }

    fn framing(&self, version: Version) -> Result<RequestFraming, Status> {
        match (self.transfer_codings, self.content_length) {
            (0, None) => Ok(RequestFraming::NoBody),
            (0, Some(length)) => Ok(RequestFraming::Length(length)),
            (_, Some(_)) => Err(Status::BadRequest),
            _ if version == Version::Http10 || !self.last_coding_is_chunked => Err(Status::BadRequest),
            (1, None) => Ok(RequestFraming::Chunked),
            _ => Err(Status::NotImplemented),
        }
    }
}

/// The non-empty, trimmed items of a comma-separated field value.
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&byte| byte == b',').map(trim).filter(|item| !item.is_empty())
}

/// `value` without leading and trailing spaces and tabs.
pub(crate) fn trim(value: &[u8]) -> &[u8] {
    let is_space = |byte: &u8| *byte == b' ' || *byte == b'\t';
    let start = value.iter().position(|byte| !is_space(byte)).unwrap_or(value.len());
    let end = value.iter().rposition(|byte| !is_space(byte)).map_or(start, |last| last + 1);
    &value[start..end]
}

/// A non-empty run of decimal digits that fits in a `u64`.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &digit| {
        let digit = char::from(digit).to_digit(10)?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// The lines of a checked head (request line first, without their line
/// ends), up to the empty line.
fn head_lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&byte| byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
}

/// The request line's method and target, of a checked head.
pub(crate) fn request_line(head: &[u8]) -> (&[u8], &[u8]) {
    let line = head_lines(head).next().unwrap_or_default();
    let mut parts = line.split(|&byte| byte == b' ');
    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
}

/// The request target of a checked head.
pub(crate) fn request_target(head: &[u8]) -> &[u8] {
    request_line(head).1
}

/// The header fields of a checked head, in order: name, and value without
/// the spaces around it. (Only for heads [`parse_head`] accepted: no line
/// folding, every field line has a colon.)
pub(crate) fn header_fields(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head_lines(head).skip(1).map(|line| {
        let colon = line.iter().position(|&byte| byte == b':').unwrap_or(line.len());
        (&line[..colon], trim(line.get(colon + 1..).unwrap_or_default()))
    })
}

/// Where `inner`, a sub-slice of `outer`, lies within it.
fn range_within(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = inner.as_ptr().addr().saturating_sub(outer.as_ptr().addr()).min(outer.len());
    start..(start + inner.len()).min(outer.len())
}

/// A request head being gathered: at most `capacity` bytes, ending at the
/// first empty line. Once the head is complete, the room it leaves can keep
/// the start of its body ([`HeadBuffer::keep_body`]), for an answer that
/// shows a small body: no memory beyond the head buffer's.
pub(crate) struct HeadBuffer {
    bytes: Vec<u8>,
    capacity: usize,
    scanned: usize,
    complete: bool,
    saw_line_end: bool,
    overflowed: bool,
    /// Where the head ends and the kept body begins, once body bytes are kept.
    head_end: Option<usize>,
    /// Whether body bytes were offered that were not kept.
    body_cut: bool,
}

impl HeadBuffer {
    /// An empty buffer that holds at most `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> HeadBuffer {
        HeadBuffer {
            bytes: Vec::with_capacity(capacity),
            capacity,
            scanned: 0,
            complete: false,
            saw_line_end: false,
            overflowed: false,
            head_end: None,
            body_cut: false,
        }
    }

    /// The head's bytes so far.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes[..self.head_end.unwrap_or(self.bytes.len())]
    }

    /// Every byte it holds: the head, and the body bytes kept.
    pub(crate) fn held(&self) -> usize {
        self.bytes.len()
    }

    /// Keeps `data`, the next bytes of a complete head's body, as far as
    /// the body kept stays within `limit` bytes and the buffer's capacity;
    /// the rest is forgotten (and [`HeadBuffer::body`] says so).
    pub(crate) fn keep_body(&mut self, data: &[u8], limit: usize) {
        let head_end = *self.head_end.get_or_insert(self.bytes.len());
        let room = limit.saturating_sub(self.bytes.len() - head_end).min(self.capacity - self.bytes.len());
        let kept = data.len().min(room);
        self.bytes.extend_from_slice(&data[..kept]);
        self.body_cut |= kept < data.len();
    }

    /// The body bytes kept, if every body byte offered was kept.
    pub(crate) fn body(&self) -> Option<&[u8]> {
        let kept = &self.bytes[self.head_end.unwrap_or(self.bytes.len())..];
        (!self.body_cut).then_some(kept)
    }

    /// Whether no byte of a head has arrived.
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Forgets the head, ready for the next.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.scanned = 0;
        self.complete = false;
        self.saw_line_end = false;
        self.overflowed = false;
        self.head_end = None;
        self.body_cut = false;
    }

    /// Takes bytes from `input` up to the end of the head (empty lines before
    /// a head are skipped, as RFC 9112 §2.2 allows); returns how many it took.
    pub(crate) fn absorb(&mut self, input: &[u8]) -> usize {
        let skipped = if self.bytes.is_empty() { leading_line_ends(input) } else { 0 };
        let input = &input[skipped..];
        let taken = input.len().min(self.capacity - self.bytes.len());
        let old_length = self.bytes.len();
        self.bytes.extend_from_slice(&input[..taken]);
        self.saw_line_end = input[..taken].contains(&b'\n');
        match find_head_end(&self.bytes, self.scanned) {
            Some(end) => {
                self.bytes.truncate(end);
                self.complete = true;
                skipped + (end - old_length)
            }
            None => {
                self.scanned = self.bytes.len().saturating_sub(2);
                self.overflowed = taken < input.len();
                skipped + taken
            }
        }
    }

    /// After [`HeadBuffer::absorb`]: the checked head if it is complete,
    /// `None` if more is needed, or the status to answer with (431 once a
    /// byte is offered that does not fit).
    pub(crate) fn check(&self) -> Result<Option<RequestHead>, Status> {
        if self.complete {
            return parse_head(&self.bytes).map(Some);
        }
        if self.saw_line_end || self.overflowed {
            check_partial_head(&self.bytes)?;
        }
        if self.overflowed { Err(Status::HeaderFieldsTooLarge) } else { Ok(None) }
    }
}

fn leading_line_ends(input: &[u8]) -> usize {
    input.iter().position(|&byte| byte != b'\r' && byte != b'\n').unwrap_or(input.len())
}

/// The end of the first empty line at or after a line end found from `from`
/// on (a lone LF ends a line too, as `httparse` accepts).
fn find_head_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut index = from;
    while let Some(offset) = bytes.get(index..)?.iter().position(|&byte| byte == b'\n') {
        let line_end = index + offset;
        match &bytes[line_end + 1..] {
            [b'\n', ..] => return Some(line_end + 2),
            [b'\r', b'\n', ..] => return Some(line_end + 3),
            _ => index = line_end + 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RequestHead, Status> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_options() {
        let keep = |text: &str| parse(text).unwrap().keep_alive;
        assert!(keep("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.1\r\nHost: a\r\nConnection: TE, close\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.0\r\n\r\n"));
        assert!(keep("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn framing_is_decided_strictly() {
        let framing = |text: &str| parse(text).map(|head| head.framing);
        assert_eq!(framing("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), Ok(RequestFraming::NoBody));
        assert_eq!(framing("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n"), Ok(RequestFraming::Length(7)));
        assert_eq!(
            framing("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"),
            Ok(RequestFraming::Chunked)
        );
        let split_codings =
            "PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(framing(split_codings), Err(Status::NotImplemented));
        let doubled = "PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n";
        assert_eq!(framing(doubled), Err(Status::NotImplemented));
        assert_eq!(framing("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n"), Err(Status::BadRequest));
        assert_eq!(framing("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n"), Err(Status::BadRequest));
        assert_eq!(framing("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), Err(Status::BadRequest));
    }

    #[test]
    fn content_type_and_expectation_are_found() {
        let text = "POST / HTTP/1.1\r\nHost: a\r\ncontent-type:  text/x; q=1 \r\nContent-Type: ignored\r\nExpect: 100-Continue\r\n\r\n";
        let head = parse(text).unwrap();
        assert_eq!(&text[head.content_type.unwrap()], "text/x; q=1");
        assert!(head.expects_continue);
        assert!(!parse("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").unwrap().expects_continue);
        assert!(parse("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap().is_head_method);
    }

    #[test]
    fn version_errors_are_505_only_for_well_formed_versions() {
        assert_eq!(parse("GET / HTTP/3.0\r\n\r\n"), Err(Status::HttpVersionNotSupported));
        assert_eq!(parse("GET / HTTP/1.10\r\n\r\n"), Err(Status::BadRequest));
        assert_eq!(parse("GET / http/1.1\r\n\r\n"), Err(Status::BadRequest));
        assert_eq!(parse("GET /x y HTTP/2.0\r\n\r\n"), Err(Status::BadRequest));
        assert_eq!(parse("GET / HTTP/1.1\r\n"), Err(Status::BadRequest), "an incomplete head");
    }

    #[test]
    fn the_buffer_stops_at_the_end_of_the_head() {
        let mut buffer = HeadBuffer::new(64);
        assert_eq!(buffer.absorb(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r"), 28);
        assert_eq!(buffer.check(), Ok(None));
        assert_eq!(buffer.absorb(b"\n\r\nBODY"), 3);
        assert_eq!(buffer.bytes(), b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(buffer.check().unwrap().is_some());
        buffer.clear();
        assert_eq!(buffer.absorb(b"GET / HTTP/1.0\n\nNEXT"), 16);
        assert!(buffer.check().unwrap().is_some());
    }

    #[test]
    fn the_start_of_a_body_is_kept_in_the_room_the_head_leaves() {
        let head = b"POST / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut buffer = HeadBuffer::new(head.len() + 8);
        assert_eq!(buffer.absorb(head), head.len());
        assert_eq!(buffer.body(), Some(&b""[..]), "nothing offered, nothing cut");
        buffer.keep_body(b"abc", 5);
        buffer.keep_body(b"de", 5);
        assert_eq!((buffer.bytes(), buffer.body()), (&head[..], Some(&b"abcde"[..])));
        buffer.keep_body(b"f", 5);
        assert_eq!(buffer.body(), None, "over the limit");
        assert_eq!(buffer.held(), head.len() + 5);
        buffer.clear();
        assert_eq!(buffer.absorb(head), head.len());
        buffer.keep_body(b"0123456789", 100);
        assert_eq!((buffer.body(), buffer.held()), (None, head.len() + 8), "over the buffer's capacity");
        assert_eq!(buffer.bytes.capacity(), head.len() + 8, "never grown");
        buffer.clear();
        let next = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(buffer.absorb(next), next.len());
        assert!(buffer.check().unwrap().is_some(), "a cleared buffer reads the next head");
    }
}
