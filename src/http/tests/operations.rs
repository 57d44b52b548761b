//! What operators rely on: the probes (`/healthz`, `/readyz`) answered
//! from the appliance's state and never echoed, the drain (no request after
//! the one under way, `Connection: close` where it can still be said), and
//! the request-duration histogram on the engine's clock.

use super::client::{Peer, get, parse_response, parse_responses, with_length};
use crate::http::{CloseMode, Limits, Readiness};
use alloc::rc::Rc;
use core::cell::Cell;

fn peer_with(readiness: Readiness) -> (Peer, Rc<Cell<Readiness>>) {
    let mut peer = Peer::new(Limits::default());
    let shared = Rc::new(Cell::new(readiness));
    peer.connection.set_readiness(shared.clone());
    (peer, shared)
}

#[test]
fn readyz_answers_from_the_shared_state_and_healthz_is_always_ok() {
    let (mut peer, shared) = peer_with(Readiness::NoLink);
    let states = [
        (Readiness::NoLink, 503, &b"link down\n"[..]),
        (Readiness::NoAddress, 503, b"no address\n"),
        (Readiness::Draining, 503, b"draining\n"),
        (Readiness::Ready, 200, b"ok\n"),
    ];
    for (readiness, status, body) in states {
        shared.set(readiness);
        peer.send(&get("/readyz?probe=1"));
        peer.send(&get("/healthz"));
        let responses = parse_responses(&peer.take_output(), &[false, false]);
        assert_eq!(responses.len(), 2, "{readiness:?}");
        assert_eq!((responses[0].status, responses[0].body.as_slice()), (status, body), "{readiness:?}");
        assert_eq!(responses[0].header_text("Content-Type"), Some("text/plain"));
        assert_eq!((responses[1].status, responses[1].body.as_slice()), (200, &b"ok\n"[..]), "{readiness:?}");
    }
    assert_eq!(peer.connection.counters().requests, 8);
    assert_eq!(peer.connection.wants_close(), None, "keep-alive as usual");
}

#[test]
fn probes_ignore_echo_options_read_a_body_and_answer_head_without_one() {
    let (mut peer, _) = peer_with(Readiness::Ready);
    peer.send(b"GET /healthz?status=500&bytes=10&delay=5s HTTP/1.1\r\nHost: x\r\nX-Echo-Instance: 1\r\n\r\n");
    let (response, _) = parse_response(&peer.take_output(), false).expect("answered at once");
    assert_eq!((response.status, response.body.as_slice()), (200, &b"ok\n"[..]));
    assert_eq!(response.header("X-Echo-Instance"), None);
    let mut post = with_length("POST", None, b"a body to drop");
    post.splice(5..12, b"/readyz".iter().copied());
    peer.send(&post);
    let (response, _) = parse_response(&peer.take_output(), false).expect("answered");
    assert_eq!((response.status, response.body.as_slice()), (200, &b"ok\n"[..]), "the body read, not echoed");
    peer.send(b"HEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    let (response, _) = parse_response(&peer.take_output(), true).expect("answered");
    assert_eq!((response.status, response.header_text("Content-Length")), (200, Some("3")));
    assert!(response.body.is_empty());
}

#[test]
fn paths_near_the_probes_are_echoed_byte_for_byte() {
    for path in ["/healthz/", "/healthzz", "/x/readyz", "/readyz.html", "/Healthz"] {
        let (mut peer, _) = peer_with(Readiness::NoLink);
        let request = get(path);
        peer.send(&request);
        let (response, _) = parse_response(&peer.take_output(), false).expect("answered");
        assert_eq!((response.status, response.body.as_slice()), (200, request.as_slice()), "{path}");
    }
}

#[test]
fn a_draining_connection_between_requests_closes_at_once() {
    let (mut peer, _) = peer_with(Readiness::Ready);
    peer.send(&get("/first"));
    peer.take_output();
    peer.connection.drain();
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
}

#[test]
fn a_request_under_way_when_draining_begins_is_answered_with_connection_close() {
    // Delayed: its head is not written yet, so it can say close.
    let (mut peer, shared) = peer_with(Readiness::Ready);
    peer.send(&get("/?delay=1s"));
    peer.connection.drain();
    shared.set(Readiness::Draining);
    assert_eq!(peer.connection.wants_close(), None, "the answer is still owed");
    peer.wait(1000);
    let (response, _) = parse_response(&peer.take_output(), false).expect("answered after the delay");
    assert_eq!((response.status, response.header_text("Connection")), (200, Some("close")));
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));

    // A head half read: answered, with close; a pipelined request after it
    // is not.
    let (mut peer, shared) = peer_with(Readiness::Ready);
    peer.send(b"GET /readyz HTTP/1.1\r\nHost: x\r\n");
    peer.connection.drain();
    shared.set(Readiness::Draining);
    peer.send(b"\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    let output = peer.take_output();
    let (response, used) = parse_response(&output, false).expect("answered");
    assert_eq!((response.status, response.body.as_slice()), (503, &b"draining\n"[..]));
    assert_eq!(response.header_text("Connection"), Some("close"));
    assert_eq!(used, output.len(), "nothing after it");
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    assert_eq!(peer.connection.counters().requests, 1);
}

#[test]
fn a_large_answer_under_way_finishes_then_the_connection_closes() {
    let (mut peer, _) = peer_with(Readiness::Ready);
    peer.send(&get("/?bytes=100000"));
    peer.connection.drain();
    peer.drain();
    let output = peer.take_output();
    let (response, used) = parse_response(&output, false).expect("answered");
    assert_eq!((response.status, response.body.len(), used), (200, 100_000, output.len()));
    assert_eq!(peer.connection.wants_close(), Some(CloseMode::Graceful));
    peer.connection.recycle(crate::http::Instant::ZERO);
    peer.send(&get("/again"));
    let (response, _) = parse_response(&peer.take_output(), false).expect("a recycled engine serves again");
    assert_eq!((response.status, response.header_text("Connection")), (200, None));
}

#[test]
fn durations_run_from_the_head_to_the_last_byte_queued() {
    let (mut peer, _) = peer_with(Readiness::Ready);
    peer.send(&get("/now"));
    peer.send(&get("/?delay=250ms"));
    peer.wait(250);
    peer.send(&get("/?delay=2s"));
    peer.wait(2000);
    // A head that never completes is not an answer: no observation.
    peer.send(b"GET /cut HTTP/1.1\r\n");
    let durations = &peer.connection.counters().durations;
    assert_eq!(durations.count(), 3);
    assert_eq!(durations.sum_micros(), 2_250_000);
    let buckets = durations.buckets();
    let bound = |seconds: &str| crate::http::DURATION_BOUNDS_LABELS.iter().position(|label| *label == seconds).unwrap();
    assert_eq!((buckets[0], buckets[bound("0.25")], buckets[bound("2.5")]), (1, 1, 1));
}
