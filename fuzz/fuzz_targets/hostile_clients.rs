//! Fuzzes the appliance against hostile clients: arbitrary bytes become an
//! attacker script (settings, hosts, connections that behave in every
//! scripted way to HTTP, metrics and echo, vanishing hosts, SYN floods,
//! runs of simulated time); `xenecho::harness::script::run` plays it on the
//! simulated network and panics on any broken invariant (slots and
//! handshakes within their bounds at every step; once the attackers are
//! gone, every socket listening again within the documented bounds and a
//! fresh client served by every service).
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use xenecho::harness::script;

fuzz_target!(|data: &[u8]| {
    script::run(data);
});
