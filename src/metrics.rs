//! Counters in the Prometheus text exposition format (version 0.0.4), for
//! `GET /metrics` on the metrics port.
//!
//! Everything needed to compute the cost of a request is here: requests and
//! responses, bytes, packets, event-channel notifications each way,
//! hypercalls, grant operations, DMA maps/syncs/unmaps and bounce copies,
//! heap in use; and what an operator watches: the build, the start time,
//! the request-duration histogram, the link and the address. Names follow
//! Prometheus conventions (`_total` for counters, base units: seconds and
//! bytes); HELP and TYPE come once per family, before its samples; label
//! values are escaped as the format says.
//!
//! Rendering allocates nothing beyond the text it writes into (a buffer the
//! metrics service reserves once).

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

/// A sample's value: a whole number, or a fixed-point one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A count, or a level in whole units.
    Whole(u64),
    /// `units` / 10^`decimals`, written with that many decimals
    /// (microseconds as seconds: `Fixed { units, decimals: 6 }`).
    Fixed {
        /// The value in the small unit.
        units: u64,
        /// How many decimal places the small unit is.
        decimals: u32,
    },
}

impl Value {
    /// Microseconds, as seconds.
    pub const fn micros_as_seconds(micros: u64) -> Value {
        Value::Fixed { units: micros, decimals: 6 }
    }

    fn write(self, out: &mut String) {
        match self {
            Value::Whole(value) => {
                let _ = write!(out, "{value}");
            }
            Value::Fixed { units, decimals } => {
                let scale = 10u64.saturating_pow(decimals);
                let (whole, fraction) = (units / scale, units % scale);
                let width = decimals as usize;
                let _ = if width == 0 { write!(out, "{whole}") } else { write!(out, "{whole}.{fraction:0width$}") };
            }
        }
    }
}

/// Up to three `name="value"` labels.
pub type Labels = [Option<(&'static str, &'static str)>; 3];

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The metric's name (`xenecho_...`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// Its labels, in order.
    pub labels: Labels,
    /// The value.
    pub value: Value,
}

impl Metric {
    /// A counter with no label.
    pub const fn counter(name: &'static str, help: &'static str, value: u64) -> Metric {
        Metric { name, help, kind: Kind::Counter, labels: [None; 3], value: Value::Whole(value) }
    }

    /// A gauge with no label.
    pub const fn gauge(name: &'static str, help: &'static str, value: u64) -> Metric {
        Metric { name, help, kind: Kind::Gauge, labels: [None; 3], value: Value::Whole(value) }
    }

    /// A gauge that is 1 when `on`, else 0.
    pub const fn flag(name: &'static str, help: &'static str, on: bool) -> Metric {
        Metric::gauge(name, help, on as u64)
    }

    /// This sample with `value` instead.
    pub const fn with_value(self, value: Value) -> Metric {
        Metric { value, ..self }
    }

    /// This sample with one more label (a fourth is dropped).
    pub const fn label(mut self, name: &'static str, value: &'static str) -> Metric {
        let mut index = 0;
        while index < self.labels.len() {
            if self.labels[index].is_none() {
                self.labels[index] = Some((name, value));
                break;
            }
            index += 1;
        }
        self
    }
}

const fn counter(name: &'static str, help: &'static str, value: u64) -> Metric {
    Metric::counter(name, help, value)
}

const fn gauge(name: &'static str, help: &'static str, value: u64) -> Metric {
    Metric::gauge(name, help, value)
}

/// A histogram: counts of observations at most each bound, their sum and
/// their count, as `_bucket{le=...}`, `_sum` and `_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram<'a> {
    /// The family's name (the samples add `_bucket`, `_sum`, `_count`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Each finite bucket's upper bound as `le` writes it, ascending.
    pub bounds: &'static [&'static str],
    /// Observations in each finite bucket alone (not cumulative); those
    /// beyond the last bound are `count` less their sum.
    pub buckets: &'a [u64],
    /// The sum of the observations.
    pub sum: Value,
    /// How many observations.
    pub count: u64,
}

/// The kernel's share of the metrics.
pub fn kernel_metrics(stats: &KernelStats) -> [Metric; 41] {
    let net = &stats.netfront;
    let dma = &stats.dma;
    [
        gauge("xenecho_uptime_seconds", "Seconds since the domain started.", stats.uptime_ns / 1_000_000_000),
        gauge("xenecho_start_time_seconds", "Unix time the domain started (Xen's wall clock).", 0)
            .with_value(Value::Fixed { units: stats.start_time_ns / 1_000_000, decimals: 3 }),
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
        counter(
            "xenecho_rx_large_segments_total",
            "TCP segments over the MTU received whole (GSO from netback).",
            net.rx_large_segments,
        ),
        counter(
            "xenecho_rx_malformed_total",
            "Received frames dropped for bad extra information or length (the link kept).",
            net.rx_malformed,
        ),
        counter("xenecho_tx_packets_total", "Frames sent.", net.tx_frames),
        counter("xenecho_tx_bytes_total", "Bytes sent.", net.tx_bytes),
        counter("xenecho_tx_dropped_total", "Frames that could not be queued.", net.tx_dropped),
        counter(
            "xenecho_tx_large_segments_total",
            "Large TCP segments sent (several of the stack's segments merged, GSO to netback).",
            net.tx_large_segments,
        ),
        counter(
            "xenecho_tx_segments_merged_total",
            "The stack's TCP segments sent inside large segments (counted in xenecho_tx_packets_total too).",
            net.tx_segments_merged,
        ),
        counter("xenecho_netfront_notifications_sent_total", "Notifications to netback.", net.notifications_sent),
        counter("xenecho_netfront_notifications_received_total", "Wake-ups by netback.", net.notifications_received),
        counter("xenecho_netfront_violations_total", "Backend protocol violations.", net.violations),
        counter(
            "xenecho_netfront_reconnects_total",
            "Handshakes with a backend after each interface's first (a vif attached again, a new backend, a resume).",
            net.connects.saturating_sub(stats.interfaces),
        ),
        gauge(
            "xenecho_interfaces",
            "Network interfaces: the main one and each vif's own (metrics-vif=, vifN. words), once its vif was found.",
            stats.interfaces,
        ),
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
        counter(
            "xenecho_ipv4_fragments_received_total",
            "IPv4 fragments received (more-fragments set or a non-zero offset).",
            stats.fragments.received,
        ),
        counter(
            "xenecho_ipv4_fragments_oversized_total",
            "IPv4 fragments dropped because their datagram would exceed the reassembly bound.",
            stats.fragments.oversized,
        ),
        counter(
            "xenecho_ipv4_fragments_no_slot_total",
            "IPv4 fragments dropped because every reassembly slot held another datagram.",
            stats.fragments.no_slot,
        ),
        counter(
            "xenecho_ipv4_datagrams_reassembled_total",
            "Fragmented IPv4 datagrams whose fragments all arrived.",
            stats.fragments.reassembled,
        ),
        counter(
            "xenecho_ipv4_reassembly_timeouts_total",
            "Fragmented IPv4 datagrams given up with fragments missing when their time ran out.",
            stats.fragments.timed_out,
        ),
    ]
}

/// Writes `metrics` as Prometheus text; HELP and TYPE once per name (a
/// family's samples must come together).
pub fn render<'m>(out: &mut String, metrics: impl IntoIterator<Item = &'m Metric>) {
    let mut previous = "";
    for metric in metrics {
        if metric.name != previous {
            let kind = match metric.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            write_family_head(out, metric.name, metric.help, kind);
            previous = metric.name;
        }
        write_sample(out, metric.name, "", &metric.labels, metric.value);
    }
}

/// Writes `histogram` as Prometheus text: its buckets (cumulative, `+Inf`
/// last and equal to the count), its sum and its count.
pub fn render_histogram(out: &mut String, histogram: &Histogram<'_>) {
    write_family_head(out, histogram.name, histogram.help, "histogram");
    let mut cumulative = 0u64;
    for (index, bound) in histogram.bounds.iter().enumerate() {
        cumulative = cumulative.saturating_add(histogram.buckets.get(index).copied().unwrap_or(0));
        write_sample(out, histogram.name, "_bucket", &[Some(("le", bound)), None, None], Value::Whole(cumulative));
    }
    let count = Value::Whole(histogram.count);
    write_sample(out, histogram.name, "_bucket", &[Some(("le", "+Inf")), None, None], count);
    write_sample(out, histogram.name, "_sum", &[None; 3], histogram.sum);
    write_sample(out, histogram.name, "_count", &[None; 3], count);
}

fn write_family_head(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = write!(out, "# HELP {name} ");
    for character in help.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    let _ = writeln!(out, "\n# TYPE {name} {kind}");
}

fn write_sample(out: &mut String, name: &str, suffix: &str, labels: &Labels, value: Value) {
    out.push_str(name);
    out.push_str(suffix);
    let mut labels = labels.iter().flatten().peekable();
    if labels.peek().is_some() {
        out.push('{');
        for (index, (key, text)) in labels.enumerate() {
            if index > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"");
            for character in text.chars() {
                match character {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    other => out.push(other),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    value.write(out);
    out.push('\n');
}

#[cfg(test)]
pub(crate) mod exposition;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_labelled_samples() {
        let metrics = [
            counter("xenecho_requests_total", "Requests.", 7),
            counter("xenecho_responses_total", "Responses.", 5).label("code", "200"),
            counter("xenecho_responses_total", "Responses.", 2).label("code", "400"),
        ];
        let mut text = String::new();
        render(&mut text, &metrics);
        assert_eq!(
            text,
            "# HELP xenecho_requests_total Requests.\n# TYPE xenecho_requests_total counter\nxenecho_requests_total 7\n\
             # HELP xenecho_responses_total Responses.\n# TYPE xenecho_responses_total counter\n\
             xenecho_responses_total{code=\"200\"} 5\nxenecho_responses_total{code=\"400\"} 2\n"
        );
        exposition::check(&text).expect("valid");
    }

    #[test]
    fn escapes_label_values_and_help_and_writes_fixed_point_values() {
        let metric = gauge("xenecho_info", "Back\\slash\nand a line.", 1)
            .label("quoted", "say \"hi\"")
            .label("path", "C:\\x\ny")
            .with_value(Value::Fixed { units: 1_700_000_000_250, decimals: 3 });
        let mut text = String::new();
        render(&mut text, &[metric]);
        assert_eq!(
            text,
            "# HELP xenecho_info Back\\\\slash\\nand a line.\n# TYPE xenecho_info gauge\n\
             xenecho_info{quoted=\"say \\\"hi\\\"\",path=\"C:\\\\x\\ny\"} 1700000000.250\n"
        );
        exposition::check(&text).expect("valid");
        let mut small = String::new();
        Value::micros_as_seconds(1_500).write(&mut small);
        assert_eq!(small, "0.001500");
    }

    #[test]
    fn a_histogram_is_cumulative_and_ends_in_its_count() {
        let histogram = Histogram {
            name: "xenecho_test_seconds",
            help: "Test.",
            bounds: &["0.1", "1", "10"],
            buckets: &[2, 0, 3],
            sum: Value::micros_as_seconds(7_250_000),
            count: 6,
        };
        let mut text = String::new();
        render_histogram(&mut text, &histogram);
        assert_eq!(
            text,
            "# HELP xenecho_test_seconds Test.\n# TYPE xenecho_test_seconds histogram\n\
             xenecho_test_seconds_bucket{le=\"0.1\"} 2\nxenecho_test_seconds_bucket{le=\"1\"} 2\n\
             xenecho_test_seconds_bucket{le=\"10\"} 5\nxenecho_test_seconds_bucket{le=\"+Inf\"} 6\n\
             xenecho_test_seconds_sum 7.250000\nxenecho_test_seconds_count 6\n"
        );
        exposition::check(&text).expect("valid");
    }

    #[test]
    fn kernel_metrics_carry_the_counters_and_unique_names() {
        let mut stats = KernelStats {
            hypercalls: 42,
            uptime_ns: 3_500_000_000,
            start_time_ns: 1_700_000_000_123_456_789,
            ..Default::default()
        };
        stats.netfront.rx_frames = 9;
        stats.netfront.connects = 3;
        stats.interfaces = 1;
        stats.netfront.rx_large_segments = 5;
        stats.netfront.rx_malformed = 6;
        stats.netfront.tx_large_segments = 10;
        stats.netfront.tx_segments_merged = 11;
        stats.dma.bounce_copies = 4;
        stats.fragments.received = 12;
        stats.fragments.oversized = 5;
        stats.fragments.no_slot = 6;
        stats.fragments.reassembled = 7;
        stats.fragments.timed_out = 8;
        let metrics = kernel_metrics(&stats);
        let value = |name: &str| metrics.iter().find(|metric| metric.name == name).map(|metric| metric.value);
        assert_eq!(value("xenecho_hypercalls_total"), Some(Value::Whole(42)));
        assert_eq!(value("xenecho_uptime_seconds"), Some(Value::Whole(3)));
        assert_eq!(value("xenecho_start_time_seconds"), Some(Value::Fixed { units: 1_700_000_000_123, decimals: 3 }));
        assert_eq!(value("xenecho_rx_packets_total"), Some(Value::Whole(9)));
        assert_eq!(value("xenecho_netfront_reconnects_total"), Some(Value::Whole(2)));
        assert_eq!(value("xenecho_interfaces"), Some(Value::Whole(1)));
        assert_eq!(value("xenecho_rx_large_segments_total"), Some(Value::Whole(5)));
        assert_eq!(value("xenecho_rx_malformed_total"), Some(Value::Whole(6)));
        assert_eq!(value("xenecho_tx_large_segments_total"), Some(Value::Whole(10)));
        assert_eq!(value("xenecho_tx_segments_merged_total"), Some(Value::Whole(11)));
        assert_eq!(value("xenecho_dma_bounce_copies_total"), Some(Value::Whole(4)));
        assert_eq!(value("xenecho_ipv4_fragments_received_total"), Some(Value::Whole(12)));
        assert_eq!(value("xenecho_ipv4_fragments_oversized_total"), Some(Value::Whole(5)));
        assert_eq!(value("xenecho_ipv4_fragments_no_slot_total"), Some(Value::Whole(6)));
        assert_eq!(value("xenecho_ipv4_datagrams_reassembled_total"), Some(Value::Whole(7)));
        assert_eq!(value("xenecho_ipv4_reassembly_timeouts_total"), Some(Value::Whole(8)));
        let mut names: alloc::vec::Vec<&str> = metrics.iter().map(|metric| metric.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), metrics.len());
        assert!(metrics.iter().all(|metric| metric.name.starts_with("xenecho_")));
        let mut text = String::new();
        render(&mut text, &metrics);
        exposition::check(&text).expect("valid");
    }
}
