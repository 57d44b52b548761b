//! The test client: drives a `Connection` like a socket would, builds
//! requests, and parses the response stream strictly.

use crate::http::{Connection, Instant, Limits};
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

/// A peer talking to one connection, with output always drained.
pub(super) struct Peer {
    pub(super) connection: Connection,
    pub(super) output: Vec<u8>,
    pub(super) now: Instant,
}

impl Peer {
    pub(super) fn new(limits: Limits) -> Peer {
        Peer { connection: Connection::new(limits, Instant::ZERO), output: Vec::new(), now: Instant::ZERO }
    }

    /// Offers `bytes` until all are taken, draining output in between.
    pub(super) fn send(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        loop {
            let taken = self.connection.receive(rest, self.now);
            rest = &rest[taken..];
            let drained = self.drain();
            if rest.is_empty() {
                return;
            }
            assert!(taken > 0 || drained > 0, "stuck with {} bytes left", rest.len());
        }
    }

    /// Sends `bytes` in pieces of the given sizes (the last piece takes the rest).
    pub(super) fn send_in_pieces(&mut self, bytes: &[u8], sizes: impl IntoIterator<Item = usize>) {
        let mut rest = bytes;
        for size in sizes {
            let (piece, after) = rest.split_at(size.min(rest.len()));
            self.send(piece);
            rest = after;
        }
        self.send(rest);
    }

    /// Takes all pending output; returns how much.
    pub(super) fn drain(&mut self) -> usize {
        let mut total = 0;
        while !self.connection.pending_output().is_empty() {
            let pending = self.connection.pending_output();
            let count = pending.len();
            self.output.extend_from_slice(pending);
            self.connection.consume_output(count);
            total += count;
        }
        total
    }

    /// The peer's end of stream, then a drain.
    pub(super) fn close(&mut self) {
        self.connection.peer_closed(self.now);
        self.drain();
    }

    /// Lets `milliseconds` pass, fires the timer, drains.
    pub(super) fn wait(&mut self, milliseconds: u64) {
        self.now = self.now.saturating_add(Duration::from_millis(milliseconds));
        self.connection.on_timeout(self.now);
        self.drain();
    }

    /// Everything received so far, leaving the buffer empty.
    pub(super) fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.output)
    }
}

/// A `GET` for `path` with a `Host` and one more field.
pub(super) fn get(path: &str) -> Vec<u8> {
    alloc::format!("GET {path} HTTP/1.1\r\nHost: echo.test\r\nUser-Agent: test/1\r\n\r\n").into_bytes()
}

/// A request with a `Content-Length` body.
pub(super) fn with_length(method: &str, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut request = alloc::format!("{method} /upload HTTP/1.1\r\nHost: echo.test\r\n").into_bytes();
    if let Some(content_type) = content_type {
        request.extend_from_slice(alloc::format!("Content-Type: {content_type}\r\n").as_bytes());
    }
    request.extend_from_slice(alloc::format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    request.extend_from_slice(body);
    request
}

/// A chunked request whose body is `pieces`, one chunk each, with an
/// extension on every chunk and a trailer field.
pub(super) fn chunked(content_type: &str, pieces: &[&[u8]]) -> Vec<u8> {
    let head = alloc::format!(
        "POST /chunks HTTP/1.1\r\nHost: echo.test\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut request = head.into_bytes();
    for piece in pieces.iter().filter(|piece| !piece.is_empty()) {
        request.extend_from_slice(alloc::format!("{:X};note=\"a b\"\r\n", piece.len()).as_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0;last\r\nChecksum: none\r\n\r\n");
    request
}

/// One parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Vec<u8>,
}

impl Response {
    /// The value of the field `name` (case-insensitive), if present once.
    pub(super) fn header(&self, name: &str) -> Option<&[u8]> {
        let mut values = self.headers.iter().filter(|(field, _)| field.eq_ignore_ascii_case(name));
        let value = values.next().map(|(_, value)| value.as_slice());
        assert!(values.next().is_none(), "{name} repeated");
        value
    }

    pub(super) fn header_text(&self, name: &str) -> Option<&str> {
        self.header(name).map(|value| core::str::from_utf8(value).unwrap())
    }
}

/// Parses a whole response stream. `head_requests[i]` says whether the
/// i-th final response answers a HEAD (and so has no body); 1xx responses
/// are returned too but do not count.
pub(super) fn parse_responses(mut bytes: &[u8], head_requests: &[bool]) -> Vec<Response> {
    let mut responses = Vec::new();
    let mut finals = 0;
    while !bytes.is_empty() {
        let is_head = head_requests.get(finals).copied().unwrap_or(false);
        let (response, used) = parse_response(bytes, is_head).unwrap_or_else(|| {
            panic!("unparsable response: {:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)]))
        });
        finals += usize::from(response.status >= 200);
        responses.push(response);
        bytes = &bytes[used..];
    }
    responses
}

/// Parses one response from the front of `bytes`; `None` if it is
/// incomplete or malformed.
pub(super) fn parse_response(bytes: &[u8], is_head: bool) -> Option<(Response, usize)> {
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut fields);
    let httparse::Status::Complete(head_length) = parsed.parse(bytes).ok()? else { return None };
    assert_eq!(parsed.version, Some(1), "responses are HTTP/1.1");
    let status = parsed.code?;
    let headers: Vec<(String, Vec<u8>)> =
        parsed.headers.iter().map(|field| (String::from(field.name), field.value.to_vec())).collect();
    let mut response = Response { status, headers, body: Vec::new() };
    let rest = &bytes[head_length..];
    let body_length = if status < 200 || is_head {
        0
    } else if response.header("transfer-encoding") == Some(b"chunked") {
        let (body, used) = decode_chunked(rest)?;
        response.body = body;
        used
    } else {
        let length: usize = response.header_text("content-length")?.parse().ok()?;
        response.body = rest.get(..length)?.to_vec();
        length
    };
    Some((response, head_length + body_length))
}

/// Decodes a chunked body as the engine writes it (no extensions or trailers).
pub(super) fn decode_chunked(mut bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let start_length = bytes.len();
    let mut body = Vec::new();
    loop {
        let line_end = bytes.windows(2).position(|window| window == b"\r\n")?;
        let size = usize::from_str_radix(core::str::from_utf8(&bytes[..line_end]).ok()?, 16).ok()?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            bytes = bytes.strip_prefix(b"\r\n")?;
            return Some((body, start_length - bytes.len()));
        }
        body.extend_from_slice(bytes.get(..size)?);
        bytes = bytes.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

/// A seeded xorshift generator for reproducible random tests.
pub(super) struct XorShift(pub(super) u64);

impl XorShift {
    pub(super) fn next(&mut self) -> u64 {
        let mut value = self.0;
        value ^= value << 13;
        value ^= value >> 7;
        value ^= value << 17;
        self.0 = value;
        value
    }

    /// A value in `0..bound` (`bound` > 0).
    pub(super) fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    pub(super) fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let value = self.next().to_le_bytes();
            chunk.copy_from_slice(&value[..chunk.len()]);
        }
    }
}
