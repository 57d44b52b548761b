//! The hostile-daemon driver: its decoding, a few scripts whose outcome is
//! known, and the stable smoke test of the `xenstore_client` fuzz target
//! (seeded pseudo-random scripts, each keeping every invariant).

use super::*;
use crate::random::XorShift;

#[test]
fn every_input_decodes_within_the_bounds() {
    assert!(decode(&[]).is_empty());
    assert_eq!(decode(&[0xff; 10_000]).len(), MAX_ACTIONS);
    assert_eq!(decode(&[13, 1]), [Action::Read("a/b")]);
    assert_eq!(decode(&[7, 0x81]), [Action::WatchFlood { count: 9, invented_tokens: true }]);
}

#[test]
fn a_quiet_script_recovers_at_once() {
    let report = play(&[Action::Write("a", String::from("1")), Action::Read("a")]);
    assert_eq!(report.verified, 2 + 1 + 8, "the script's two, the probe, the final round's eight");
    assert_eq!(report.recovered_after, Some(1));
    assert!(report.framable && report.broken.is_none());
}

#[test]
fn a_forged_reply_with_the_next_id_is_that_request_s_reply() {
    let forged = b"forged-7".to_vec();
    let actions = [
        Action::Write("a", String::from("1")),
        Action::InjectMessage { kind: MessageType::Read as u32, id: IdChoice::Ahead(0), payload: forged },
        Action::Read("a"),
    ];
    let report = play(&actions);
    assert_eq!(report.verified, 2 + 1 + 8, "the forged value was checked against its message");
}

#[test]
fn a_forged_reply_that_took_the_probe_s_id_is_not_recovery() {
    // The probe's request gets the forged acknowledgement (its id); the
    // daemon's own reply to it comes later and is discarded as a repeat.
    // The first success does not count: everything hostile is read only
    // once the client takes one of the daemon's own replies.
    let actions =
        [Action::InjectMessage { kind: MessageType::Write as u32, id: IdChoice::Ahead(0), payload: b"OK\0".to_vec() }];
    assert_eq!(decode(&[0x32, 0xd1]), actions);
    assert_eq!(play(&actions).recovered_after, Some(2), "the forged success, then the daemon's own");
}

#[test]
fn stale_replies_and_stalls_are_survived() {
    let actions = [
        Action::Write("a", String::from("1")),
        Action::Stall(true),
        Action::Read("a"),
        Action::InjectMessage { kind: MessageType::Read as u32, id: IdChoice::Behind(0), payload: b"late".to_vec() },
        Action::Stall(false),
        Action::Read("a"),
        Action::ReplaceNextReply { kind: MessageType::Error as u32, payload: b"EQUOTA\0".to_vec() },
        Action::Read("a"),
        Action::WatchFlood { count: 1000, invented_tokens: true },
        Action::Read("a"),
    ];
    let report = play(&actions);
    assert!(report.timeouts >= 1, "{report:?}");
    assert_eq!(report.peak_queued_events, 2 * WATCH_EVENT_QUEUE_LIMIT, "{report:?}");
    assert!(report.errno_errors >= 1, "EQUOTA was checked against its message: {report:?}");
    assert!(report.recovered_after.is_some(), "{report:?}");
}

#[test]
fn an_oversized_header_breaks_the_stream_for_good_and_that_is_acknowledged() {
    let actions = [Action::OversizedHeader { length: 5000 }, Action::Read("a"), Action::NextWatchEvents(3)];
    let report = play(&actions);
    assert!(report.broken.is_some() && !report.framable, "{report:?}");
    assert_eq!(report.recovered_after, None);
}

/// A script of up to 40 actions, each decoded from an opcode and random
/// argument bytes; the actions that make the stream unframable (arbitrary
/// bytes, an oversized header, a message cut short) are rarer, so that most
/// scripts test recovery.
fn random_script(random: &mut XorShift) -> Vec<Action> {
    let count = (random.next_u64() % 40) as usize;
    (0..count)
        .map(|_| {
            let mut opcode = random.next_u64() as u8 % 24;
            if (3..=5).contains(&opcode) && !random.next_u64().is_multiple_of(8) {
                opcode = 13; // a read instead
            }
            let mut bytes = std::vec![opcode];
            bytes.extend((0..16).map(|_| random.next_u64() as u8));
            decode(&bytes).swap_remove(0)
        })
        .collect()
}

#[test]
fn fuzz_smoke_many_seeded_hostile_daemons_keep_every_invariant() {
    let scripts = if cfg!(debug_assertions) { 2_000 } else { 20_000 };
    let mut random = XorShift(0x7e57_ab1e_5eed_0003);
    let mut total = Report::default();
    let (mut broken, mut recovered, mut unframable) = (0, 0, 0);
    for index in 0..scripts {
        let actions = random_script(&mut random);
        let report = std::panic::catch_unwind(|| play(&actions))
            .unwrap_or_else(|_| panic!("script {index} failed: {actions:#?}"));
        total.verified += report.verified;
        total.unverified += report.unverified;
        total.errno_errors += report.errno_errors;
        total.timeouts += report.timeouts;
        total.protocol_errors += report.protocol_errors;
        total.watch_events += report.watch_events;
        total.peak_queued_events = total.peak_queued_events.max(report.peak_queued_events);
        broken += usize::from(report.broken.is_some());
        recovered += usize::from(report.recovered_after.is_some_and(|attempts| attempts > 1));
        unframable += usize::from(!report.framable);
    }
    assert!(total.verified > 1000 && total.errno_errors > 100 && total.timeouts > 100, "{total:?}");
    assert!(total.protocol_errors > 100 && total.watch_events > 100, "{total:?}");
    assert_eq!(total.peak_queued_events, 2 * WATCH_EVENT_QUEUE_LIMIT, "the queue's bound was reached");
    assert!(broken > 10 && recovered > 10 && unframable > 10, "{broken} {recovered} {unframable}");
}

/// Every input the fuzzer saved (fuzz/regressions/xenstore_client-*) keeps
/// every invariant.
#[test]
fn saved_fuzz_inputs_keep_every_invariant() {
    for (name, input) in crate::regressions::saved_inputs("xenstore_client-") {
        std::eprintln!("replaying {name}");
        run(&input);
    }
}
