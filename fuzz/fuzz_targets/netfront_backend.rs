//! Fuzzes netfront against a hostile backend, on the production event loop
//! (`runtime::run` on the simulated Xen: `runtime::testing::backend_script`).
//! Each input byte pair is one action of the simulated netback or of dom0
//! (inject a frame, ping the guest, misbehave in one of its ways, flap its
//! state). An input starting with `netfront::testing::EXTENDED_MARKER`
//! takes its next byte as the vif's configuration (bounce buffers, an MTU up
//! to 9000, partial or flagged checksums, notification rules) and has more
//! actions (transmit stalls, frames the stack answers from the receive
//! path, extra-info chains (well formed, or with a broken GSO slot: unknown
//! type, size 0 or huge, TCPv6, duplicate, too long a chain, a missing or
//! misplaced slot, too long a frame) and stray receive flags, IPv4 TCP/UDP
//! frames, which go as large segments with a GSO slot when longer than the
//! MTU). Whatever
//! happens, the guest must not panic; once the backend behaves again, the
//! link must come back (the guest answers a ping) and the guest must hold
//! exactly the pages it held with the link idle.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use runtime::testing::backend_script::run_input;

fuzz_target!(|data: &[u8]| {
    let _ = run_input(data);
});
