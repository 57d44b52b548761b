//! xenecho, the appliance: what runs once the kernel is up.
//!
//! For now (the walking skeleton) it reports what it was given — version,
//! Xen version, memory map, command line — proves the heap works, runs a
//! self-test when the command line asks for one, and returns, which powers
//! the domain off. The HTTP echo service will live here.
//!
//! This crate holds no `unsafe` code.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod echo;
pub mod metrics;
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
    connections: usize,
}

/// The appliance's settings, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The HTTP port.
    pub http_port: u16,
    /// The metrics port.
    pub metrics_port: u16,
    /// HTTP connection slots.
    pub connections: usize,
    /// The engine's limits (`max-body=` bytes sets the 413 threshold).
    pub limits: http::Limits,
}

impl Settings {
    /// Reads `port=`, `metrics-port=`, `connections=` and `max-body=`; the
    /// pool defaults to what half of `heap_free` bytes can hold.
    pub fn from_command_line(line: &kernel::CommandLine<'_>, heap_free: usize) -> Self {
        let limits = http::Limits {
            max_body_bytes: line.get("max-body").and_then(|value| value.parse().ok()),
            ..http::Limits::default()
        };
        let affordable = heap_free / 2 / server::bytes_per_connection(&limits);
        let connections = line.get("connections").and_then(|value| value.parse().ok()).unwrap_or(affordable);
        Self {
            http_port: line.get("port").and_then(|value| value.parse().ok()).unwrap_or(DEFAULT_HTTP_PORT),
            metrics_port: line.get("metrics-port").and_then(|value| value.parse().ok()).unwrap_or(DEFAULT_METRICS_PORT),
            connections: connections.clamp(1, MAX_CONNECTIONS),
            limits,
        }
    }
}

impl kernel::Service for Appliance {
    fn start(&mut self, sockets: &mut smoltcp::iface::SocketSet<'static>) {
        self.echo.start(sockets);
        self.http.start(sockets, self.connections);
        self.metrics.start(sockets);
        log::info!("serving TCP echo on port {ECHO_PORT}, HTTP with {} connection slots", self.http.capacity());
    }

    fn poll(
        &mut self,
        sockets: &mut smoltcp::iface::SocketSet<'static>,
        now: smoltcp::time::Instant,
        stats: &dyn Fn() -> kernel::stats::KernelStats,
    ) -> Option<smoltcp::time::Instant> {
        self.echo.poll(sockets);
        let deadline = self.http.poll(sockets, now);
        let http = &self.http;
        self.metrics.poll(sockets, &mut || render_metrics(&stats(), http));
        deadline
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

/// The whole metrics page.
fn render_metrics(stats: &kernel::stats::KernelStats, http: &server::HttpService) -> alloc::string::String {
    use metrics::{Kind, Metric};
    let counters = http.counters();
    let mut list: Vec<Metric> = metrics::kernel_metrics(stats).to_vec();
    let counter = |name, help, value| Metric { name, help, kind: Kind::Counter, label: None, value };
    list.push(counter("xenecho_http_requests_total", "HTTP requests.", counters.requests));
    for status in http::Status::ALL {
        list.push(Metric {
            label: Some(("code", code_label(status.code()))),
            ..counter("xenecho_http_responses_total", "HTTP responses by status.", counters.responses(status))
        });
    }
    list.push(counter("xenecho_http_received_bytes_total", "HTTP bytes received.", counters.bytes_received));
    list.push(counter("xenecho_http_sent_bytes_total", "HTTP bytes sent.", counters.bytes_sent));
    list.push(counter("xenecho_http_timeouts_total", "Connections ended by a timer.", counters.timeouts));
    list.push(counter("xenecho_http_connections_total", "Connections accepted.", http.accepted));
    list.push(counter("xenecho_http_refused_total", "Connections refused with 503.", http.refused));
    list.push(Metric {
        kind: Kind::Gauge,
        ..counter("xenecho_http_open_connections", "Connections open now.", http.open_connections() as u64)
    });
    let mut text = alloc::string::String::with_capacity(8 * 1024);
    metrics::render(&mut text, &list);
    text
}

/// The appliance's entry point: reports what it was given, then returns the
/// service the kernel runs on the network.
pub fn run(boot: &BootInfo) -> kernel::ServiceBox {
    report(boot);
    let heap_free = boot.memory.heap.end.saturating_sub(boot.memory.heap.start) as usize;
    let settings = Settings::from_command_line(&boot.command_line, heap_free);
    log::info!("settings: {settings:?}");
    alloc::boxed::Box::new(Appliance {
        echo: echo::EchoService::new(ECHO_PORT, 4),
        http: server::HttpService::new(settings.http_port, settings.connections, settings.limits),
        metrics: server::MetricsService::new(settings.metrics_port),
        connections: settings.connections,
    })
}

fn report(boot: &BootInfo) {
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
    #[test]
    fn heap_exercise_passes_on_the_host_allocator() {
        let summary = super::exercise_heap().unwrap();
        assert!(summary.contains("vec sum 50005000"), "{summary}");
    }
}
