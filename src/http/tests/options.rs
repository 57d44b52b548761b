//! What a request can ask of its answer (`http::options`): a status, a
//! delay, extra header fields, a close, generated bodies, the sink, the
//! JSON description and the instance's name; hostile values; and that a
//! request asking nothing is answered as before.

use super::client::{Peer, XorShift, parse_response, parse_responses, with_length};
use crate::http::{
    CloseMode, Connection, Endpoints, Instance, Instant, Limits, MAX_DELAY, MAX_EXTRA_HEADERS, MAX_GENERATED_BYTES,
    Status, generate,
};
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddr};
use sha2::{Digest, Sha256};

fn serve(input: &[u8]) -> Peer {
    let mut peer = Peer::new(Limits::default());
    peer.send(input);
    peer
}

fn request(target: &str, fields: &str) -> Vec<u8> {
    alloc::format!("GET {target} HTTP/1.1\r\nHost: echo.test\r\n{fields}\r\n").into_bytes()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| alloc::format!("{byte:02x}")).collect()
}

fn only_response(peer: &Peer, is_head: bool) -> super::client::Response {
    let mut responses = parse_responses(&peer.output, &[is_head]);
    assert_eq!(responses.len(), 1, "{:?}", String::from_utf8_lossy(&peer.output));
    responses.remove(0)
}

#[test]
fn a_request_that_changes_nothing_is_answered_byte_for_byte_as_the_plain_echo() {
    for asking in [
        request("/p?seed=5&other=1", ""),
        request("/p?status=200&delay=0", ""),
        request("/p", "X-Echo-Seed: 1\r\nX-Echo-Close: 0\r\nAccept: application/json\r\nX-Echo-Format: text\r\n"),
    ] {
        let expected_head =
            alloc::format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n", asking.len());
        assert_eq!(serve(&asking).output, [expected_head.as_bytes(), &asking].concat());
    }
}

#[test]
fn the_status_asked_for_is_answered_and_the_connection_stays() {
    let mut peer = serve(&request("/down?status=503", ""));
    let response = only_response(&peer, false);
    assert_eq!(response.status, 503);
    assert!(peer.output.starts_with(b"HTTP/1.1 503 Service Unavailable\r\n"));
    assert_eq!(response.body, request("/down?status=503", ""), "the head echo under that status");
    assert_eq!(peer.connection.wants_close(), None, "a status asked for is no error");
    assert_eq!(peer.connection.counters().requested_in_class(5), 1);
    assert_eq!(peer.connection.counters().responses(Status::ServiceUnavailable), 0);
    peer.take_output();
    peer.send(&request("/", "X-Echo-Status: 418\r\n"));
    assert!(peer.output.starts_with(b"HTTP/1.1 418 Client Error\r\n"), "an unregistered code: its class");
    let posted =
        serve(&[&b"POST /p?status=201 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n"[..], b"data"].concat());
    let response = only_response(&posted, false);
    assert_eq!((response.status, response.body.as_slice()), (201, &b"data"[..]), "a body echoed under it");
}

#[test]
fn statuses_without_a_body_get_none_and_the_next_request_is_framed_right() {
    for (code, length) in [(204, None), (304, None), (205, Some("0"))] {
        let mut input = with_length("POST", Some("a/b"), b"discarded body");
        let first_line_end = input.iter().position(|&byte| byte == b' ').unwrap() + 1;
        input.splice(first_line_end..first_line_end + 7, alloc::format!("/upload?status={code}").bytes());
        input.extend_from_slice(&request("/next", ""));
        let peer = serve(&input);
        let head_end = peer.output.windows(4).position(|window| window == b"\r\n\r\n").unwrap() + 4;
        let (head, rest) = peer.output.split_at(head_end);
        let head = String::from_utf8_lossy(head);
        assert!(head.starts_with(&alloc::format!("HTTP/1.1 {code} ")), "{head}");
        assert_eq!(head.contains("Content-Type"), code == 205, "only 205 has a (empty) body: {head}");
        assert_eq!(head.contains("Content-Length: 0"), length.is_some(), "{head}");
        assert!(!head.contains("Transfer-Encoding"), "{head}");
        let next = parse_responses(rest, &[false]);
        assert_eq!((next.len(), next[0].status), (1, 200), "the body was read and discarded: {head}");
        assert_eq!(next[0].body, request("/next", ""));
    }
}

#[test]
fn an_interim_status_comes_before_the_answer() {
    let peer = serve(&request("/hints?status=103&header=Link:%3C/style.css%3E;+rel=preload", ""));
    let text = String::from_utf8_lossy(&peer.output);
    assert!(
        text.starts_with("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n"),
        "{text}"
    );
    let responses = parse_responses(&peer.output, &[false]);
    assert_eq!(responses.iter().map(|response| response.status).collect::<Vec<_>>(), [103, 200]);
    assert_eq!(responses[1].header("link"), Some(&b"</style.css>; rel=preload"[..]), "the final answer too");
    assert_eq!(peer.connection.counters().requested_in_class(1), 1);
    assert_eq!(peer.connection.counters().responses(Status::Ok), 1);
    let with_body =
        serve(&[&b"POST /?status=100 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n"[..], b"ok"].concat());
    let responses = parse_responses(&with_body.output, &[false]);
    assert_eq!(responses.iter().map(|response| response.status).collect::<Vec<_>>(), [100, 200]);
    assert_eq!(responses[1].body, b"ok");
    for refused in [&b"GET /?status=101 HTTP/1.1\r\nHost: a\r\n\r\n"[..], b"GET /?status=103 HTTP/1.0\r\n\r\n"] {
        let peer = serve(refused);
        assert_eq!(only_response(&peer, false).status, 400);
        assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    }
}

#[test]
fn a_delay_waits_on_the_timer_then_answers() {
    let mut peer = Peer::new(Limits::default());
    peer.send(&request("/slow?delay=1500", ""));
    assert!(peer.output.is_empty(), "nothing before the delay");
    assert_eq!(peer.connection.poll_timeout(), Some(Instant::from_millis(1500)), "the deadline is the delay's end");
    assert_eq!(peer.connection.waiting_until(), Some(Instant::from_millis(1500)));
    peer.wait(1499);
    assert!(peer.output.is_empty(), "not a millisecond early");
    peer.wait(1);
    let response = only_response(&peer, false);
    assert_eq!(response.status, 200);
    assert_eq!(peer.connection.counters().timeouts, 0, "a delay is no timeout");
    assert_eq!(peer.connection.waiting_until(), None);
}

#[test]
fn a_delay_longer_than_the_idle_timer_still_answers_and_pipelined_requests_wait_their_turn() {
    let limits = Limits { idle_timeout: core::time::Duration::from_secs(1), ..Limits::default() };
    let mut peer = Peer::new(limits);
    let input = [request("/a", "X-Echo-Delay: 10s\r\n"), request("/b", "")].concat();
    let taken = peer.connection.receive(&input, peer.now);
    assert!(taken < input.len(), "the next request stays in the input while the first waits");
    peer.wait(9_999);
    assert!(peer.output.is_empty());
    assert_eq!(peer.connection.wants_close(), None, "the idle timer does not run during the delay");
    peer.wait(1);
    peer.send(&input[taken..]);
    let responses = parse_responses(&peer.output, &[false, false]);
    assert_eq!(responses.len(), 2);
    assert!(responses[0].body.starts_with(b"GET /a "));
    assert!(responses[1].body.starts_with(b"GET /b "));
    assert_eq!(
        serve(&request("/?delay=10001ms", "")).output.get(..12),
        Some(&b"HTTP/1.1 400"[..]),
        "{MAX_DELAY:?} at most"
    );
}

#[test]
fn the_peer_closing_during_a_delay() {
    let mut peer = Peer::new(Limits::default());
    peer.send(&request("/?delay=1s", ""));
    peer.close();
    assert!(peer.output.is_empty());
    peer.wait(1000);
    assert_eq!(only_response(&peer, false).status, 200, "a request without a body is still answered");
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    let mut cut = Peer::new(Limits::default());
    cut.send(b"POST /?delay=1s HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
    cut.close();
    assert_eq!(only_response(&cut, false).status, 400, "the announced body can no longer come");
}

#[test]
fn extra_header_fields_come_in_order_after_the_framing() {
    let input = request(
        "/?header=X-Query:%20one+two%20&header=Cache-Control:no-store",
        "X-Echo-Header: Set-Cookie: a=b; Path=/\r\nx-echo-header: X-Field:3\r\n",
    );
    let peer = serve(&input);
    let text = String::from_utf8_lossy(&peer.output);
    let head = &text[..text.find("\r\n\r\n").unwrap()];
    let fields = "Set-Cookie: a=b; Path=/\r\nX-Field: 3\r\nX-Query: one two\r\nCache-Control: no-store";
    assert!(head.ends_with(&alloc::format!("Content-Length: {}\r\n{fields}", input.len())), "{head}");
    let replaced = serve(&request("/?header=Content-Type:text/html", "X-Echo-Header: Content-Type: a/b\r\n"));
    let response = only_response(&replaced, false);
    assert_eq!(response.header("content-type"), Some(&b"text/html"[..]), "replaced by the last one, once");
}

#[test]
fn hostile_extra_header_values_are_refused_with_400() {
    for target in [
        "/?header=X-A:1%0d%0aSet-Cookie:+stolen",
        "/?header=X-A:1%0aX-B:2",
        "/?header=X-A:1%0d",
        "/?header=X-A:%00",
        "/?header=Content-Length:0",
        "/?header=transfer-encoding:chunked",
        "/?header=Connection:close",
        "/?header=X%20A:1",
        "/?header=%0d%0a%0d%0aHTTP/1.1+200+OK",
        "/?header=X-A:1%",
        "/?header=X-A",
    ] {
        let peer = serve(&request(target, ""));
        let response = only_response(&peer, false);
        assert_eq!(response.status, 400, "{target}");
        assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful), "{target}");
        assert!(!String::from_utf8_lossy(&peer.output).contains("stolen"), "{target}");
    }
    for field in ["X-Echo-Header: Upgrade: h2c", "X-Echo-Header: Keep-Alive: 5", "X-Echo-Header: X-A\u{1}: b"] {
        let peer = serve(&request("/", &alloc::format!("{field}\r\n")));
        assert_eq!(only_response(&peer, false).status, 400, "{field}");
    }
    let too_many: String = (0..=MAX_EXTRA_HEADERS).map(|n| alloc::format!("X-Echo-Header: X-{n}: v\r\n")).collect();
    assert_eq!(only_response(&serve(&request("/", &too_many)), false).status, 400);
}

#[test]
fn extra_fields_as_long_as_the_head_still_fit_the_output_queue() {
    // A small head buffer, filled with one long extra field: the response
    // head and the head echo must still make their way out.
    let limits = Limits { max_head_bytes: 512, output_bytes: 0, ..Limits::default() };
    let value: String = core::iter::repeat_n('v', 400).collect();
    let input = request(&alloc::format!("/?header=X-Long:{value}&instance"), "");
    assert!(input.len() <= 512);
    let mut peer = Peer::new(limits);
    peer.connection.set_instance(Rc::new(Instance::new(Some(&"n".repeat(200)), Some(65535))));
    peer.send(&input);
    let response = only_response(&peer, false);
    assert_eq!(response.header("x-long").map(<[u8]>::len), Some(400));
    assert_eq!(response.body, input);
    assert!(peer.connection.buffered_bytes() <= limits.memory_bound());
}

#[test]
fn close_on_demand_answers_with_connection_close_and_closes() {
    let input = [request("/?close", ""), request("/never", "")].concat();
    let peer = serve(&input);
    let response = only_response(&peer, false);
    assert_eq!(response.header_text("connection"), Some("close"));
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    let field = serve(&request("/", "X-Echo-Close: yes\r\n"));
    assert_eq!(only_response(&field, false).header_text("connection"), Some("close"));
}

#[test]
fn generated_bodies_are_the_pattern_or_the_seeded_stream() {
    for (target, is_head) in
        [("/?bytes=0", false), ("/?bytes=1", false), ("/?bytes=100000", false), ("/?bytes=7", true)]
    {
        let mut input = request(target, "");
        if is_head {
            input.splice(0..3, b"HEAD".iter().copied());
        }
        let peer = serve(&input);
        let response = only_response(&peer, is_head);
        let length: usize = target[8..].parse().unwrap();
        assert_eq!(response.header_text("content-length"), Some(length.to_string().as_str()));
        assert_eq!(response.header_text("content-type"), Some("application/octet-stream"));
        if !is_head {
            let expected: Vec<u8> = (0..length).map(|index| generate::PATTERN[index % 64]).collect();
            assert_eq!(response.body, expected, "{target}");
        }
    }
    let seeded = serve(&request("/?bytes=1000&seed=42", ""));
    let mut expected = vec![0u8; 1000];
    generate::fill(Some(42), 0, &mut expected);
    assert_eq!(only_response(&seeded, false).body, expected);
    let chunked = serve(&request("/", "X-Echo-Bytes: 70000\r\nX-Echo-Seed: 42\r\nX-Echo-Chunked: 1\r\n"));
    let response = only_response(&chunked, false);
    assert_eq!(response.header_text("transfer-encoding"), Some("chunked"));
    let mut expected = vec![0u8; 70_000];
    generate::fill(Some(42), 0, &mut expected);
    assert_eq!(response.body, expected);
}

#[test]
fn huge_generated_bodies_are_bounded() {
    let head = serve(&b"HEAD /?bytes=1073741824 HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
    let response = only_response(&head, true);
    assert_eq!(response.header_text("content-length"), Some(MAX_GENERATED_BYTES.to_string().as_str()));
    for target in ["/?bytes=1073741825", "/?bytes=18446744073709551615", "/?bytes=99999999999999999999999999"] {
        assert_eq!(only_response(&serve(&request(target, "")), false).status, 400, "{target}");
    }
}

#[test]
fn a_large_generated_body_streams_through_the_bounded_queue() {
    let length: usize = if cfg!(debug_assertions) { 4 << 20 } else { 64 << 20 };
    let limits = Limits::default();
    let mut connection = Connection::new(limits, Instant::ZERO);
    let input = request(&alloc::format!("/?bytes={length}&seed=7"), "");
    assert_eq!(connection.receive(&input, Instant::ZERO), input.len());
    let mut stream = Vec::new();
    let mut hasher = Sha256::new();
    let (mut head_length, mut body_seen) = (None, 0);
    while !connection.pending_output().is_empty() {
        assert!(connection.buffered_bytes() <= limits.memory_bound());
        let pending = connection.pending_output();
        let piece = pending.len().min(1460);
        match head_length {
            None => stream.extend_from_slice(&pending[..piece]),
            Some(_) => hasher.update(&pending[..piece]),
        }
        body_seen += piece;
        connection.consume_output(piece);
        if head_length.is_none()
            && let Some(end) = stream.windows(4).position(|window| window == b"\r\n\r\n")
        {
            head_length = Some(end + 4);
            hasher.update(&stream[end + 4..]);
        }
    }
    let head_length = head_length.unwrap();
    assert_eq!(body_seen - head_length, length);
    let mut expected = Sha256::new();
    let mut block = vec![0u8; 65_536];
    for offset in (0..length).step_by(block.len()) {
        generate::fill(Some(7), offset as u64, &mut block);
        expected.update(&block);
    }
    assert_eq!(hasher.finalize(), expected.finalize());
}

#[test]
fn the_sink_reads_and_discards_the_body_and_answers_with_its_length_and_sha256() {
    let mut random = XorShift(0x51_4b);
    let mut body = vec![0u8; 300_000];
    random.fill(&mut body);
    let mut input = b"PUT /upload?sink HTTP/1.1\r\nHost: a\r\nContent-Length: 300000\r\n\r\n".to_vec();
    input.extend_from_slice(&body);
    let limits = Limits::default();
    let mut peer = Peer::new(limits);
    let taken = peer.connection.receive(&input, peer.now);
    assert_eq!(taken, input.len(), "the whole body is taken at once: nothing is queued for it");
    assert!(peer.connection.buffered_bytes() <= limits.memory_bound());
    peer.drain();
    let response = only_response(&peer, false);
    assert_eq!(response.header_text("content-type"), Some("text/plain"));
    let expected = alloc::format!("length=300000\nsha256={}\n", sha256_hex(&body));
    assert_eq!(String::from_utf8(response.body).unwrap(), expected);
    let chunked = serve(
        &[
            &b"POST /?sink=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n",
        ]
        .concat(),
    );
    let summary = String::from_utf8(only_response(&chunked, false).body).unwrap();
    assert_eq!(summary, alloc::format!("length=5\nsha256={}\n", sha256_hex(b"abcde")));
    let empty = serve(&request("/?sink", ""));
    assert_eq!(
        String::from_utf8(only_response(&empty, false).body).unwrap(),
        alloc::format!("length=0\nsha256={}\n", sha256_hex(b""))
    );
}

#[test]
fn a_counting_sink_answers_the_length_alone() {
    let post = |target: &str, body: &str| {
        alloc::format!("POST {target} HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
    };
    let body = "x".repeat(70_000);
    for target in ["/?sink=count", "/?sink=COUNT"] {
        let counted = serve(&post(target, &body));
        assert_eq!(String::from_utf8(only_response(&counted, false).body).unwrap(), "length=70000\n", "{target}");
    }
    let header = serve(
        &[&b"POST / HTTP/1.1\r\nHost: a\r\nX-Echo-Sink: count\r\nContent-Length: 3\r\n\r\n"[..], b"abc"].concat(),
    );
    assert_eq!(String::from_utf8(only_response(&header, false).body).unwrap(), "length=3\n");
    // A later switch turns counting back into hashing, or the sink off.
    let hashed = serve(&post("/?sink=count&sink=1", "abc"));
    assert_eq!(
        String::from_utf8(only_response(&hashed, false).body).unwrap(),
        alloc::format!("length=3\nsha256={}\n", sha256_hex(b"abc"))
    );
    let echoed = serve(&post("/?sink=count&sink=0", "abc"));
    assert!(!String::from_utf8(only_response(&echoed, false).body).unwrap().starts_with("length="));
    let refused = serve(&post("/?sink=tally", "abc"));
    assert_eq!(only_response(&refused, false).status, 400);
}

#[test]
fn the_sink_keeps_the_body_limits_and_100_continue() {
    let limits = Limits { max_body_bytes: Some(10), ..Limits::default() };
    let mut peer = Peer::new(limits);
    peer.send(b"POST /?sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n");
    assert_eq!(only_response(&peer, false).status, 413, "a chunked body over the limit, before any answer");
    let mut waiting = Peer::new(Limits::default());
    waiting.send(b"POST /?sink HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    assert_eq!(waiting.take_output(), b"HTTP/1.1 100 Continue\r\n\r\n");
    waiting.send(b"xyz");
    assert!(String::from_utf8_lossy(&waiting.output).ends_with(&alloc::format!("sha256={}\n", sha256_hex(b"xyz"))));
    let mut cut = Peer::new(Limits::default());
    cut.send(b"POST /?sink HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    cut.close();
    assert_eq!(only_response(&cut, false).status, 400, "a body cut short");
    let mut slow = Peer::new(Limits::default());
    slow.send(b"POST /?sink HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    slow.wait(30_000);
    assert_eq!(only_response(&slow, false).status, 408, "a stalled body");
}

fn json_of(peer: &Peer) -> serde_json::Value {
    let response = only_response(peer, false);
    assert_eq!(response.header_text("content-type"), Some("application/json"));
    serde_json::from_slice(&response.body).unwrap_or_else(|error| {
        panic!("not JSON ({error}): {}", String::from_utf8_lossy(&response.body));
    })
}

#[test]
fn the_json_description_names_every_part_of_the_request() {
    let mut peer = Peer::new(Limits::default());
    let instance = Instance::new(Some("xenecho-test"), Some(9));
    peer.connection.set_instance(Rc::new(instance));
    let client = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 2).into(), 40_001);
    let local = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).into(), 80);
    peer.connection.set_endpoints(Endpoints { client: Some(client), local: Some(local) });
    let mut input = b"POST /a/b?x=1&y=%22 HTTP/1.1\r\nHost: echo.test\r\nAccept: application/json\r\n".to_vec();
    input.extend_from_slice(
        b"X-Quote: say \"hi\" \\ back\r\nX-Bytes: caf\xc3\xa9 \xff\xfe end\r\nContent-Length: 5\r\n\r\nhello",
    );
    peer.send(&input);
    let json = json_of(&peer);
    assert_eq!(json["method"], "POST");
    assert_eq!(json["target"], "/a/b?x=1&y=%22");
    assert_eq!(json["path"], "/a/b");
    assert_eq!(json["query"], "x=1&y=%22");
    assert_eq!(json["version"], "HTTP/1.1");
    let headers: Vec<(String, String)> = json["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| (field["name"].as_str().unwrap().into(), field["value"].as_str().unwrap().into()))
        .collect();
    let expected = [
        ("Host", "echo.test"),
        ("Accept", "application/json"),
        ("X-Quote", "say \"hi\" \\ back"),
        ("X-Bytes", "caf\u{e9} \u{fffd}\u{fffd} end"),
        ("Content-Length", "5"),
    ];
    assert_eq!(headers, expected.map(|(name, value)| (String::from(name), String::from(value))));
    assert_eq!(json["body"]["framing"], "content-length");
    assert_eq!(json["body"]["length"], 5);
    assert_eq!(json["body"]["sha256"], sha256_hex(b"hello"));
    assert_eq!(json["client"]["address"], "10.0.0.2");
    assert_eq!(json["client"]["port"], 40_001);
    assert_eq!(json["instance"]["name"], "xenecho-test");
    assert_eq!(json["instance"]["domid"], 9);
    assert_eq!(json["instance"]["address"], "10.0.0.1");
    assert_eq!(json["instance"]["port"], 80);
    let unknown = json_of(&serve(&request("/?format=json", "")));
    assert!(unknown["client"].is_null() && unknown["instance"]["name"].is_null() && unknown["query"].is_string());
    assert_eq!(unknown["body"]["framing"], "none");
    assert_eq!(unknown["body"]["sha256"], sha256_hex(b""));
    let no_query = json_of(&serve(&request("/plain", "X-Echo-Format: json\r\n")));
    assert!(no_query["query"].is_null());
    let get = only_response(&serve(&request("/same?format=json", "")), false);
    let head_request = [&b"HEAD"[..], &request("/same?format=json", "")[3..]].concat();
    let head = only_response(&serve(&head_request), true);
    assert!(head.body.is_empty(), "HEAD gets no body");
    let announced: usize = head.header_text("content-length").unwrap().parse().unwrap();
    assert_eq!(announced, get.body.len() + 1, "the length of its own description (HEAD is one byte longer)");
}

#[test]
fn a_json_description_longer_than_the_output_queue_is_written_in_pieces() {
    // Quotes and backslashes become two bytes each in JSON: a head near
    // the head buffer's size describes itself in more than the queue holds.
    let value: Vec<u8> = core::iter::repeat_n(*b"\"\\", 3500).flatten().collect();
    let input = [&b"GET /?format=json HTTP/1.1\r\nHost: a\r\nX-Quotes: "[..], &value, b"\r\n\r\n"].concat();
    let limits = Limits { output_bytes: 0, ..Limits::default() };
    let mut peer = Peer::new(limits);
    peer.send(&input);
    let response = only_response(&peer, false);
    let length: usize = response.header_text("content-length").unwrap().parse().unwrap();
    assert!(length > limits.output_queue_bytes(), "{length}");
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(json["headers"][1]["value"].as_str().unwrap().len(), 7000);
    let mut chunked = Peer::new(limits);
    chunked.send(&[&input[..17], b"&chunked", &input[17..]].concat());
    let json: serde_json::Value = serde_json::from_slice(&only_response(&chunked, false).body).unwrap();
    assert_eq!(json["headers"][1]["value"].as_str().unwrap().len(), 7000);
}

#[test]
fn a_large_body_is_summarised_not_kept() {
    let limits = Limits::default();
    let mut connection = Connection::new(limits, Instant::ZERO);
    let head = b"PUT /big HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(connection.receive(head, Instant::ZERO), head.len());
    let mut hasher = Sha256::new();
    let mut random = XorShift(77);
    let mut block = vec![0u8; 32_768];
    let chunks = if cfg!(debug_assertions) { 64 } else { 1024 };
    for _ in 0..chunks {
        random.fill(&mut block);
        hasher.update(&block);
        let framed = [&b"8000\r\n"[..], &block, b"\r\n"].concat();
        assert_eq!(connection.receive(&framed, Instant::ZERO), framed.len());
        assert!(connection.pending_output().is_empty(), "nothing answered before the body's end");
        assert!(connection.buffered_bytes() <= limits.memory_bound());
    }
    assert_eq!(connection.receive(b"0\r\n\r\n", Instant::ZERO), 5);
    let (response, _) = parse_response(connection.pending_output(), false).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(json["body"]["length"], chunks * 32_768);
    assert_eq!(json["body"]["framing"], "chunked");
    let digest: String = hasher.finalize().iter().map(|byte| alloc::format!("{byte:02x}")).collect();
    assert_eq!(json["body"]["sha256"], digest, "the same SHA-256 as sha256_hex over the whole body");
}

#[test]
fn the_instance_is_named_when_asked() {
    let mut peer = Peer::new(Limits::default());
    peer.connection.set_instance(Rc::new(Instance::new(Some("guest-1"), Some(12))));
    let local = SocketAddr::new(Ipv4Addr::new(10, 88, 0, 2).into(), 80);
    peer.connection.set_endpoints(Endpoints { client: None, local: Some(local) });
    peer.send(&request("/?instance", ""));
    let response = only_response(&peer, false);
    assert_eq!(response.header_text("x-echo-instance"), Some("guest-1"));
    assert_eq!(response.header_text("x-echo-domid"), Some("12"));
    assert_eq!(response.header_text("x-echo-address"), Some("10.88.0.2"));
    peer.take_output();
    peer.send(&request("/", ""));
    assert_eq!(only_response(&peer, false).header("x-echo-instance"), None, "only when asked");
    let posted = [&b"POST / HTTP/1.1\r\nHost: a\r\nX-Echo-Instance: 1\r\nContent-Length: 1\r\n\r\n"[..], b"z"].concat();
    let unknown = serve(&posted);
    let response = only_response(&unknown, false);
    assert_eq!((response.header_text("x-echo-instance"), response.body.as_slice()), (Some("unknown"), &b"z"[..]));
}
