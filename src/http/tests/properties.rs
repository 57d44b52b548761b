//! Property tests: random valid request sequences, split at random points,
//! come back exactly; random bytes never panic and always end in a 4xx or a
//! close.

use super::client::{Peer, parse_responses};
use crate::http::exercise;
use crate::http::{Limits, Status};
use alloc::string::String;
use alloc::vec::Vec;
use proptest::prelude::*;

/// One generated request and what its echo must contain.
#[derive(Debug, Clone)]
struct Exchange {
    bytes: Vec<u8>,
    expected_body: Vec<u8>,
    is_head: bool,
}

#[derive(Debug, Clone)]
enum Framing {
    None,
    Length,
    Chunked(Vec<usize>),
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

fn field() -> impl Strategy<Value = (String, String)> {
    (token(), "[ -~]{0,30}").prop_filter("not a framing field", |(name, _)| {
        let name = name.to_ascii_lowercase();
        !["content-length", "transfer-encoding", "host", "connection", "expect", "content-type"]
            .contains(&name.as_str())
    })
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        Just(Framing::None),
        Just(Framing::Length),
        proptest::collection::vec(1usize..300, 0..6).prop_map(Framing::Chunked),
    ]
}

fn exchange() -> impl Strategy<Value = Exchange> {
    let named =
        prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("HEAD"), Just("DELETE")].prop_map(String::from);
    let method = prop_oneof![named, token()];
    let body = proptest::collection::vec(any::<u8>(), 0..700);
    let fields = proptest::collection::vec(field(), 0..5);
    let content_type = proptest::option::of("[a-z]{1,8}/[a-z0-9.+-]{1,12}");
    (method, "/[A-Za-z0-9/._~%-]{0,40}", fields, content_type, framing(), body).prop_map(
        |(method, path, fields, content_type, framing, body)| {
            build_exchange(&method, &path, &fields, content_type.as_deref(), &framing, &body)
        },
    )
}

fn build_exchange(
    method: &str,
    path: &str,
    fields: &[(String, String)],
    content_type: Option<&str>,
    framing: &Framing,
    body: &[u8],
) -> Exchange {
    let mut head = alloc::format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (name, value) in fields {
        head.push_str(&alloc::format!("{name}: {value}\r\n"));
    }
    if let Some(content_type) = content_type {
        head.push_str(&alloc::format!("Content-Type: {content_type}\r\n"));
    }
    let (framing_field, encoded_body) = encode_body(framing, body);
    head.push_str(&framing_field);
    head.push_str("\r\n");
    let is_head = method == "HEAD";
    let expected_body = match (framing, is_head) {
        (_, true) => Vec::new(),
        (Framing::None, false) => head.clone().into_bytes(),
        (_, false) => body.to_vec(),
    };
    let bytes = [head.into_bytes(), encoded_body].concat();
    Exchange { bytes, expected_body, is_head }
}

fn encode_body(framing: &Framing, body: &[u8]) -> (String, Vec<u8>) {
    match framing {
        Framing::None => (String::new(), Vec::new()),
        Framing::Length => (alloc::format!("Content-Length: {}\r\n", body.len()), body.to_vec()),
        Framing::Chunked(sizes) => (String::from("Transfer-Encoding: chunked\r\n"), encode_chunks(sizes, body)),
    }
}

fn encode_chunks(sizes: &[usize], mut body: &[u8]) -> Vec<u8> {
    let mut encoded = Vec::new();
    for size in sizes.iter().copied().chain(core::iter::once(usize::MAX)) {
        let (chunk, rest) = body.split_at(size.min(body.len()));
        if !chunk.is_empty() {
            encoded.extend_from_slice(alloc::format!("{:x};k=v\r\n", chunk.len()).as_bytes());
            encoded.extend_from_slice(chunk);
            encoded.extend_from_slice(b"\r\n");
        }
        body = rest;
    }
    encoded.extend_from_slice(b"0\r\nTrailer-Field: x\r\n\r\n");
    encoded
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn valid_requests_round_trip_at_any_split(
        exchanges in proptest::collection::vec(exchange(), 1..5),
        splits in proptest::collection::vec(0usize..400, 0..30),
    ) {
        let input: Vec<u8> = exchanges.iter().flat_map(|exchange| exchange.bytes.clone()).collect();
        let mut peer = Peer::new(Limits::default());
        peer.send_in_pieces(&input, splits);
        peer.close();
        let head_requests: Vec<bool> = exchanges.iter().map(|exchange| exchange.is_head).collect();
        let responses = parse_responses(&peer.output, &head_requests);
        prop_assert_eq!(responses.len(), exchanges.len());
        for (response, exchange) in responses.iter().zip(&exchanges) {
            prop_assert_eq!(response.status, 200);
            prop_assert_eq!(&response.body, &exchange.expected_body);
        }
        prop_assert!(peer.connection.wants_close().is_some());
    }

    #[test]
    fn random_bytes_never_panic_and_end_in_an_error_or_a_close(
        control in proptest::collection::vec(any::<u8>(), 0..64),
        input in proptest::collection::vec(any::<u8>(), 0..600),
        small_limits in any::<bool>(),
    ) {
        let limits = exercise::limits_for(u8::from(small_limits));
        let outcome = exercise::drive_with(limits, &control, &input);
        prop_assert!(outcome.close.is_some());
        prop_assert!(outcome.peak_buffered_bytes <= limits.memory_bound());
        let errors = Status::ALL.iter().filter(|status| status.is_error()).map(|&s| outcome.counters.responses(s));
        prop_assert!(errors.sum::<u64>() <= 1, "at most one error response");
    }

    #[test]
    fn garbage_after_a_method_gets_a_4xx(line in "[A-Z]{1,7} [ -~]{0,50}\r\n[ -~]{0,40}\r\n\r\n") {
        let mut peer = Peer::new(Limits::default());
        peer.send(line.as_bytes());
        peer.close();
        let responses = parse_responses(&peer.output, &[false]);
        prop_assert_eq!(responses.len(), 1);
        let status = responses[0].status;
        prop_assert!(status == 200 || (400..600).contains(&status), "status {}", status);
        prop_assert!(peer.connection.wants_close().is_some());
    }
}
