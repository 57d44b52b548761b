//! The production event loop ([`runtime::run`]) on a bridge where no DHCP
//! server answers: it says so 30 s after asking, then 60, 120 and 240 s
//! after, and stops once a server appears and a lease comes. With a server
//! from the start it says nothing. Time is the simulation's: the hints'
//! times are exact.
#![forbid(unsafe_code)]

use dma::sim::SimPageSource;
use netfront::NetfrontConfig;
use runtime::testing::{Dom0, NoService, SimPlatform, TICK_NS, World};
use runtime::{NetConfig, RuntimeConfig, ShutdownRequest};
use std::cell::RefCell;
use xen_pv::event_channel::EventChannels;
use xen_sim::SimXen;
use xen_sim::netback::NetbackOptions;

const SECOND: u64 = 1_000_000_000;
const ASKING: &str = "network: asking for an address by DHCP";
const HINT_START: &str = "network: no DHCP lease after ";

thread_local! {
    /// What the loop logged on this thread (each test runs on its own).
    static LOGGED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Keeps every line logged at info and above, per thread.
struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            LOGGED.with(|logged| logged.borrow_mut().push(record.args().to_string()));
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// Dom0, whose DHCP server starts answering at `server_at`; the run ends
/// at `end_at`. Every line the guest logs is stamped with the simulated
/// time the world first saw it (the guest logs between two steps, and
/// time moves only in steps).
struct Bridge<'x> {
    dom0: Dom0<'x>,
    server_at: u64,
    end_at: u64,
    ended: bool,
    leased_at: Option<u64>,
    lines: Vec<(u64, String)>,
}

impl World for Bridge<'_> {
    fn step(&mut self, xen: &SimXen) {
        let now = xen.now();
        self.dom0.answers_dhcp = now >= self.server_at;
        self.dom0.step(xen);
        LOGGED.with(|logged| self.lines.extend(logged.borrow_mut().drain(..).map(|line| (now, line))));
        if self.leased_at.is_none() && self.dom0.leases > 0 {
            self.leased_at = Some(now);
        }
        if now >= self.end_at && !self.ended {
            self.ended = true;
            self.dom0.request_shutdown(xen);
        }
    }
}

/// Runs the loop (DHCP) with a server from `server_at` until `end_at`.
fn run(server_at: u64, end_at: u64) -> Bridge<'static> {
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Info);
    let xen: &'static SimXen = Box::leak(Box::new(SimXen::new(4)));
    let events = Box::leak(Box::new(EventChannels::new(xen, xen.shared_info())));
    let pages = Box::leak(Box::new(SimPageSource::new(xen.grants())));
    let world = Bridge {
        dom0: Dom0::new(xen, NetbackOptions::default()),
        server_at,
        end_at,
        ended: false,
        leased_at: None,
        lines: Vec::new(),
    };
    let platform = SimPlatform::new(xen, events, pages, world);
    let config = RuntimeConfig {
        netfront: NetfrontConfig { rx_buffers: 32, tx_buffers: 32, large_segments: true, tx_large_segments: true },
        ..RuntimeConfig::new(NetConfig::Dhcp)
    };
    assert_eq!(runtime::run(&platform, &config, &mut NoService), ShutdownRequest::Poweroff);
    let mut world = platform.into_world();
    LOGGED.with(|logged| world.lines.extend(logged.borrow_mut().drain(..).map(|line| (xen.now(), line))));
    world
}

/// When the guest asked for a lease, and its hints (time, text).
fn asked_and_hints(world: &Bridge<'_>) -> (u64, Vec<(u64, String)>) {
    let asked = world.lines.iter().find(|(_, line)| line == ASKING).expect("asked for a lease").0;
    let hints = world.lines.iter().filter(|(_, line)| line.starts_with(HINT_START)).cloned().collect();
    (asked, hints)
}

#[test]
fn with_no_server_the_loop_hints_as_the_wait_doubles_and_stops_once_leased() {
    let world = run(250 * SECOND, 520 * SECOND);
    let (asked, hints) = asked_and_hints(&world);
    let leased = world.leased_at.expect("a lease once the server answers");
    assert!((250 * SECOND..254 * SECOND).contains(&leased), "leased at {} ms", leased / 1_000_000);
    let seconds: Vec<u64> = hints.iter().map(|&(at, _)| at - asked).collect();
    for (&waited, expected) in seconds.iter().zip([30, 60, 120, 240]) {
        assert!(
            (expected * SECOND..=expected * SECOND + TICK_NS).contains(&waited),
            "a hint {} ms after asking, expected at {expected} s",
            waited / 1_000_000
        );
    }
    let texts: Vec<&str> = hints.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(
        texts,
        [30, 60, 120, 240].map(|waited| format!(
            "network: no DHCP lease after {waited} s: is there a DHCP server on the bridge? or set ip=ADDR/LEN gw=ADDR"
        )),
        "four hints, none after the lease (the next was due 480 s after asking)"
    );
    assert!(asked + 480 * SECOND < 520 * SECOND, "the run went past the next hint's time");
}

#[test]
fn a_lease_in_time_brings_no_hint() {
    let world = run(0, 100 * SECOND);
    let (asked, hints) = asked_and_hints(&world);
    assert!(world.leased_at.expect("leased") < asked + 5 * SECOND);
    assert_eq!(hints, Vec::<(u64, String)>::new());
}

/// A DISCOVER nobody answered (sent as the link came up, before the
/// server was there) costs one retry of `DHCP_DISCOVER_RETRY` (3 s), not
/// smoltcp's default 10 s.
#[test]
fn a_lost_first_discover_costs_seconds_not_ten() {
    let world = run(SECOND, 20 * SECOND);
    let (asked, hints) = asked_and_hints(&world);
    assert!(asked < SECOND, "asked at {} ms, before the server answers", asked / 1_000_000);
    let leased = world.leased_at.expect("a lease");
    assert!(leased > SECOND, "the first DISCOVER went unanswered");
    assert!(leased - asked <= 3 * SECOND + 2 * TICK_NS, "leased {} ms after asking", (leased - asked) / 1_000_000);
    assert!(hints.is_empty(), "no hint: leased well within 30 s");
}
