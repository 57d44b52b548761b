#!/usr/bin/env bash
# `make test-two-hosts` (x86_64): two emulated Xen hosts on this machine, joined by a wire that
# exists only between them (QEMU's socket network over 127.0.0.1, bridged into xenbr0 on both),
# and the appliance live-migrated from host a to host b with `xl migrate` while a client in host
# a's dom0 keeps wrk going against it. Host a runs tests/two-hosts/host-a.sh, host b host-b.sh,
# each after tests/e2e/lib.sh and before its summary.sh. Both QEMUs run at once: about 6 GB of
# memory and both CPUs of a two-CPU machine for some ten minutes.
#
# usage: tests/two-hosts/run.sh [--timeout S]     (default 1800: each host's testbed/run.sh timeout)
# Exit status: 0 when both hosts' checks passed.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=testbed/lib.sh
source "$REPO_ROOT/testbed/lib.sh"
timeout=1800
while [ $# -gt 0 ]; do
    case $1 in
    --timeout) timeout=${2:?}; shift 2 ;;
    *) die "tests/two-hosts/run.sh: unknown argument: $1" ;;
    esac
done
out=$REPO_ROOT/build/testbed
mkdir -p "$out"
e2e=$REPO_ROOT/tests/e2e
for host in a b; do
    cat "$e2e/lib.sh" "$REPO_ROOT/tests/two-hosts/host-$host.sh" "$e2e/summary.sh" > "$REPO_ROOT/build/two-hosts-$host.sh"
done

# A free port for the wire: nothing listens on it now (testbed/lib.sh's listening tries no
# connection: host a's QEMU would take one for host b's).
port=""
for candidate in $(shuf -i 20000-60999 -n 40); do
    listening "$candidate" || { port=$candidate; break; }
done
[ -n "$port" ] || die "no free port on 127.0.0.1 for the wire"

bash "$REPO_ROOT/testbed/setup.sh"   # once, before the two hosts (each run.sh checks it again)
log "host a: booting (the wire listens on 127.0.0.1:$port); its console: build/testbed/console-host-a.log"
bash "$REPO_ROOT/testbed/run.sh" --link "a:$port" --script "$REPO_ROOT/build/two-hosts-a.sh" --timeout "$timeout" \
    --log "$out/console-host-a.log" > "$out/host-a.out" 2>&1 &
host_a=$!
for _ in $(seq 120); do listening "$port" && break; kill -0 "$host_a" 2>/dev/null || break; sleep 0.5; done
listening "$port" || { cat "$out/host-a.out" >&2; die "host a's QEMU does not listen on 127.0.0.1:$port"; }
log "host b: booting (the wire connects to 127.0.0.1:$port); its console: build/testbed/console-host-b.log"
bash "$REPO_ROOT/testbed/run.sh" --link "b:$port" --script "$REPO_ROOT/build/two-hosts-b.sh" --timeout "$timeout" \
    --log "$out/console-host-b.log" > "$out/host-b.out" 2>&1 &
host_b=$!

status_a=0 status_b=0
wait "$host_a" || status_a=$?
wait "$host_b" || status_b=$?
for host in a b; do
    echo "===== host $host ====="
    grep -v '^testbed: ' "$out/host-$host.out" || true
done
figures=$(sed -n 's/^TWOHOSTS //p' "$out/host-a.out" | tail -n 1)
log "host a: status $status_a; host b: status $status_b${figures:+; $figures}"
[ "$status_a" -eq 0 ] && [ "$status_b" -eq 0 ]
