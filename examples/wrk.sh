#!/bin/bash
# A short load: wrk with 2 threads and 16 connections for 5 seconds against the echo. On the
# emulated test host expect a few hundred to two thousand requests a second (everything runs about
# a thousand times slower than hardware).
#
#   make run DOM0_SCRIPT=examples/wrk.sh           (in `make shell`: bash examples/wrk.sh)
#
# Runs in dom0 with GUEST_IP, the appliance's address, set. Exits non-zero if wrk reports no rate,
# a socket error or an answer other than 2xx.
set -euo pipefail
url="http://${GUEST_IP:?GUEST_IP: the address of the appliance}/"
output=$(wrk -t2 -c16 -d5s "$url" 2>&1) || true
printf '%s\n' "$output"
if ! grep -q 'Requests/sec' <<< "$output" || grep -q 'Socket errors\|Non-2xx' <<< "$output"; then
    echo "wrk: FAILED: no rate, socket errors or non-2xx answers" >&2
    exit 1
fi
echo "wrk: $(awk '/Requests\/sec/ { print $2 }' <<< "$output") requests a second, all answered"
