#!/bin/bash
# The benchmark, run inside dom0 of the emulated Xen host by `make bench` (through
# testbed/run.sh --script). It measures the appliance (xl.cfg) and two peers, Linux + nginx as a
# PVH domU (build/peer/peer.cfg) and the same kernel, initramfs and nginx as a PV domU
# (build/peer/peer-pv.cfg; left out with PV_PEER=no), on this one host, alternating between them
# so that slow drifts of the emulator hit all alike; and dom0's ceiling, nginx in dom0 answering
# wrk by itself over loopback:
#   1. boot: `xl create`, then every 0.25 s the console log (its first line), the address and
#      GET / (the first HTTP 200), each timed from just before `xl create`;
#   2. load: wrk on GET / at each concurrency, ROUNDS times, the appliance, each peer, then nginx
#      in dom0 (every guest paused); around each run `xl list` CPU seconds of the guests and dom0,
#      and the appliance's /metrics counters;
#   3. bulk: one curl download and one upload of each size in BULK_SIZES (MiB), BULK_ROUNDS times,
#      the appliance then each peer, timed, with the `xl list` CPU seconds around each (and the
#      appliance's /metrics counters); then the appliance echoes a 32 MiB body, compared with what
#      was sent (skipped when BULK=no);
#   4. memory: the smallest `memory =` (of a list) with which each boots and passes a short wrk.
# One peer runs at a time: while one boots or is measured the other is paused (it keeps its
# memory: the three guests together take a few hundred MB of Xen's free 2 GB). Under load
# a guest's companion stays up beside it, idle, as when there was one peer: the appliance beside
# a peer, the PVH peer beside the appliance. In a bulk transfer every other guest is paused.
# Linux PVH guests die at random under load here (the emulator fault: docs/event-loop.md, an
# upcall vector injected again and again); a PV guest takes its events through Xen's PV callback,
# no injected vector, and dom0, PV too, never meets the fault. A crashed guest is counted,
# destroyed and started again, and the run it died in is marked, not used.
#
# Output: one "BENCH <kind> key=value ..." line per measurement (bench/report.py reads them) and
# a few "# ..." progress lines. The results line carries ~17 KB/s: keep it short.
# Settings: build/bench.conf (written by bench/run.sh). Environment from testbed's dom0 init:
# GUEST_NAME (the appliance, already started by the init: destroyed here and started again so
# that its boot is timed), XENECHO_DIR.
# The same script runs on the ARM64 test host (`make bench ARCH=aarch64`): there xl.cfg is
# xl-arm64.cfg and build/peer/peer.cfg the arm64 peer's testbed/peer/peer-arm64.cfg, each staged
# under the name used here, and PV_PEER is no (Xen on ARM has no PV guests); the consoles' logs,
# `xl list` and the rest are the same in both dom0s.
set -euo pipefail
cd "${XENECHO_DIR:-/xenecho}"
# shellcheck source=/dev/null
source build/bench.conf
# The bulk phase's settings, for a bench.conf written before it existed.
BULK=${BULK:-yes}
BULK_SIZES=${BULK_SIZES:-1 64}
BULK_ROUNDS=${BULK_ROUNDS:-2}
# The appliance's own words for the bulk phase (a bulk appliance sets its socket buffers larger).
BULK_APPLIANCE=${BULK_APPLIANCE:-}
# The PV peer, for a bench.conf written before it existed.
PV_PEER=${PV_PEER:-yes}
# domain_address, domain_state and wait_gone: dom0's, shared with its /init and the e2e suite.
# shellcheck source=testbed/dom0/lib/domains.sh
source /usr/local/lib/testbed/domains.sh

APPLIANCE_CFG=xl.cfg
PEER_CFG=build/peer/peer.cfg
PEER_PV_CFG=build/peer/peer-pv.cfg
# dom0's ceiling: nginx in dom0 with the peer's configuration (staged beside peer.cfg), moved to a
# port of 127.0.0.1, its files under CEILING_DIR.
CEILING_CONF=build/peer/nginx.conf
CEILING_DIR=/tmp/bench-nginx
CEILING_PORT=8090
CONSOLE_DIR=/var/log/xen/console
# The appliance's MAC, fixed as the peers' are in their xl configs (xl.cfg leaves it to xl, which
# picks a new one at every create). dom0's udhcpd probes an address it has not leased to this MAC
# before offering it (busybox's ARP check, 2 s when nobody answers); a guest that keeps its MAC
# gets its last lease back at once. With xl.cfg's random MAC every boot paid those 2 s and the
# peers' did not. A production appliance keeps its MAC too (the README's `vif =` with `mac=`).
APPLIANCE_MAC=00:16:3e:be:0c:00
BOOT_TIMEOUT_APPLIANCE=${BOOT_TIMEOUT_APPLIANCE:-60}
BOOT_TIMEOUT_PEER=${BOOT_TIMEOUT_PEER:-180}
# The emulator fault's marks on a Linux guest's console (the upcall re-injected at its own first
# instruction until the stack overflows) or in Xen's log (a triple fault).
FAULT_PATTERN='asm_sysvec_xen_hvm_callback|stack guard page|[Ss]tack overflow|Triple fault'
BULK_ECHO_MIB=32        # the size of the appliance's echo in the bulk phase
# A guest paused for a while catches up on its timers when it runs again (a Linux one may also
# print a soft-lockup warning on its slow console): this long for that before anything is timed.
SETTLE_SECONDS=2

# wrk holds a descriptor per connection, and so does nginx in dom0 (the ceiling): the default
# limit of 1024 would refuse part of `wrk -c 1024` in dom0 itself. Root may raise the hard limit.
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

emit() { printf 'BENCH %s\n' "$*"; }
note() { printf '# %s\n' "$*"; }
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }   # bash 5: microseconds, no fork

cfg_value() { # cfg_value FILE KEY: a plain `KEY = value` of an xl config (quotes removed)
    sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*[\"']\{0,1\}\([^\"'#]*\)[\"']\{0,1\}.*/\1/p" "$1" \
        | awk 'NR == 1 { gsub(/ /, ""); print }'   # awk reads it all: no SIGPIPE under pipefail
}

APPLIANCE=$(cfg_value "$APPLIANCE_CFG" name)
PEER=$(cfg_value "$PEER_CFG" name)
MEMORY=$(cfg_value "$APPLIANCE_CFG" memory)
VCPUS=$(cfg_value "$APPLIANCE_CFG" vcpus)
# The guests, by kind: "peer" is the PVH peer (its name from before there were two).
declare -A CFG=([appliance]=$APPLIANCE_CFG [peer]=$PEER_CFG)
declare -A NAME=([appliance]=$APPLIANCE [peer]=$PEER)
if [ "$PV_PEER" = yes ] && [ ! -f "$PEER_PV_CFG" ]; then
    note "no $PEER_PV_CFG: no PV peer"
    PV_PEER=no
fi
PEER_KINDS=(peer)
if [ "$PV_PEER" = yes ]; then
    PEER_KINDS+=(peer-pv)
    CFG[peer-pv]=$PEER_PV_CFG
    NAME[peer-pv]=$(cfg_value "$PEER_PV_CFG" name)
fi
KINDS=(appliance "${PEER_KINDS[@]}")
declare -A IP=() MEM=() CRASHES=() FAILED_STARTS=() EXTRA=()
# Words for a guest's command line beyond its xl config's (`extra=`; empty: the config's own).
for kind in "${KINDS[@]}"; do CRASHES[$kind]=0; FAILED_STARTS[$kind]=0; EXTRA[$kind]=""; done
LAST_CRASH_FAULT=""     # set when the last recorded crash carried the emulator fault's mark
HAS_HTTP=unknown        # does the appliance answer HTTP on port 80 (it did not always)?
HAS_METRICS=unknown     # and serve /metrics on port 19100?

# --- Domains -----------------------------------------------------------------------------------
crashed_or_gone() { local s; s=$(domain_state "$1"); [ -z "$s" ] || [[ $s == *c* ]]; }
# CPU seconds of every domain, as "name seconds" lines (Xen's accounting, 0.1 s resolution).
cpu_table() { { xl list 2>/dev/null || true; } | awk 'NR > 1 { print $1, $6 }'; }
cpu_in() { awk -v n="$2" '$1 == n { print $2; found = 1 } END { if (!found) print "nan" }' <<< "$1"; }

destroy() {
    local name=$1
    xl destroy "$name" >/dev/null 2>&1 || true
    wait_gone "$name" 30 >/dev/null || note "warning: $name still exists after xl destroy"
}

# pause_guest NAME, unpause_guest NAME: each acts only on a domain in the other state, and never
# on a crashed one: Xen counts the tools' pauses (a domain paused twice needs two `xl unpause`).
# unpause_guest sets UNPAUSED when it ran a domain again.
UNPAUSED=""
pause_guest() {
    local state; state=$(domain_state "$1")
    [ -n "$state" ] && [[ $state != *c* ]] && [[ $state != *p* ]] || return 0
    xl pause "$1" 2>/dev/null || note "warning: $1 could not be paused"
}
unpause_guest() {
    local state; state=$(domain_state "$1")
    [[ $state == *p* ]] && [[ $state != *c* ]] || return 0
    if xl unpause "$1" 2>/dev/null; then UNPAUSED=1; else note "warning: $1 could not be unpaused"; fi
}

# only_running KIND...: the guests of these kinds running, every other guest of the benchmark
# paused; SETTLE_SECONDS of waiting when one of them had to be run again.
only_running() {
    local kind
    UNPAUSED=""
    for kind in "${KINDS[@]}"; do
        case " $* " in
        *" $kind "*) unpause_guest "${NAME[$kind]}" ;;
        *) pause_guest "${NAME[$kind]}" ;;
        esac
    done
    [ -z "$UNPAUSED" ] || sleep "$SETTLE_SECONDS"
}

# The guest that stays up, idle, beside KIND under load (as when there was one peer): the PVH peer
# beside the appliance, the appliance beside either peer.
companion() { if [ "$1" = appliance ]; then echo peer; else echo appliance; fi; }

# The guest's address: xenstore data/ipv4-address (the appliance publishes it), else the last
# "peer: address" line on its console (the peer prints it).
address_of() {
    local name=$1 domid ip=""
    domid=$(xl domid "$name" 2>/dev/null) || return 1
    ip=$(domain_address "$domid") \
        || ip=$(sed -n 's/.*peer: address \([0-9.]*\).*/\1/p' "$CONSOLE_DIR/guest-$name.log" 2>/dev/null | tail -n 1)
    [ -n "$ip" ] && echo "$ip"
}

http_ok() { # http_ok IP: GET / answered 200
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$1/" 2>/dev/null)" = 200 ]
}

# What killed a domain, in one short line: the emulator fault's mark if the console or Xen's
# log has it, else a panic message, else the console's last line.
crash_signature() {
    local name=$1 domid=$2 line
    line=$({ grep -hE "$FAULT_PATTERN" "$CONSOLE_DIR/guest-$name.log" 2>/dev/null || true
             xl dmesg 2>/dev/null | grep -E "d${domid}v[0-9].*($FAULT_PATTERN)" || true; } | tail -n 1)
    if [ -n "$line" ]; then echo "emulator-fault: ${line:0:120}"; return; fi
    line=$(grep -hE 'Kernel panic|FATAL|panicked at|exception [0-9]+' "$CONSOLE_DIR/guest-$name.log" 2>/dev/null \
        | tail -n 1 || true)
    if [ -n "$line" ]; then echo "panic: ${line:0:120}"; return; fi
    line=$(grep -v '^[[:space:]]*$' "$CONSOLE_DIR/guest-$name.log" 2>/dev/null | tail -n 1 || true)
    echo "other: ${line:0:120}"
}

# Counts a crash of KIND's domain, emits it, destroys the domain and keeps its console log aside.
record_crash() {
    local kind=$1 phase=$2 name=${NAME[$1]} domid signature
    domid=$(xl domid "$name" 2>/dev/null || echo "?")
    signature=$(crash_signature "$name" "$domid" | tr -d '\r')
    CRASHES[$kind]=$((CRASHES[$kind] + 1))
    emit "crash guest=$kind phase=$phase mem=${MEM[$kind]:-?} n=${CRASHES[$kind]} state=$(domain_state "$name") why=\"${signature//\"/\'}\""
    case $signature in emulator-fault:*) LAST_CRASH_FAULT=1 ;; *) LAST_CRASH_FAULT="" ;; esac
    destroy "$name"
    mv -f "$CONSOLE_DIR/guest-$name.log" "$CONSOLE_DIR/guest-$name-crash${CRASHES[$kind]}.log" 2>/dev/null || true
}

# start_guest KIND MEMORY PHASE: xl create, then poll for the first console line, the address and
# the first HTTP 200. Emits a "boot" line; sets IP[KIND]. Status 0 when HTTP answered, 1 otherwise
# (the domain is then destroyed unless it is only HTTP that is missing on the appliance). A peer
# starts with the other peer paused: one Linux guest runs at a time.
start_guest() {
    local kind=$1 mem=$2 phase=$3 name=${NAME[$1]} t0 t_created t_console="" t_ip="" t_http="" ip=""
    local deadline status other console=$CONSOLE_DIR/guest-${NAME[$1]}.log
    destroy "$name"
    rm -f "$console"
    MEM[$kind]=$mem
    LAST_CRASH_FAULT=""
    local timeout=$BOOT_TIMEOUT_APPLIANCE
    if [ "$kind" != appliance ]; then
        timeout=$BOOT_TIMEOUT_PEER
        for other in "${PEER_KINDS[@]}"; do
            [ "$other" = "$kind" ] || pause_guest "${NAME[$other]}"
        done
    fi
    t0=$(now_us)
    local extra=()
    [ -z "${EXTRA[$kind]}" ] || extra=("extra=\"${EXTRA[$kind]}\"")
    [ "$kind" != appliance ] || extra+=("vif=['bridge=xenbr0,mac=$APPLIANCE_MAC']")
    if ! xl create -q "${CFG[$kind]}" "memory=$mem" "vcpus=$VCPUS" "${extra[@]}" > /tmp/xl-create.out 2>&1; then
        # xl's first complaint says why (the last one is about cleaning up).
        emit "boot guest=$kind phase=$phase mem=$mem status=create-failed why=\"$(grep -m 1 -iE 'error|fail|panic' \
            /tmp/xl-create.out | tr -d '"' | cut -c1-160)\""
        destroy "$name"
        return 1
    fi
    t_created=$(now_us)
    deadline=$((SECONDS + timeout))
    status=timeout
    while [ $SECONDS -lt $deadline ]; do
        # xenconsoled appends the guest's console to its log as it comes: the first line that is
        # not blank, seen at this poll (a line written before `xl create` returned counts then).
        if [ -z "$t_console" ] && grep -q '[^[:space:]]' "$console" 2>/dev/null; then t_console=$(now_us); fi
        if crashed_or_gone "$name"; then status=died; break; fi
        if [ -z "$ip" ] && ip=$(address_of "$name"); then t_ip=$(now_us); fi
        if [ -n "$ip" ] && http_ok "$ip"; then t_http=$(now_us); status=ok; break; fi
        # An appliance without HTTP (older images) answers TCP echo only: say so after a while.
        if [ "$kind" = appliance ] && [ -n "$ip" ] && [ $(( $(now_us) - t_ip )) -gt 15000000 ]; then
            status=no-http; break
        fi
        sleep 0.25   # never busy-poll: every vCPU shares one emulated core
    done
    IP[$kind]=$ip
    emit "boot guest=$kind phase=$phase mem=$mem status=$status ip=${ip:-none}" \
         "create_ms=$(( (t_created - t0) / 1000 ))" \
         "console_ms=$([ -n "$t_console" ] && echo $(( (t_console - t0) / 1000 )) || echo nan)" \
         "address_ms=$([ -n "$t_ip" ] && echo $(( (t_ip - t0) / 1000 )) || echo nan)" \
         "http_ms=$([ -n "$t_http" ] && echo $(( (t_http - t0) / 1000 )) || echo nan)"
    case $status in
    ok) [ "$kind" = appliance ] && HAS_HTTP=yes
        FAILED_STARTS[$kind]=0
        return 0 ;;
    no-http) HAS_HTTP=no; return 1 ;;
    died) record_crash "$kind" "boot-$phase"; return 1 ;;
    *) destroy "$name"; return 1 ;;
    esac
}

# A guest that failed to start this many times in a row is left out from then on.
usable() { [ "${FAILED_STARTS[$1]}" -lt 3 ]; }

# --- Load ------------------------------------------------------------------------------------
# wrk prints its summary through this script: exact numbers instead of its rounded text.
cat > /tmp/bench.lua <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d bytes=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.0f\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
LUA

# The appliance's counters as "name value" lines (labels folded into the name), or nothing.
scrape() {
    curl -s --max-time 5 "http://$1:19100/metrics" 2>/dev/null \
        | awk '/^xenecho_[a-z_]+(\{[^}]*\})? [0-9]+$/ {
                 gsub(/"/, "", $1); gsub(/[{}=]/, ".", $1); sub(/\.$/, "", $1); print $1, $2 }' || true
}

# metrics_delta BEFORE AFTER [PATTERN]: "name=increase " for each of two scrapes' samples (scrape's
# lines) that changed, of those whose name matches the awk regular expression PATTERN (default: all).
metrics_delta() {
    echo "$1" > /tmp/metrics.before
    echo "$2" > /tmp/metrics.after
    awk -v keep="${3:-.}" '
        NR == FNR { before[$1] = $2; next }
        ($1 in before) && $1 ~ keep { d = $2 - before[$1]; if (d != 0) printf "%s=%.0f ", $1, d }' \
        /tmp/metrics.before /tmp/metrics.after
}

# run_wrk KIND CONNECTIONS SECONDS PHASE ROUND: one wrk run; emits "wrk" (and "metrics") lines.
# Status 0 if the guest survived it.
run_wrk() {
    local kind=$1 connections=$2 seconds=$3 phase=$4 round=$5 name=${NAME[$1]} other
    other=$(companion "$kind")
    local ip=${IP[$kind]:-} before after metrics_before="" metrics_after="" result status=ok
    before=$(cpu_table)
    if [ "$kind" = appliance ] && [ "$HAS_METRICS" != no ]; then metrics_before=$(scrape "$ip"); fi
    timeout $((seconds + 60)) wrk -t 1 -c "$connections" -d "${seconds}s" --timeout 10s \
        -s /tmp/bench.lua "http://$ip/" > /tmp/wrk.out 2>&1 || true
    after=$(cpu_table)
    if crashed_or_gone "$name"; then status=crashed; fi
    if [ "$kind" = appliance ] && [ "$HAS_METRICS" != no ] && [ $status = ok ]; then
        metrics_after=$(scrape "$ip")
        if [ -z "$metrics_before" ] || [ -z "$metrics_after" ]; then
            HAS_METRICS=no
            note "the appliance has no metrics endpoint (http://$ip:19100/metrics)"
        else
            HAS_METRICS=yes
        fi
    fi
    result=$(sed -n 's/^WRK //p' /tmp/wrk.out | tail -n 1)
    [ -n "$result" ] || result="requests=0 wrk_failed=\"$(tail -n 1 /tmp/wrk.out | tr -d '"' | cut -c1-100)\""
    emit "wrk guest=$kind phase=$phase c=$connections round=$round mem=${MEM[$kind]} status=$status $result" \
         "cpu_guest=$(cpu_in "$before" "$name")/$(cpu_in "$after" "$name")" \
         "cpu_dom0=$(cpu_in "$before" Domain-0)/$(cpu_in "$after" Domain-0)" \
         "cpu_other=$(cpu_in "$before" "${NAME[$other]}")/$(cpu_in "$after" "${NAME[$other]}")"
    if [ -n "$metrics_after" ]; then
        # Counter deltas over the run (the two scrapes themselves add one request each way).
        emit "metrics guest=$kind phase=$phase c=$connections round=$round $(metrics_delta "$metrics_before" "$metrics_after")"
    fi
    if [ $status = crashed ]; then
        record_crash "$kind" "$phase-c$connections"
        return 1
    fi
}

# ensure_running KIND PHASE: (re)starts KIND at its memory if it is not serving.
ensure_running() {
    local kind=$1
    if ! crashed_or_gone "${NAME[$kind]}" && [ -n "${IP[$kind]:-}" ]; then return 0; fi
    while usable "$kind"; do
        start_guest "$kind" "${MEM[$kind]}" "$2-restart" && return 0
        FAILED_STARTS[$kind]=$((FAILED_STARTS[$kind] + 1))
        [ "$kind" = appliance ] && [ "$HAS_HTTP" = no ] && return 1
    done
    return 1
}

# --- Bulk transfers ----------------------------------------------------------------------------
# curl's options for every bulk transfer: after each transfer it prints "STATUS DOWN UP" (the HTTP
# status, then the bytes it received and sent). A transfer of 64 MiB takes tens of seconds here, so
# the limit on the whole is generous; a guest that died mid-transfer leaves the connection silent,
# and curl gives up after 30 s below 1 KiB/s instead of waiting for that limit.
BULK_CURL=(-sS --connect-timeout 30 --speed-limit 1024 --speed-time 30 --max-time 600
           -w '%{http_code} %{size_download} %{size_upload}\n')

# bulk_body SIZE: writes /tmp/bulk-SIZEM, SIZE MiB of random bytes, the body of the uploads and of
# the echo. /tmp is a tmpfs in dom0's 1 GB: the caller removes it after its last use.
bulk_body() {
    head -c $(( $1 * 1048576 )) /dev/urandom > "/tmp/bulk-$1M"
}

# seconds_between T0 T1: the time between two now_us readings, as seconds with three decimals.
seconds_between() {
    local us=$(( $2 - $1 ))
    printf '%d.%03d' $(( us / 1000000 )) $(( us / 1000 % 1000 ))
}

# bulk_curl KIND DIRECTION SIZE: the transfer itself, curl's lines in /tmp/bulk.out.
#   down:   the appliance generates the body (bytes=N, README "Echo options"); nginx sends a file.
#   up:     the body from /tmp/bulk-SIZEM, to the appliance's counting sink (X-Echo-Sink: count: it
#           reads the body to its end and answers its length, hashing nothing, as nginx's /sink
#           computes nothing) or to nginx's /sink (it answers
#           204 at once and reads the body afterwards). Either way a GET / follows on the same
#           connection (--next reuses it), and a server answers it only once it has read the
#           whole body: the time is that of the body's arrival, not of curl's last write.
#   echo:   the appliance sends the body back; the answer goes to /tmp/bulk-echo.
# -T sends the file as it reads it (--data-binary would load it all first, inside the timing);
# -X POST makes that a POST, and an empty Expect: drops curl's 100-continue exchange (up to a
# second's wait, for a server that sends no 100 Continue) for both guests alike. The appliance's
# URLs have a path because -T adds the file's name to a URL that ends in /; the echo options apply
# on any path.
bulk_curl() {
    local kind=$1 direction=$2 size=$3 ip=${IP[$1]} body=/tmp/bulk-$3M
    rm -f /tmp/bulk-answer /tmp/bulk-echo   # curl leaves an old file as it was when nothing comes
    case $kind/$direction in
    appliance/down)
        curl "${BULK_CURL[@]}" -o /dev/null "http://$ip/?bytes=$(( size * 1048576 ))" ;;
    peer*/down)
        curl "${BULK_CURL[@]}" -o /dev/null "http://$ip/bulk/${size}M" ;;
    appliance/up)
        curl "${BULK_CURL[@]}" -X POST -T "$body" -H 'Expect:' -H 'X-Echo-Sink: count' -o /tmp/bulk-answer \
            "http://$ip/upload" --next "${BULK_CURL[@]}" -o /dev/null "http://$ip/" ;;
    peer*/up)
        curl "${BULK_CURL[@]}" -X POST -T "$body" -H 'Expect:' -o /tmp/bulk-answer \
            "http://$ip/sink" --next "${BULK_CURL[@]}" -o /dev/null "http://$ip/" ;;
    appliance/echo)
        curl "${BULK_CURL[@]}" -X POST -T "$body" -H 'Expect:' -o /tmp/bulk-echo "http://$ip/echo" ;;
    esac > /tmp/bulk.out 2> /tmp/bulk.err
}

# bulk_status KIND DIRECTION SIZE: what bulk_curl's transfer came to: ok (the status expected and
# every byte), http-CODE (another status; 000 when curl got none), short (the status, but bytes
# missing, the sink counting fewer, or the GET after an upload unanswered) or differs (an echo
# that is not the body).
bulk_status() {
    local kind=$1 direction=$2 bytes=$(( $3 * 1048576 )) code down up next_code
    read -r code down up <<< "$(sed -n 1p /tmp/bulk.out)"
    read -r next_code _ <<< "$(sed -n 2p /tmp/bulk.out)"
    case $kind/$direction/${code:-000} in
    */down/200|*/echo/200|appliance/up/200|peer*/up/204|peer*/up/200) ;;
    *) echo "http-${code:-000}"; return ;;
    esac
    case $direction in
    down) [ "$down" = "$bytes" ] || { echo short; return; } ;;
    up) if [ "$up" != "$bytes" ] || [ "${next_code:-000}" != 200 ]; then echo short; return; fi
        if [ "$kind" = appliance ] && [ "$(sed -n 1p /tmp/bulk-answer)" != "length=$bytes" ]; then
            echo short; return
        fi ;;
    echo) [ "$down" = "$bytes" ] || { echo short; return; }
          cmp -s "/tmp/bulk-$3M" /tmp/bulk-echo || { echo differs; return; } ;;
    esac
    echo ok
}

# bulk_transfer KIND DIRECTION SIZE ROUND: one timed transfer of SIZE MiB; emits a "bulk" line
# (bytes: received for down and echo, sent for up), and for the appliance a "metrics" line after it
# (its /metrics counters' increase over the transfer). Status 1 if the guest crashed in it.
# Every other guest is paused meanwhile: an idle Linux guest's timer interrupts cost the emulated
# host much more than real hardware (each one an injection through emulated SVM), and a transfer
# is long enough for that to show; paused, it takes nothing, whichever guest is measured. They stay
# paused until a measurement that wants them running.
bulk_transfer() {
    local kind=$1 direction=$2 size=$3 round=$4 name=${NAME[$1]} before after t0 t1 status down up bytes
    local metrics_before="" metrics_after=""
    only_running "$kind"
    # The appliance's counters around the transfer, outside the timing and the CPU seconds.
    if [ "$kind" = appliance ] && [ "$HAS_METRICS" != no ]; then metrics_before=$(scrape "${IP[$kind]}"); fi
    before=$(cpu_table)
    t0=$(now_us)
    bulk_curl "$kind" "$direction" "$size" || true
    t1=$(now_us)
    after=$(cpu_table)
    if crashed_or_gone "$name"; then status=crashed; else status=$(bulk_status "$kind" "$direction" "$size"); fi
    if [ -n "$metrics_before" ] && [ "$status" != crashed ]; then metrics_after=$(scrape "${IP[$kind]}"); fi
    read -r _ down up <<< "$(sed -n 1p /tmp/bulk.out)"
    bytes=$down
    if [ "$direction" = up ]; then bytes=$up; fi
    emit "bulk guest=$kind dir=$direction size_mib=$size round=$round status=$status" \
         "seconds=$(seconds_between "$t0" "$t1") bytes=${bytes:-0}" \
         "cpu_guest=$(cpu_in "$before" "$name")/$(cpu_in "$after" "$name")" \
         "cpu_dom0=$(cpu_in "$before" Domain-0)/$(cpu_in "$after" Domain-0)"
    if [ -n "$metrics_after" ]; then
        # Its counters' increase, for the report's figures per MiB: the plain counters only (no
        # gauge, label or histogram bucket), to keep the line short. The two scrapes add a
        # connection's few frames each, against hundreds a MiB.
        emit "metrics guest=$kind phase=bulk dir=$direction size_mib=$size round=$round" \
             "$(metrics_delta "$metrics_before" "$metrics_after" '^xenecho_[a-z_]+_total$')"
    fi
    if [ "$status" != ok ] && [ "$status" != crashed ]; then
        note "bulk $kind $direction $size MiB: $status" \
             "(curl printed: $(tr '\n' ' ' < /tmp/bulk.out)$(tail -n 1 /tmp/bulk.err | cut -c1-100))"
    fi
    if [ "$status" = crashed ]; then
        record_crash "$kind" "bulk-$direction-${size}M"
        return 1
    fi
}

# bulk_run KIND DIRECTION SIZE ROUND: one measured transfer; one the guest died in is counted, and
# made once more after a restart (as load_run does). Status 0 if a transfer survived.
bulk_run() {
    local kind=$1 direction=$2 size=$3 round=$4 attempt
    for attempt in 1 2; do
        if ! ensure_running "$kind" bulk; then
            emit "bulk guest=$kind dir=$direction size_mib=$size round=$round status=not-running"
            return 1
        fi
        bulk_transfer "$kind" "$direction" "$size" "$round" && return 0
    done
    return 1
}

# --- Memory ----------------------------------------------------------------------------------
# probe KIND MEMORY: boots with MEMORY and passes a short wrk (no errors, still running).
# A peer killed by the emulator fault says nothing about memory: such a probe is tried again,
# and if the fault kills all three tries of a guest that did boot and answer, the memory was
# enough for that ("fault-served", counted as a pass: the fault strikes at any size).
probe() {
    local kind=$1 mem=$2 attempt line verdict=fail served=0
    for attempt in 1 2 3; do
        verdict=fail
        if start_guest "$kind" "$mem" "mem"; then
            served=1
            if run_wrk "$kind" "$MEM_CONNECTIONS" "$MEM_DURATION" mem "$attempt"; then
                line=$(sed -n 's/^WRK //p' /tmp/wrk.out | tail -n 1)
                if [[ $line =~ requests=([0-9]+)\ .*err_connect=0\ err_read=0\ err_write=0\ err_status=0\ err_timeout=0 ]] \
                        && [ "${BASH_REMATCH[1]}" -gt 0 ]; then
                    verdict=pass
                fi
                break
            fi
        fi
        # Retry only when the last crash of this kind carries the emulator fault's mark.
        if [ "$kind" != appliance ] && [ -n "${LAST_CRASH_FAULT:-}" ]; then
            LAST_CRASH_FAULT=""
            verdict=fault
            continue
        fi
        break
    done
    destroy "${NAME[$kind]}"
    if [ $verdict = fault ] && [ $served = 1 ]; then verdict=fault-served; fi
    emit "memprobe guest=$kind mem=$mem result=$verdict attempts=$attempt"
    [ $verdict = pass ] || [ $verdict = fault-served ]
}

# bisect KIND SIZES...: the smallest size that passes, assuming more memory never hurts.
bisect() {
    local kind=$1; shift
    local sizes=("$@") low=0 high=$(($# - 1)) middle
    if ! probe "$kind" "${sizes[$high]}"; then
        emit "memory guest=$kind min=none above=${sizes[$high]}"
        return
    fi
    while [ $low -lt $high ]; do
        middle=$(( (low + high) / 2 ))
        if probe "$kind" "${sizes[$middle]}"; then high=$middle; else low=$((middle + 1)); fi
    done
    emit "memory guest=$kind min=${sizes[$low]} below=$([ $low -gt 0 ] && echo "${sizes[$((low - 1))]}" || echo none)"
}

# --- dom0's ceiling -----------------------------------------------------------------------------
# nginx in dom0 answering GET / by itself over loopback: wrk and the server both in dom0, with no
# guest, netback or bridge between them, the most this host serves whatever the server. It is the
# peer's nginx.conf (the same program and settings: one worker, keep-alive, the same fixed body),
# run as a daemon on 127.0.0.1:CEILING_PORT with its files under CEILING_DIR. Every guest is
# paused during its runs: the figure is what dom0 does alone.
CEILING=no      # yes once nginx in dom0 answered GET / with 200
ceiling_start() {
    if ! command -v nginx >/dev/null 2>&1 || [ ! -f "$CEILING_CONF" ]; then
        note "no nginx in dom0 or no $CEILING_CONF: no ceiling"
        return 1
    fi
    mkdir -p "$CEILING_DIR" /var/lib/nginx /var/log/nginx   # nginx's built-in temporary paths
    sed -e 's|^daemon off;.*|daemon on;|' \
        -e "s|^pid .*|pid $CEILING_DIR/nginx.pid;|" \
        -e "s|^error_log .*|error_log $CEILING_DIR/error.log warn;|" \
        -e "s|listen 80 default_server;|listen 127.0.0.1:$CEILING_PORT default_server;|" \
        "$CEILING_CONF" > "$CEILING_DIR/nginx.conf"
    if grep -q "listen 127.0.0.1:$CEILING_PORT " "$CEILING_DIR/nginx.conf" \
            && nginx -p "$CEILING_DIR" -c "$CEILING_DIR/nginx.conf" -e "$CEILING_DIR/error.log" 2>/tmp/nginx.err \
            && http_ok "127.0.0.1:$CEILING_PORT"; then
        CEILING=yes
        return 0
    fi
    note "nginx in dom0 did not answer on 127.0.0.1:$CEILING_PORT: no ceiling" \
         "($(cat /tmp/nginx.err "$CEILING_DIR/error.log" 2>/dev/null | tail -n 1 | cut -c1-120))"
    ceiling_stop
    return 1
}
ceiling_stop() {
    nginx -s stop -p "$CEILING_DIR" -c "$CEILING_DIR/nginx.conf" -e "$CEILING_DIR/error.log" 2>/dev/null || true
}

# ceiling_run CONNECTIONS ROUND: one wrk run against nginx in dom0, as run_wrk runs it against a
# guest (same wrk options, the same script); emits a "wrk" line with guest=dom0 phase=ceiling.
ceiling_run() {
    local connections=$1 round=$2 before after result status=ok
    [ "$CEILING" = yes ] || return 0
    only_running
    before=$(cpu_table)
    timeout $((DURATION + 60)) wrk -t 1 -c "$connections" -d "${DURATION}s" --timeout 10s \
        -s /tmp/bench.lua "http://127.0.0.1:$CEILING_PORT/" > /tmp/wrk.out 2>&1 || true
    after=$(cpu_table)
    kill -0 "$(cat "$CEILING_DIR/nginx.pid" 2>/dev/null || echo 0)" 2>/dev/null || status=nginx-gone
    result=$(sed -n 's/^WRK //p' /tmp/wrk.out | tail -n 1)
    [ -n "$result" ] || result="requests=0 wrk_failed=\"$(tail -n 1 /tmp/wrk.out | tr -d '"' | cut -c1-100)\""
    emit "wrk guest=dom0 phase=ceiling c=$connections round=$round status=$status $result" \
         "cpu_dom0=$(cpu_in "$before" Domain-0)/$(cpu_in "$after" Domain-0)"
    if [ $status != ok ]; then
        note "nginx in dom0 is gone: no more ceiling runs"
        CEILING=no
    fi
}

# --- The run ---------------------------------------------------------------------------------
started=$SECONDS
emit "host xen=$(xl info | awk -F': ' '/^xen_version/ { print $2 }') xen_cpus=$(xl info | awk -F': ' '/^nr_cpus/ { print $2 }')" \
     "dom0_kernel=$(uname -r)" \
     "dom0_vcpus=$(nproc) dom0_mem_mb=$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo)" \
     "xen_free_mb=$(xl info | awk -F': ' '/^free_memory/ { print $2 }') wrk=\"$(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }')\"" \
     "nofile=$(ulimit -n)"
emit "config memory=$MEMORY vcpus=$VCPUS duration=$DURATION rounds=$ROUNDS concurrencies=\"$CONCURRENCIES\"" \
     "boot_rounds=$BOOT_ROUNDS mem_duration=$MEM_DURATION mem_connections=$MEM_CONNECTIONS" \
     "bulk=$BULK bulk_sizes=\"$BULK_SIZES\" bulk_rounds=$BULK_ROUNDS bulk_echo_mib=$BULK_ECHO_MIB" \
     "bulk_appliance=\"$BULK_APPLIANCE\" pv_peer=$PV_PEER settle_seconds=$SETTLE_SECONDS"
for connections in $CONCURRENCIES; do
    if [ $((connections + 32)) -gt "$(ulimit -n)" ]; then
        note "warning: $connections connections and a descriptor limit of $(ulimit -n): wrk will fail to open some"
    fi
done
# dom0's init started the appliance already; it is timed from its own `xl create` below.
destroy "$APPLIANCE"

# boot_peer KIND ROUND: the timed boot of a peer. The PVH peer starts with the appliance's memory,
# the PV peer with the PVH peer's (the same guest but for its mode); if Linux cannot boot in it,
# the next size of PEER_MEMORY_SIZES up, kept for the rest of the run.
declare -A PEER_MEMORY=()
boot_peer() {
    local kind=$1 round=$2 faults=0 next size
    if [ -z "${PEER_MEMORY[$kind]:-}" ]; then
        PEER_MEMORY[$kind]=$MEMORY
        [ "$kind" = peer ] || PEER_MEMORY[$kind]=${PEER_MEMORY[peer]:-$MEMORY}
    fi
    until start_guest "$kind" "${PEER_MEMORY[$kind]}" "boot$round"; do
        if [ -n "$LAST_CRASH_FAULT" ] && [ $faults -lt 3 ]; then
            faults=$((faults + 1)); continue             # the emulator fault: try again as it was
        fi
        # The next size of the peer's memory list.
        next=""
        for size in $PEER_MEMORY_SIZES; do
            if [ "$size" -gt "${PEER_MEMORY[$kind]}" ]; then next=$size; break; fi
        done
        if [ -z "$next" ]; then FAILED_STARTS[$kind]=3; break; fi
        note "${NAME[$kind]} did not come up with ${PEER_MEMORY[$kind]} MB: trying $next MB"
        PEER_MEMORY[$kind]=$next
    done
}

note "boot: $BOOT_ROUNDS rounds, appliance then ${PEER_KINDS[*]}, the appliance with $MEMORY MB"
for round in $(seq "$BOOT_ROUNDS"); do
    start_guest appliance "$MEMORY" "boot$round" || true
    [ "$round" = "$BOOT_ROUNDS" ] || destroy "$APPLIANCE"
    for kind in "${PEER_KINDS[@]}"; do
        boot_peer "$kind" "$round"
        [ "$round" = "$BOOT_ROUNDS" ] || destroy "${NAME[$kind]}"
    done
done
for kind in "${PEER_KINDS[@]}"; do
    emit "peer_memory guest=$kind used=${PEER_MEMORY[$kind]} wanted=$MEMORY"
done
note "boot phase done after $((SECONDS - started)) s"

note "load: wrk -t1 -d${DURATION}s at $CONCURRENCIES connections, $ROUNDS rounds, alternating; nginx in dom0 after each round"
ceiling_start || true
# load_run KIND CONNECTIONS ROUND: one measured run, KIND and its companion running, the other
# peer paused; a run the guest died in is counted, and run once more after a restart. Status 0 if
# a run survived.
load_run() {
    local kind=$1 connections=$2 round=$3 attempt
    for attempt in 1 2; do
        if ! ensure_running "$kind" load; then
            emit "wrk guest=$kind phase=load c=$connections round=$round status=not-running"
            return 1
        fi
        only_running "$kind" "$(companion "$kind")"
        run_wrk "$kind" "$connections" "$DURATION" load "$round" && return 0
    done
    return 1
}
for connections in $CONCURRENCIES; do
    unset survived
    declare -A survived=()
    for kind in "${KINDS[@]}"; do survived[$kind]=0; done
    for round in $(seq "$ROUNDS"); do
        for kind in "${KINDS[@]}"; do
            if [ "$kind" = appliance ] && [ "$HAS_HTTP" = no ]; then continue; fi
            if load_run "$kind" "$connections" "$round"; then survived[$kind]=1; fi
        done
        ceiling_run "$connections" "$round"
    done
    # Without one surviving run of each guest there is nothing to compare at this concurrency:
    # one more round for the guest that has none (the emulator fault strikes at random).
    for kind in "${KINDS[@]}"; do
        if [ "${survived[$kind]}" = 0 ] && usable "$kind" \
                && { [ "$kind" != appliance ] || [ "$HAS_HTTP" != no ]; }; then
            note "no surviving $kind run at $connections connections: one extra round"
            load_run "$kind" "$connections" extra || true
        fi
    done
done
[ "$CEILING" = no ] || ceiling_stop
note "load phase done after $((SECONDS - started)) s"
[ "$HAS_HTTP" = no ] && emit "appliance http=no"
[ "$HAS_METRICS" = no ] && emit "appliance metrics=no"

if [ "$BULK" = yes ]; then
    note "bulk: download and upload of $BULK_SIZES MiB, $BULK_ROUNDS rounds, alternating; a $BULK_ECHO_MIB MiB echo"
    if [ -n "$BULK_APPLIANCE" ] && [ "$HAS_HTTP" != no ]; then
        # A new boot with the bulk phase's words (its restarts keep them), given to the
        # config's own (loglevel).
        EXTRA[appliance]="$(cfg_value "$APPLIANCE_CFG" extra | tr -d '"') $BULK_APPLIANCE"
        destroy "$APPLIANCE"
        IP[appliance]=""
        note "bulk: the appliance starts again with extra=\"${EXTRA[appliance]}\""
    fi
    for size in $BULK_SIZES; do
        bulk_body "$size"   # made once per size, before any timing
        for round in $(seq "$BULK_ROUNDS"); do
            for kind in "${KINDS[@]}"; do
                if [ "$kind" = appliance ] && [ "$HAS_HTTP" = no ]; then continue; fi
                bulk_run "$kind" down "$size" "$round" || true
                bulk_run "$kind" up "$size" "$round" || true
            done
        done
        rm -f "/tmp/bulk-${size}M"
    done
    if [ "$HAS_HTTP" != no ]; then
        bulk_body "$BULK_ECHO_MIB"
        for round in $(seq "$BULK_ROUNDS"); do
            bulk_run appliance echo "$BULK_ECHO_MIB" "$round" || true
        done
        rm -f "/tmp/bulk-${BULK_ECHO_MIB}M" /tmp/bulk-echo
    fi
    rm -f /tmp/bulk-answer /tmp/bulk.out /tmp/bulk.err
    EXTRA[appliance]=""   # the memory phase measures the defaults
    note "bulk phase done after $((SECONDS - started)) s"
fi

for kind in "${KINDS[@]}"; do destroy "${NAME[$kind]}"; done
if [ "$MEMORY_PROBES" = yes ]; then
    note "memory: bisecting over the sizes in build/bench.conf"
    if [ "$HAS_HTTP" != no ]; then
        # shellcheck disable=SC2086  # word lists
        bisect appliance $APPLIANCE_MEMORY_SIZES
    fi
    for kind in "${PEER_KINDS[@]}"; do
        # shellcheck disable=SC2086
        bisect "$kind" $PEER_MEMORY_SIZES
        destroy "${NAME[$kind]}"
    done
    destroy "$APPLIANCE"
    note "memory phase done after $((SECONDS - started)) s"
fi
crashes=""
for kind in "${KINDS[@]}"; do crashes+="crashes_${kind//-/_}=${CRASHES[$kind]} "; done
emit "end ${crashes}seconds=$((SECONDS - started))"
