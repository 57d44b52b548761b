//! Fuzzes netfront against a hostile backend: each input byte pair is one
//! action of the simulated netback or the stack (inject a frame, send one,
//! misbehave in one of its ways, flap its state, step). Whatever happens,
//! the frontend must not panic; once the backend behaves again, it must
//! reconnect and carry frames.
#![no_main]

use dma::BackendTrust;
use libfuzzer_sys::fuzz_target;
use netfront::testing::{run_script, with_link};

fuzz_target!(|data: &[u8]| {
    with_link(BackendTrust::Trusted, |rig| run_script(rig, data));
});
