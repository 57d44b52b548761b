//! Streaming with bounded memory: backpressure when output is not drained,
//! and a 100 MiB body echoed through with its checksum compared.

use super::client::{Peer, XorShift, parse_response};
use crate::http::{Connection, Instant, Limits};
use alloc::vec::Vec;

#[test]
fn backpressure_stops_input_when_output_is_not_drained() {
    let limits = Limits::default();
    let mut connection = Connection::new(limits, Instant::ZERO);
    let head = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n";
    assert_eq!(connection.receive(head, Instant::ZERO), head.len());
    let block = [0x5au8; 4096];
    let mut taken_total = 0;
    for _ in 0..256 {
        taken_total += connection.receive(&block, Instant::ZERO);
        assert!(connection.buffered_bytes() <= limits.memory_bound());
    }
    assert!(taken_total < limits.output_queue_bytes(), "took {taken_total} bytes without output draining");
    assert!(taken_total > limits.output_queue_bytes() / 2, "the queue is the body window: {taken_total}");
    assert_eq!(connection.receive(&block, Instant::ZERO), 0, "stopped for good while nothing drains");
    let pending = connection.pending_output().len();
    connection.consume_output(pending);
    assert!(connection.receive(&block, Instant::ZERO) > 0, "draining resumes input");
}

#[test]
fn chunked_echo_obeys_the_same_window() {
    let limits = Limits { max_head_bytes: 1024, output_bytes: 4096, ..Limits::default() };
    let mut connection = Connection::new(limits, Instant::ZERO);
    let mut input = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..100 {
        input.extend_from_slice(b"100\r\n");
        input.extend_from_slice(&[b'z'; 256]);
        input.extend_from_slice(b"\r\n");
    }
    let taken = connection.receive(&input, Instant::ZERO);
    assert!(taken < input.len());
    assert!(connection.buffered_bytes() <= limits.memory_bound());
    assert!(connection.pending_output().len() <= limits.output_queue_bytes());
}

/// A deterministic body of `length` bytes, produced block by block.
struct BodySource {
    random: XorShift,
    remaining: u64,
    block: Vec<u8>,
}

impl BodySource {
    fn next_block(&mut self) -> Option<&[u8]> {
        if self.remaining == 0 {
            return None;
        }
        let size = self.remaining.min(65_536) as usize;
        self.block.resize(size, 0);
        self.random.fill(&mut self.block);
        self.remaining -= size as u64;
        Some(&self.block)
    }
}

/// FNV-1a over bytes fed in pieces.
struct Checksum(u64);

impl Checksum {
    fn new() -> Checksum {
        Checksum(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// What the client side has seen of the response stream.
struct ResponseReader {
    head: Vec<u8>,
    body_remaining: Option<u64>,
    checksum: Checksum,
}

impl ResponseReader {
    fn read(&mut self, bytes: &[u8]) {
        if let Some(remaining) = self.body_remaining.as_mut() {
            assert!(bytes.len() as u64 <= *remaining, "more bytes than the response announced");
            *remaining -= bytes.len() as u64;
            self.checksum.update(bytes);
            return;
        }
        self.head.extend_from_slice(bytes);
        let Some(end) = self.head.windows(4).position(|window| window == b"\r\n\r\n") else { return };
        let body = self.head.split_off(end + 4);
        let (response, _) = parse_response(&self.head, true).unwrap();
        assert_eq!(response.status, 200);
        self.body_remaining = Some(response.header_text("content-length").unwrap().parse().unwrap());
        self.read(&body);
    }
}

#[test]
fn a_100_mib_post_streams_through_with_bounded_memory() {
    const LENGTH: u64 = 100 * 1024 * 1024;
    let limits = Limits::default();
    let mut peer = Peer::new(limits);
    let head = alloc::format!("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: {LENGTH}\r\n\r\n");
    assert_eq!(peer.connection.receive(head.as_bytes(), peer.now), head.len());
    let mut source = BodySource { random: XorShift(0x1234_5678_9abc_def1), remaining: LENGTH, block: Vec::new() };
    let mut sent_checksum = Checksum::new();
    let mut reader = ResponseReader { head: Vec::new(), body_remaining: None, checksum: Checksum::new() };
    let mut drain_sizes = XorShift(77);
    let mut peak = 0;
    while let Some(block) = source.next_block() {
        sent_checksum.update(block);
        let mut rest = block;
        while !rest.is_empty() {
            rest = &rest[peer.connection.receive(rest, peer.now)..];
            peak = peak.max(peer.connection.buffered_bytes());
            let pending = peer.connection.pending_output();
            let count = pending.len().min(1 + drain_sizes.below(24_000));
            reader.read(&pending[..count]);
            peer.connection.consume_output(count);
        }
    }
    while !peer.connection.pending_output().is_empty() {
        let count = peer.connection.pending_output().len();
        reader.read(peer.connection.pending_output());
        peer.connection.consume_output(count);
    }
    assert_eq!(reader.body_remaining, Some(0));
    assert_eq!(reader.checksum.0, sent_checksum.0);
    assert!(peak <= limits.memory_bound(), "peak {peak} bytes");
    assert!(peak <= 16 * 1024, "the body never fills more than the output queue: {peak}");
    assert_eq!(peer.connection.counters().bytes_received, LENGTH + head.len() as u64);
    assert_eq!(peer.connection.wants_close(), None);
}
