//! Fuzzes the HTTP engine: arbitrary bytes become a peer's script (limits,
//! how input is split, how output drains, how time passes) and its input;
//! `xenecho::http::exercise::drive` plays it against a `Connection` and
//! panics on any broken invariant (no panic in the engine, buffers within
//! their bound, nothing after an error response but a close, progress
//! whenever output has drained, a close once the peer has closed). It also
//! runs the request head parser on the raw input.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use xenecho::http::{exercise, parse_head};

fuzz_target!(|data: &[u8]| {
    let _ = parse_head(data);
    exercise::drive(data);
});
