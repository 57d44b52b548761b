//! The echo semantics, one scenario each: what comes back for GET, POST
//! (length and chunked), HEAD, pipelining, keep-alive, HTTP/1.0 and
//! `Expect: 100-continue`.

use super::client::{Peer, XorShift, chunked, get, parse_responses, with_length};
use crate::http::{CloseMode, Limits, Status};
use alloc::vec::Vec;

fn serve(input: &[u8]) -> Peer {
    let mut peer = Peer::new(Limits::default());
    peer.send(input);
    peer
}

#[test]
fn get_echoes_its_head_exactly() {
    let request = get("/path?query=1&x=%20");
    let peer = serve(&request);
    let mut expected =
        alloc::format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n", request.len())
            .into_bytes();
    expected.extend_from_slice(&request);
    assert_eq!(peer.output, expected);
    assert_eq!(peer.connection.wants_close(), None, "HTTP/1.1 keeps the connection");
    assert_eq!(peer.connection.counters().requests, 1);
    assert_eq!(peer.connection.counters().responses(Status::Ok), 1);
}

#[test]
fn a_head_with_bare_line_feeds_and_odd_fields_is_echoed_as_received() {
    let request = b"GET / HTTP/1.1\nHost: a\nX-Odd:  spaced value \t\nx-lower: \xff\xfe\n\n";
    let peer = serve(request);
    let responses = parse_responses(&peer.output, &[false]);
    assert_eq!(responses[0].body, request);
}

#[test]
fn post_with_content_length_echoes_every_byte_value() {
    let body: Vec<u8> = (0..=255u8).cycle().take(256 * 3).collect();
    let peer = serve(&with_length("POST", Some("application/x-test; charset=binary"), &body));
    let responses = parse_responses(&peer.output, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 200);
    assert_eq!(responses[0].header("content-type"), Some(&b"application/x-test; charset=binary"[..]));
    assert_eq!(responses[0].header_text("content-length"), Some("768"));
    assert_eq!(responses[0].body, body);
}

#[test]
fn a_body_without_content_type_comes_back_as_octet_stream() {
    let peer = serve(&with_length("PUT", None, b"plain"));
    let responses = parse_responses(&peer.output, &[false]);
    assert_eq!(responses[0].header("content-type"), Some(&b"application/octet-stream"[..]));
    assert_eq!(responses[0].body, b"plain");
}

#[test]
fn an_empty_content_length_body_is_echoed_empty() {
    let peer = serve(&with_length("POST", Some("text/csv"), b""));
    let responses = parse_responses(&peer.output, &[false]);
    assert_eq!(responses[0].header_text("content-length"), Some("0"));
    assert_eq!(responses[0].header("content-type"), Some(&b"text/csv"[..]));
    assert!(responses[0].body.is_empty());
}

#[test]
fn chunked_upload_is_echoed_chunked_with_extensions_and_trailers_dropped() {
    let pieces: [&[u8]; 3] = [b"hello ", b"\x00\xff binary \r\n", b"world"];
    let peer = serve(&chunked("text/x-parts", &pieces));
    let responses = parse_responses(&peer.output, &[false]);
    assert_eq!(responses[0].header_text("transfer-encoding"), Some("chunked"));
    assert_eq!(responses[0].header("content-length"), None);
    assert_eq!(responses[0].header("content-type"), Some(&b"text/x-parts"[..]));
    assert_eq!(responses[0].body, pieces.concat());
    let empty = serve(&chunked("a/b", &[]));
    assert_eq!(parse_responses(&empty.output, &[false])[0].body, b"");
}

fn pipeline() -> (Vec<u8>, Vec<Vec<u8>>, Vec<bool>) {
    let requests = [
        get("/first"),
        with_length("POST", Some("a/b"), b"second body"),
        chunked("c/d", &[b"third", b" body"]),
        b"HEAD /fourth HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
        with_length("POST", None, &[0u8, 13, 10, 13, 10, 255]),
        get("/last"),
    ];
    let expected_bodies = vec![
        requests[0].clone(),
        b"second body".to_vec(),
        b"third body".to_vec(),
        Vec::new(),
        vec![0u8, 13, 10, 13, 10, 255],
        requests[5].clone(),
    ];
    let head_requests = vec![false, false, false, true, false, false];
    (requests.concat(), expected_bodies, head_requests)
}

fn check_pipeline_answers(output: &[u8]) {
    let (_, expected_bodies, head_requests) = pipeline();
    let responses = parse_responses(output, &head_requests);
    let bodies: Vec<Vec<u8>> = responses.iter().map(|response| response.body.clone()).collect();
    assert_eq!(bodies, expected_bodies);
    assert!(responses.iter().all(|response| response.status == 200));
    assert_eq!(responses[3].header_text("content-length"), Some("34"), "HEAD announces GET's length");
}

#[test]
fn pipelined_requests_in_one_read_are_answered_in_order() {
    let (input, _, _) = pipeline();
    let peer = serve(&input);
    check_pipeline_answers(&peer.output);
    assert_eq!(peer.connection.counters().requests, 6);
}

#[test]
fn pipelined_requests_split_at_every_byte_boundary() {
    let (input, _, _) = pipeline();
    for split in 0..=input.len() {
        let mut peer = Peer::new(Limits::default());
        peer.send_in_pieces(&input, [split]);
        check_pipeline_answers(&peer.output);
    }
}

#[test]
fn pipelined_requests_fed_one_byte_at_a_time() {
    let (input, _, _) = pipeline();
    let mut peer = Peer::new(Limits::default());
    peer.send_in_pieces(&input, core::iter::repeat_n(1, input.len()));
    check_pipeline_answers(&peer.output);
}

#[test]
fn pipelined_requests_split_at_random_points() {
    let (input, _, _) = pipeline();
    let mut random = XorShift(0x5eed_1234_abcd_0001);
    for _ in 0..500 {
        let mut peer = Peer::new(Limits::default());
        let sizes: Vec<usize> = (0..random.below(12)).map(|_| random.below(40)).collect();
        peer.send_in_pieces(&input, sizes);
        check_pipeline_answers(&peer.output);
    }
}

#[test]
fn keep_alive_serves_request_after_request() {
    let mut peer = Peer::new(Limits::default());
    for round in 0..5 {
        let body = alloc::format!("round {round}");
        peer.send(&with_length("POST", Some("text/plain"), body.as_bytes()));
        let responses = parse_responses(&peer.take_output(), &[false]);
        assert_eq!(responses[0].body, body.as_bytes());
        assert_eq!(responses[0].header("connection"), None);
        assert_eq!(peer.connection.wants_close(), None);
    }
    assert_eq!(peer.connection.counters().requests, 5);
}

#[test]
fn connection_close_closes_after_the_response_and_ignores_what_follows() {
    let mut input = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n".to_vec();
    input.extend_from_slice(&get("/never-answered"));
    let peer = serve(&input);
    let responses = parse_responses(&peer.output, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].header_text("connection"), Some("close"));
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    assert_eq!(peer.connection.counters().bytes_received, input.len() as u64);
}

#[test]
fn http_1_0_closes_unless_asked_to_keep_alive() {
    let plain = serve(b"GET /old HTTP/1.0\r\n\r\n");
    let responses = parse_responses(&plain.output, &[false]);
    assert_eq!(responses[0].header_text("connection"), Some("close"));
    assert_eq!(responses[0].body, b"GET /old HTTP/1.0\r\n\r\n");
    assert_eq!(plain.connection.wants_close(), Some(CloseMode::Graceful));

    let request = b"POST /old HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\nabc";
    let mut kept = serve(request);
    let responses = parse_responses(&kept.take_output(), &[false]);
    assert_eq!(responses[0].header_text("connection"), Some("keep-alive"));
    assert_eq!(responses[0].body, b"abc");
    assert_eq!(kept.connection.wants_close(), None);
    kept.send(b"GET /again HTTP/1.0\r\n\r\n");
    assert_eq!(parse_responses(&kept.output, &[false])[0].header_text("connection"), Some("close"));
    assert_eq!(kept.connection.wants_close(), Some(CloseMode::Graceful));
}

#[test]
fn head_gets_the_headers_get_would_send_and_no_body() {
    let get_request = b"GET /same HTTP/1.1\r\nHost: h\r\n\r\n";
    let head_request = b"HEAD /same HTTP/1.1\r\nHost: h\r\n\r\n";
    let get_response = parse_responses(&serve(get_request).output, &[false]).remove(0);
    let peer = serve(head_request);
    let head_response = parse_responses(&peer.output, &[true]).remove(0);
    assert!(head_response.body.is_empty());
    assert_eq!(head_response.header_text("content-length"), Some("32"));
    assert_eq!(get_response.header_text("content-length"), Some("31"), "GET's head is one byte shorter");
    let with_body = serve(&with_length("HEAD", Some("x/y"), b"ignored body"));
    let response = parse_responses(&with_body.output, &[true]).remove(0);
    assert_eq!(
        (response.header_text("content-length"), response.header_text("content-type")),
        (Some("12"), Some("x/y"))
    );
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let mut peer = Peer::new(Limits::default());
    peer.send(b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    assert_eq!(peer.take_output(), b"HTTP/1.1 100 Continue\r\n\r\n");
    peer.send(b"data");
    let responses = parse_responses(&peer.output, &[false]);
    assert_eq!((responses[0].status, responses[0].body.as_slice()), (200, &b"data"[..]));
    assert_eq!(peer.connection.counters().responses(Status::Continue), 1);
    assert_eq!(peer.connection.counters().responses_in_class(1), 1);
}

#[test]
fn expect_100_continue_for_a_refused_body_gets_only_the_final_status() {
    let limits = Limits { max_body_bytes: Some(10), ..Limits::default() };
    let mut peer = Peer::new(limits);
    peer.send(b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n");
    let responses = parse_responses(&peer.output, &[false]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 413);
    assert_eq!(responses[0].header_text("connection"), Some("close"));
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
}

#[test]
fn http_1_0_expectations_are_ignored_and_empty_lines_between_requests_skipped() {
    let mut input =
        b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx".to_vec();
    input.extend_from_slice(b"\r\n\r\n");
    input.extend_from_slice(&get("/after-blank-lines"));
    let peer = serve(&input);
    let responses = parse_responses(&peer.output, &[false, false]);
    assert_eq!(responses.iter().map(|response| response.status).collect::<Vec<_>>(), [200, 200]);
    assert_eq!(responses[1].body, get("/after-blank-lines"));
}

#[test]
fn a_clean_end_of_stream_between_requests_closes_quietly() {
    let mut peer = serve(&get("/"));
    let answered = peer.take_output();
    peer.close();
    assert!(peer.output.is_empty());
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    assert_eq!(parse_responses(&answered, &[false]).len(), 1);
}

#[test]
fn pipelined_requests_sent_with_a_half_close_are_all_answered() {
    let (mut input, mut expected_bodies, mut head_requests) = pipeline();
    let big_body = [b'b'; 600];
    input.extend_from_slice(&with_length("POST", None, &big_body));
    input.extend_from_slice(&get("/after-the-big-one"));
    expected_bodies.extend([big_body.to_vec(), get("/after-the-big-one")]);
    head_requests.extend([false, false]);
    let mut peer = Peer::new(Limits { max_head_bytes: 128, output_bytes: 0, ..Limits::default() });
    let mut taken = 0;
    while taken < input.len() {
        taken += peer.connection.receive(&input[taken..], peer.now);
        let pending = peer.connection.pending_output().len().min(100);
        peer.output.extend_from_slice(&peer.connection.pending_output()[..pending]);
        peer.connection.consume_output(pending);
    }
    assert!(peer.connection.counters().responses(Status::Ok) < 8, "answers are waiting for output room");
    peer.close();
    let responses = parse_responses(&peer.output, &head_requests);
    let bodies: Vec<Vec<u8>> = responses.into_iter().map(|response| response.body).collect();
    assert_eq!(bodies, expected_bodies);
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
}
