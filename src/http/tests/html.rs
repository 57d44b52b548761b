//! The HTML page (`format=html`, or a browser's `Accept`): what it shows,
//! that no byte of a request becomes markup (scripts, quotes, references,
//! invalid UTF-8, control bytes, LF-only heads), that plain clients still
//! get the byte-for-byte echo, and that a page longer than the output
//! queue or describing a long body is written in pieces from bounded state.

use super::client::{Peer, Response, parse_responses};
use crate::http::{Endpoints, Instance, Limits, MAX_HTML_BODY_BYTES};
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddr};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

/// What Chromium sends when it loads a page.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,\
image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";

fn serve(input: &[u8]) -> Peer {
    let mut peer = Peer::new(Limits::default());
    peer.send(input);
    peer
}

fn only_response(peer: &Peer, is_head: bool) -> Response {
    let mut responses = parse_responses(&peer.output, &[is_head]);
    assert_eq!(responses.len(), 1, "{:?}", String::from_utf8_lossy(&peer.output));
    responses.remove(0)
}

/// The page answered to `input`, checked to be an HTML answer.
fn page_of(input: &[u8]) -> String {
    page(&serve(input))
}

fn page(peer: &Peer) -> String {
    let response = only_response(peer, false);
    assert_eq!(response.status, 200);
    assert_eq!(response.header_text("content-type"), Some("text/html; charset=utf-8"));
    String::from_utf8(response.body).expect("the page is UTF-8")
}

fn browser_get(target: &str, fields: &[u8]) -> Vec<u8> {
    [
        alloc::format!("GET {target} HTTP/1.1\r\nHost: echo.test\r\nAccept: {BROWSER_ACCEPT}\r\n").as_bytes(),
        fields,
        b"\r\n",
    ]
    .concat()
}

fn browser_post(fields: &[u8], body: &[u8]) -> Vec<u8> {
    let length = alloc::format!("Content-Length: {}\r\n", body.len());
    [&browser_get("/form", &[fields, length.as_bytes()].concat())[..], body].concat()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| alloc::format!("{byte:02x}")).collect()
}

/// The page's tags, in order (names only): what its markup is.
fn tags(page: &str) -> Vec<&str> {
    page.split('<')
        .skip(1)
        .map(|rest| rest.split(|character: char| character == '>' || character.is_whitespace()).next().unwrap())
        .collect()
}

/// Text written by the page, read back: the character references and
/// `\xHH` escapes turned into the bytes they stand for.
fn unescape(text: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut rest = text;
    while let Some(character) = rest.chars().next() {
        let reference = [("&amp;", b'&'), ("&lt;", b'<'), ("&gt;", b'>'), ("&quot;", b'"'), ("&#39;", b'\'')]
            .into_iter()
            .find(|(reference, _)| rest.starts_with(reference));
        if let Some((reference, byte)) = reference {
            bytes.push(byte);
            rest = &rest[reference.len()..];
        } else if let Some(hex) = rest.strip_prefix("\\x").and_then(|after| after.get(..2)) {
            bytes.push(u8::from_str_radix(hex, 16).unwrap());
            rest = &rest[4..];
        } else {
            bytes.extend_from_slice(character.encode_utf8(&mut [0; 4]).as_bytes());
            rest = &rest[character.len_utf8()..];
        }
    }
    bytes
}

/// The text of the cell with `id`, as written.
fn cell<'a>(page: &'a str, id: &str) -> &'a str {
    let start = alloc::format!("<td id=\"{id}\">");
    page.split(start.as_str()).nth(1).unwrap().split("</td>").next().unwrap()
}

/// The value cells of the header table, in order, as written.
fn header_values(page: &str) -> Vec<&str> {
    let table = page.split("<table id=\"headers\">").nth(1).unwrap().split("</table>").next().unwrap();
    table.lines().skip(2).map(|line| line.rsplit("<td>").next().unwrap().trim_end_matches("</td></tr>")).collect()
}

#[test]
fn a_browser_gets_a_page_describing_its_request() {
    let mut peer = Peer::new(Limits::default());
    peer.connection.set_instance(Rc::new(Instance::new(Some("xenecho-<test>"), Some(7))));
    let client = SocketAddr::new(Ipv4Addr::new(10, 88, 0, 1).into(), 41_234);
    let local = SocketAddr::new(Ipv4Addr::new(10, 88, 0, 2).into(), 80);
    peer.connection.set_endpoints(Endpoints { client: Some(client), local: Some(local) });
    peer.send(&browser_get("/a/b?x=1&y=%22", b"X-First: one\r\nX-Second: two\r\n"));
    let page = page(&peer);
    assert!(page.starts_with("<!DOCTYPE html>\n"));
    assert!(page.contains("<title>xenecho: GET /a/b?x=1&amp;y=%22</title>"));
    for row in [
        "<tr><th>method</th><td id=\"method\">GET</td></tr>",
        "<tr><th>target</th><td id=\"target\">/a/b?x=1&amp;y=%22</td></tr>",
        "<tr><th>version</th><td id=\"version\">HTTP/1.1</td></tr>",
        "<tr><th>client</th><td id=\"client\">10.88.0.1 port 41234</td></tr>",
        "<tr><th>instance</th><td id=\"instance\">xenecho-&lt;test&gt;, domid 7, 10.88.0.2 port 80</td></tr>",
        "<h2>Header fields (4, in the order received)</h2>",
        "<tr><td>1</td><td>Host</td><td>echo.test</td></tr>",
        "<tr><td>3</td><td>X-First</td><td>one</td></tr>",
        "<tr><td>4</td><td>X-Second</td><td>two</td></tr>",
    ] {
        assert!(page.contains(row), "{row} is not in\n{page}");
    }
    let accept = alloc::format!("<tr><td>2</td><td>Accept</td><td>{}</td></tr>", BROWSER_ACCEPT);
    assert!(page.contains(&accept));
    let empty =
        alloc::format!("No body (neither Content-Length nor Transfer-Encoding): 0 bytes, SHA-256 {}.", sha256_hex(b""));
    assert!(page.contains(&empty), "{page}");
    assert!(!page.contains("<pre"), "no body to show");
    assert_eq!(peer.connection.wants_close(), None, "the connection stays open");
    let unknown = page_of(&browser_get("/", b""));
    assert!(unknown.contains("<td id=\"client\">unknown</td>") && unknown.contains("<td id=\"instance\">unknown</td>"));
}

#[test]
fn no_byte_of_a_request_becomes_markup() {
    let benign = page_of(&browser_get("/q", b"User-Agent: benign\r\nX-Quotes: plain\r\nX-Bytes: plain\r\n"));
    let hostile_fields: &[u8] = b"User-Agent: Mozilla <b id=\"injected\">marker</b><script>alert('x')</script>\r\n\
X-Quotes: \"double\" 'single' &amp; &#60; </td></tr></table>\r\n\
X-Bytes: caf\xc3\xa9 \xff\xfe \xc3 end\r\n";
    let hostile = page_of(&browser_get("/q", hostile_fields));
    assert_eq!(tags(&hostile), tags(&benign), "the same markup, whatever the request says");
    assert!(!hostile.contains("<script") && !hostile.contains("<b "));
    assert!(hostile.contains(
        "Mozilla &lt;b id=&quot;injected&quot;&gt;marker&lt;/b&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    ));
    assert!(
        hostile
            .contains("&quot;double&quot; &#39;single&#39; &amp;amp; &amp;#60; &lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;")
    );
    assert!(hostile.contains("caf\u{e9} \\xff\\xfe \\xc3 end"), "invalid UTF-8 as \\xHH");
    let values = header_values(&hostile);
    assert_eq!(unescape(values[3]), b"\"double\" 'single' &amp; &#60; </td></tr></table>");
    assert_eq!(unescape(values[4]), b"caf\xc3\xa9 \xff\xfe \xc3 end");
}

#[test]
fn a_head_with_bare_line_feeds_and_odd_bytes_gets_a_sound_page() {
    let input = b"GET /lf?<x>=\"1\" HTTP/1.1\nHost: a\nAccept: text/html\nX-Junk: \x80\x81 \t tab <i>\n\n";
    let page = page_of(input);
    assert!(page.contains("<td id=\"target\">/lf?&lt;x&gt;=&quot;1&quot;</td>"));
    assert!(page.contains("<tr><td>3</td><td>X-Junk</td><td>\\x80\\x81 \t tab &lt;i&gt;</td></tr>"));
    assert_eq!(tags(&page), tags(&page_of(b"GET /lf HTTP/1.1\nHost: a\nAccept: text/html\nX-Junk: j\n\n")));
}

#[test]
fn plain_clients_still_get_the_byte_for_byte_echo() {
    for request in [
        &b"GET /p HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"[..],
        b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /p HTTP/1.1\r\nHost: a\r\nAccept: text/html;q=0.5, */*\r\n\r\n",
        b"GET /p?format=text HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\n\r\n",
    ] {
        let expected =
            alloc::format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n", request.len());
        assert_eq!(serve(request).output, [expected.as_bytes(), request].concat());
    }
    let posted = b"POST /p HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nContent-Type: a/b\r\nContent-Length: 3\r\n\r\n<i>";
    let response = only_response(&serve(posted), false);
    assert_eq!((response.header_text("content-type"), response.body.as_slice()), (Some("a/b"), &b"<i>"[..]));
}

#[test]
fn format_html_asks_for_the_page_whatever_the_accept() {
    for request in [
        &b"GET /?format=html HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET /?format=HTML HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Echo-Format: html\r\nAccept: */*\r\n\r\n",
        b"GET / HTTP/1.0\r\nAccept: text/html\r\n\r\n",
    ] {
        assert!(page_of(request).ends_with("</html>\n"));
    }
    assert!(page_of(b"GET / HTTP/1.0\r\nAccept: text/html\r\n\r\n").contains("<td id=\"version\">HTTP/1.0</td>"));
    let head = only_response(&serve(b"HEAD /?format=html HTTP/1.1\r\nHost: a\r\n\r\n"), true);
    let get = page_of(b"GET /?format=html HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(head.body.is_empty(), "HEAD gets no body");
    let announced: usize = head.header_text("content-length").unwrap().parse().unwrap();
    assert_eq!(announced, get.len() + 2, "the length of its own page (HEAD is one byte longer, twice)");
    let shaped = only_response(&serve(b"GET /?format=html&status=404&instance HTTP/1.1\r\nHost: a\r\n\r\n"), false);
    assert_eq!((shaped.status, shaped.header_text("x-echo-instance")), (404, Some("unknown")));
}

#[test]
fn a_small_text_body_is_shown_and_others_are_summarised() {
    let text = b"<i>hi</i> & \"you\"\r\nline two\tcaf\xc3\xa9";
    let page = page_of(&browser_post(b"", text));
    let summary = alloc::format!("Framed by Content-Length: {} bytes, SHA-256 {}.", text.len(), sha256_hex(text));
    assert!(page.contains(&summary), "{page}");
    assert!(page.contains("<pre id=\"body\">&lt;i&gt;hi&lt;/i&gt; &amp; &quot;you&quot;\r\nline two\tcaf\u{e9}</pre>"));
    let one = page_of(&browser_post(b"", b"x"));
    assert!(one.contains(": 1 byte, SHA-256 ") && one.contains("<pre id=\"body\">x</pre>"));

    let binary = page_of(&browser_post(b"", b"\x00\x01\x02<script>"));
    assert!(binary.contains("Not text (UTF-8 without control characters): not shown.") && !binary.contains("<pre"));
    let invalid = page_of(&browser_post(b"", b"abc\xff"));
    assert!(invalid.contains("Not text") && !invalid.contains("<pre"));

    let exact = [b'a'; MAX_HTML_BODY_BYTES];
    assert!(page_of(&browser_post(b"", &exact)).contains("<pre id=\"body\">aaaa"), "the longest body shown");
    let long = [b'a'; MAX_HTML_BODY_BYTES + 1];
    let long_page = page_of(&browser_post(b"", &long));
    assert!(long_page.contains(&alloc::format!("Longer than {MAX_HTML_BODY_BYTES} bytes: not shown.")));
    assert!(!long_page.contains("<pre"));

    // The body is kept in the room the head leaves: a head that nearly fills
    // its buffer leaves none.
    let bare_head = browser_post(b"X-Filler: \r\n", b"").len();
    let filler = alloc::format!("X-Filler: {}\r\n", "f".repeat(Limits::default().max_head_bytes - bare_head - 5));
    let crowded = page_of(&browser_post(filler.as_bytes(), b"short text"));
    assert!(crowded.contains("Not shown: the request head left no room to keep it."), "{crowded}");
}

#[test]
fn a_chunked_body_arriving_in_pieces_is_shown_and_the_next_request_follows() {
    let mut input = browser_get("/up", b"Transfer-Encoding: chunked\r\n");
    input.extend_from_slice(b"4\r\n<b>x\r\n5\r\n</b>!\r\n0\r\n\r\n");
    input.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut peer = Peer::new(Limits::default());
    peer.send_in_pieces(&input, [200, 1, 7, 3, 3]);
    let responses = parse_responses(&peer.output, &[false, false]);
    assert_eq!(responses.len(), 2);
    let page = String::from_utf8(responses[0].body.clone()).unwrap();
    assert!(
        page.contains("Chunked: 9 bytes, SHA-256 ") && page.contains("<pre id=\"body\">&lt;b&gt;x&lt;/b&gt;!</pre>")
    );
    assert_eq!(responses[1].body, b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n", "the next head, without the last body");
}

#[test]
fn a_page_longer_than_the_output_queue_is_written_in_pieces() {
    // `<` becomes four bytes, `"` six: a head near the buffer's size makes a
    // page far longer than the queue.
    let value: String = "<\"".repeat(3600);
    let fields = alloc::format!("X-Markup: {value}\r\n");
    let input = [&b"GET /?format=html HTTP/1.1\r\nHost: a\r\n"[..], fields.as_bytes(), b"\r\n"].concat();
    let limits = Limits { output_bytes: 0, ..Limits::default() };
    let mut peer = Peer::new(limits);
    peer.send(&input);
    let response = only_response(&peer, false);
    let length: usize = response.header_text("content-length").unwrap().parse().unwrap();
    assert!(length > 4 * limits.output_queue_bytes(), "{length}");
    assert_eq!(response.body.len(), length);
    let page = String::from_utf8(response.body).unwrap();
    assert_eq!(unescape(header_values(&page)[1]), value.as_bytes());
    let mut chunked = Peer::new(limits);
    chunked.send(&[&input[..17], b"&chunked", &input[17..]].concat());
    let chunked_page = only_response(&chunked, false).body;
    assert_eq!(chunked_page, page.replace("?format=html<", "?format=html&amp;chunked<").as_bytes());
}

#[test]
fn a_long_body_is_summarised_not_kept() {
    let limits = Limits::default();
    let mut peer = Peer::new(limits);
    let body: Vec<u8> = (0..300_000u32).map(|index| (index % 251) as u8).collect();
    let input = browser_post(b"", &body);
    peer.send_in_pieces(&input, [1000, 4096, 50_000]);
    assert!(peer.connection.buffered_bytes() <= limits.memory_bound());
    let page = page(&peer);
    assert!(page.contains(&alloc::format!("300000 bytes, SHA-256 {}.", sha256_hex(&body))));
    assert!(page.contains("Longer than"));
}

#[test]
fn the_body_kept_stays_within_the_connections_bound() {
    let limits = Limits { max_head_bytes: 256, output_bytes: 0, ..Limits::default() };
    let mut peer = Peer::new(limits);
    let mut input = b"POST /?format=html HTTP/1.1\r\nHost: a\r\nContent-Length: 600\r\n\r\n".to_vec();
    input.extend(core::iter::repeat_n(b'z', 600));
    for piece in input.chunks(37) {
        peer.send(piece);
        assert!(peer.connection.buffered_bytes() <= limits.memory_bound());
    }
    assert!(page(&peer).contains("Not shown: the request head left no room to keep it."));
}

/// Header values httparse takes: visible ASCII, spaces, tabs, obs-text;
/// no backslash, so that `\xHH` reads back unambiguously.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        (0x21u8..=0x7e).prop_filter("no backslash", |byte| *byte != b'\\'),
        Just(b' '),
        Just(b'\t'),
        0x80u8..=0xff,
    ];
    proptest::collection::vec(byte, 1..60)
        .prop_map(|value| value.trim_ascii().to_vec())
        .prop_filter("not empty once trimmed", |value| !value.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_header_value_is_shown_as_text(value in header_value(), target in "/[!-\\[\\]-~]{0,20}") {
        let request = |target: &str, value: &[u8]| {
            let start = alloc::format!("GET {target} HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\nX-Value: ");
            [start.as_bytes(), value, b"\r\n\r\n"].concat()
        };
        let peer = serve(&request(&target, &value));
        let responses = parse_responses(&peer.output, &[false]);
        prop_assume!(responses.len() == 1 && responses[0].status == 200);
        let page = String::from_utf8(responses[0].body.clone()).expect("UTF-8");
        let benign = page_of(&request("/", b"v"));
        prop_assert_eq!(tags(&page), tags(&benign));
        prop_assert_eq!(unescape(header_values(&page)[2]), value);
        prop_assert_eq!(unescape(cell(&page, "target")), target.as_bytes());
    }
}
