//! Clients beyond the slots against the clients being served, on an
//! appliance that pays per packet ([`Network::limit_guest_frames`]), as on
//! the emulated Xen host under `wrk -c1024`: keep-alive load connections
//! hold every slot, and more load connections than there are slots come
//! back at once after every refusal or reset ([`Behaviour::Load`]).
//!
//! Without a bound they took two thirds of the appliance's packets (a
//! handshake, a 503 or a reset, the closes, again), and the connections it
//! served got about a third of what they got alone. The refusal budget
//! (`runtime::refusals`) lets SYNs through at a fixed rate while every slot
//! is busy and drops the rest unanswered, so the clients beyond the slots
//! are paced by their own SYN retries.

use super::*;
use crate::http::Limits;
use crate::pool::TcpBounds;
use crate::server::HttpPlan;
use alloc::format;
use alloc::string::String;
use runtime::refusals::{REFUSAL_BURST, REFUSALS_PER_SECOND};

const STEP: Duration = Duration::from_millis(10);
/// HTTP slots, and as many keep-alive connections holding them.
const SLOTS: usize = 64;
/// Spare sockets beyond the slots (half the slots, as the default).
const BACKLOG: usize = SLOTS / 2;
/// Load connections beyond the slots: 5/3 of the slots, as 1024 against
/// the 384 slots of a 64 MB appliance.
const EXCESS: usize = SLOTS * 5 / 3;
/// What the appliance handles per 10 ms step: about 6 400 frames a second
/// with a turn's overshoot, the order of the emulated host's packet rate.
const GUEST_FRAMES_PER_STEP: u64 = 40;

fn settings() -> Settings {
    Settings {
        http: HttpPlan {
            port: HTTP_PORT,
            connections: SLOTS,
            backlog: BACKLOG,
            per_client: None,
            limits: Limits::default(),
            bounds: TcpBounds::default(),
            socket_bytes: crate::server::DEFAULT_SOCKET_BYTES,
        },
        metrics_port: Some(crate::DEFAULT_METRICS_PORT),
        metrics_address: None,
        metrics_vif: None,
    }
}

/// Load connections spread over hosts of their own.
struct Group {
    hosts: Vec<HostId>,
    connections: Vec<ConnectionId>,
}

impl Group {
    fn open(network: &mut Network, hosts: usize, connections: usize) -> Group {
        let hosts: Vec<_> = (0..hosts).map(|_| network.add_host()).collect();
        let connections =
            (0..connections).map(|index| network.connect(hosts[index % hosts.len()], Behaviour::Load)).collect();
        Group { hosts, connections }
    }

    /// What its connections saw, summed, and its hosts' frames.
    fn counts(&self, network: &Network) -> (LoadCounts, u64) {
        let mut total = LoadCounts::default();
        for &connection in &self.connections {
            let load = network.outcome(connection).load;
            total.connects += load.connects;
            total.connected += load.connected;
            total.ok += load.ok;
            total.unavailable += load.unavailable;
            total.other += load.other;
            total.errors += load.errors;
        }
        let frames = self.hosts.iter().map(|&host| network.host_frames(host).frames()).sum();
        (total, frames)
    }

    fn unplug(&self, network: &mut Network) {
        for &host in &self.hosts {
            network.unplug(host);
        }
    }
}

/// The counters at one instant.
struct Snapshot {
    holders: (LoadCounts, u64),
    excess: (LoadCounts, u64),
    guest_frames: u64,
    refused: u64,
    half_open_dropped: u64,
    guard: runtime::syn_cookies::SynCookieCounters,
}

impl Snapshot {
    fn of(network: &Network, holders: &Group, excess: Option<&Group>) -> Snapshot {
        let http = network.appliance().http();
        Snapshot {
            holders: holders.counts(network),
            excess: excess.map_or((LoadCounts::default(), 0), |group| group.counts(network)),
            guest_frames: network.guest_frames().frames(),
            refused: http.refused,
            half_open_dropped: http.pool_counters().half_open_dropped,
            guard: network.syn_cookies(),
        }
    }
}

/// What one simulated second saw.
#[derive(Clone, Copy, Debug, Default)]
struct Second {
    /// 200s the slot holders got, and their hosts' frames.
    holders_ok: u64,
    holders_frames: u64,
    /// What the connections beyond the slots got, and their hosts' frames.
    excess_ok: u64,
    excess_503: u64,
    excess_errors: u64,
    excess_frames: u64,
    /// The appliance's frames, both ways.
    guest_frames: u64,
    refused: u64,
    half_open_dropped: u64,
    syn_deferred: u64,
    syn_budgeted: u64,
}

impl Second {
    fn between(before: &Snapshot, after: &Snapshot) -> Second {
        Second {
            holders_ok: after.holders.0.ok - before.holders.0.ok,
            holders_frames: after.holders.1 - before.holders.1,
            excess_ok: after.excess.0.ok - before.excess.0.ok,
            excess_503: after.excess.0.unavailable - before.excess.0.unavailable,
            excess_errors: after.excess.0.errors - before.excess.0.errors,
            excess_frames: after.excess.1 - before.excess.1,
            guest_frames: after.guest_frames - before.guest_frames,
            refused: after.refused - before.refused,
            half_open_dropped: after.half_open_dropped - before.half_open_dropped,
            syn_deferred: after.guard.deferred - before.guard.deferred,
            syn_budgeted: after.guard.budgeted - before.guard.budgeted,
        }
    }
}

/// The seconds as a table, for failure messages.
fn table(seconds: &[Second]) -> String {
    let mut text = String::from(
        "\n  s  held-200 held-frames | beyond-200 beyond-503 beyond-errors beyond-frames | appliance-frames \
         refused half-open-dropped syn-deferred syn-budgeted\n",
    );
    for (index, s) in seconds.iter().enumerate() {
        text += &format!(
            "{index:3} {:9} {:11} | {:10} {:10} {:13} {:13} | {:16} {:7} {:17} {:12} {:12}\n",
            s.holders_ok,
            s.holders_frames,
            s.excess_ok,
            s.excess_503,
            s.excess_errors,
            s.excess_frames,
            s.guest_frames,
            s.refused,
            s.half_open_dropped,
            s.syn_deferred,
            s.syn_budgeted
        );
    }
    text
}

/// Runs `seconds` simulated seconds; returns what each saw and how many
/// heap allocations the appliance made meanwhile.
fn run_seconds(network: &mut Network, holders: &Group, excess: Option<&Group>, seconds: usize) -> (Vec<Second>, u64) {
    let mut allocations = 0;
    let seconds = (0..seconds)
        .map(|_| {
            let before = Snapshot::of(network, holders, excess);
            allocations += allocation_counter::measure(|| network.run(Duration::from_secs(1), STEP)).count_total;
            Second::between(&before, &Snapshot::of(network, holders, excess))
        })
        .collect();
    (seconds, allocations)
}

/// The appliance on a host that pays per packet, every slot held by a
/// keep-alive load connection.
fn every_slot_held() -> (Network, Group) {
    let mut network = Network::new(&settings());
    network.limit_guest_frames(GUEST_FRAMES_PER_STEP);
    network.step(STEP);
    let holders = Group::open(&mut network, 4, SLOTS);
    network.run(Duration::from_secs(2), STEP);
    assert_eq!(network.appliance().http().open_connections(), SLOTS, "every slot held");
    (network, holders)
}

#[test]
fn clients_beyond_the_slots_cannot_starve_the_ones_being_served() {
    let (mut network, holders) = every_slot_held();
    let (baseline, _) = run_seconds(&mut network, &holders, None, 3);
    let alone = baseline.iter().map(|second| second.holders_ok).min().unwrap();
    assert!(alone > 2_000, "the slot holders alone: {}", table(&baseline));

    let excess = Group::open(&mut network, 8, EXCESS);
    let (seconds, allocations) = run_seconds(&mut network, &holders, Some(&excess), 10);
    let report = format!("alone: {}with the clients beyond the slots: {}", table(&baseline), table(&seconds));
    assert_eq!(allocations, 0, "the appliance allocated: {report}");
    for second in &seconds {
        // What the slot holders keep, second by second: at least 90 % of what
        // they got alone (about a third without the budget).
        assert!(second.holders_ok * 10 >= alone * 9, "the slot holders were starved: {report}");
        // What the clients beyond the slots cost: at most an eighth of the
        // appliance's frames (two thirds without the budget).
        assert!(second.excess_frames * 8 <= second.guest_frames, "the excess took too many frames: {report}");
        // Refusals within the budget: its rate, and the bucket once.
        assert!(second.refused <= REFUSALS_PER_SECOND + REFUSAL_BURST, "{report}");
        assert!(second.syn_budgeted <= REFUSALS_PER_SECOND + REFUSAL_BURST, "{report}");
        assert_eq!(second.excess_ok, 0, "every slot stayed with its holder: {report}");
    }
    let total = |field: fn(&Second) -> u64| seconds.iter().map(field).sum::<u64>();
    let elapsed = seconds.len() as u64;
    assert!(total(|s| s.refused) <= REFUSAL_BURST + REFUSALS_PER_SECOND * elapsed, "{report}");
    // The budget is spent on answers: the clients beyond the slots are told
    // 503, about the budget's rate of them, not reset.
    assert!(total(|s| s.excess_503) >= REFUSALS_PER_SECOND * elapsed * 3 / 4, "{report}");
    assert!(total(|s| s.excess_errors) <= REFUSAL_BURST, "{report}");
    // The rest of their SYNs were left for their retries, and the metrics
    // say how many.
    let deferred = network.syn_cookies().deferred;
    assert!(deferred >= total(|s| s.syn_deferred) && total(|s| s.syn_deferred) > 0, "{report}");
    let page = network.metrics_page();
    let line = format!("xenecho_http_syn_deferred_total {deferred}\n");
    assert!(page.contains(&line), "{page}");
    crate::metrics::exposition::check(&page).expect("valid exposition text");
}

#[test]
fn an_ordinary_client_beyond_the_slots_is_told_503() {
    let (mut network, holders) = every_slot_held();
    let fetch = |network: &mut Network| {
        let host = network.add_host();
        let client = network.connect(host, Behaviour::get("/beyond"));
        let started = network.now();
        network.run_until(Duration::from_secs(1), STEP, |network| network.outcome(client).status.is_some());
        let outcome = network.outcome(client).clone();
        (outcome.status, outcome.answered_at.map(|at| at - started))
    };
    // Every slot busy and nobody else knocking: a 503 at once.
    let (status, waited) = fetch(&mut network);
    assert_eq!(status, Some(503));
    assert!(waited.unwrap() < Duration::from_millis(200), "{waited:?}");
    // Clients beyond the slots hammer for 5 s, spending the budget, then
    // leave; a second later the budget is whole again and a newcomer is
    // told 503 at once.
    let excess = Group::open(&mut network, 8, EXCESS);
    network.run(Duration::from_secs(5), STEP);
    let deferred = network.syn_cookies().deferred;
    assert!(deferred > 0, "the budget was spent");
    excess.unplug(&mut network);
    network.run(Duration::from_secs(1), STEP);
    let (status, waited) = fetch(&mut network);
    assert_eq!(status, Some(503));
    assert!(waited.unwrap() < Duration::from_millis(200), "{waited:?}");
    assert_eq!(network.syn_cookies().deferred, deferred, "its SYN was not held back");
    // The slot holders were served throughout.
    let before = holders.counts(&network).0.ok;
    network.run(Duration::from_secs(1), STEP);
    assert!(holders.counts(&network).0.ok > before + 2_000);
}

#[test]
fn nothing_grows_while_clients_beyond_the_slots_hammer_and_all_is_free_after() {
    let (mut network, holders) = every_slot_held();
    let excess = Group::open(&mut network, 8, EXCESS);
    // The first second's burst (the bucket's 32 at once) may meet the
    // listening reserve; after it, nothing more.
    network.run(Duration::from_secs(1), STEP);
    let dropped = network.appliance().http().pool_counters().half_open_dropped;
    let mut most_busy = 0;
    let info = allocation_counter::measure(|| {
        for _ in 0..30 {
            network.run(Duration::from_secs(1), STEP);
            let http = network.appliance().http();
            assert!(http.half_open() <= BACKLOG);
            most_busy = most_busy.max(http.sockets() - http.listening() - http.half_open());
        }
    });
    assert_eq!(info.count_total, 0, "the appliance allocated: {info:?}");
    let http = network.appliance().http();
    // The refusals come and go: the sockets they take stay well within the
    // spare ones, the listening reserve is never eaten into, and no
    // handshake is dropped for it.
    assert!(most_busy <= SLOTS + BACKLOG / 2, "{most_busy} sockets busy");
    assert_eq!(http.pool_counters().half_open_dropped, dropped, "handshakes dropped");
    assert!(network.syn_cookies().proxied <= runtime::syn_cookies::PROXIED_CONNECTIONS as u64);
    assert_eq!(network.guest_frames().dropped, 0, "nothing was lost at the appliance's port");
    // Everyone leaves: the holders vanish (no FIN), the rest with them.
    holders.unplug(&mut network);
    excess.unplug(&mut network);
    let idle = network.run_until(Duration::from_secs(41), Duration::from_millis(100), Network::http_is_idle);
    assert!(idle, "{} slots held after everyone left", network.appliance().http().open_connections());
}
