//! What an operator sees of the real appliance on the simulated network:
//! the metrics page (strictly valid exposition text, with the request
//! durations on the simulated clock), `/readyz` following the link and the
//! address, and the drain (new connections refused, those in flight
//! finished).

use super::*;
use crate::metrics::exposition;
use runtime::NetworkState;

const STEP: Duration = Duration::from_millis(10);

fn network() -> Network {
    let mut network = Network::new(&super::tests::settings());
    network.step(STEP);
    network
}

/// Fetches `path` on a new host's connection; returns its status, if any
/// came within 5 s.
fn status_of(network: &mut Network, path: &str) -> Option<u16> {
    let host = network.add_host();
    let connection = network.connect(host, Behaviour::get(path));
    network.run_until(Duration::from_secs(5), STEP, |network| network.outcome(connection).ended_at.is_some());
    network.outcome(connection).status
}

/// The sample `line` starts with, its value.
fn sample<'t>(text: &'t str, series: &str) -> Option<&'t str> {
    text.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
}

#[test]
fn the_metrics_page_is_valid_exposition_text_and_times_answers_on_the_simulated_clock() {
    let mut network = network();
    for path in ["/a", "/b", "/c", "/?delay=250ms", "/?delay=2s", "/readyz"] {
        assert_eq!(status_of(&mut network, path), Some(200), "{path}");
    }
    let text = network.metrics_page();
    exposition::check(&text).unwrap_or_else(|problem| panic!("{problem}\n{text}"));
    let build = text.lines().find(|line| line.starts_with("xenecho_build_info{")).expect("the build");
    assert!(build.contains("version=\"0.1.0\"") && build.contains("arch=\"") && build.ends_with("} 1"), "{build}");
    let histogram = "xenecho_http_request_duration_seconds";
    assert_eq!(sample(&text, &format!("{histogram}_bucket{{le=\"0.0005\"}}")), Some("4"), "{text}");
    assert_eq!(sample(&text, &format!("{histogram}_bucket{{le=\"0.25\"}}")), Some("5"));
    assert_eq!(sample(&text, &format!("{histogram}_bucket{{le=\"1\"}}")), Some("5"));
    assert_eq!(sample(&text, &format!("{histogram}_bucket{{le=\"2.5\"}}")), Some("6"));
    assert_eq!(sample(&text, &format!("{histogram}_count")), Some("6"));
    assert_eq!(sample(&text, &format!("{histogram}_sum")), Some("2.250000"));
    for (series, value) in [
        ("xenecho_link_up", "1"),
        ("xenecho_ipv4_address_bound", "1"),
        ("xenecho_draining", "0"),
        ("xenecho_http_connection_slots", "8"),
        ("xenecho_http_requests_total", "6"),
        ("xenecho_start_time_seconds", "0.000"),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series}");
    }
    network.drain();
    let text = network.metrics_page();
    exposition::check(&text).expect("valid while draining");
    assert_eq!(sample(&text, "xenecho_draining"), Some("1"));
}

#[test]
fn readyz_follows_the_link_and_the_address_and_healthz_stays_ok() {
    let mut network = network();
    let states = [
        (NetworkState { link_up: true, address_bound: true, ..NetworkState::default() }, 200),
        (NetworkState { link_up: false, address_bound: true, ..NetworkState::default() }, 503),
        (NetworkState { link_up: true, address_bound: false, ..NetworkState::default() }, 503),
        (NetworkState { link_up: false, address_bound: false, ..NetworkState::default() }, 503),
        // An IPv6 address beyond the link-local one is an address too.
        (ipv6_only(true), 200),
        (ipv6_only(false), 503),
    ];
    for (state, ready) in states {
        network.set_network(state);
        assert_eq!(status_of(&mut network, "/readyz"), Some(ready), "{state:?}");
        assert_eq!(status_of(&mut network, "/healthz"), Some(200), "{state:?}");
        let text = network.metrics_page();
        assert_eq!(sample(&text, "xenecho_link_up"), Some(if state.link_up { "1" } else { "0" }));
        assert_eq!(sample(&text, "xenecho_ipv4_address_bound"), Some(if state.address_bound { "1" } else { "0" }));
        let flag = |on: bool| Some(if on { "1" } else { "0" });
        assert_eq!(sample(&text, "xenecho_ipv6_address_bound"), flag(state.ipv6_address_bound));
        assert_eq!(sample(&text, "xenecho_ipv6_default_router"), flag(state.ipv6_default_router));
        assert_eq!(sample(&text, "xenecho_ipv6_addresses"), Some(state.ipv6_addresses.to_string().as_str()));
        assert_eq!(
            sample(&text, "xenecho_ipv6_router_advertisements_total"),
            Some(state.router_advertisements.to_string().as_str())
        );
    }
}

/// The link up with no IPv4 address, and IPv6 as a router advertisement
/// left it: a SLAAC address (`global`) beside the link-local one, or only
/// the link-local one.
fn ipv6_only(global: bool) -> NetworkState {
    NetworkState {
        link_up: true,
        address_bound: false,
        ipv6_addresses: 1 + usize::from(global),
        ipv6_address_bound: global,
        ipv6_default_router: global,
        router_advertisements: 3,
    }
}

#[test]
fn draining_refuses_new_connections_and_lets_the_ones_in_flight_finish() {
    let mut network = network();
    let host = network.add_host();
    let delayed = network.connect(host, Behaviour::get("/?delay=1s"));
    let large = network.connect(host, Behaviour::get("/?bytes=300000"));
    let idle = network.connect(host, Behaviour::KeepAlive);
    network.run(Duration::from_millis(100), STEP);
    assert_eq!(network.outcome(idle).status, Some(200), "the idle client was served once");
    network.drain();
    assert!(network.in_flight() >= 2, "the delayed and the large answers are in flight");
    let late = network.connect(host, Behaviour::get("/late"));
    let drained = network.run_until(Duration::from_secs(5), STEP, |network| network.in_flight() == 0);
    assert!(drained, "in flight after 5 s: {}", network.in_flight());
    assert_eq!(network.outcome(delayed).status, Some(200));
    let large_outcome = network.outcome(large);
    assert_eq!(large_outcome.status, Some(200));
    assert!(large_outcome.received > 300_000, "the whole body: {large_outcome:?}");
    // The idle keep-alive connection counted as in flight until its close
    // (at once) was acknowledged: nothing is in flight now.
    let late = network.outcome(late);
    assert!(late.connected_at.is_none() && late.status.is_none(), "refused: {late:?}");
    assert!(late.ended_at.is_some(), "refused at once, not left hanging: {late:?}");
}
