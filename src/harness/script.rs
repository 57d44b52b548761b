//! An attacker script read from arbitrary bytes, played against the real
//! appliance on the simulated network: the shared core of the
//! `hostile_clients` cargo-fuzz target (`fuzz/fuzz_targets/hostile_clients.rs`)
//! and of its stable smoke test.
//!
//! [`decode`] turns any bytes into a [`Script`]; [`play`] runs it and then
//! checks that the appliance recovers. The format (a byte read past the end
//! of the input is 0):
//!
//! - byte 0 picks the [`Settings`] ([`settings_for`]): 1, 2, 4 or 8 slots,
//!   a backlog of 2 to 40, a per-client limit or none, `max-body=` 1 KiB or
//!   none, `min-rate=` on or off; the timers are the documented defaults;
//! - then up to [`MAX_ACTIONS`] actions, each an opcode byte whose low
//!   three bits pick the action and whose high five bits are its first
//!   argument, sometimes followed by argument bytes:
//!
//! | low bits | action | high bits | bytes that follow |
//! |---|---|---|---|
//! | 0 | add a host | | |
//! | 1, 2, 3 | connect to HTTP (80), metrics (19100), echo (7) | host | a behaviour ([`Behaviour`]) |
//! | 4 | unplug a host (it vanishes) | host | |
//! | 5 | start a SYN flood (replacing a running one) | rate and port | how many SYNs |
//! | 6 | stop the flood | | |
//! | 7 | run `1 + high` steps | | the step length |
//!
//! A behaviour is one byte, its low three bits the [`Behaviour`] variant
//! (two of the eight values are [`Behaviour::Fetch`]) and its high bits the
//! variant's parameter; a fetch is followed by a byte choosing one of 16
//! request shapes, well-formed and not (`request_shape`), one of which
//! takes its bytes from the script itself.
//!
//! Bounds, so that one input stays fast: at most [`MAX_HOSTS`] hosts,
//! [`MAX_CONNECTIONS`] connections, [`MAX_FLOOD_SYNS`] SYNs in all,
//! [`MAX_SCRIPT_STEPS`] steps and [`MAX_SCRIPT_TIME`] of simulated time;
//! actions past a bound do nothing.
//!
//! Contract: [`play`] panics (that is its purpose) exactly when the
//! appliance breaks an invariant. During the script, after every step: no
//! more connections hold a slot than there are slots, no more handshakes
//! are half-open than the backlog, no more sockets listen than the pool
//! has. After it, every attacker is unplugged and the flood stopped, and
//! within [`SETTLE`] of simulated time (the longest documented bound is an
//! idle keep-alive connection, 30 s, then 10 s for its close;
//! docs/availability.md) every HTTP slot is free and every socket of every
//! service listens again; then a fresh client on a new host gets a 200 from
//! HTTP and from metrics, and its bytes back from echo, each within 2 s.
//! A panic in the appliance itself fails the same way. It is compiled only
//! for tests and with the `fuzzing` feature, never into the appliance.
//!
//! Never: reach into the appliance other than through the network (as its
//! clients do) and its read-only counters, or let an input run past the
//! bounds above.

use super::{Behaviour, ConnectionId, HTTP_PORT, HostId, Network, SERVER_ADDRESS, SynFlood};
use crate::http::Limits;
use crate::pool::TcpBounds;
use crate::server::HttpPlan;
use crate::{DEFAULT_METRICS_PORT, ECHO_PORT, Settings};
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::time::Duration;

/// Most actions read from one input.
pub const MAX_ACTIONS: usize = 64;
/// Most attacking hosts.
pub const MAX_HOSTS: usize = 8;
/// Most attacking connections, over every host and port.
pub const MAX_CONNECTIONS: usize = 32;
/// Most SYNs the floods of one script send, together.
pub const MAX_FLOOD_SYNS: u64 = 256;
/// Most steps the script's own runs take.
pub const MAX_SCRIPT_STEPS: u32 = 400;
/// Most simulated time the script's own runs take.
pub const MAX_SCRIPT_TIME: Duration = Duration::from_secs(30);
/// How long after the attackers leave every socket must listen again: the
/// longest documented bound (idle 30 s, then close 10 s) with room for the
/// step granularity.
pub const SETTLE: Duration = Duration::from_secs(45);
/// The step length while settling (nothing but the appliance's own timers
/// is at work then).
const SETTLE_STEP: Duration = Duration::from_millis(250);
/// The step length and limit of the fresh clients' checks.
const FRESH_STEP: Duration = Duration::from_millis(10);
const FRESH_LIMIT: Duration = Duration::from_secs(2);
/// Step lengths a run action picks from, in milliseconds.
const STEP_MILLIS: [u64; 8] = [1, 10, 10, 20, 50, 100, 250, 1000];
/// SYN rates a flood picks from, a second.
const FLOOD_RATES: [u64; 4] = [100, 500, 2_000, 10_000];
/// Longest request a fetch may take from the script.
const RAW_REQUEST_MAX: usize = 64;

/// One of the appliance's TCP services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// HTTP, port 80.
    Http,
    /// Metrics, port 19100.
    Metrics,
    /// TCP echo, port 7.
    Echo,
}

impl Service {
    fn port(self) -> u16 {
        match self {
            Service::Http => HTTP_PORT,
            Service::Metrics => DEFAULT_METRICS_PORT,
            Service::Echo => ECHO_PORT,
        }
    }
}

/// One action of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Plugs in another attacking host.
    AddHost,
    /// Opens a connection from host number `host` (modulo the hosts there
    /// are; one is added if there is none) to `service`.
    Connect {
        /// Which host, modulo the hosts there are.
        host: u8,
        /// Which port.
        service: Service,
        /// How the connection behaves.
        behaviour: Behaviour,
    },
    /// Takes host number `host` off the network for good.
    Unplug {
        /// Which host, modulo the hosts there are.
        host: u8,
    },
    /// Starts a half-open SYN flood against `service`.
    StartFlood {
        /// Which port.
        service: Service,
        /// SYNs a second.
        rate: u64,
        /// SYNs in all (within what [`MAX_FLOOD_SYNS`] leaves).
        total: u64,
    },
    /// Stops the flood.
    StopFlood,
    /// Runs `steps` steps of `step` each.
    Run {
        /// How many steps.
        steps: u32,
        /// How long each is.
        step: Duration,
    },
}

/// A decoded input: the appliance's settings and the actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// How the appliance is configured.
    pub settings: Settings,
    /// What the attackers do, in order.
    pub actions: Vec<Action>,
}

/// What a played script did, for the smoke test's coverage checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Attacking connections opened.
    pub connections: usize,
    /// First response status codes the attacking connections saw, counted.
    pub statuses: BTreeMap<u16, usize>,
    /// Attacking connections the appliance ended (reset or closed) while
    /// the attacker was still there.
    pub ended: usize,
    /// SYNs the floods sent.
    pub flood_syns: u64,
    /// Simulated time the script's runs took.
    pub script_time: Duration,
    /// How long after the attackers left the appliance was idle again.
    pub settled_after: Duration,
    /// HTTP connections ended by one of the engine's timers.
    pub timeouts: u64,
    /// Connections refused with 503.
    pub refused: u64,
    /// Connections reset for the per-client limit.
    pub refused_per_client: u64,
    /// Half-open handshakes dropped for the backlog.
    pub half_open_dropped: u64,
    /// Closes aborted at the close bound.
    pub close_timeouts: u64,
}

/// Reads bytes front to back; past the end every byte is 0.
struct Reader<'a> {
    data: &'a [u8],
    position: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let byte = self.data.get(self.position).copied().unwrap_or(0);
        self.position += 1;
        byte
    }

    fn bytes(&mut self, count: usize) -> Vec<u8> {
        (0..count).map(|_| self.byte()).collect()
    }

    fn at_end(&self) -> bool {
        self.position >= self.data.len()
    }
}

/// The settings a script's first byte picks: small ones, so that every
/// limit is easy to reach, with the documented timers.
pub fn settings_for(selector: u8) -> Settings {
    let connections = [4, 2, 8, 1][usize::from(selector & 3)];
    let backlog = [4, 8, 2, 40][usize::from((selector >> 2) & 3)];
    let per_client = [None, Some(4), Some(2), Some(1)][usize::from((selector >> 4) & 3)];
    let defaults = Limits::default();
    let limits = Limits {
        max_body_bytes: (selector & 0x40 != 0).then_some(1024),
        min_rate_bytes_per_second: if selector & 0x80 != 0 { 0 } else { defaults.min_rate_bytes_per_second },
        ..defaults
    };
    Settings {
        http: HttpPlan {
            port: HTTP_PORT,
            connections,
            backlog,
            per_client,
            limits,
            bounds: TcpBounds::default(),
            socket_bytes: crate::server::DEFAULT_SOCKET_BYTES,
        },
        metrics_port: Some(DEFAULT_METRICS_PORT),
        metrics_address: None,
        metrics_vif: None,
    }
}

/// Request shape `shape % 16` for a fetching client; shape 15 takes up to
/// [`RAW_REQUEST_MAX`] bytes from the script (a length byte, then the
/// bytes).
fn request_shape(shape: u8, reader: &mut Reader<'_>) -> Vec<u8> {
    let fixed: &[u8] = match shape % 16 {
        0 => b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        1 => b"GET /keep HTTP/1.1\r\nHost: x\r\n\r\n",
        2 => b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        3 => b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        4 => b"HEAD / HTTP/1.0\r\n\r\n",
        5 => b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        6 => b"PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        7 => b"\x00\xffGARBAGE\r\n\r\n",
        8 => b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        9 => b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",
        10 => b"GET /t HTTP/1.1\r\nHost: x\r\nX-Half: ",
        11 => b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-this",
        12 => b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        13 => {
            // A head past the 8 KiB limit (431).
            let mut head = b"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
            head.resize(head.len() + 9000, b'a');
            head.extend_from_slice(b"\r\n\r\n");
            return head;
        }
        14 => {
            // A body past a 1 KiB `max-body=` (413), echoed otherwise.
            let mut request = b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n".to_vec();
            request.resize(request.len() + 4096, b'b');
            return request;
        }
        _ => {
            let length = usize::from(reader.byte()) % (RAW_REQUEST_MAX + 1);
            return reader.bytes(length);
        }
    };
    fixed.to_vec()
}

/// The behaviour a selector byte (and, for a fetch, the byte after it)
/// picks.
fn behaviour(reader: &mut Reader<'_>) -> Behaviour {
    let selector = reader.byte();
    let parameter = usize::from(selector >> 3);
    match selector & 7 {
        1 => Behaviour::Silent,
        2 => Behaviour::SlowBody { every: Duration::from_millis([100, 500, 1000, 2000, 5000][parameter % 5]) },
        3 => Behaviour::SlowReader { bytes_per_second: [1, 100, 1000, 10_000][parameter % 4] },
        4 => Behaviour::ZeroWindow,
        5 => Behaviour::KeepAlive,
        6 => Behaviour::AbandonedClose,
        _ => {
            let shape = reader.byte();
            Behaviour::Fetch(request_shape(shape, reader))
        }
    }
}

/// Reads `data` as a script (see the module documentation). Every input is
/// a script.
pub fn decode(data: &[u8]) -> Script {
    let mut reader = Reader { data, position: 0 };
    let settings = settings_for(reader.byte());
    let mut actions = Vec::new();
    while !reader.at_end() && actions.len() < MAX_ACTIONS {
        let opcode = reader.byte();
        let high = opcode >> 3;
        let action = match opcode & 7 {
            0 => Action::AddHost,
            code @ 1..=3 => {
                let service = [Service::Http, Service::Metrics, Service::Echo][usize::from(code - 1)];
                Action::Connect { host: high, service, behaviour: behaviour(&mut reader) }
            }
            4 => Action::Unplug { host: high },
            5 => {
                let service =
                    [Service::Http, Service::Http, Service::Metrics, Service::Echo][usize::from((high >> 2) & 3)];
                let rate = FLOOD_RATES[usize::from(high & 3)];
                Action::StartFlood { service, rate, total: 1 + u64::from(reader.byte()) }
            }
            6 => Action::StopFlood,
            _ => {
                let step = Duration::from_millis(STEP_MILLIS[usize::from(reader.byte() & 7)]);
                Action::Run { steps: 1 + u32::from(high), step }
            }
        };
        actions.push(action);
    }
    Script { settings, actions }
}

/// The bytes of a script that does every kind of action once, for tests
/// and as a fuzzing seed.
pub fn example() -> Vec<u8> {
    vec![
        0x14, // 4 slots, a backlog of 8, per-client 4
        0x00, 0x00, // add two hosts
        0x01, 0x00, 0x00, // host 0 fetches with a GET
        0x09, 0x01, // host 1 connects and stays silent
        0x02, 0x00, 0x0c, // metrics: GET /metrics
        0x03, 0x00, 0x0f, 0x04, b'e', b'c', b'h', b'o', // echo: four bytes from the script
        0x0d, 0x20, // a flood of 33 SYNs at 500 a second on HTTP
        0x3f, 0x03, // run 8 steps of 20 ms
        0x06, // stop the flood
        0x0c, // unplug host 1
        0x7f, 0x07, // run 16 steps of 1 s
    ]
}

/// Decodes `data` and plays it: the fuzz target's entry point.
pub fn run(data: &[u8]) -> Report {
    play(&decode(data))
}

/// The script being played: the network, the attackers, what is left of
/// the bounds.
struct Player {
    network: Network,
    hosts: Vec<HostId>,
    connections: Vec<ConnectionId>,
    flood_syns_left: u64,
    flood_seed: u64,
    steps_left: u32,
    time_left: Duration,
    backlog: usize,
    report: Report,
}

/// Plays `script`, then checks that the appliance recovers (see the module
/// documentation); panics if it does not.
pub fn play(script: &Script) -> Report {
    let mut player = Player {
        network: Network::new(&script.settings),
        hosts: Vec::new(),
        connections: Vec::new(),
        flood_syns_left: MAX_FLOOD_SYNS,
        flood_seed: 0x5eed,
        steps_left: MAX_SCRIPT_STEPS,
        time_left: MAX_SCRIPT_TIME,
        backlog: script.settings.http.backlog,
        report: Report::default(),
    };
    player.step(Duration::from_millis(10));
    for action in &script.actions {
        player.act(action);
    }
    player.settle();
    player.assert_fresh_clients_served();
    player.finish()
}

impl Player {
    fn host(&mut self, number: u8) -> HostId {
        if self.hosts.is_empty() {
            self.hosts.push(self.network.add_host());
        }
        self.hosts[usize::from(number) % self.hosts.len()]
    }

    fn act(&mut self, action: &Action) {
        match action {
            Action::AddHost if self.hosts.len() < MAX_HOSTS => self.hosts.push(self.network.add_host()),
            Action::AddHost => {}
            Action::Connect { host, service, behaviour } if self.connections.len() < MAX_CONNECTIONS => {
                let host = self.host(*host);
                let connection = self.network.connect_to(host, service.port(), behaviour.clone());
                self.connections.push(connection);
            }
            Action::Connect { .. } => {}
            Action::Unplug { host } => {
                let host = self.host(*host);
                self.network.unplug(host);
            }
            Action::StartFlood { service, rate, total } => {
                let total = (*total).min(self.flood_syns_left);
                if total == 0 {
                    return;
                }
                self.stop_flood();
                self.flood_syns_left -= total;
                self.flood_seed = self.flood_seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let mut flood = SynFlood::new(*rate, total, self.flood_seed);
                flood.target = (SERVER_ADDRESS, service.port());
                self.network.start_flood(flood);
            }
            Action::StopFlood => self.stop_flood(),
            Action::Run { steps, step } => {
                for _ in 0..*steps {
                    if self.steps_left == 0 || self.time_left < *step {
                        return;
                    }
                    self.steps_left -= 1;
                    self.time_left -= *step;
                    self.report.script_time += *step;
                    self.step(*step);
                }
            }
        }
    }

    fn stop_flood(&mut self) {
        self.report.flood_syns += self.network.flood_sent();
        self.network.stop_flood();
    }

    /// One step, then the invariants that hold at every instant.
    fn step(&mut self, duration: Duration) {
        self.network.step(duration);
        let http = self.network.appliance().http();
        let (held, slots) = (http.open_connections(), http.capacity());
        assert!(held <= slots, "{held} slots held of {slots}");
        let (half_open, backlog) = (http.half_open(), self.backlog);
        assert!(half_open <= backlog, "{half_open} handshakes half-open, backlog {backlog}");
        assert!(http.listening() <= http.sockets(), "{} listening of {} sockets", http.listening(), http.sockets());
    }

    /// Unplugs every attacker, stops the flood, and waits for the appliance
    /// to be idle again.
    fn settle(&mut self) {
        for connection in &self.connections {
            if self.network.outcome(*connection).ended_at.is_some() {
                self.report.ended += 1;
            }
        }
        self.stop_flood();
        for &host in &self.hosts {
            self.network.unplug(host);
        }
        let start = self.network.now();
        let idle = self
            .network
            .run_until(SETTLE, SETTLE_STEP, |network| network.http_is_idle() && network.all_sockets_listen());
        let http = self.network.appliance().http();
        assert!(
            idle,
            "{SETTLE} after the attackers left: {} slots held, {} of {} HTTP sockets listening, {} half-open; \
             sockets not listening (port, state): {:?}",
            http.open_connections(),
            http.listening(),
            http.sockets(),
            http.half_open(),
            self.network.busy_sockets(),
        );
        self.report.settled_after = self.network.now() - start;
    }

    /// A fresh client on a new host is served by every service.
    fn assert_fresh_clients_served(&mut self) {
        let host = self.network.add_host();
        let http = self.network.connect(host, Behaviour::get("/fresh"));
        let metrics = self.network.connect_to(host, DEFAULT_METRICS_PORT, Behaviour::get("/metrics"));
        let echo = self.network.connect_to(host, ECHO_PORT, Behaviour::Fetch(b"ping\r\n".to_vec()));
        let served = self.network.run_until(FRESH_LIMIT, FRESH_STEP, |network| {
            network.outcome(http).status.is_some()
                && network.outcome(metrics).status.is_some()
                && network.outcome(echo).received >= 6
        });
        let outcomes = [http, metrics, echo].map(|connection| self.network.outcome(connection).clone());
        assert!(served, "a fresh client was not served within {FRESH_LIMIT} after the attack: {outcomes:?}");
        assert_eq!(outcomes[0].status, Some(200), "fresh HTTP client: {:?}", outcomes[0]);
        assert_eq!(outcomes[1].status, Some(200), "fresh metrics client: {:?}", outcomes[1]);
    }

    fn finish(mut self) -> Report {
        for connection in &self.connections {
            if let Some(status) = self.network.outcome(*connection).status {
                *self.report.statuses.entry(status).or_default() += 1;
            }
        }
        self.report.connections = self.connections.len();
        let http = self.network.appliance().http();
        let pool = http.pool_counters();
        self.report.timeouts = http.counters().timeouts;
        self.report.refused = http.refused;
        self.report.refused_per_client = http.refused_per_client;
        self.report.half_open_dropped = pool.half_open_dropped;
        self.report.close_timeouts = pool.close_timeouts;
        self.report
    }
}

#[cfg(test)]
mod tests;
