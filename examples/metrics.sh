#!/bin/bash
# The appliance's Prometheus metrics: a scrape of /metrics, and a few of its counters.
#
#   make run DOM0_SCRIPT=examples/metrics.sh       (in `make shell`: bash examples/metrics.sh)
#
# Runs in dom0 with GUEST_IP, the appliance's address, set; the port is GUEST_METRICS_PORT when
# set (the testbed sets it from xl.cfg's metrics-port=), else the appliance's default, the one
# line below. Exits non-zero unless the scrape has the request counter.
set -euo pipefail
metrics_port=${GUEST_METRICS_PORT:-19100}
url="http://${GUEST_IP:?GUEST_IP: the address of the appliance}:$metrics_port/metrics"
scrape=$(curl -sS --fail -m 30 "$url")
grep -E '^xenecho_(http_requests_total|http_open_connections|http_connection_slots|hypercalls_total|grants_total) ' \
    <<< "$scrape" || true
if ! grep -q '^# TYPE xenecho_http_requests_total counter' <<< "$scrape"; then
    echo "metrics: FAILED: $url has no xenecho_http_requests_total" >&2
    exit 1
fi
echo "metrics: $(grep -c '^xenecho_' <<< "$scrape") samples from $url"
