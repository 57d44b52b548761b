//! The attacker-script interpreter: its decoding, its example, the saved
//! fuzz inputs (fuzz/regressions/hostile_clients-*), and the stable smoke
//! test of the `hostile_clients` fuzz target: a few hundred seeded
//! pseudo-random scripts, each of which must leave the appliance idle and
//! serving.

extern crate std;

use super::*;
use std::string::ToString;
use xen_sim::random::XorShift;

#[test]
fn every_input_decodes_within_the_bounds() {
    assert_eq!(decode(&[]).actions, []);
    assert_eq!(decode(&[]).settings, settings_for(0));
    let all_ones = decode(&[0xff; 1000]);
    assert_eq!(all_ones.actions.len(), MAX_ACTIONS);
    assert!(all_ones.actions.iter().all(|action| *action == Action::Run { steps: 32, step: Duration::from_secs(1) }));
    let settings = settings_for(0xff);
    assert_eq!((settings.http.connections, settings.http.backlog, settings.http.per_client), (1, 40, Some(1)));
    assert_eq!((settings.http.limits.max_body_bytes, settings.http.limits.min_rate_bytes_per_second), (Some(1024), 0));
}

#[test]
fn the_example_decodes_as_documented_and_recovers() {
    let script = decode(&example());
    assert_eq!(script.settings.http.connections, 4);
    let kinds: Vec<_> = script.actions.iter().map(|action| std::format!("{action:?}")).collect();
    assert_eq!(kinds.len(), 11, "{kinds:#?}");
    assert!(matches!(script.actions[2], Action::Connect { service: Service::Http, .. }));
    assert_eq!(script.actions[3], Action::Connect { host: 1, service: Service::Http, behaviour: Behaviour::Silent });
    let echo = Action::Connect { host: 0, service: Service::Echo, behaviour: Behaviour::Fetch(b"echo".to_vec()) };
    assert_eq!(script.actions[5], echo);
    assert_eq!(script.actions[6], Action::StartFlood { service: Service::Http, rate: 500, total: 33 });
    let report = play(&script);
    assert_eq!(report.connections, 4);
    assert_eq!(report.statuses.get(&200), Some(&2), "the GET and the metrics request: {report:?}");
    assert_eq!(report.flood_syns, 33);
    assert_eq!(report.script_time, Duration::from_millis(16_160));
}

/// One pseudo-random script: random bytes, with the opcodes skewed towards
/// connections and a run at the end, so that most scripts do something.
fn random_script(random: &mut XorShift) -> Vec<u8> {
    let mut bytes = vec![random.next_u64() as u8];
    for _ in 0..1 + random.below(20) {
        let opcode = random.next_u64() as u8;
        match random.below(4) {
            0 => bytes.push(opcode),
            // A connection, then its behaviour and shape bytes.
            1 | 2 => bytes.extend([opcode & !7 | (1 + random.below(3) as u8), random.next_u64() as u8]),
            _ => bytes.extend([opcode | 7, random.next_u64() as u8]),
        }
        bytes.push(random.next_u64() as u8);
    }
    bytes.extend([0x7f & (random.next_u64() as u8 | 7), random.next_u64() as u8]);
    bytes
}

#[test]
fn hostile_scripts_smoke_many_seeded_scripts_leave_the_appliance_idle_and_serving() {
    let scripts = if cfg!(debug_assertions) { 300 } else { 10_000 };
    let mut random = XorShift(0x0bad_c0de_5eed_0007);
    let mut total = Report::default();
    for index in 0..scripts {
        let bytes = random_script(&mut random);
        let report = std::panic::catch_unwind(|| run(&bytes)).unwrap_or_else(|_| {
            panic!("script {index} failed: {bytes:02x?}\n{:#?}", decode(&bytes));
        });
        total.connections += report.connections;
        for (status, count) in report.statuses {
            *total.statuses.entry(status).or_default() += count;
        }
        total.ended += report.ended;
        total.flood_syns += report.flood_syns;
        total.timeouts += report.timeouts;
        total.refused += report.refused;
        total.refused_per_client += report.refused_per_client;
        total.half_open_dropped += report.half_open_dropped;
        total.close_timeouts += report.close_timeouts;
        total.settled_after = total.settled_after.max(report.settled_after);
        total.script_time += report.script_time;
    }
    // The scripts reach the bounds they are meant to exercise.
    let reached = [
        ("200", total.statuses.contains_key(&200)),
        ("4xx", total.statuses.keys().any(|status| (400..500).contains(status))),
        ("503", total.refused > 0),
        ("per-client", total.refused_per_client > 0),
        ("timeouts", total.timeouts > 0),
        ("half-open dropped", total.half_open_dropped > 0),
        ("close timeouts", total.close_timeouts > 0),
    ];
    let missing: Vec<_> = reached.iter().filter(|(_, reached)| !reached).map(|(name, _)| name.to_string()).collect();
    assert!(missing.is_empty(), "never reached: {missing:?}; totals {total:?}");
}

/// Every input the fuzzer saved (fuzz/regressions/hostile_clients-*) still
/// leaves the appliance idle and serving.
#[test]
fn saved_fuzz_inputs_recover() {
    for (name, input) in xen_sim::regressions::saved_inputs("hostile_clients-") {
        std::eprintln!("replaying {name}");
        run(&input);
    }
}
