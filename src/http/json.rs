//! The JSON description of a request (`format=json`, or `Accept:
//! application/json`):
//!
//! ```json
//! {
//!   "method": "POST",
//!   "target": "/upload?format=json",
//!   "path": "/upload",
//!   "query": "format=json",
//!   "version": "HTTP/1.1",
//!   "headers": [
//!     {"name": "Host", "value": "example"},
//!     {"name": "Content-Length", "value": "5"}
//!   ],
//!   "body": {"framing": "content-length", "length": 5, "sha256": "2cf24dba…"},
//!   "client": {"address": "10.88.0.1", "port": 41234},
//!   "instance": {"name": "xenecho", "domid": 5, "address": "10.88.0.2", "port": 80}
//! }
//! ```
//!
//! `query` is `null` when the target has no `?`; `framing` is `none`,
//! `content-length` or `chunked`; the body is summarised (its length and
//! SHA-256, hexadecimal), never included; `client`, and the instance's
//! `name`, `domid`, `address` and `port`, are `null` when not known. Header
//! fields are in the order received, values without the spaces around them.
//! Strings are escaped as JSON requires (quotes, backslashes and control
//! bytes; DEL as `\u007f`); a byte that is not part of valid UTF-8 becomes
//! U+FFFD (written `\ufffd`), one for each invalid sequence.
//!
//! Contract: writing is a pure function of the request head and the body's
//! summary, so the same text can be written again from any offset
//! (the answer writes it in pieces, through a window on the output queue);
//! it allocates nothing.

use super::identity::{Endpoints, Identity, put_display};
use super::output::{ByteSink, Escape, put_escaped, put_hex};
use super::request::{RequestFraming, RequestHead, Version, header_fields, request_line};
use super::response::put_decimal;

/// What the description says about the body.
pub(crate) struct BodySummary<'a> {
    pub(crate) length: u64,
    pub(crate) sha256: &'a [u8; 32],
    /// The body itself, when it was kept whole (for the HTML page; the
    /// JSON never includes it).
    pub(crate) kept: Option<&'a [u8]>,
}

/// Everything the description is written from.
pub(crate) struct Facts<'a> {
    pub(crate) head: &'a [u8],
    pub(crate) request: &'a RequestHead,
    pub(crate) body: BodySummary<'a>,
    pub(crate) endpoints: &'a Endpoints,
    pub(crate) identity: Identity<'a>,
}

/// Writes the description of a request.
pub(crate) fn write_description(sink: &mut impl ByteSink, facts: &Facts<'_>) {
    let (method, target) = request_line(facts.head);
    let question = target.iter().position(|&byte| byte == b'?');
    let path = &target[..question.unwrap_or(target.len())];
    sink.put(b"{\n  \"method\": ");
    put_string(sink, method);
    sink.put(b",\n  \"target\": ");
    put_string(sink, target);
    sink.put(b",\n  \"path\": ");
    put_string(sink, path);
    sink.put(b",\n  \"query\": ");
    match question {
        Some(start) => put_string(sink, &target[start + 1..]),
        None => sink.put(b"null"),
    }
    sink.put(b",\n  \"version\": ");
    sink.put(match facts.request.version {
        Version::Http10 => b"\"HTTP/1.0\"",
        Version::Http11 => b"\"HTTP/1.1\"",
    });
    sink.put(b",\n  \"headers\": [");
    for (index, (name, value)) in header_fields(facts.head).enumerate() {
        sink.put(if index == 0 { b"\n    {\"name\": " } else { b",\n    {\"name\": " });
        put_string(sink, name);
        sink.put(b", \"value\": ");
        put_string(sink, value);
        sink.put(b"}");
    }
    if header_fields(facts.head).next().is_some() {
        sink.put(b"\n  ");
    }
    sink.put(b"],\n  \"body\": {\"framing\": ");
    sink.put(match facts.request.framing {
        RequestFraming::NoBody => b"\"none\"".as_slice(),
        RequestFraming::Length(_) => b"\"content-length\"",
        RequestFraming::Chunked => b"\"chunked\"",
    });
    sink.put(b", \"length\": ");
    put_decimal(sink, facts.body.length);
    sink.put(b", \"sha256\": \"");
    put_hex(sink, facts.body.sha256);
    sink.put(b"\"},\n  \"client\": ");
    match facts.endpoints.client {
        Some(client) => {
            sink.put(b"{\"address\": \"");
            put_display(sink, &client.ip());
            sink.put(b"\", \"port\": ");
            put_decimal(sink, u64::from(client.port()));
            sink.put(b"}");
        }
        None => sink.put(b"null"),
    }
    sink.put(b",\n  \"instance\": {\"name\": ");
    match facts.identity.name() {
        Some(name) => put_string(sink, name.as_bytes()),
        None => sink.put(b"null"),
    }
    sink.put(b", \"domid\": ");
    put_number_or_null(sink, facts.identity.domid().map(u64::from));
    sink.put(b", \"address\": ");
    match facts.identity.address() {
        Some(address) => {
            sink.put(b"\"");
            put_display(sink, &address);
            sink.put(b"\"");
        }
        None => sink.put(b"null"),
    }
    sink.put(b", \"port\": ");
    put_number_or_null(sink, facts.endpoints.local.map(|local| u64::from(local.port())));
    sink.put(b"}\n}\n");
}

fn put_number_or_null(sink: &mut impl ByteSink, number: Option<u64>) {
    match number {
        Some(number) => put_decimal(sink, number),
        None => sink.put(b"null"),
    }
}

/// Writes `bytes` as a JSON string: valid UTF-8 as it is (escaped where
/// JSON asks), each invalid sequence as U+FFFD.
pub(crate) fn put_string(sink: &mut impl ByteSink, bytes: &[u8]) {
    sink.put(b"\"");
    for chunk in bytes.utf8_chunks() {
        put_escaped(sink, chunk.valid().as_bytes(), escape);
        if !chunk.invalid().is_empty() {
            sink.put(b"\\ufffd");
        }
    }
    sink.put(b"\"");
}

/// How JSON writes a byte of valid UTF-8: quotes, backslashes, control
/// bytes and DEL escaped.
fn escape(byte: u8) -> Escape {
    match byte {
        b'"' => Escape::As(b"\\\""),
        b'\\' => Escape::As(b"\\\\"),
        b'\n' => Escape::As(b"\\n"),
        b'\r' => Escape::As(b"\\r"),
        b'\t' => Escape::As(b"\\t"),
        0x08 => Escape::As(b"\\b"),
        0x0c => Escape::As(b"\\f"),
        0x00..=0x1f | 0x7f => Escape::Hex(b"\\u00"),
        _ => Escape::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn string(bytes: &[u8]) -> String {
        let mut text = Vec::new();
        put_string(&mut text, bytes);
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_json_requires() {
        assert_eq!(string(b"plain"), "\"plain\"");
        assert_eq!(string(b"q\"b\\s/"), r#""q\"b\\s/""#);
        assert_eq!(string(b"\n\r\t\x08\x0c\x00\x1f\x7f"), r#""\n\r\t\b\f\u0000\u001f\u007f""#);
        assert_eq!(string("caf\u{e9} \u{1f600}".as_bytes()), "\"caf\u{e9} \u{1f600}\"");
        assert_eq!(string(b"a\xffb\xc3"), r#""a\ufffdb\ufffd""#);
        assert_eq!(string(b"\xe2\x82"), r#""\ufffd""#, "a cut sequence is one replacement");
        for bytes in [&b"\x00\"\\\xff\xfe\n"[..], b"", "\u{2028}x".as_bytes()] {
            let parsed: serde_json::Value = serde_json::from_str(&string(bytes)).unwrap();
            assert_eq!(parsed.as_str().unwrap(), String::from_utf8_lossy(bytes), "{bytes:?}");
        }
    }
}
