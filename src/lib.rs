//! xenecho, the appliance: what runs once the kernel is up.
//!
//! `run` is the entry point the kernel calls: it reports what it was
//! given (version, Xen version, memory map, command line), checks the heap,
//! reads the command line ([`config`]: every word applied or warned about,
//! the settings in effect logged as `key=value`), runs a self-test when it
//! asks for one, and runs the [`Appliance`] (HTTP echo on [`server`], TCP echo on
//! [`echo`], Prometheus metrics on [`metrics`]) on the network runtime over
//! the kernel's PV services (`platform`, on Xen) until the toolstack asks the
//! domain to end. The host harness (`harness`, tests and fuzzing only)
//! runs the same appliance on a simulated network.
//!
//! This crate holds no `unsafe` code.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
#[cfg(test)]
mod drain_tests;
pub mod echo;
#[cfg(any(test, feature = "fuzzing"))]
pub mod harness;
#[cfg(test)]
mod ipv6_tests;
pub mod metrics;
#[cfg(target_os = "none")]
pub mod platform;
pub mod pool;
pub mod server;
#[cfg(test)]
mod small_guest_tests;

pub mod http;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use kernel::BootInfo;

/// The version and source revision printed in the banner.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("XENECHO_REVISION"), ")");

/// The TCP echo port (RFC 862).
pub const ECHO_PORT: u16 = 7;
/// The HTTP port unless `port=` says otherwise.
pub const DEFAULT_HTTP_PORT: u16 = 80;
/// The metrics port unless `metrics-port=` says otherwise: outside the
/// range Prometheus's exporters have taken (9100 to 9999, node_exporter's
/// 9100 first), as Prometheus advises for an application's own metrics.
pub const DEFAULT_METRICS_PORT: u16 = 19100;
/// Most HTTP connections, whatever the memory.
pub const MAX_CONNECTIONS: usize = 1024;

/// The architecture the image was built for, as `xenecho_build_info` says.
pub const ARCH: &str = if cfg!(target_arch = "aarch64") { "aarch64" } else { "x86_64" };

/// What the appliance serves on the network.
pub struct Appliance {
    echo: echo::EchoService,
    http: server::HttpService,
    metrics: Option<server::MetricsService>,
    /// The interface the metrics listener is on.
    metrics_on: runtime::InterfaceId,
    /// The main interface as the runtime last said.
    network: runtime::NetworkState,
    /// Connections reset at the drain's deadline.
    cut: usize,
}

/// The appliance's settings, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The HTTP service: port, slots, backlog, limits, socket bounds.
    pub http: server::HttpPlan,
    /// The metrics port (`None`: no metrics listener).
    pub metrics_port: Option<u16>,
    /// The only local address the metrics listener accepts connections to
    /// (`None`: any).
    pub metrics_address: Option<smoltcp::wire::Ipv4Address>,
    /// The vif whose interface alone carries the metrics and the probes
    /// (`metrics-vif=`; `None`: the main interface, beside HTTP).
    pub metrics_vif: Option<u32>,
}

/// Heap bytes kept for everything but the HTTP service: the main
/// interface's SYN cookies ([`runtime::syn_cookies::HEAP_BYTES`], 164 KiB,
/// most of it two buffers of the largest frame netfront hands up), and
/// 512 KiB for the rest: the echo and metrics services (128 and 168 KiB of
/// socket buffers and page text), smoltcp (its interface, IPv4 reassembly
/// up to 64 KiB), netfront's tables, the control plane and transient
/// buffers (a large received segment's copy, up to 64 KiB), with an eighth
/// of the heap on top for the sockets' and engines' own structures and the
/// allocator's rounding. The host test `small_guest_tests` runs a 4 MB
/// guest on the production loop and checks that its peak fits.
pub const HEAP_RESERVED_BYTES: usize = 512 * 1024 + runtime::syn_cookies::HEAP_BYTES;

/// How much of a `heap`-byte heap the HTTP service may take: everything it
/// needs is allocated at start, so this is what connections are sized by.
pub fn http_heap_budget(heap: usize) -> usize {
    heap.saturating_sub(HEAP_RESERVED_BYTES + heap / 8)
}

impl Settings {
    /// The settings as `key=value` words, for the log.
    pub fn describe(&self) -> String {
        let plan = &self.http;
        let limits = &plan.limits;
        let per_client = plan.per_client.map_or(String::from("off"), |limit| alloc::format!("{limit}"));
        let max_body = limits.max_body_bytes.map_or(String::from("unlimited"), config::format_size);
        let metrics_port = self.metrics_port.map_or(String::from("off"), |port| alloc::format!("{port}"));
        let metrics_address =
            self.metrics_address.map_or(String::new(), |address| alloc::format!(" metrics-address={address}"));
        let metrics_vif = self.metrics_vif.map_or(String::new(), |vif| alloc::format!(" metrics-vif={vif}"));
        let socket_buffer = if plan.socket_bytes == server::DEFAULT_SOCKET_BYTES {
            String::new()
        } else {
            alloc::format!(" socket-buffer={}", config::format_size(plan.socket_bytes as u64))
        };
        alloc::format!(
            "port={} metrics-port={metrics_port}{metrics_address}{metrics_vif} connections={} backlog={} per-client={per_client} max-body={max_body} min-rate={}{socket_buffer}",
            plan.port,
            plan.connections,
            plan.backlog,
            config::format_size(limits.min_rate_bytes_per_second.into())
        )
    }
}

impl Appliance {
    /// The appliance as `settings` say (nothing allocated before `start`).
    pub fn new(settings: &Settings) -> Self {
        let bounds = settings.http.bounds;
        let metrics_address = settings.metrics_address.map(smoltcp::wire::IpAddress::Ipv4);
        Appliance {
            echo: echo::EchoService::new(ECHO_PORT, 4, bounds),
            http: server::HttpService::new(settings.http),
            metrics: settings.metrics_port.map(|port| server::MetricsService::new(port, metrics_address, bounds)),
            metrics_on: settings.metrics_vif.map_or(runtime::InterfaceId::Main, runtime::InterfaceId::Vif),
            network: runtime::NetworkState::default(),
            cut: 0,
        }
    }

    /// The HTTP service, for its counters.
    pub fn http(&self) -> &server::HttpService {
        &self.http
    }

    /// How many connections the drain's deadline cut.
    pub fn connections_cut(&self) -> usize {
        self.cut
    }

    /// The metrics page as it would be served now, with the runtime's
    /// counters `stats`.
    pub fn render_metrics(&self, text: &mut String, stats: &runtime::Stats) {
        render_metrics(text, stats, &self.http, self.network);
    }
}

impl runtime::Service for Appliance {
    fn identify(&mut self, instance: &runtime::Instance) {
        self.http.set_instance(http::Instance::new(instance.name.as_deref(), instance.domid));
    }

    /// On the main interface: TCP echo, HTTP, and the metrics unless
    /// `metrics-vif=` puts them on their own interface.
    fn start(&mut self, interface: runtime::InterfaceId, sockets: &mut smoltcp::iface::SocketSet<'static>) {
        if interface == runtime::InterfaceId::Main {
            self.echo.start(sockets);
            self.http.start(sockets);
            log::info!(
                "serving TCP echo on port {ECHO_PORT}, HTTP with {} connection slots and {} sockets ({} buffers each way){}",
                self.http.capacity(),
                self.http.sockets(),
                config::format_size(self.http.socket_bytes() as u64),
                match (&self.metrics, self.metrics_on) {
                    (None, _) => "; no metrics (metrics-port=off)",
                    (Some(_), runtime::InterfaceId::Main) => "",
                    (Some(_), runtime::InterfaceId::Vif(_)) => "; metrics and probes on their own vif",
                }
            );
        }
        if interface == self.metrics_on
            && let Some(metrics) = self.metrics.as_mut()
        {
            metrics.start(sockets);
            if let runtime::InterfaceId::Vif(vif) = interface {
                log::info!("serving metrics, /healthz and /readyz on vif {vif} alone (metrics-vif={vif})");
            }
        }
    }

    fn poll(
        &mut self,
        interface: runtime::InterfaceId,
        sockets: &mut smoltcp::iface::SocketSet<'static>,
        now: smoltcp::time::Instant,
        stats: &dyn Fn() -> runtime::Stats,
    ) -> Option<smoltcp::time::Instant> {
        let mut deadlines = [None; 3];
        if interface == runtime::InterfaceId::Main {
            deadlines[0] = self.echo.poll(sockets, now);
            deadlines[1] = self.http.poll(sockets, now);
        }
        if interface == self.metrics_on {
            let (http, network) = (&self.http, self.network);
            deadlines[2] = self.metrics.as_mut().and_then(|metrics| {
                metrics.poll(sockets, now, http.readiness(), &mut |text| render_metrics(text, &stats(), http, network))
            });
        }
        deadlines.into_iter().flatten().min()
    }

    fn syn_pressure(&self, interface: runtime::InterfaceId) -> bool {
        // Draining, nothing listens: no SYN is worth a cookie.
        interface == runtime::InterfaceId::Main && !self.http.is_draining() && self.http.syn_pressure()
    }

    fn saturated_port(&self, interface: runtime::InterfaceId) -> Option<u16> {
        (interface == runtime::InterfaceId::Main && self.http.saturated()).then(|| self.http.port())
    }

    fn network(&mut self, interface: runtime::InterfaceId, state: runtime::NetworkState) {
        if interface != runtime::InterfaceId::Main {
            return;
        }
        self.network = state;
        // Reachable at an address a client can be given: an IPv4 one, or an
        // IPv6 one beyond the link-local.
        let addressed = state.address_bound || state.ipv6_address_bound;
        let readiness = http::Readiness::of(state.link_up, addressed, self.http.is_draining());
        self.http.set_readiness(readiness);
    }

    /// HTTP and TCP echo stop listening and finish what is in flight; the
    /// metrics listener goes on serving (scrapes see the drain), and is not
    /// waited for.
    fn drain(
        &mut self,
        interface: runtime::InterfaceId,
        sockets: &mut smoltcp::iface::SocketSet<'static>,
        now: smoltcp::time::Instant,
    ) {
        if interface == runtime::InterfaceId::Main {
            self.http.drain(sockets);
            self.echo.drain(sockets, now);
        }
    }

    fn in_flight(&self, interface: runtime::InterfaceId, sockets: &smoltcp::iface::SocketSet<'static>) -> usize {
        match interface {
            runtime::InterfaceId::Main => self.http.in_flight(sockets) + self.echo.in_flight(sockets),
            runtime::InterfaceId::Vif(_) => 0,
        }
    }

    fn cut(
        &mut self,
        interface: runtime::InterfaceId,
        sockets: &mut smoltcp::iface::SocketSet<'static>,
        now: smoltcp::time::Instant,
    ) -> usize {
        if interface != runtime::InterfaceId::Main {
            return 0;
        }
        let cut = self.http.cut(sockets, now) + self.echo.cut(sockets, now);
        self.cut += cut;
        cut
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

/// The whole metrics page, written into `text`: the build, the kernel's
/// counters, then HTTP's (requests, responses, their durations, the
/// connections), then the network's state and the drain.
fn render_metrics(
    text: &mut String,
    stats: &runtime::Stats,
    http: &server::HttpService,
    network: runtime::NetworkState,
) {
    use metrics::{Histogram, Metric, Value};
    let counters = http.counters();
    let pool = http.pool_counters();
    let kernel = metrics::kernel_metrics(stats);
    let build = Metric::gauge("xenecho_build_info", "The build: version, source revision, architecture.", 1)
        .label("version", env!("CARGO_PKG_VERSION"))
        .label("revision", env!("XENECHO_REVISION"))
        .label("arch", ARCH);
    let counter = Metric::counter;
    let gauge = |name, help, value: usize| Metric::gauge(name, help, value as u64);
    let http_list = [
        counter("xenecho_http_requests_total", "HTTP requests.", counters.requests),
        counter("xenecho_http_received_bytes_total", "HTTP bytes received.", counters.bytes_received),
        counter("xenecho_http_sent_bytes_total", "HTTP bytes sent.", counters.bytes_sent),
        counter("xenecho_http_timeouts_total", "Connections ended by a timer.", counters.timeouts),
        counter("xenecho_http_connections_total", "Connections accepted.", http.accepted),
        counter("xenecho_http_refused_total", "Connections refused with 503.", http.refused),
        counter(
            "xenecho_http_syn_deferred_total",
            "SYNs dropped unanswered while every slot was busy and the refusal budget spent (their clients retry).",
            stats.syn_cookies.deferred,
        ),
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
        Metric::flag("xenecho_link_up", "Whether the vif's link is up (netfront connected).", network.link_up),
        Metric::flag(
            "xenecho_ipv4_address_bound",
            "Whether the interface has an IPv4 address (a lease, or the static one).",
            network.address_bound,
        ),
        Metric::flag(
            "xenecho_ipv6_address_bound",
            "Whether the interface has an IPv6 address beyond the link-local one (ip6=, or SLAAC).",
            network.ipv6_address_bound,
        ),
        gauge(
            "xenecho_ipv6_addresses",
            "IPv6 addresses on the interface, the link-local one included.",
            network.ipv6_addresses,
        ),
        Metric::flag(
            "xenecho_ipv6_default_router",
            "Whether there is an IPv6 default router (gw6=, or from a router advertisement).",
            network.ipv6_default_router,
        ),
        counter(
            "xenecho_ipv6_router_advertisements_total",
            "Router advertisements taken in (valid ones, for SLAAC).",
            network.router_advertisements,
        ),
        Metric::flag(
            "xenecho_draining",
            "Whether the appliance drains before it ends (no new connection).",
            http.is_draining(),
        ),
    ];
    let statuses = http::Status::ALL.map(|status| {
        counter("xenecho_http_responses_total", "HTTP responses by status.", counters.responses(status))
            .label("code", code_label(status.code()))
    });
    let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    let requested = [1, 2, 3, 4, 5].map(|class: u16| {
        counter(
            "xenecho_http_requested_status_responses_total",
            "HTTP responses whose status the request chose (status=), by class.",
            counters.requested_in_class(class),
        )
        .label("class", classes[usize::from(class - 1)])
    });
    let durations = &counters.durations;
    let histogram = Histogram {
        name: "xenecho_http_request_duration_seconds",
        help: "Time from a request head complete to the last byte of its response queued.",
        bounds: &http::DURATION_BOUNDS_LABELS,
        buckets: durations.buckets(),
        sum: Value::micros_as_seconds(durations.sum_micros()),
        count: durations.count(),
    };
    // The responses families and the durations come right after the
    // request counter.
    let (requests, rest) = http_list.split_at(1);
    metrics::render(text, core::iter::once(&build).chain(&kernel).chain(requests).chain(&statuses).chain(&requested));
    metrics::render_histogram(text, &histogram);
    metrics::render(text, rest);
}

/// The appliance's entry point: reports what it was given, reads the
/// command line (warning about every word it does not take as written),
/// runs the self-test it asks for, then serves on the network until the
/// toolstack asks the domain to end, and says how.
#[cfg(target_os = "none")]
pub fn run(boot: &BootInfo) -> kernel::ShutdownReason {
    report(boot);
    let heap_bytes = boot.memory.heap.end.saturating_sub(boot.memory.heap.start) as usize;
    let config = config::Config::read(boot.command_line.as_str(), heap_bytes);
    config.log();
    if let Some(test) = config.selftest {
        log::warn!("running selftest={}", test.name());
        test.run();
    }
    let mut appliance = Appliance::new(&config.settings);
    let request = match config.runtime_config() {
        Some(runtime) => runtime::run(&platform::KernelPlatform, &runtime, &mut appliance),
        None => {
            log::error!("no network: ip= or gw= cannot be used (see the warning above)");
            runtime::run_without_network(&platform::KernelPlatform)
        }
    };
    log::info!("shutdown requested ({request:?})");
    match request {
        runtime::ShutdownRequest::Poweroff => kernel::ShutdownReason::Poweroff,
        runtime::ShutdownRequest::Reboot => kernel::ShutdownReason::Reboot,
    }
}

/// Logs what the kernel handed over and checks the heap.
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
