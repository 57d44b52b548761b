//! Fuzzes the HTTP engine: arbitrary bytes become a peer's script (limits,
//! how input is split, how output drains, how time passes) and its input;
//! `xenecho::http::exercise::drive` plays it against a `Connection` and
//! panics on any broken invariant (no panic in the engine, buffers within
//! their bound, nothing after an error response but a close, progress
//! whenever output has drained, a close once the peer has closed). Requests
//! may ask for any echo option (status, delay, extra header fields, close,
//! generated bodies, the sink, JSON, HTML, the instance's name): the driver lets
//! the time of a delay pass and caps generated bodies at 64 KiB
//! (`exercise::FUZZ_MAX_GENERATED_BYTES`); the rest of an input means what it
//! did before. `fuzz/http.dict` has the options' names. It also runs the
//! request head parser on the raw input, and writes the raw input as the
//! HTML page writes a request's bytes, checking that it cannot be markup.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use xenecho::http::{exercise, parse_head};

fuzz_target!(|data: &[u8]| {
    let _ = parse_head(data);
    exercise::check_html_text(data);
    exercise::drive(data);
});
