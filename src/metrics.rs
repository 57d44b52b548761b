//! Counters in the Prometheus text exposition format (version 0.0.4), for
//! `GET /metrics` on the metrics port.
//!
//! Everything needed to compute the cost of a request is here: requests and
//! responses, bytes, packets, event-channel notifications each way,
//! hypercalls, grant operations, DMA maps/syncs/unmaps and bounce copies,
//! heap in use. Names follow Prometheus conventions (`_total` for counters,
//! base units).

use alloc::string::String;
use core::fmt::Write;
use runtime::Stats as KernelStats;

/// Whether a value only grows or goes up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic since boot.
    Counter,
    /// A level now.
    Gauge,
}

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The metric's name (`xenecho_...`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// An optional `name="value"` label.
    pub label: Option<(&'static str, &'static str)>,
    /// The value.
    pub value: u64,
}

const fn counter(name: &'static str, help: &'static str, value: u64) -> Metric {
    Metric { name, help, kind: Kind::Counter, label: None, value }
}

const fn gauge(name: &'static str, help: &'static str, value: u64) -> Metric {
    Metric { name, help, kind: Kind::Gauge, label: None, value }
}

/// The kernel's share of the metrics.
pub fn kernel_metrics(stats: &KernelStats) -> [Metric; 29] {
    let net = &stats.netfront;
    let dma = &stats.dma;
    [
        gauge("xenecho_uptime_seconds", "Seconds since the domain started.", stats.uptime_ns / 1_000_000_000),
        counter("xenecho_hypercalls_total", "Hypercalls made.", stats.hypercalls),
        counter("xenecho_event_notifications_sent_total", "Event-channel notifications sent.", stats.events_sent),
        counter("xenecho_event_notifications_received_total", "Pending events taken.", stats.events_received),
        counter("xenecho_event_polls_total", "Sleeps in SCHEDOP_poll.", stats.polls),
        gauge("xenecho_heap_used_bytes", "Heap bytes in use.", stats.heap_used),
        gauge("xenecho_heap_free_bytes", "Heap bytes free.", stats.heap_free),
        counter("xenecho_console_dropped_bytes_total", "Console bytes dropped.", stats.console_dropped_bytes),
        counter("xenecho_rx_packets_total", "Frames received.", net.rx_frames),
        counter("xenecho_rx_bytes_total", "Bytes received.", net.rx_bytes),
        counter("xenecho_rx_dropped_total", "Frames dropped on receive.", net.rx_dropped),
        counter("xenecho_tx_packets_total", "Frames sent.", net.tx_frames),
        counter("xenecho_tx_bytes_total", "Bytes sent.", net.tx_bytes),
        counter("xenecho_tx_dropped_total", "Frames that could not be queued.", net.tx_dropped),
        counter("xenecho_netfront_notifications_sent_total", "Notifications to netback.", net.notifications_sent),
        counter("xenecho_netfront_notifications_received_total", "Wake-ups by netback.", net.notifications_received),
        counter("xenecho_netfront_violations_total", "Backend protocol violations.", net.violations),
        counter("xenecho_grants_total", "Grants made.", stats.grants.granted),
        counter("xenecho_grant_revokes_total", "Grants revoked.", stats.grants.revoked),
        gauge("xenecho_grants_in_use", "Grant references in use.", stats.grants.in_use),
        counter("xenecho_dma_maps_total", "DMA buffers mapped.", dma.maps),
        counter("xenecho_dma_unmaps_total", "DMA buffers unmapped.", dma.unmaps),
        counter("xenecho_dma_syncs_for_device_total", "DMA syncs for the device.", dma.syncs_for_device),
        counter("xenecho_dma_syncs_for_cpu_total", "DMA syncs for the CPU.", dma.syncs_for_cpu),
        counter("xenecho_dma_bounce_copies_total", "Bounce-buffer copies.", dma.bounce_copies),
        counter("xenecho_dma_bounce_bytes_total", "Bytes bounce-copied.", dma.bounce_bytes),
        counter("xenecho_syn_cookies_sent_total", "SYNs answered with a cookie.", stats.syn_cookies.cookies_sent),
        counter(
            "xenecho_syn_cookies_accepted_total",
            "Connections that came in on a SYN cookie.",
            stats.syn_cookies.cookies_accepted,
        ),
        gauge(
            "xenecho_syn_cookie_connections",
            "Connections proxied after a SYN cookie now.",
            stats.syn_cookies.proxied,
        ),
    ]
}

/// Writes `metrics` as Prometheus text; HELP and TYPE once per name.
pub fn render<'m>(out: &mut String, metrics: impl IntoIterator<Item = &'m Metric>) {
    let mut previous = "";
    for metric in metrics {
        if metric.name != previous {
            let kind = match metric.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {kind}", metric.name, metric.help, metric.name);
            previous = metric.name;
        }
        match metric.label {
            Some((key, value)) => {
                let _ = writeln!(out, "{}{{{key}=\"{value}\"}} {}", metric.name, metric.value);
            }
            None => {
                let _ = writeln!(out, "{} {}", metric.name, metric.value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_labelled_samples() {
        let metrics = [
            counter("xenecho_requests_total", "Requests.", 7),
            Metric { label: Some(("code", "200")), ..counter("xenecho_responses_total", "Responses.", 5) },
            Metric { label: Some(("code", "400")), ..counter("xenecho_responses_total", "Responses.", 2) },
        ];
        let mut text = String::new();
        render(&mut text, &metrics);
        assert_eq!(
            text,
            "# HELP xenecho_requests_total Requests.\n# TYPE xenecho_requests_total counter\nxenecho_requests_total 7\n\
             # HELP xenecho_responses_total Responses.\n# TYPE xenecho_responses_total counter\n\
             xenecho_responses_total{code=\"200\"} 5\nxenecho_responses_total{code=\"400\"} 2\n"
        );
    }

    #[test]
    fn kernel_metrics_carry_the_counters_and_unique_names() {
        let mut stats = KernelStats { hypercalls: 42, uptime_ns: 3_500_000_000, ..Default::default() };
        stats.netfront.rx_frames = 9;
        stats.dma.bounce_copies = 4;
        let metrics = kernel_metrics(&stats);
        let value = |name: &str| metrics.iter().find(|metric| metric.name == name).map(|metric| metric.value);
        assert_eq!(value("xenecho_hypercalls_total"), Some(42));
        assert_eq!(value("xenecho_uptime_seconds"), Some(3));
        assert_eq!(value("xenecho_rx_packets_total"), Some(9));
        assert_eq!(value("xenecho_dma_bounce_copies_total"), Some(4));
        let mut names: alloc::vec::Vec<&str> = metrics.iter().map(|metric| metric.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), metrics.len());
        assert!(metrics.iter().all(|metric| metric.name.starts_with("xenecho_")));
    }
}
