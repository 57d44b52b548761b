//! xenecho, the appliance: what runs once the kernel is up.
//!
//! `run` is the entry point the kernel calls: it reports what it was
//! given (version, Xen version, memory map, command line), checks the heap,
//! runs a self-test when the command line asks for one, reads the settings,
//! and runs the [`Appliance`] (HTTP echo on [`server`], TCP echo on
//! [`echo`], Prometheus metrics on [`metrics`]) on the network runtime over
//! the kernel's PV services (`platform`, on Xen) until the toolstack asks the
//! domain to end. The host harness (`harness`, tests and fuzzing only)
//! runs the same appliance on a simulated network.
//!
//! This crate holds no `unsafe` code.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod echo;
#[cfg(any(test, feature = "fuzzing"))]
pub mod harness;
pub mod metrics;
#[cfg(target_os = "none")]
pub mod platform;
pub mod pool;
pub mod server;

pub mod http;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use kernel::BootInfo;
use kernel::selftest::Selftest;

/// The version and source revision printed in the banner.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("XENECHO_REVISION"), ")");

/// The TCP echo port (RFC 862).
pub const ECHO_PORT: u16 = 7;
/// The HTTP port unless `port=` says otherwise.
pub const DEFAULT_HTTP_PORT: u16 = 80;
/// The metrics port unless `metrics-port=` says otherwise.
pub const DEFAULT_METRICS_PORT: u16 = 9100;
/// Most HTTP connections, whatever the memory.
pub const MAX_CONNECTIONS: usize = 1024;

/// What the appliance serves on the network.
pub struct Appliance {
    echo: echo::EchoService,
    http: server::HttpService,
    metrics: server::MetricsService,
}

/// The appliance's settings, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The HTTP service: port, slots, backlog, limits, socket bounds.
    pub http: server::HttpPlan,
    /// The metrics port.
    pub metrics_port: u16,
}

/// Heap bytes kept for everything but the HTTP service: the echo and metrics
/// services, smoltcp, netfront's tables, the control plane and transient
/// buffers (with an eighth of the heap on top).
pub const HEAP_RESERVED_BYTES: usize = 512 * 1024;

/// How much of a `heap`-byte heap the HTTP service may take: everything it
/// needs is allocated at start, so this is what connections are sized by.
pub fn http_heap_budget(heap: usize) -> usize {
    heap.saturating_sub(HEAP_RESERVED_BYTES + heap / 8)
}

/// A number from the command line, or `None` (with a warning) when the word
/// is there but its value is not a number.
fn number<T: core::str::FromStr>(line: &kernel::CommandLine<'_>, key: &str) -> Option<T> {
    let value = line.get(key)?;
    let parsed = value.parse().ok();
    if parsed.is_none() {
        log::warn!("{key}={value} is not a number: ignored");
    }
    parsed
}

impl Settings {
    /// Reads `port=`, `metrics-port=`, `connections=`, `backlog=`,
    /// `per-client=`, `max-body=` and `min-rate=`. The slots default to what
    /// [`http_heap_budget`] of a `heap_free`-byte heap holds, and are clamped
    /// to it (with a warning) when `connections=` asks for more; so is a
    /// `backlog=` that does not fit beside them.
    pub fn from_command_line(line: &kernel::CommandLine<'_>, heap_free: usize) -> Self {
        let defaults = http::Limits::default();
        let limits = http::Limits {
            max_body_bytes: number(line, "max-body"),
            min_rate_bytes_per_second: number(line, "min-rate").unwrap_or(defaults.min_rate_bytes_per_second),
            ..defaults
        };
        let budget = http_heap_budget(heap_free);
        let fits = |connections, backlog| server::HttpPlan::heap_bytes(connections, backlog, &limits) <= budget;
        // Slots come first: they are sized with the backlog they would
        // default to (or the one asked for, if smaller); the backlog then
        // gets what is left.
        let asked_backlog: Option<usize> = number(line, "backlog");
        let backlog_for = |connections| {
            let default = server::HttpPlan::default_backlog(connections);
            asked_backlog.map_or(default, |asked| asked.min(default))
        };
        let affordable = (1..=MAX_CONNECTIONS).take_while(|&count| fits(count, backlog_for(count))).last().unwrap_or(1);
        let connections = match number::<usize>(line, "connections") {
            Some(asked) if asked > affordable => {
                log::warn!(
                    "connections={asked} does not fit in the heap left for HTTP ({} KiB): using {affordable}",
                    budget / 1024
                );
                affordable
            }
            Some(asked) => asked.clamp(1, MAX_CONNECTIONS),
            None => affordable,
        };
        let mut backlog = asked_backlog.unwrap_or_else(|| server::HttpPlan::default_backlog(connections)).max(1);
        if !fits(connections, backlog) {
            let fitting = (1..backlog).rev().find(|&smaller| fits(connections, smaller)).unwrap_or(1);
            log::warn!(
                "backlog={backlog} does not fit in the heap left for HTTP ({} KiB): using {fitting}",
                budget / 1024
            );
            backlog = fitting;
        }
        Self {
            http: server::HttpPlan {
                port: number(line, "port").unwrap_or(DEFAULT_HTTP_PORT),
                connections,
                backlog,
                per_client: number(line, "per-client").filter(|&limit: &usize| limit > 0),
                limits,
                bounds: pool::TcpBounds::default(),
            },
            metrics_port: number(line, "metrics-port").unwrap_or(DEFAULT_METRICS_PORT),
        }
    }

    /// The settings as `key=value` words, for the log.
    pub fn describe(&self) -> String {
        let plan = &self.http;
        let limits = &plan.limits;
        let per_client = plan.per_client.map_or(String::from("off"), |limit| alloc::format!("{limit}"));
        let max_body = limits.max_body_bytes.map_or(String::from("unlimited"), |bytes| alloc::format!("{bytes}"));
        alloc::format!(
            "port={} metrics-port={} connections={} backlog={} per-client={per_client} max-body={max_body} min-rate={}",
            plan.port,
            self.metrics_port,
            plan.connections,
            plan.backlog,
            limits.min_rate_bytes_per_second
        )
    }
}

impl Appliance {
    /// The appliance as `settings` say (nothing allocated before `start`).
    pub fn new(settings: &Settings) -> Self {
        let bounds = settings.http.bounds;
        Appliance {
            echo: echo::EchoService::new(ECHO_PORT, 4, bounds),
            http: server::HttpService::new(settings.http),
            metrics: server::MetricsService::new(settings.metrics_port, bounds),
        }
    }

    /// The HTTP service, for its counters.
    pub fn http(&self) -> &server::HttpService {
        &self.http
    }
}

impl runtime::Service for Appliance {
    fn identify(&mut self, instance: &runtime::Instance) {
        self.http.set_instance(http::Instance::new(instance.name.as_deref(), instance.domid));
    }

    fn start(&mut self, sockets: &mut smoltcp::iface::SocketSet<'static>) {
        self.echo.start(sockets);
        self.http.start(sockets);
        self.metrics.start(sockets);
        log::info!(
            "serving TCP echo on port {ECHO_PORT}, HTTP with {} connection slots and {} sockets",
            self.http.capacity(),
            self.http.sockets()
        );
    }

    fn poll(
        &mut self,
        sockets: &mut smoltcp::iface::SocketSet<'static>,
        now: smoltcp::time::Instant,
        stats: &dyn Fn() -> runtime::Stats,
    ) -> Option<smoltcp::time::Instant> {
        let echo = self.echo.poll(sockets, now);
        let http_deadline = self.http.poll(sockets, now);
        let http = &self.http;
        let metrics = self.metrics.poll(sockets, now, &mut |text| render_metrics(text, &stats(), http));
        [echo, http_deadline, metrics].into_iter().flatten().min()
    }

    fn syn_pressure(&self) -> bool {
        self.http.syn_pressure()
    }
}

/// A status code as a label value (the engine's codes are a fixed set).
fn code_label(code: u16) -> &'static str {
    match code {
        100 => "100",
        200 => "200",
        400 => "400",
        408 => "408",
        413 => "413",
        431 => "431",
        501 => "501",
        503 => "503",
        505 => "505",
        _ => "other",
    }
}

/// The whole metrics page, written into `text`.
fn render_metrics(text: &mut String, stats: &runtime::Stats, http: &server::HttpService) {
    use metrics::{Kind, Metric};
    let counters = http.counters();
    let pool = http.pool_counters();
    let kernel = metrics::kernel_metrics(stats);
    let counter = |name, help, value| Metric { name, help, kind: Kind::Counter, label: None, value };
    let gauge = |name, help, value: usize| Metric { kind: Kind::Gauge, ..counter(name, help, value as u64) };
    let http_list = [
        counter("xenecho_http_requests_total", "HTTP requests.", counters.requests),
        counter("xenecho_http_received_bytes_total", "HTTP bytes received.", counters.bytes_received),
        counter("xenecho_http_sent_bytes_total", "HTTP bytes sent.", counters.bytes_sent),
        counter("xenecho_http_timeouts_total", "Connections ended by a timer.", counters.timeouts),
        counter("xenecho_http_connections_total", "Connections accepted.", http.accepted),
        counter("xenecho_http_refused_total", "Connections refused with 503.", http.refused),
        counter(
            "xenecho_http_per_client_refused_total",
            "Connections reset because their address held per-client= of them.",
            http.refused_per_client,
        ),
        gauge("xenecho_http_open_connections", "Connections open now.", http.open_connections()),
        gauge("xenecho_http_connection_slots", "Connection slots.", http.capacity()),
        gauge("xenecho_http_half_open_connections", "Handshakes unfinished now.", http.half_open()),
        counter(
            "xenecho_http_half_open_dropped_total",
            "Half-open handshakes dropped, oldest first.",
            pool.half_open_dropped,
        ),
        counter(
            "xenecho_http_close_timeouts_total",
            "Closes aborted because the peer did not finish.",
            pool.close_timeouts,
        ),
    ];
    let statuses = http::Status::ALL.map(|status| Metric {
        label: Some(("code", code_label(status.code()))),
        ..counter("xenecho_http_responses_total", "HTTP responses by status.", counters.responses(status))
    });
    let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    let requested = [1, 2, 3, 4, 5].map(|class: u16| Metric {
        label: Some(("class", classes[usize::from(class - 1)])),
        ..counter(
            "xenecho_http_requested_status_responses_total",
            "HTTP responses whose status the request chose (status=), by class.",
            counters.requested_in_class(class),
        )
    });
    // The responses families come right after the request counter.
    let (requests, rest) = http_list.split_at(1);
    metrics::render(text, kernel.iter().chain(requests).chain(&statuses).chain(&requested).chain(rest));
}

/// The appliance's entry point: reports what it was given, then serves on
/// the network until the toolstack asks the domain to end, and says how.
#[cfg(target_os = "none")]
pub fn run(boot: &BootInfo) -> kernel::ShutdownReason {
    report(boot);
    let heap_free = boot.memory.heap.end.saturating_sub(boot.memory.heap.start) as usize;
    let settings = Settings::from_command_line(&boot.command_line, heap_free);
    log::info!("settings: {}", settings.describe());
    let mut appliance = Appliance::new(&settings);
    let request = match runtime_config(&boot.command_line) {
        Ok(config) => runtime::run(&platform::KernelPlatform, &config, &mut appliance),
        Err(error) => {
            log::error!("network configuration: {error:?}; the network stays down");
            runtime::run_without_network(&platform::KernelPlatform)
        }
    };
    log::info!("shutdown requested ({request:?})");
    match request {
        runtime::ShutdownRequest::Poweroff => kernel::ShutdownReason::Poweroff,
        runtime::ShutdownRequest::Reboot => kernel::ShutdownReason::Reboot,
    }
}

/// The network runtime's configuration from the command line: `ip=` and
/// `gw=` ([`runtime::netconfig`]), and `untrusted-backend`.
pub fn runtime_config<'a>(
    line: &kernel::CommandLine<'a>,
) -> Result<runtime::RuntimeConfig, runtime::netconfig::NetConfigError<'a>> {
    let net = runtime::NetConfig::parse(line.get("ip"), line.get("gw"))?;
    Ok(runtime::RuntimeConfig { force_untrusted: line.has("untrusted-backend"), ..runtime::RuntimeConfig::new(net) })
}

/// Logs what the kernel handed over, checks the heap, and runs the
/// self-test the command line asks for.
pub fn report(boot: &BootInfo) {
    log::info!("xenecho {VERSION}: HTTP echo appliance on Xen {}.{}", boot.xen_version.0, boot.xen_version.1);
    log::info!("command line: \"{}\"", boot.command_line.as_str());
    log::info!("memory map ({} KiB of RAM):", boot.memory_map.ram_bytes() / 1024);
    for region in boot.memory_map.regions() {
        log::info!("  {region}");
    }
    let heap = &boot.memory.heap;
    log::info!(
        "heap {:#x}-{:#x} ({} KiB), {} frames left for pages",
        heap.start,
        heap.end,
        (heap.end - heap.start) / 1024,
        boot.memory.free_frames
    );
    match exercise_heap() {
        Ok(summary) => log::info!("heap check passed: {summary}"),
        Err(problem) => log::error!("heap check FAILED: {problem}"),
    }
    match Selftest::requested(&boot.command_line) {
        Ok(None) => {}
        #[cfg(target_os = "none")]
        Ok(Some(test)) => {
            log::warn!("running selftest {test:?}");
            test.run();
        }
        #[cfg(not(target_os = "none"))]
        Ok(Some(test)) => log::warn!("selftest {test:?} only runs on Xen"),
        Err(unknown) => log::error!("unknown selftest {:?}: ignored", unknown.0),
    }
}

/// Allocates, uses and frees `Vec`, `Box`, `String` and `BTreeMap` values and
/// checks what comes back. Returns a one-line summary, or what went wrong.
pub fn exercise_heap() -> Result<String, String> {
    let numbers: Vec<u64> = (1..=10_000).collect();
    let sum: u64 = numbers.iter().sum();
    if sum != 50_005_000 {
        return Err(alloc::format!("sum of 1..=10000 is {sum}"));
    }
    let boxed = Box::new([0xa5u8; 4096]);
    if boxed.iter().any(|&byte| byte != 0xa5) {
        return Err("boxed page changed under us".into());
    }
    let mut text = String::new();
    for word in ["grant", "event", "ring"] {
        text.push_str(word);
        text.push(' ');
    }
    let mut counts = BTreeMap::new();
    for byte in text.bytes() {
        *counts.entry(byte).or_insert(0u32) += 1;
    }
    if counts.get(&b'n') != Some(&3) {
        return Err(alloc::format!("letter count wrong: {counts:?}"));
    }
    Ok(alloc::format!("vec sum {sum}, box 4 KiB, string {:?}, {} distinct bytes", text.trim_end(), counts.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(line: &str, heap_free: usize) -> Settings {
        Settings::from_command_line(&kernel::CommandLine::new(line), heap_free)
    }

    #[test]
    fn connections_are_clamped_to_what_the_heap_holds() {
        let heap = 16 * 1024 * 1024;
        let default = settings("", heap);
        let plan = default.http;
        let budget = http_heap_budget(heap);
        assert!(server::HttpPlan::heap_bytes(plan.connections, plan.backlog, &plan.limits) <= budget);
        assert!(server::HttpPlan::heap_bytes(plan.connections + 1, plan.backlog, &plan.limits) > budget);
        assert_eq!(settings("connections=100000", heap).http.connections, plan.connections, "clamped, not crashed");
        assert_eq!(settings("connections=10", heap).http.connections, 10);
        assert_eq!(settings("connections=10", heap).http.backlog, 10, "small pools: as many as the slots");
        assert_eq!(settings("connections=100", heap).http.backlog, 2 * runtime::budget::RX_FRAMES_PER_TURN);
        assert_eq!(settings("connections=200", 64 << 20).http.backlog, 100);
        // 1 MiB leaves 384 KiB for HTTP: 4 slots (56 KiB each) and 4 spare
        // sockets (32 KiB each).
        let small = settings("", 1024 * 1024).http;
        assert_eq!((small.connections, small.backlog), (4, 4));
        let squeezed = settings("connections=5 backlog=40", 1024 * 1024).http;
        assert_eq!((squeezed.connections, squeezed.backlog), (4, 5), "both shrink to what fits");
        let tiny = settings("connections=3 backlog=40", 256 * 1024).http;
        assert_eq!((tiny.connections, tiny.backlog), (1, 1), "never below one of each");
    }

    #[test]
    fn the_bound_words_are_read_and_described() {
        let read = settings("backlog=50 per-client=3 min-rate=0 max-body=1000 connections=20", 64 << 20);
        assert_eq!(read.http.backlog, 50);
        assert_eq!(read.http.per_client, Some(3));
        assert_eq!(read.http.limits.min_rate_bytes_per_second, 0);
        assert_eq!(
            read.describe(),
            "port=80 metrics-port=9100 connections=20 backlog=50 per-client=3 max-body=1000 min-rate=0"
        );
        let malformed = settings("per-client=lots min-rate=fast", 64 << 20);
        assert_eq!(malformed.http.per_client, None);
        assert_eq!(malformed.http.limits.min_rate_bytes_per_second, 1024);
    }

    #[test]
    fn heap_exercise_passes_on_the_host_allocator() {
        let summary = super::exercise_heap().unwrap();
        assert!(summary.contains("vec sum 50005000"), "{summary}");
    }
}
