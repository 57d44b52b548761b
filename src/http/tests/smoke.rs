//! The stable fuzz smoke test: the cargo-fuzz target's driver
//! (`http::exercise`) run over a long seeded stream of inputs, mutated from
//! valid requests or purely random. `cargo test --release` runs 200 000
//! inputs in seconds; a debug build runs a tenth of that.

use super::client::XorShift;
use crate::http::exercise;
use alloc::vec::Vec;

const SEEDS: [&[u8]; 10] = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Type: x/y\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n",
    b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET /?status=503&delay=250&header=X-A:1&instance HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /?bytes=300&seed=9&chunked HTTP/1.1\r\nHost: a\r\nX-Echo-Status: 103\r\n\r\n",
    b"POST /?sink HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\nContent-Length: 2\r\n\r\nok",
    b"POST /?q=<i> HTTP/1.1\r\nHost: a\r\nAccept: text/html,*/*;q=0.8\r\nX-A: <b>'\"&\r\nContent-Length: 3\r\n\r\n<p>",
];

/// One script: a selector byte, control bytes, then input built from seeds
/// with random mutations, or random bytes.
fn script(random: &mut XorShift) -> Vec<u8> {
    let mut script = Vec::new();
    script.push(random.next() as u8);
    let control_length = usize::from(script[0] >> 2);
    script.extend((0..control_length).map(|_| random.next() as u8));
    if random.below(4) == 0 {
        let length = random.below(300);
        script.extend((0..length).map(|_| random.next() as u8));
        return script;
    }
    for _ in 0..1 + random.below(4) {
        script.extend_from_slice(SEEDS[random.below(SEEDS.len())]);
    }
    mutate(&mut script, control_length + 1, random);
    script
}

fn mutate(script: &mut Vec<u8>, start: usize, random: &mut XorShift) {
    const INTERESTING: &[u8] = b"\r\n :;,0123456789abcdefABCDEF\t\x00\xff-";
    for _ in 0..random.below(6) {
        let position = start + random.below(script.len() - start + 1);
        match random.below(4) {
            0 if position < script.len() => script[position] = INTERESTING[random.below(INTERESTING.len())],
            1 if position < script.len() => drop(script.remove(position)),
            2 => script.insert(position, INTERESTING[random.below(INTERESTING.len())]),
            _ if position < script.len() => script[position] = random.next() as u8,
            _ => {}
        }
    }
}

#[test]
fn fuzz_smoke_many_seeded_inputs_keep_every_invariant() {
    let inputs = if cfg!(debug_assertions) { 20_000 } else { 200_000 };
    let mut random = XorShift(0xf0cc_ac1a_5eed_0042);
    let mut closed_with_error = 0u64;
    for _ in 0..inputs {
        let script = script(&mut random);
        exercise::check_html_text(&script);
        let outcome = exercise::drive(&script);
        closed_with_error += u64::from(outcome.counters.responses_in_class(4) > 0);
    }
    assert!(closed_with_error > inputs / 10, "the mutations reach the error paths: {closed_with_error}");
}
