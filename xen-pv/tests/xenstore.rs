//! The client against the simulated daemon, through the real ring and
//! event channels: every operation, the error paths, watches,
//! transactions, hostile replies, random operations against a model, and a
//! daemon that stalls (deadlines, the circuit breaker, bounded watch
//! events).
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;
use std::collections::BTreeMap;
use xen_pv::abi::xenstore::{MessageHeader, MessageType, XENSTORE_PAYLOAD_MAX};
use xen_pv::event_channel::EventChannels;
use xen_pv::xenstore::ring::ByteRing;
use xen_pv::xenstore::{
    DEFAULT_REQUEST_TIMEOUT_NS, STALLED_PROBE_INTERVAL_NS, WATCH_EVENT_QUEUE_LIMIT, WatchEvent, Xenstore, XenstoreError,
};
use xen_sim::random::XorShift;
use xen_sim::xenstore::{Access, GUEST_HOME, VALUE_SIZE_QUOTA};
use xen_sim::{SimXen, XENSTORE_PORT};

fn with_store<R>(xen: &SimXen, test: impl FnOnce(&mut Xenstore<'_, SimXen>) -> R) -> R {
    let events = EventChannels::new(xen, xen.shared_info());
    let mut store = Xenstore::new(&events, xen.xenstore_ring(), XENSTORE_PORT, SimXen::clock());
    test(&mut store)
}

fn event(path: &str, token: &str) -> WatchEvent {
    WatchEvent { path: path.to_string(), token: token.to_string() }
}

fn drain_events(store: &mut Xenstore<'_, SimXen>) -> Vec<WatchEvent> {
    core::iter::from_fn(|| store.next_watch_event().unwrap()).collect()
}

fn raw_message(kind: u32, request_id: u32, payload: &[u8]) -> Vec<u8> {
    let header = MessageHeader { kind, request_id, transaction_id: 0, len: payload.len() as u32 };
    [&header.to_bytes()[..], payload].concat()
}

fn is_protocol_error<T>(result: Result<T, XenstoreError>) -> bool {
    matches!(result, Err(XenstoreError::Protocol(_)))
}

#[test]
fn writes_reads_lists_and_removes() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        store.write("data/answer", "42").unwrap();
        assert_eq!(store.read("data/answer").unwrap(), "42");
        assert_eq!(store.read(&format!("{GUEST_HOME}/data/answer")).unwrap(), "42");
        assert_eq!(store.read("data").unwrap(), "", "parents are created empty");
        store.mkdir("data/empty").unwrap();
        store.mkdir("data/empty").unwrap();
        assert_eq!(store.directory("data").unwrap(), ["answer", "empty"]);
        assert_eq!(store.directory("data/empty").unwrap(), Vec::<String>::new());
        store.rm("data").unwrap();
        assert_eq!(store.read("data/answer"), Err(XenstoreError::NotFound));
        assert_eq!(store.directory(GUEST_HOME).unwrap(), Vec::<String>::new());
    });
    assert_eq!(xen.with_xenstore(|server| server.read_as_dom0("data")), None);
}

#[test]
fn the_guest_sees_dom0_and_dom0_sees_the_guest() {
    let xen = SimXen::new(1);
    xen.with_xenstore(|server| server.write_as_dom0("/vm/name", "xenecho"));
    with_store(&xen, |store| {
        assert_eq!(store.read("/vm/name").unwrap(), "xenecho");
        store.write("control/feature-poweroff", "1").unwrap();
    });
    let value = xen.with_xenstore(|server| server.read_as_dom0("control/feature-poweroff"));
    assert_eq!(value.as_deref(), Some("1"));
}

#[test]
fn missing_nodes_are_not_found() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        assert_eq!(store.read("nothing"), Err(XenstoreError::NotFound));
        assert_eq!(store.directory("nothing"), Err(XenstoreError::NotFound));
        assert_eq!(store.rm("nothing"), Ok(()), "the parent exists");
        assert_eq!(store.rm("nothing/below"), Err(XenstoreError::NotFound));
        assert_eq!(store.unwatch("nothing", "token"), Err(XenstoreError::NotFound));
    });
}

#[test]
fn permissions_are_enforced() {
    let xen = SimXen::new(1);
    xen.with_xenstore(|server| {
        server.write_as_dom0("device/vif/0/mac", "00:16:3e:00:00:01");
        server.set_read_only("device");
        server.write_as_dom0("secret", "s");
        server.set_access("secret", Access::Hidden);
    });
    with_store(&xen, |store| {
        assert_eq!(store.read("device/vif/0/mac").unwrap(), "00:16:3e:00:00:01");
        assert_eq!(store.write("device", "1"), Err(XenstoreError::PermissionDenied));
        assert_eq!(store.write("device/x", "1"), Err(XenstoreError::PermissionDenied));
        assert_eq!(store.mkdir("device/y"), Err(XenstoreError::PermissionDenied));
        assert_eq!(store.rm("device"), Err(XenstoreError::PermissionDenied));
        assert_eq!(store.read("device/x"), Err(XenstoreError::NotFound), "nothing was created");
        assert_eq!(store.write("/tool/x", "1"), Err(XenstoreError::PermissionDenied), "root is dom0's");
        assert_eq!(store.read("secret"), Err(XenstoreError::PermissionDenied));
        assert_eq!(store.directory("secret"), Err(XenstoreError::PermissionDenied));
    });
}

#[test]
fn invalid_requests_fail_without_harm() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        assert_eq!(store.read("a\0b"), Err(XenstoreError::InvalidInput));
        let huge = "x".repeat(XENSTORE_PAYLOAD_MAX);
        assert_eq!(store.write("a", &huge), Err(XenstoreError::TooBig));
        assert_eq!(xen.with_xenstore(|server| server.requests_handled()), 0, "refused before sending");
        assert_eq!(store.read("a//b"), Err(XenstoreError::InvalidInput));
        assert_eq!(store.write("a", &huge[..VALUE_SIZE_QUOTA]), Err(XenstoreError::NoSpace));
        assert_eq!(store.rm("/"), Err(XenstoreError::InvalidInput));
        store.write("a", "fine").unwrap();
    });
}

#[test]
fn values_larger_than_the_ring_cross_its_boundary_and_index_wrap() {
    let xen = SimXen::new(1);
    let ring = xen.xenstore_ring();
    let start = u32::MAX - 300;
    for index in [&ring.req_cons, &ring.req_prod, &ring.rsp_cons, &ring.rsp_prod] {
        index.store(start, Ordering::Relaxed);
    }
    let value: String = (0..VALUE_SIZE_QUOTA - 1).map(|index| char::from(b'a' + (index % 26) as u8)).collect();
    with_store(&xen, |store| {
        store.write("big", &value).unwrap();
        assert_eq!(store.read("big").unwrap(), value);
        let names: Vec<String> = (0..120).map(|index| format!("child-with-a-long-name-{index:03}")).collect();
        for name in &names {
            store.mkdir(&format!("many/{name}")).unwrap();
        }
        assert_eq!(store.directory("many").unwrap(), names, "a reply of about 3 KiB");
    });
    assert!(ring.rsp_cons.load(Ordering::Relaxed) < start, "the indices wrapped");
}

#[test]
fn watches_fire_at_once_and_on_changes_at_or_below() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        store.watch("control", "ctl").unwrap();
        assert_eq!(drain_events(store), [event("control", "ctl")], "the initial event");
        xen.with_xenstore(|server| server.write_as_dom0("control/shutdown", "poweroff"));
        xen.with_xenstore(|server| server.write_as_dom0("other", "x"));
        assert_eq!(store.next_watch_event().unwrap(), Some(event("control/shutdown", "ctl")));
        assert_eq!(store.next_watch_event().unwrap(), None);
        store.watch("/local/domain/1/control/shutdown", "abs").unwrap();
        drain_events(store);
        xen.with_xenstore(|server| server.rm_as_dom0("control"));
        let fired = drain_events(store);
        assert_eq!(fired, [event("control", "ctl"), event("/local/domain/1/control/shutdown", "abs")]);
    });
}

#[test]
fn watch_events_are_queued_while_a_reply_is_awaited() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        store.watch("control", "ctl").unwrap();
        store.watch("data", "data").unwrap();
        xen.with_xenstore(|server| server.write_as_dom0("control/shutdown", "reboot"));
        store.write("data/x", "1").unwrap();
        assert_eq!(store.queued_watch_events(), 4, "initial events, dom0's change, and the guest's own");
        assert_eq!(store.read("control/shutdown").unwrap(), "reboot");
        let fired = drain_events(store);
        let expected =
            [event("control", "ctl"), event("data", "data"), event("control/shutdown", "ctl"), event("data/x", "data")];
        assert_eq!(fired, expected);
    });
}

#[test]
fn duplicate_events_are_coalesced_and_unwatch_stops_events() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        store.watch("control", "ctl").unwrap();
        assert_eq!(store.watch("control", "ctl"), Err(XenstoreError::AlreadyExists));
        for value in ["a", "b", "c"] {
            store.write("control/x", value).unwrap();
        }
        assert_eq!(drain_events(store), [event("control", "ctl"), event("control/x", "ctl")]);
        store.unwatch("control", "ctl").unwrap();
        store.write("control/x", "d").unwrap();
        assert!(drain_events(store).is_empty());
        assert_eq!(xen.with_xenstore(|server| server.watch_count()), 0);
    });
}

#[test]
fn wait_watch_event_returns_queued_then_ring_events() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        store.watch("control", "ctl").unwrap();
        assert_eq!(store.wait_watch_event().unwrap(), event("control", "ctl"));
        xen.with_xenstore(|server| server.write_as_dom0("control/shutdown", "poweroff"));
        assert_eq!(store.wait_watch_event().unwrap(), event("control/shutdown", "ctl"));
    });
}

#[test]
fn a_transaction_commits_atomically() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        store.watch("config", "cfg").unwrap();
        drain_events(store);
        let sum = store
            .transaction(3, |transaction| {
                transaction.write("config/a", "1")?;
                transaction.write("config/b", "2")?;
                assert_eq!(xen.with_xenstore(|server| server.read_as_dom0("config/a")), None, "not yet visible");
                assert_eq!(transaction.directory("config")?, ["a", "b"]);
                transaction.rm("config/b")?;
                transaction.mkdir("config/c")?;
                Ok(transaction.read("config/a")?.parse::<u32>().unwrap_or(0) + 1)
            })
            .unwrap();
        assert_eq!(sum, 2);
        assert_eq!(store.directory("config").unwrap(), ["a", "c"]);
        let fired = drain_events(store);
        assert_eq!(fired, [event("config/a", "cfg"), event("config/b", "cfg"), event("config/c", "cfg")], "at commit");
    });
    assert_eq!(xen.with_xenstore(|server| server.open_transactions()), 0);
}

#[test]
fn a_failing_body_aborts_the_transaction() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        let outcome: Result<(), _> = store.transaction(3, |transaction| {
            transaction.write("config/a", "1")?;
            transaction.read("config/missing")?;
            Ok(())
        });
        assert_eq!(outcome, Err(XenstoreError::NotFound));
        assert_eq!(store.read("config/a"), Err(XenstoreError::NotFound));
    });
    assert_eq!(xen.with_xenstore(|server| server.open_transactions()), 0);
}

#[test]
fn a_conflicting_change_makes_the_transaction_start_again() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        let mut attempts = 0;
        store
            .transaction(5, |transaction| {
                attempts += 1;
                let count: u32 = transaction.read("counter").ok().and_then(|text| text.parse().ok()).unwrap_or(0);
                if attempts == 1 {
                    xen.with_xenstore(|server| server.write_as_dom0("counter", "10"));
                }
                transaction.write("counter", &(count + 1).to_string())
            })
            .unwrap();
        assert_eq!(attempts, 2);
        assert_eq!(store.read("counter").unwrap(), "11", "the retry saw dom0's write");
    });
}

#[test]
fn forced_eagain_is_retried_until_the_attempts_run_out() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        xen.with_xenstore(|server| server.fail_next_commits(2));
        let mut attempts = 0;
        store
            .transaction(3, |transaction| {
                attempts += 1;
                transaction.write("x", "1")
            })
            .unwrap();
        assert_eq!(attempts, 3);
        xen.with_xenstore(|server| server.fail_next_commits(5));
        assert_eq!(store.transaction(3, |transaction| transaction.write("y", "1")), Err(XenstoreError::TryAgain));
        assert_eq!(store.read("y"), Err(XenstoreError::NotFound));
        let before = xen.with_xenstore(|server| server.requests_handled());
        assert_eq!(store.transaction(0, |transaction| transaction.write("y", "1")), Err(XenstoreError::TryAgain));
        assert_eq!(xen.with_xenstore(|server| server.requests_handled()), before);
    });
}

#[test]
fn transactions_can_be_driven_by_hand() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        let id = store.transaction_start().unwrap();
        store.in_transaction(id).write("manual", "1").unwrap();
        assert_eq!(store.read("manual"), Err(XenstoreError::NotFound), "isolated until commit");
        assert_eq!(store.in_transaction(id).id(), id);
        store.transaction_end(id, true).unwrap();
        assert_eq!(store.read("manual").unwrap(), "1");
        assert_eq!(store.transaction_end(id, true), Err(XenstoreError::NotFound), "already ended");
        let aborted = store.transaction_start().unwrap();
        store.in_transaction(aborted).write("manual", "2").unwrap();
        store.transaction_end(aborted, false).unwrap();
        assert_eq!(store.read("manual").unwrap(), "1");
    });
}

#[test]
fn malformed_replies_are_errors_and_the_client_carries_on() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        store.write("x", "1").unwrap();
        let cases: [(u32, &[u8]); 4] = [
            (99, b"OK\0"),                           // unknown type
            (MessageType::Read as u32, b"\xff\xfe"), // not UTF-8
            (MessageType::Error as u32, b"ENOE"),    // error name cut short
            (MessageType::Mkdir as u32, b"OK\0"),    // the wrong request's type
        ];
        for (kind, payload) in &cases {
            xen.with_xenstore(|server| server.replace_next_reply(*kind, payload));
            assert!(is_protocol_error(store.read("x")), "{kind} {payload:?}");
            assert_eq!(store.read("x").unwrap(), "1", "usable after {kind}");
        }
        xen.with_xenstore(|server| server.replace_next_reply(MessageType::Error as u32, b"EQUOTA\0"));
        assert_eq!(store.read("x"), Err(XenstoreError::Unknown("EQUOTA".into())));
    });
}

#[test]
fn a_reply_to_another_request_is_an_error_and_the_late_reply_is_discarded() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        store.write("x", "1").unwrap();
        let stray = raw_message(MessageType::Read as u32, 0xdead, b"forged");
        xen.with_xenstore(|server| server.inject_raw_reply(&stray));
        assert!(is_protocol_error(store.read("x")));
        assert_eq!(store.read("x").unwrap(), "1", "the real reply to the failed read was skipped");
        assert_eq!(store.discarded_messages(), 1);
    });
}

/// More stray replies than the client remembers failed requests: each
/// costs one request an error, and that request's own reply then arrives
/// after it gave up. Those late replies must be recognised however many
/// there are; the client used to remember only the last 16, took each older
/// late reply for a reply to a request never made, failed the request in
/// flight for it, and so made another late reply: with 17 or more it failed
/// every request for good, though the daemon behaved and the stream framed
/// (fuzz/regressions/xenstore_client-stray-replies-1).
#[test]
fn many_stray_replies_cost_one_request_each_and_no_more() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        store.write("x", "1").unwrap();
        let strays = 40;
        for index in 0..strays {
            let stray = raw_message(MessageType::Read as u32, 0x8000_0000 + index, b"forged");
            xen.with_xenstore(|server| server.inject_raw_reply(&stray));
        }
        let failures = (0..2 * strays).take_while(|_| store.read("x").is_err()).count();
        assert_eq!(failures, strays as usize, "one failed request per stray reply");
        assert_eq!(store.read("x").unwrap(), "1");
        assert_eq!(store.discarded_messages(), u64::from(strays), "every late reply was recognised");
    });
}

#[test]
fn malformed_watch_events_are_discarded() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        let broken = raw_message(MessageType::WatchEvent as u32, 0, b"only-a-path\0");
        xen.with_xenstore(|server| server.inject_raw_reply(&broken));
        store.write("x", "1").unwrap();
        assert_eq!(store.next_watch_event().unwrap(), None);
        assert_eq!(store.discarded_messages(), 1);
    });
}

#[test]
fn an_unframeable_reply_breaks_the_connection_for_good() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        let header = MessageHeader { kind: 2, request_id: 1, transaction_id: 0, len: 5000 };
        xen.with_xenstore(|server| server.inject_raw_reply(&header.to_bytes()));
        assert!(is_protocol_error(store.read("x")));
        assert!(is_protocol_error(store.read("x")));
        assert!(is_protocol_error(store.next_watch_event()));
    });
}

#[test]
fn nonsense_ring_indices_are_errors() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        let ring = xen.xenstore_ring();
        ring.rsp_prod.store(5000, Ordering::Relaxed);
        assert!(is_protocol_error(store.next_watch_event()));
    });
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        xen.xenstore_ring().req_cons.store(64, Ordering::Relaxed);
        assert!(is_protocol_error(store.write("x", "1")));
        assert!(is_protocol_error(store.read("x")), "the stream cannot be trusted any more");
    });
}

/// A model of the guest's home: relative path to value.
#[derive(Default)]
struct Model {
    nodes: BTreeMap<String, String>,
}

impl Model {
    fn write(&mut self, path: &str, value: &str) {
        self.mkdir(path);
        self.nodes.insert(path.to_string(), value.to_string());
    }

    fn mkdir(&mut self, path: &str) {
        let mut prefix = String::new();
        for component in path.split('/') {
            prefix = if prefix.is_empty() { component.to_string() } else { format!("{prefix}/{component}") };
            self.nodes.entry(prefix.clone()).or_default();
        }
    }

    fn rm(&mut self, path: &str) -> Result<(), XenstoreError> {
        let parent_exists = path.rsplit_once('/').is_none_or(|(parent, _)| self.nodes.contains_key(parent));
        if !self.nodes.contains_key(path) && !parent_exists {
            return Err(XenstoreError::NotFound);
        }
        let below = format!("{path}/");
        self.nodes.retain(|key, _| key != path && !key.starts_with(&below));
        Ok(())
    }

    fn read(&self, path: &str) -> Result<String, XenstoreError> {
        self.nodes.get(path).cloned().ok_or(XenstoreError::NotFound)
    }

    fn directory(&self, path: &str) -> Result<Vec<String>, XenstoreError> {
        self.read(path)?;
        let prefix = format!("{path}/");
        let names = self.nodes.keys().filter_map(|key| key.strip_prefix(&prefix)).filter(|name| !name.contains('/'));
        Ok(names.map(String::from).collect())
    }
}

/// A path of one to three of a few names.
fn random_path(random: &mut XorShift) -> String {
    let depth = 1 + random.below(3);
    (0..depth).map(|_| ["a", "b", "c-d"][random.below(3)]).collect::<Vec<_>>().join("/")
}

/// A printable value, now and then a long one.
fn random_value(random: &mut XorShift) -> String {
    let length = if random.below(10) == 0 { 1000 + random.below(900) } else { random.below(40) };
    (0..length).map(|_| char::from(b' ' + random.below(95) as u8)).collect()
}

#[test]
fn random_operations_agree_with_a_model() {
    let xen = SimXen::new(1);
    let mut model = Model::default();
    let mut random = XorShift(0x2545_f491_4f6c_dd1d);
    with_store(&xen, |store| {
        for step in 0..1500 {
            let path = random_path(&mut random);
            match random.below(7) {
                0 | 1 => {
                    let value = random_value(&mut random);
                    store.write(&path, &value).unwrap();
                    model.write(&path, &value);
                }
                2 => {
                    store.mkdir(&path).unwrap();
                    model.mkdir(&path);
                }
                3 => assert_eq!(store.rm(&path), model.rm(&path), "step {step}: rm {path}"),
                4 => assert_eq!(store.read(&path), model.read(&path), "step {step}: read {path}"),
                5 => assert_eq!(store.directory(&path), model.directory(&path), "step {step}: directory {path}"),
                _ => {
                    let value = random_value(&mut random);
                    xen.with_xenstore(|server| server.write_as_dom0(&path, &value));
                    model.write(&path, &value);
                }
            }
        }
        let everything = model.directory("a");
        assert_eq!(store.directory("a"), everything);
    });
}

// A daemon that stops answering: deadlines, the circuit breaker, bounded
// watch events, and transactions a stall cuts short.

fn stall(xen: &SimXen, stalled: bool) {
    xen.with_xenstore(|server| server.set_stalled(stalled));
}

fn open_transactions(xen: &SimXen) -> usize {
    xen.with_xenstore(|server| server.open_transactions())
}

/// Consumes what the guest wrote on the request ring, as a daemon that
/// read the requests and lost them.
fn lose_requests(xen: &SimXen) {
    ByteRing::requests(xen.xenstore_ring()).consume(&mut Vec::new()).unwrap();
}

#[test]
fn a_stalled_daemon_costs_one_timeout_then_requests_fail_at_once() {
    let xen = SimXen::new(1);
    let ring = xen.xenstore_ring();
    with_store(&xen, |store| {
        store.write("x", "1").unwrap();
        stall(&xen, true);
        let start = xen.now();
        assert_eq!(store.read("x"), Err(XenstoreError::TimedOut));
        assert_eq!(xen.now() - start, DEFAULT_REQUEST_TIMEOUT_NS, "failed at the deadline, not before");
        assert!(store.daemon_stalled());

        let (time, polls, written) = (xen.now(), xen.counts().polls, ring.req_prod.load(Ordering::Relaxed));
        assert_eq!(store.write("y", "2"), Err(XenstoreError::TimedOut));
        assert_eq!(store.directory("data"), Err(XenstoreError::TimedOut));
        assert_eq!(store.transaction(3, |transaction| transaction.write("z", "3")), Err(XenstoreError::TimedOut));
        assert_eq!(xen.now(), time, "no simulated time passed");
        assert_eq!(xen.counts().polls, polls, "no sleep");
        assert_eq!(ring.req_prod.load(Ordering::Relaxed), written, "nothing sent");
    });
}

#[test]
fn the_request_timeout_can_be_set() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        assert_eq!(store.request_timeout(), DEFAULT_REQUEST_TIMEOUT_NS);
        store.set_request_timeout(250_000_000);
        stall(&xen, true);
        let start = xen.now();
        assert_eq!(store.mkdir("m"), Err(XenstoreError::TimedOut));
        assert_eq!(xen.now() - start, 250_000_000);
    });
}

#[test]
fn after_a_stall_the_late_reply_is_discarded_and_requests_succeed() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        store.write("a", "A").unwrap();
        store.write("b", "B").unwrap();
        stall(&xen, true);
        assert_eq!(store.read("a"), Err(XenstoreError::TimedOut));
        assert_eq!(store.write("c", "C"), Err(XenstoreError::TimedOut), "refused, never sent");
        stall(&xen, false);
        let time = xen.now();
        assert_eq!(store.read("b").unwrap(), "B", "not the late reply to the read of a");
        assert_eq!(xen.now(), time, "the late reply was already there: no wait");
        assert_eq!(store.discarded_messages(), 1);
        assert!(!store.daemon_stalled());
        assert_eq!(store.read("c"), Err(XenstoreError::NotFound));
        assert_eq!(store.read("a").unwrap(), "A");
    });
}

#[test]
fn any_message_or_a_probe_lets_requests_through_again() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        store.watch("control", "ctl").unwrap();
        store.write("x", "1").unwrap();
        drain_events(store);

        // The daemon read the request and lost it: no late reply will come,
        // but a watch event shows it is alive.
        stall(&xen, true);
        assert_eq!(store.read("x"), Err(XenstoreError::TimedOut));
        lose_requests(&xen);
        stall(&xen, false);
        assert_eq!(store.read("x"), Err(XenstoreError::TimedOut), "nothing came yet");
        xen.with_xenstore(|server| server.write_as_dom0("control/shutdown", "reboot"));
        assert_eq!(store.read("x").unwrap(), "1");
        assert_eq!(drain_events(store), [event("control/shutdown", "ctl")], "the event was kept");

        // Nothing at all comes: one request goes through once the probe
        // interval has passed since the last timeout.
        stall(&xen, true);
        assert_eq!(store.read("x"), Err(XenstoreError::TimedOut));
        lose_requests(&xen);
        xen.advance(STALLED_PROBE_INTERVAL_NS - 1);
        let start = xen.now();
        assert_eq!(store.read("x"), Err(XenstoreError::TimedOut));
        assert_eq!(xen.now(), start, "refused at once");
        xen.advance(1);
        let start = xen.now();
        assert_eq!(store.read("x"), Err(XenstoreError::TimedOut), "the probe, still stalled");
        assert_eq!(xen.now() - start, DEFAULT_REQUEST_TIMEOUT_NS);
        assert_eq!(store.read("x"), Err(XenstoreError::TimedOut), "refused again");
        lose_requests(&xen);
        stall(&xen, false);
        xen.advance(STALLED_PROBE_INTERVAL_NS);
        assert_eq!(store.read("x").unwrap(), "1", "the next probe is answered");
        assert!(!store.daemon_stalled());
        assert_eq!(store.write("y", "2"), Ok(()));
    });
}

#[test]
fn a_request_cut_short_by_its_deadline_poisons_the_stream() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        stall(&xen, true);
        let start = xen.now();
        assert_eq!(store.write("big", &"v".repeat(1500)), Err(XenstoreError::TimedOut));
        assert_eq!(xen.now() - start, DEFAULT_REQUEST_TIMEOUT_NS);
        stall(&xen, false);
        xen.advance(STALLED_PROBE_INTERVAL_NS);
        assert!(is_protocol_error(store.read("x")), "half a request is on the ring for good");
    });
}

#[test]
fn a_stall_in_the_middle_of_a_transaction_leaves_nothing_behind() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        store.write("config/kept", "0").unwrap();
        let outcome = store.transaction(3, |transaction| {
            transaction.write("config/a", "1")?;
            stall(&xen, true);
            transaction.write("config/b", "2")
        });
        assert_eq!(outcome, Err(XenstoreError::TimedOut));
        assert_eq!(open_transactions(&xen), 1, "the abort could not be sent");
        stall(&xen, false);
        assert_eq!(xen.with_xenstore(|server| server.read_as_dom0("config/a")), None);
        assert_eq!(store.directory("config").unwrap(), ["kept"]);
        assert_eq!(open_transactions(&xen), 0, "aborted before that request");
        assert_eq!(store.discarded_messages(), 1, "the late reply to the write");
        store
            .transaction(3, |transaction| {
                transaction.write("config/a", "3")?;
                transaction.write("config/b", "4")
            })
            .unwrap();
        assert_eq!(store.directory("config").unwrap(), ["a", "b", "kept"]);
        assert_eq!(store.read("config/a").unwrap(), "3");
        assert_eq!(open_transactions(&xen), 0);
    });
}

#[test]
fn a_transaction_whose_start_answered_late_is_aborted() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        stall(&xen, true);
        assert_eq!(store.transaction_start(), Err(XenstoreError::TimedOut));
        stall(&xen, false);
        assert_eq!(open_transactions(&xen), 1, "the daemon started it");
        store.write("x", "1").unwrap();
        assert_eq!(open_transactions(&xen), 0);
        assert_eq!(store.read("x").unwrap(), "1");
    });
}

#[test]
fn a_commit_that_timed_out_is_applied_late_and_its_abort_is_harmless() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        let id = store.transaction_start().unwrap();
        store.in_transaction(id).write("late", "1").unwrap();
        stall(&xen, true);
        assert_eq!(store.transaction_end(id, true), Err(XenstoreError::TimedOut));
        stall(&xen, false);
        assert_eq!(store.read("late").unwrap(), "1", "the daemon committed it when it resumed");
        assert_eq!(open_transactions(&xen), 0);
        store.write("after", "2").unwrap();
        assert_eq!(store.read("after").unwrap(), "2");
    });
}

#[test]
fn a_flood_of_watch_events_is_bounded_and_coalesced_by_token() {
    let xen = SimXen::new(1);
    let tokens = ["alpha", "beta", "gamma"];
    with_store(&xen, |store| {
        for token in tokens {
            store.watch(&format!("flood/{token}"), token).unwrap();
        }
        drain_events(store);
        let flood = 10_000;
        xen.with_xenstore(|server| {
            for index in 0..flood {
                let token = tokens[index % tokens.len()];
                server.write_as_dom0(&format!("flood/{token}/{index}"), "x");
            }
        });
        store.write("after-the-flood", "1").unwrap();
        assert_eq!(store.queued_watch_events(), WATCH_EVENT_QUEUE_LIMIT);
        assert_eq!(store.dropped_watch_events(), (flood - WATCH_EVENT_QUEUE_LIMIT) as u64);

        // Past the limit a new token is still queued; a known one is not.
        store.watch("late", "late").unwrap();
        xen.with_xenstore(|server| server.write_as_dom0("flood/alpha/more", "y"));
        store.write("again", "1").unwrap();
        assert_eq!(store.queued_watch_events(), WATCH_EVENT_QUEUE_LIMIT + 1);
        assert_eq!(store.dropped_watch_events(), (flood - WATCH_EVENT_QUEUE_LIMIT + 1) as u64);

        let pending = drain_events(store);
        assert_eq!(pending.len(), WATCH_EVENT_QUEUE_LIMIT + 1);
        for token in tokens.iter().chain(&["late"]) {
            assert!(pending.iter().any(|event| event.token == *token), "{token} has an event pending");
        }
        xen.with_xenstore(|server| server.write_as_dom0("flood/beta/after", "z"));
        assert_eq!(drain_events(store), [event("flood/beta/after", "beta")], "queued as usual once drained");
    });
}

#[test]
fn watch_events_with_invented_tokens_stop_at_a_hard_bound() {
    let xen = SimXen::new(1);
    with_store(&xen, |store| {
        let invented = 500;
        for index in 0..invented {
            let payload = format!("path\0token-{index}\0");
            let message = raw_message(MessageType::WatchEvent as u32, 0, payload.as_bytes());
            xen.with_xenstore(|server| server.inject_raw_reply(&message));
        }
        store.write("x", "1").unwrap();
        assert_eq!(store.queued_watch_events(), 2 * WATCH_EVENT_QUEUE_LIMIT);
        assert_eq!(store.dropped_watch_events(), (invented - 2 * WATCH_EVENT_QUEUE_LIMIT) as u64);
    });
}
