//! Fuzzes netfront against a hostile backend: each input byte pair is one
//! action of the simulated netback or the stack (inject a frame, send one,
//! misbehave in one of its ways, flap its state, step). Whatever happens,
//! the frontend must not panic; once the backend behaves again, it must
//! reconnect and carry frames.
#![no_main]

use dma::BackendTrust;
use libfuzzer_sys::fuzz_target;
use netfront::testing::{act, with_link};

fuzz_target!(|data: &[u8]| {
    with_link(BackendTrust::Trusted, |rig| {
        for pair in data.chunks(2).take(200) {
            let size = usize::from(pair.get(1).copied().unwrap_or(0)) * 36;
            act(rig, pair[0], size);
        }
        rig.assert_recovers();
    });
});
