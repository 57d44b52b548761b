//! Fuzzes netfront against a hostile backend: each input byte pair is one
//! action of the simulated netback or the stack (inject a frame, send one,
//! misbehave in one of its ways, flap its state, step). An input starting
//! with `netfront::testing::EXTENDED_MARKER` takes its next byte as the
//! vif's configuration (bounce buffers, an MTU up to 9000, partial or
//! flagged checksums, notification rules) and has more actions (transmit
//! stalls, transmit tokens from the receive path, extra-info and stray
//! receive flags, IPv4 TCP/UDP frames). Whatever happens, the frontend must
//! not panic; once the backend behaves again, it must reconnect, hold
//! exactly the live link's pages, and carry frames.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use netfront::testing::run_input;

fuzz_target!(|data: &[u8]| {
    run_input(data);
});
