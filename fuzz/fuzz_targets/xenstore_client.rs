//! Fuzzes the xenstore client against a hostile daemon: arbitrary bytes
//! become a script of what the simulated xenstored sends (malformed
//! replies, wrong request ids, oversized lengths, messages cut short,
//! replaced replies, watch-event floods, stalls, lost requests) interleaved
//! with the client's operations (read, write, directory, mkdir, rm, watch,
//! transactions, watch events); `xen_sim::xenstore::exercise::run` plays it
//! and panics on any broken invariant (no panic in the client, a reply only
//! ever handed to its own request, the watch queue within its bound, a
//! broken stream staying broken, and recovery once the daemon behaves
//! again whenever the stream can still be framed).
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use xen_sim::xenstore::exercise;

fuzz_target!(|data: &[u8]| {
    exercise::run(data);
});
