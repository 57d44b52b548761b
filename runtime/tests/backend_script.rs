//! The netfront fuzz target's inputs on the production event loop
//! (`runtime::testing::backend_script`): the saved ones, a few fixed
//! scripts, and seeded random ones (plain and extended).
#![forbid(unsafe_code)]

use runtime::testing::backend_script::run_input;
use xen_sim::random::XorShift;

/// Every input the fuzzer saved (fuzz/regressions/netfront_backend-*)
/// recovers on the production loop: the bugs they found stay fixed.
#[test]
fn saved_fuzz_inputs_recover() {
    for (name, input) in netfront::testing::saved_inputs() {
        eprintln!("replaying {name}");
        run_input(&input);
    }
}

/// An empty script: the link comes up, answers, and ends cleanly.
#[test]
fn an_empty_script_settles_and_ends() {
    run_input(&[]);
}

/// Every misbehaviour once, then a state flap, then a stall.
#[test]
fn each_misbehaviour_then_a_flap_and_a_stall() {
    let script: Vec<u8> = (3..=9).flat_map(|action| [action, 10]).collect();
    run_input(&script);
    run_input(&[0xfb, 0x01, 12, 40, 13, 2, 14, 80, 15, 30]);
}

/// The vif moved to a driver domain and back, with traffic in between,
/// trusted and bouncing: each time the loop makes a new DMA device for the
/// new backend, and in the end holds exactly its idle pages again (the old
/// devices closed, nothing kept).
#[test]
fn moves_between_backend_domains() {
    let mut script = vec![9, 3];
    script.extend([2, 0].repeat(6));
    script.extend([1, 40, 0, 20, 9, 7]);
    script.extend([2, 0].repeat(6));
    script.extend([1, 40]);
    assert_eq!(run_input(&script), [0, 2, 0]);
    let bouncing: Vec<u8> = [0xfb, 0x01].into_iter().chain(script).collect();
    assert_eq!(run_input(&bouncing), [0, 2, 0]);
}

/// Seeded random scripts, plain and extended (every configuration byte).
#[test]
fn seeded_random_scripts_recover() {
    let mut random = XorShift(0x6e65_7466_726f_6e74);
    for round in 0..24u8 {
        let mut input = Vec::new();
        if round % 2 == 1 {
            input.extend([0xfb, round.wrapping_mul(11)]);
        }
        input.extend((0..60).map(|_| random.next_u64() as u8));
        // Shown only if the round fails.
        eprintln!("round {round}: {input:02x?}");
        run_input(&input);
    }
}
