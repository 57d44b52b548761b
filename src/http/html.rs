//! The HTML page that describes a request (`format=html`, or an `Accept`
//! that prefers `text/html`, as a browser's does): the request line, the
//! header fields in the order received, the body's framing, length and
//! SHA-256 and, when it is at most [`MAX_HTML_BODY_BYTES`] of text, the body
//! itself; the client, and the instance that answered. The same facts as
//! the JSON description ([`super::json`]), for a person to read.
//!
//! Every byte that comes from the request (or from the instance's name) is
//! written as text: `&`, `<`, `>`, `"` and `'` as character references,
//! each byte that is not part of valid UTF-8 and each control byte but tab,
//! CR and LF as `\xHH`. So a request cannot put markup on the page, and
//! its bytes are shown whatever they are. The page carries a
//! `Content-Security-Policy` that allows no script, no request and no
//! resource but its own inline style, should escaping ever fail.
//!
//! A body is shown when it was kept whole: at most [`MAX_HTML_BODY_BYTES`],
//! kept in the room the request head leaves in its buffer (no other
//! memory), and text (valid UTF-8 without control characters but tab, CR
//! and LF); otherwise the page says why it is not.
//!
//! Contract: writing is a pure function of its facts, so the page can be
//! written again from any offset (the answer writes it in pieces, through a
//! window on the output queue, as it does the JSON); it allocates nothing.

use super::identity::put_display;
use super::json::Facts;
use super::output::{ByteSink, Escape, put_escaped, put_hex};
use super::request::{RequestFraming, Version, header_fields, request_line};
use super::response::put_decimal;

/// The longest body the page shows; a longer one is only summarised.
pub const MAX_HTML_BODY_BYTES: usize = 1024;

/// The page up to its title's text.
const PAGE_START: &[u8] = b"<!DOCTYPE html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<title>xenecho: ";

/// From the end of the title to the request's table.
const PAGE_STYLE: &[u8] = b"</title>
<style>
body { font-family: sans-serif; margin: 2em; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
td, pre, code { font-family: monospace; white-space: pre-wrap; word-break: break-all; }
pre { background: #f4f4f4; padding: 0.5em; }
</style>
</head>
<body>
<h1>Your request, as xenecho received it</h1>
<table id=\"request\">
";

/// After the body's section.
const PAGE_END: &[u8] = b"<p>The same as JSON: <code>?format=json</code> or <code>Accept: application/json</code>; \
the plain echo: <code>?format=text</code>, or any client that does not ask for <code>text/html</code>.</p>
</body>
</html>
";

/// Writes the page describing a request.
pub(crate) fn write_page(sink: &mut impl ByteSink, facts: &Facts<'_>) {
    let (method, target) = request_line(facts.head);
    let version: &[u8] = match facts.request.version {
        Version::Http10 => b"HTTP/1.0",
        Version::Http11 => b"HTTP/1.1",
    };
    sink.put(PAGE_START);
    put_text(sink, method);
    sink.put(b" ");
    put_text(sink, target);
    sink.put(PAGE_STYLE);
    row(sink, b"method", |sink| put_text(sink, method));
    row(sink, b"target", |sink| put_text(sink, target));
    row(sink, b"version", |sink| sink.put(version));
    row(sink, b"client", |sink| match facts.endpoints.client {
        Some(client) => {
            put_display(sink, &client.ip());
            sink.put(b" port ");
            put_decimal(sink, u64::from(client.port()));
        }
        None => sink.put(b"unknown"),
    });
    row(sink, b"instance", |sink| write_instance(sink, facts));
    sink.put(b"</table>\n<h2>Header fields (");
    put_decimal(sink, header_fields(facts.head).count() as u64);
    sink.put(
        b", in the order received)</h2>\n<table id=\"headers\">\n<tr><th>#</th><th>name</th><th>value</th></tr>\n",
    );
    for (index, (name, value)) in header_fields(facts.head).enumerate() {
        sink.put(b"<tr><td>");
        put_decimal(sink, index as u64 + 1);
        sink.put(b"</td><td>");
        put_text(sink, name);
        sink.put(b"</td><td>");
        put_text(sink, value);
        sink.put(b"</td></tr>\n");
    }
    sink.put(b"</table>\n<h2>Body</h2>\n");
    write_body(sink, facts);
    sink.put(PAGE_END);
}

/// Writes one row of the request's table: its name, and `value` as its cell.
fn row<S: ByteSink>(sink: &mut S, name: &[u8], value: impl FnOnce(&mut S)) {
    sink.put(b"<tr><th>");
    sink.put(name);
    sink.put(b"</th><td id=\"");
    sink.put(name);
    sink.put(b"\">");
    value(sink);
    sink.put(b"</td></tr>\n");
}

/// The instance's name, domain id, address and port, as far as known.
fn write_instance(sink: &mut impl ByteSink, facts: &Facts<'_>) {
    match facts.identity.name() {
        Some(name) => put_text(sink, name.as_bytes()),
        None => sink.put(b"unknown"),
    }
    if let Some(domid) = facts.identity.domid() {
        sink.put(b", domid ");
        put_decimal(sink, u64::from(domid));
    }
    if let Some(address) = facts.identity.address() {
        sink.put(b", ");
        put_display(sink, &address);
        if let Some(local) = facts.endpoints.local {
            sink.put(b" port ");
            put_decimal(sink, u64::from(local.port()));
        }
    }
}

/// The body's framing, length and SHA-256, then the body or why it is not shown.
fn write_body(sink: &mut impl ByteSink, facts: &Facts<'_>) {
    let body = &facts.body;
    sink.put(b"<p id=\"body-summary\">");
    sink.put(match facts.request.framing {
        RequestFraming::NoBody => b"No body (neither Content-Length nor Transfer-Encoding)".as_slice(),
        RequestFraming::Length(_) => b"Framed by Content-Length",
        RequestFraming::Chunked => b"Chunked",
    });
    sink.put(b": ");
    put_decimal(sink, body.length);
    sink.put(if body.length == 1 { b" byte, SHA-256 ".as_slice() } else { b" bytes, SHA-256 " });
    put_hex(sink, body.sha256);
    sink.put(b".");
    let shown = body.kept.filter(|kept| kept.len() as u64 == body.length && is_text(kept));
    match shown {
        _ if body.length == 0 => sink.put(b"</p>\n"),
        Some(kept) => {
            sink.put(b"</p>\n<pre id=\"body\">");
            put_text(sink, kept);
            sink.put(b"</pre>\n");
        }
        None if body.length > MAX_HTML_BODY_BYTES as u64 => {
            sink.put(b" Longer than ");
            put_decimal(sink, MAX_HTML_BODY_BYTES as u64);
            sink.put(b" bytes: not shown.</p>\n");
        }
        None if body.kept.is_some() => sink.put(b" Not text (UTF-8 without control characters): not shown.</p>\n"),
        None => sink.put(b" Not shown: the request head left no room to keep it.</p>\n"),
    }
}

/// Whether `bytes` is text: valid UTF-8 without control characters but
/// tab, CR and LF.
fn is_text(bytes: &[u8]) -> bool {
    core::str::from_utf8(bytes)
        .is_ok_and(|text| !text.chars().any(|character| character.is_control() && !"\t\r\n".contains(character)))
}

/// Writes `bytes` as HTML text: `&`, `<`, `>`, `"` and `'` as character
/// references, each byte that is not part of valid UTF-8 and each control
/// byte but tab, CR and LF as `\xHH`; the rest as it is.
pub(crate) fn put_text(sink: &mut impl ByteSink, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        put_escaped(sink, chunk.valid().as_bytes(), escape);
        for &byte in chunk.invalid() {
            sink.put(b"\\x");
            put_hex(sink, &[byte]);
        }
    }
}

/// How the page writes a byte of valid UTF-8 (see [`put_text`]).
fn escape(byte: u8) -> Escape {
    match byte {
        b'&' => Escape::As(b"&amp;"),
        b'<' => Escape::As(b"&lt;"),
        b'>' => Escape::As(b"&gt;"),
        b'"' => Escape::As(b"&quot;"),
        b'\'' => Escape::As(b"&#39;"),
        b'\t' | b'\r' | b'\n' => Escape::Plain,
        0x00..=0x1f | 0x7f => Escape::Hex(b"\\x"),
        _ => Escape::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn text(bytes: &[u8]) -> String {
        let mut written = Vec::new();
        put_text(&mut written, bytes);
        String::from_utf8(written).unwrap()
    }

    #[test]
    fn text_is_escaped_so_that_it_cannot_be_markup() {
        assert_eq!(text(b"plain text"), "plain text");
        assert_eq!(text(b"<script>alert('x')</script>"), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
        assert_eq!(text(b"a=\"1\" & b"), "a=&quot;1&quot; &amp; b");
        assert_eq!(text(b"&amp;"), "&amp;amp;", "a reference in the request stays text");
        assert_eq!(text(b"tab\there\r\nline"), "tab\there\r\nline");
        assert_eq!(text(b"nul\x00 esc\x1b del\x7f"), "nul\\x00 esc\\x1b del\\x7f");
        assert_eq!(text("caf\u{e9} \u{1f600}".as_bytes()), "caf\u{e9} \u{1f600}");
        assert_eq!(text(b"bad \xff\xfe end \xe2\x82"), "bad \\xff\\xfe end \\xe2\\x82");
    }

    #[test]
    fn text_is_what_the_page_shows_as_a_body() {
        assert!(is_text(b"hello\r\n\tworld"));
        assert!(is_text("caf\u{e9}".as_bytes()));
        assert!(is_text(b""));
        assert!(!is_text(b"\x00binary"));
        assert!(!is_text(b"\xff"));
        assert!(!is_text("c1 \u{85} control".as_bytes()));
    }
}
