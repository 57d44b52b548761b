//! Every refusal and every timer: which status comes back (400, 408, 413,
//! 431, 501, 505), that the connection then closes, and that nothing else is
//! answered after it.

use super::client::{Peer, get, parse_responses, with_length};
use crate::http::{CloseMode, Limits, Status};
use alloc::format;
use alloc::vec::Vec;
use core::time::Duration;

/// Sends `input` and expects exactly one response, `status`, and a close.
fn expect_refusal(limits: Limits, input: &[u8], status: u16) {
    let mut peer = Peer::new(limits);
    peer.send(input);
    let responses = parse_responses(&peer.output, &[false]);
    let statuses: Vec<u16> = responses.iter().map(|response| response.status).collect();
    assert_eq!(statuses, [status], "for {:?}", alloc::string::String::from_utf8_lossy(input));
    assert_eq!(responses[0].header_text("connection"), Some("close"));
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    assert!(peer.connection.is_closing());
    peer.send(&get("/ignored"));
    assert_eq!(parse_responses(&peer.output, &[false]).len(), 1, "nothing is answered after an error");
}

#[test]
fn malformed_requests_get_400() {
    let cases: [&[u8]; 16] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n folded: line\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n",
    ];
    for case in cases {
        expect_refusal(Limits::default(), case, 400);
    }
}

#[test]
fn agreeing_content_lengths_are_accepted() {
    let mut peer = Peer::new(Limits::default());
    peer.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\ncontent-length: 3, 3\r\n\r\nabc");
    assert_eq!(parse_responses(&peer.output, &[false])[0].body, b"abc");
}

#[test]
fn unsupported_codings_get_501_and_versions_505() {
    expect_refusal(Limits::default(), b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
    expect_refusal(Limits::default(), b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
    expect_refusal(Limits::default(), b"GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505);
    expect_refusal(Limits::default(), b"GET / HTTP/x.y\r\nHost: h\r\n\r\n", 400);
    expect_refusal(Limits::default(), b"GET / HTTP/1.1.1\r\nHost: h\r\n\r\n", 400);
}

#[test]
fn malformed_heads_are_refused_before_they_are_complete() {
    let mut peer = Peer::new(Limits::default());
    peer.send(b"GET / HTTP/1.1\r\nBad Field\r\n");
    assert_eq!(parse_responses(&peer.output, &[false])[0].status, 400);
}

#[test]
fn oversized_heads_get_431() {
    let limits = Limits { max_head_bytes: 200, ..Limits::default() };
    let mut long_head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: ".to_vec();
    long_head.resize(long_head.len() + 300, b'a');
    expect_refusal(limits, &long_head, 431);
    let mut long_line = b"GET /".to_vec();
    long_line.resize(500, b'a');
    expect_refusal(limits, &long_line, 431);
    let mut many_fields = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for index in 0..70 {
        many_fields.extend_from_slice(alloc::format!("F{index}: v\r\n").as_bytes());
    }
    many_fields.extend_from_slice(b"\r\n");
    expect_refusal(Limits::default(), &many_fields, 431);
}

#[test]
fn a_head_exactly_at_the_limit_is_accepted() {
    let request = get("/exact");
    let limits = Limits { max_head_bytes: request.len(), ..Limits::default() };
    let mut peer = Peer::new(limits);
    peer.send(&request);
    assert_eq!(parse_responses(&peer.output, &[false])[0].body, request);
    expect_refusal(Limits { max_head_bytes: request.len() - 1, ..limits }, &request, 431);
}

#[test]
fn bodies_over_the_maximum_get_413() {
    let limits = Limits { max_body_bytes: Some(100), ..Limits::default() };
    expect_refusal(limits, &with_length("POST", None, &[7u8; 101]), 413);
    let mut peer = Peer::new(limits);
    peer.send(&with_length("POST", None, &[7u8; 100]));
    assert_eq!(parse_responses(&peer.output, &[false])[0].body, [7u8; 100]);
    let chunked_over = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n";
    expect_refusal(limits, chunked_over, 413);
}

#[test]
fn a_chunked_body_growing_past_the_maximum_after_its_echo_began_is_cut() {
    let limits = Limits { max_body_bytes: Some(10), ..Limits::default() };
    let mut peer = Peer::new(limits);
    peer.send(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n");
    assert!(peer.output.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(!peer.output.ends_with(b"0\r\n\r\n"), "the response is left incomplete");
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    assert_eq!(peer.connection.counters().cut_responses, 1);
}

#[test]
fn a_connection_that_sends_nothing_closes_quietly_at_the_head_timeout() {
    let mut peer = Peer::new(Limits::default());
    peer.wait(9_999);
    assert_eq!(peer.connection.wants_close(), None);
    assert_eq!(peer.connection.poll_timeout(), Some(crate::http::Instant::from_millis(10_000)));
    peer.wait(1);
    assert!(peer.output.is_empty());
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    assert_eq!(peer.connection.counters().timeouts, 1);
    assert_eq!(peer.connection.poll_timeout(), None);
}

#[test]
fn empty_lines_do_not_hold_a_connection_past_the_head_timeout() {
    let mut peer = Peer::new(Limits::default());
    for _ in 0..9 {
        peer.wait(1_000);
        peer.send(b"\r\n");
    }
    assert_eq!(peer.connection.wants_close(), None);
    peer.wait(1_000);
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful), "10 s after the accept");
    assert!(peer.output.is_empty(), "no request began: closed quietly");
}

#[test]
fn an_idle_keep_alive_connection_closes_quietly_after_the_idle_timeout() {
    let mut peer = Peer::new(Limits::default());
    peer.send(&get("/"));
    assert_eq!(parse_responses(&peer.output, &[false]).len(), 1);
    peer.wait(29_999);
    assert_eq!(peer.connection.wants_close(), None, "between requests the idle timer runs, not the head timer");
    peer.wait(1);
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    assert_eq!(parse_responses(&peer.output, &[false]).len(), 1, "closed quietly");

    // Empty lines between requests start the next head's timer.
    let mut peer = Peer::new(Limits::default());
    peer.send(&get("/"));
    peer.wait(5_000);
    peer.send(b"\r\n");
    peer.wait(9_999);
    assert_eq!(peer.connection.wants_close(), None);
    peer.wait(1);
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
}

#[test]
fn an_incomplete_head_gets_408_after_the_head_timeout_even_if_it_trickles() {
    let limits = Limits { head_timeout: Duration::from_secs(10), ..Limits::default() };
    let mut peer = Peer::new(limits);
    for byte in b"GET / HTTP/1.1\r\n" {
        peer.send(&[*byte]);
        peer.wait(500);
    }
    peer.wait(1_999);
    assert!(peer.output.is_empty());
    peer.wait(1);
    let responses = parse_responses(&peer.output, &[false]);
    assert_eq!(responses[0].status, 408);
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    assert_eq!(peer.connection.counters().responses(Status::RequestTimeout), 1);
}

#[test]
fn a_body_that_never_starts_gets_408_and_one_that_stalls_is_cut() {
    let mut peer = Peer::new(Limits::default());
    peer.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n");
    peer.wait(10_000);
    assert_eq!(parse_responses(&peer.output, &[false])[0].status, 408, "the rate floor's grace ran out");

    // With the rate floor off, only the gap between bytes counts.
    let per_gap = Limits { min_rate_bytes_per_second: 0, ..Limits::default() };
    let mut peer = Peer::new(per_gap);
    peer.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n");
    peer.wait(30_000);
    assert_eq!(parse_responses(&peer.output, &[false])[0].status, 408);

    let mut peer = Peer::new(per_gap);
    peer.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    peer.wait(29_000);
    peer.send(b"de");
    peer.wait(29_000);
    assert_eq!(peer.connection.wants_close(), None, "progress restarts the timer");
    peer.wait(1_000);
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Abort));
    assert_eq!(peer.connection.counters().cut_responses, 1);
}

#[test]
fn a_body_trickling_below_the_minimum_rate_is_cut_within_the_grace() {
    let mut peer = Peer::new(Limits::default());
    peer.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n");
    let mut seconds = 0;
    while peer.connection.wants_close().is_none() && seconds < 60 {
        peer.wait(1_000);
        peer.send(b"x");
        seconds += 1;
    }
    // One byte a second earns 1 ms of credit a second: the 10 s grace runs
    // out just after 10 s, seen at the next whole second.
    assert_eq!(seconds, 11, "cut once the grace ran out");
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Abort), "its echo had begun: cut");
    assert_eq!(peer.connection.counters().timeouts, 1);
}

#[test]
fn a_transfer_above_the_minimum_rate_is_never_cut() {
    let mut peer = Peer::new(Limits::default());
    let body = [7u8; 200_000];
    peer.send(format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
    // 1 200 bytes a second, in each direction, for almost three minutes.
    for piece in body.chunks(600) {
        peer.wait(500);
        peer.send(piece);
        assert_eq!(peer.connection.wants_close(), None);
    }
    assert_eq!(parse_responses(&peer.output, &[false])[0].body.len(), body.len());
    assert_eq!(peer.connection.counters().timeouts, 0);
}

#[test]
fn a_reader_below_the_minimum_rate_is_aborted() {
    let mut peer = Peer::new(Limits::default());
    peer.connection.receive(&with_length("POST", None, &[1u8; 12_000]), peer.now);
    let mut seconds = 0;
    while peer.connection.wants_close().is_none() && seconds < 60 {
        peer.now = peer.now.saturating_add(Duration::from_secs(1));
        peer.connection.consume_output(100);
        peer.connection.on_timeout(peer.now);
        seconds += 1;
    }
    // 100 bytes a second earn 0.1 s of credit each second: 10 s of grace
    // last about 11 s.
    assert_eq!(seconds, 11);
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Abort));
}

#[test]
fn a_client_that_never_reads_is_aborted() {
    let mut peer = Peer::new(Limits::default());
    let request = get("/");
    peer.connection.receive(&request, peer.now);
    assert!(!peer.connection.pending_output().is_empty());
    peer.now = peer.now.saturating_add(Duration::from_secs(30));
    peer.connection.on_timeout(peer.now);
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Abort));
    assert!(peer.connection.pending_output().is_empty(), "an abort drops queued output");
}

#[test]
fn output_progress_keeps_a_connection_alive() {
    let mut peer = Peer::new(Limits { min_rate_bytes_per_second: 0, ..Limits::default() });
    peer.connection.receive(&with_length("POST", None, &[1u8; 12_000]), peer.now);
    for _ in 0..10 {
        peer.now = peer.now.saturating_add(Duration::from_secs(20));
        peer.connection.consume_output(1000);
        peer.connection.on_timeout(peer.now);
        assert_eq!(peer.connection.wants_close(), None);
    }
}

#[test]
fn end_of_stream_in_the_middle_of_a_request() {
    let mut peer = Peer::new(Limits::default());
    peer.send(b"GET / HTTP/1.1\r\nHost: h\r\n");
    peer.close();
    assert_eq!(parse_responses(&peer.output, &[false])[0].status, 400);
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));

    let mut peer = Peer::new(Limits::default());
    peer.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n");
    peer.close();
    assert_eq!(parse_responses(&peer.output, &[false])[0].status, 400, "no body byte yet: still a status");

    let mut peer = Peer::new(Limits::default());
    peer.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    peer.close();
    assert!(peer.output.ends_with(b"\r\n\r\nabc"), "what was echoed goes out, then the close");
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    assert_eq!(peer.connection.counters().cut_responses, 1);
}

#[test]
fn an_error_ends_a_pipeline() {
    let mut input = get("/one");
    input.extend_from_slice(b"BROKEN REQUEST\r\n\r\n");
    input.extend_from_slice(&get("/three"));
    let mut peer = Peer::new(Limits::default());
    peer.send(&input);
    let statuses: Vec<u16> = parse_responses(&peer.output, &[false; 3]).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 400]);
    assert_eq!(peer.connection.counters().bytes_received, input.len() as u64);
}

#[test]
fn a_full_head_buffer_waits_for_the_next_byte_before_431() {
    let limits = Limits { max_head_bytes: 10, ..Limits::default() };
    let mut peer = Peer::new(limits);
    peer.send(b"GET /abcde");
    assert!(peer.output.is_empty(), "the head may still end here");
    peer.send(b"f");
    assert_eq!(parse_responses(&peer.output, &[false])[0].status, 431);
    let mut zero = Peer::new(Limits { max_head_bytes: 0, ..Limits::default() });
    zero.send(b"");
    zero.send(b"\r\n");
    assert!(zero.output.is_empty(), "nothing is refused before a request begins");
    zero.send(b"G");
    assert_eq!(parse_responses(&zero.output, &[false])[0].status, 431);
}

#[test]
fn end_of_stream_may_be_reported_again_and_lingering_input_is_discarded() {
    let mut peer = Peer::new(Limits::default());
    peer.send(&get("/"));
    peer.close();
    peer.close();
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    let before = peer.connection.counters().bytes_received;
    assert_eq!(peer.connection.receive(b"late bytes", peer.now), 10);
    assert_eq!(peer.connection.counters().bytes_received, before + 10);
    assert_eq!(parse_responses(&peer.output, &[false]).len(), 1);
}

#[test]
fn fill_copies_and_consumes_output() {
    let mut peer = Peer::new(Limits::default());
    peer.connection.receive(&get("/fill"), peer.now);
    let total = peer.connection.pending_output().len();
    let mut buffer = [0u8; 7];
    let mut received = Vec::new();
    loop {
        let count = peer.connection.fill(&mut buffer);
        if count == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..count]);
    }
    assert_eq!(received.len(), total);
    assert_eq!(parse_responses(&received, &[false])[0].body, get("/fill"));
    assert_eq!(peer.connection.counters().bytes_sent, total as u64);
}
