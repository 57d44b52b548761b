#!/bin/bash
# The fleet benchmark, run inside dom0 of the emulated Xen host by `make bench-fleet` (through
# testbed/run.sh --script). It grows a fleet of appliances, one `xl create` at a time, each with its
# own name (xenecho-fleet-NNN), MAC (00:16:3e:fe:XX:YY from its index) and DHCP address; the same
# by libvirt (xenecho-virsh-NNN, 00:16:3e:fc:XX:YY: `virsh define` of xenecho.xml with the name,
# MAC, memory and kernel path changed, then `virsh start`), after a fleet of Linux + nginx guests
# (peer-fleet-NNN, 00:16:3e:fd:XX:YY) for the comparison (libvirt last: it is the one a short
# --timeout cuts):
#   1. per guest: the time from just before `xl create` to its first HTTP 200 on GET / at the
#      address it publishes (the appliance in xenstore data/ipv4-address, the peer on its console),
#      polled every 0.25 s; the next guest is created once this one answers;
#   2. at each checkpoint size N: every running guest asked for GET / once (how many answer), dom0's
#      CPU seconds (`xl list`), xenstored's (/proc/PID/stat), Xen's free memory (`xl info`), dom0's
#      available memory; the fleet's and dom0's CPU over IDLE_SECONDS of quiet; then a short wrk
#      against one sample guest (the newest);
#   3. growth stops at the largest size (or MAX), when `xl create` fails (the reason is kept: out of
#      memory, mostly), when a guest does not answer in time (after a retry), or when the time
#      budget is spent; the last N reached gets a checkpoint too; then the fleet is destroyed;
#   4. once the xl fleet has the largest of BALANCE_SIZES guests (8), the scale-out curve: the
#      first B of them behind nginx in dom0 (examples/balancer.sh, which makes its upstream list
#      from `xl list` and xenstore), for each B of BALANCE_SIZES, checked to be answered by each of
#      them and measured with wrk at BALANCE_CONNECTIONS; and the two bounds of that curve: wrk
#      straight at one appliance, and nginx in dom0 answering by itself (no upstream).
# Every guest gets on_crash="preserve", so that a crash stays visible in `xl list`: it is counted
# (with the emulator fault's mark when it has it: Linux PVH guests die of it at random here, see
# docs/event-loop.md), the domain destroyed and not replaced.
#
# Output: one "FLEET <kind> key=value ..." line per measurement (bench/fleet-report.py reads them)
# and a few "# ..." progress lines. The results line carries ~17 KB/s: keep it short.
# Settings: build/fleet.conf (written by bench/fleet.sh). Environment from testbed's dom0 init:
# GUEST_NAME (the appliance the init started: destroyed first, so that the fleet starts from none),
# XENECHO_DIR.
set -euo pipefail
cd "${XENECHO_DIR:-/xenecho}"
# shellcheck source=/dev/null
source build/fleet.conf
# domain_address, domain_state and wait_gone: dom0's, shared with its /init and the e2e suite.
# shellcheck source=testbed/dom0/lib/domains.sh
source /usr/local/lib/testbed/domains.sh

CONSOLE_DIR=/var/log/xen/console
# The emulator fault's marks on a Linux guest's console or in Xen's log (as bench/dom0.sh).
FAULT_PATTERN='asm_sysvec_xen_hvm_callback|stack guard page|[Ss]tack overflow|Triple fault'
# Linux's USER_HZ on x86: the unit of utime and stime in /proc/PID/stat (dom0 has no getconf).
CLOCK_TICKS=100

emit() { printf 'FLEET %s\n' "$*"; }
note() { printf '# %s\n' "$*"; }
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }   # bash 5: microseconds, no fork
trap 'emit "error line=$LINENO status=$?"' ERR

cfg_value() { # cfg_value FILE KEY: a plain `KEY = value` of an xl config (quotes removed)
    sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*[\"']\{0,1\}\([^\"'#]*\)[\"']\{0,1\}.*/\1/p" "$1" \
        | awk 'NR == 1 { gsub(/ /, ""); print }'   # awk reads it all: no SIGPIPE under pipefail
}

# The kinds of fleet: the appliance by xl, the appliance by libvirt (virsh), the peer by xl.
declare -A CFG=([appliance]=xl.cfg [virsh]=xenecho.xml [peer]=build/peer/peer.cfg)
declare -A PREFIX=([appliance]=xenecho-fleet [virsh]=xenecho-virsh [peer]=peer-fleet)
declare -A MAC_BYTE=([appliance]=fe [virsh]=fc [peer]=fd)
declare -A MEMORY=([appliance]=$APPLIANCE_MEMORY [virsh]=$APPLIANCE_MEMORY [peer]=$PEER_MEMORY)
declare -A LIMIT=([appliance]=$MAX [virsh]=$VIRSH_MAX [peer]=$PEER_MAX)
declare -A BOOT_TIMEOUT=([appliance]=$BOOT_TIMEOUT_APPLIANCE [virsh]=$BOOT_TIMEOUT_APPLIANCE
                         [peer]=$BOOT_TIMEOUT_PEER)
export LIBVIRT_DEFAULT_URI=xen:///system
# The phase in progress: its running guests (name -> address, and name -> index, in creation order
# in RUNNING), its crashes.
declare -A ADDRESS=() INDEX=()
RUNNING=()
CRASHES=0
LAST_CRASH_FAULT=""
DEADLINE=$((SECONDS + BUDGET_SECONDS))

guest_name() { printf '%s-%03d' "${PREFIX[$1]}" "$2"; }
guest_mac() { printf '00:16:3e:%s:%02x:%02x' "${MAC_BYTE[$1]}" $(($2 >> 8 & 255)) $(($2 & 255)); }

# --- What the host spends ---------------------------------------------------------------------------
xl_info() { { xl info 2>/dev/null || true; } | awk -F': ' -v k="$1" '$1 ~ "^" k "[[:space:]]*$" { print $2; exit }'; }
free_mb() { local v; v=$(xl_info free_memory); echo "${v:-nan}"; }
dom0_avail_mb() { awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo; }
# CPU seconds of every domain, as "name seconds" lines (Xen's accounting, 0.1 s resolution).
cpu_table() { { xl list 2>/dev/null || true; } | awk 'NR > 1 { print $1, $6 }'; }
cpu_of() { awk -v n="$2" '$1 == n { print $2; found = 1 } END { if (!found) print "nan" }' <<< "$1"; }
cpu_of_prefix() { awk -v p="$2-" 'index($1, p) == 1 { s += $2 } END { printf "%.1f\n", s }' <<< "$1"; }
xenstored_pid() {
    local pid=""
    [ -r /run/xenstored.pid ] && pid=$(tr -dc '0-9' < /run/xenstored.pid)
    if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then
        pid=$(pidof xenstored oxenstored 2>/dev/null | awk '{ print $1 }' || true)
    fi
    echo "$pid"
}
# xenstored's CPU seconds (user + system), or nan.
xenstored_cpu() {
    local pid; pid=$(xenstored_pid)
    if [ -z "$pid" ] || [ ! -r "/proc/$pid/stat" ]; then echo nan; return; fi
    # Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    sed 's/^.*) //' "/proc/$pid/stat" | awk -v hz="$CLOCK_TICKS" '{ printf "%.2f\n", ($12 + $13) / hz }'
}

# --- Domains ------------------------------------------------------------------------------------
# Every domain's state letters, as "name state" lines.
state_table() { { xl list 2>/dev/null || true; } | awk 'NR > 1 { print $1, $5 }'; }

# destroy_now NAME: ends domain NAME (libvirt's by virsh, which also forgets its definition).
destroy_now() {
    case $1 in
    "${PREFIX[virsh]}"-*)
        virsh destroy "$1" >/dev/null 2>&1 || true
        virsh undefine "$1" >/dev/null 2>&1 || true ;;
    *) xl destroy "$1" >/dev/null 2>&1 || true ;;
    esac
}
destroy() {
    destroy_now "$1"
    wait_gone "$1" 30 >/dev/null || note "warning: $1 still exists after it was destroyed"
}

# create KIND NAME MAC: creates guest NAME of KIND, its tool's output in /tmp/xl-create.out.
create() {
    local kind=$1 name=$2 mac=$3
    if [ "$kind" != virsh ]; then
        xl create -q "${CFG[$kind]}" "name=\"$name\"" "memory=${MEMORY[$kind]}" \
            "vif=['bridge=xenbr0,mac=$mac']" 'on_crash="preserve"' > /tmp/xl-create.out 2>&1
        return
    fi
    # xenecho.xml as an operator would adapt it: its name, MAC, memory (KiB) and the kernel's
    # absolute path; on_crash preserve, as the xl fleets have it.
    sed -e "s|<name>[^<]*</name>|<name>$name</name>|" \
        -e "s|<mac address='[^']*'/>|<mac address='$mac'/>|" \
        -e "s|<kernel>[^<]*</kernel>|<kernel>$PWD/build/xenecho.elf</kernel>|" \
        -e "s|<memory unit='KiB'>[0-9]*</memory>|<memory unit='KiB'>$((MEMORY[$kind] * 1024))</memory>|" \
        -e "s|<currentMemory unit='KiB'>[0-9]*</currentMemory>|<currentMemory unit='KiB'>$((MEMORY[$kind] * 1024))</currentMemory>|" \
        -e "s|<on_crash>[^<]*</on_crash>|<on_crash>preserve</on_crash>|" \
        "${CFG[$kind]}" > /tmp/fleet-virsh.xml
    { virsh -q define /tmp/fleet-virsh.xml && virsh -q start "$name"; } > /tmp/xl-create.out 2>&1
}

# The guest's address: xenstore data/ipv4-address (the appliance publishes it), else the last
# "peer: address" line on its console (the peer prints it).
address_of() {
    local name=$1 domid ip=""
    domid=$(xl domid "$name" 2>/dev/null) || return 1
    ip=$(domain_address "$domid") \
        || ip=$(sed -n 's/.*peer: address \([0-9.]*\).*/\1/p' "$CONSOLE_DIR/guest-$name.log" 2>/dev/null | tail -n 1)
    [ -n "$ip" ] && echo "$ip"
}

http_ok() { # http_ok IP [SECONDS]: GET / answered 200
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-2}" "http://$1/" 2>/dev/null)" = 200 ]
}

# What killed a domain, in one short line (as bench/dom0.sh): the emulator fault's mark, else a
# panic message, else the console's last line.
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

# record_crash KIND NAME PHASE STATE: counts the crash, emits it, destroys the domain and keeps its
# console log aside.
record_crash() {
    local kind=$1 name=$2 phase=$3 state=$4 domid signature
    domid=$(xl domid "$name" 2>/dev/null || echo "?")
    signature=$(crash_signature "$name" "$domid" | tr -d '\r')
    CRASHES=$((CRASHES + 1))
    emit "crash kind=$kind name=$name phase=$phase n=$CRASHES running=${#RUNNING[@]} state=${state:-gone}" \
         "why=\"${signature//\"/\'}\""
    case $signature in emulator-fault:*) LAST_CRASH_FAULT=1 ;; *) LAST_CRASH_FAULT="" ;; esac
    destroy "$name"
    mv -f "$CONSOLE_DIR/guest-$name.log" "$CONSOLE_DIR/guest-$name-crash$CRASHES.log" 2>/dev/null || true
}

# forget NAME: takes NAME out of the running fleet.
forget() {
    local name=$1 kept=() other
    for other in "${RUNNING[@]}"; do [ "$other" = "$name" ] || kept+=("$other"); done
    RUNNING=("${kept[@]}")
    unset "ADDRESS[$name]" "INDEX[$name]"
}

# reap KIND PHASE: every running guest of the fleet that crashed or is gone is recorded and dropped.
reap() {
    local kind=$1 phase=$2 states name state
    [ ${#RUNNING[@]} -gt 0 ] || return 0
    states=$(state_table)
    for name in "${RUNNING[@]}"; do
        state=$(awk -v n="$name" '$1 == n { print $2 }' <<< "$states")
        if [ -z "$state" ] || [[ $state == *c* ]]; then
            forget "$name"
            record_crash "$kind" "$name" "$phase" "$state"
        fi
    done
}

# start_one KIND I ATTEMPT: xl create guest I of KIND, then poll for its address and first HTTP 200.
# Emits a "boot" line. Status 0 when it answered (it joins RUNNING), 1 when it did not (destroyed;
# a crash is recorded), 2 when xl create failed (CREATE_WHY says why).
CREATE_WHY="" BOOT_STATUS=""
start_one() {
    local kind=$1 i=$2 attempt=$3 name mac t0 t_created t_ip="" t_http="" ip="" deadline status state
    name=$(guest_name "$kind" "$i")
    mac=$(guest_mac "$kind" "$i")
    destroy "$name"
    rm -f "$CONSOLE_DIR/guest-$name.log"
    LAST_CRASH_FAULT=""
    t0=$(now_us)
    if ! create "$kind" "$name" "$mac"; then
        # xl's first complaint says why (the last one is about cleaning up).
        CREATE_WHY=$({ grep -m 1 -iE 'error|fail|panic|memory' /tmp/xl-create.out || tail -n 1 /tmp/xl-create.out; } \
            | tr -d '"\r' | cut -c1-160)
        emit "boot kind=$kind i=$i attempt=$attempt name=$name mac=$mac status=create-failed" \
             "running=${#RUNNING[@]} free_mb=$(free_mb) dom0_avail_mb=$(dom0_avail_mb) why=\"$CREATE_WHY\""
        destroy "$name"
        return 2
    fi
    t_created=$(now_us)
    deadline=$((SECONDS + ${BOOT_TIMEOUT[$kind]}))
    status=timeout
    while [ $SECONDS -lt $deadline ]; do
        state=$(domain_state "$name")
        if [ -z "$state" ] || [[ $state == *c* ]]; then status=died; break; fi
        if [ -z "$ip" ] && ip=$(address_of "$name"); then t_ip=$(now_us); fi
        if [ -n "$ip" ] && http_ok "$ip"; then t_http=$(now_us); status=ok; break; fi
        sleep 0.25   # never busy-poll: every vCPU shares one emulated core
    done
    emit "boot kind=$kind i=$i attempt=$attempt name=$name mac=$mac status=$status ip=${ip:-none}" \
         "create_ms=$(( (t_created - t0) / 1000 ))" \
         "address_ms=$([ -n "$t_ip" ] && echo $(( (t_ip - t0) / 1000 )) || echo nan)" \
         "http_ms=$([ -n "$t_http" ] && echo $(( (t_http - t0) / 1000 )) || echo nan)" \
         "running=$(( ${#RUNNING[@]} + $([ $status = ok ] && echo 1 || echo 0) ))" \
         "free_mb=$(free_mb)"
    BOOT_STATUS=$status
    case $status in
    ok) RUNNING+=("$name"); ADDRESS[$name]=$ip; INDEX[$name]=$i; return 0 ;;
    died) record_crash "$kind" "$name" boot "$(domain_state "$name")"; return 1 ;;
    *) destroy "$name"; return 1 ;;
    esac
}

# --- Checkpoints ----------------------------------------------------------------------------------
# wrk prints its summary through this script: exact numbers instead of its rounded text.
cat > /tmp/fleet.lua <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
LUA

# wrk_line CONNECTIONS SECONDS URL: one wrk run against URL, as the WRK line's fields (or
# requests=0 and why).
wrk_line() {
    local out
    timeout $(($2 + 60)) wrk -t "$WRK_THREADS" -c "$1" -d "${2}s" --timeout 5s -s /tmp/fleet.lua "$3" \
        > /tmp/wrk.out 2>&1 || true
    out=$(sed -n 's/^WRK //p' /tmp/wrk.out | tail -n 1)
    echo "${out:-requests=0 wrk_failed=\"$(tail -n 1 /tmp/wrk.out | tr -d '"' | cut -c1-100)\"}"
}

# nginx_stop DIR: stops the nginx whose prefix, configuration and error log are in DIR.
nginx_stop() {
    nginx -s stop -p "$1" -c "$1/nginx.conf" -e "$1/error.log" 2>/dev/null || true
}

# checkpoint KIND N FINAL: the fleet of N guests measured (see the header).
checkpoint() {
    local kind=$1 n=$2 final=$3 dom0_cpu xs_cpu free dom0_avail started_at name answered=0 failed=""
    local sweep_ms before after idle_guests idle_dom0 idle_xs_before idle_xs_after sample result wrk_status=ok
    # What growing to N cost, before this checkpoint's own requests add to it.
    before=$(cpu_table)
    dom0_cpu=$(cpu_of "$before" Domain-0)
    xs_cpu=$(xenstored_cpu)
    free=$(free_mb)
    dom0_avail=$(dom0_avail_mb)
    reap "$kind" "checkpoint-$n"
    # Every running guest, once (a second try for one that does not answer at once).
    started_at=$(now_us)
    for name in "${RUNNING[@]}"; do
        if http_ok "${ADDRESS[$name]}" 3 || http_ok "${ADDRESS[$name]}" 5; then
            answered=$((answered + 1))
        else
            failed+="${failed:+,}${INDEX[$name]}"
        fi
    done
    sweep_ms=$(( ($(now_us) - started_at) / 1000 ))
    # The fleet at rest: its guests' and dom0's CPU over IDLE_SECONDS (dom0 runs only this sleep).
    before=$(cpu_table)
    idle_xs_before=$(xenstored_cpu)
    sleep "$IDLE_SECONDS"
    after=$(cpu_table)
    idle_xs_after=$(xenstored_cpu)
    idle_guests="$(cpu_of_prefix "$before" "${PREFIX[$kind]}")/$(cpu_of_prefix "$after" "${PREFIX[$kind]}")"
    idle_dom0="$(cpu_of "$before" Domain-0)/$(cpu_of "$after" Domain-0)"
    # A short wrk against the newest guest.
    local sample_i=0
    sample=""
    [ ${#RUNNING[@]} -eq 0 ] || { sample=${RUNNING[${#RUNNING[@]} - 1]}; sample_i=${INDEX[$sample]}; }
    result="requests=0 wrk_failed=\"no guest\""
    if [ -n "$sample" ]; then
        result=$(wrk_line "$WRK_CONNECTIONS" "$WRK_SECONDS" "http://${ADDRESS[$sample]}/")
        local state; state=$(domain_state "$sample")
        if [ -z "$state" ] || [[ $state == *c* ]]; then wrk_status=crashed; fi
    fi
    after=$(cpu_table)
    emit "checkpoint kind=$kind n=$n final=$final running=${#RUNNING[@]} answered=$answered" \
         "failed=${failed:-none} sweep_ms=$sweep_ms crashes=$CRASHES" \
         "dom0_cpu=$dom0_cpu dom0_cpu_after=$(cpu_of "$after" Domain-0)" \
         "xenstored_cpu=$xs_cpu xenstored_cpu_after=$(xenstored_cpu)" \
         "free_mb=$free dom0_avail_mb=$dom0_avail" \
         "idle_s=$IDLE_SECONDS idle_guests_cpu=$idle_guests idle_dom0_cpu=$idle_dom0" \
         "idle_xenstored_cpu=$idle_xs_before/$idle_xs_after" \
         "sample=${sample:-none} sample_i=$sample_i wrk_status=$wrk_status $result"
    if [ $wrk_status = crashed ]; then
        forget "$sample"
        record_crash "$kind" "$sample" "wrk-$n" "$(domain_state "$sample")"
    fi
}

# --- The scale-out curve ----------------------------------------------------------------------------
# balance_curve: with the fleet's first guests running, each size B of BALANCE_SIZES behind nginx
# in dom0 (examples/balancer.sh, port 8080), then the curve's two bounds (see the header).
balance_curve() {
    local b dom0_before checked result
    note "scale-out: ${BALANCE_SIZES// /, } appliances behind nginx in dom0"
    for b in $BALANCE_SIZES; do
        checked=yes
        bash examples/balancer.sh --instances "$b" --keep > /tmp/balancer.out 2>&1 || checked=no
        sed 's/^/# balancer: /' /tmp/balancer.out
        dom0_before=$(cpu_of "$(cpu_table)" Domain-0)
        result=$(wrk_line "$BALANCE_CONNECTIONS" "$BALANCE_SECONDS" http://127.0.0.1:8080/)
        emit "balance what=balancer instances=$b checked=$checked" \
             "dom0_cpu=$dom0_before/$(cpu_of "$(cpu_table)" Domain-0) $result"
        nginx_stop /tmp/xenecho-balancer
        sleep 1
    done
    # Bound 1: one appliance with no balancer in the way.
    dom0_before=$(cpu_of "$(cpu_table)" Domain-0)
    result=$(wrk_line "$BALANCE_CONNECTIONS" "$BALANCE_SECONDS" "http://${ADDRESS[${RUNNING[0]}]}/")
    emit "balance what=direct instances=1 checked=yes dom0_cpu=$dom0_before/$(cpu_of "$(cpu_table)" Domain-0) $result"
    # Bound 2: nginx in dom0 answering by itself, as the balancer is configured but with no upstream.
    mkdir -p /tmp/fleet-nginx
    sed -e 's|/tmp/xenecho-balancer|/tmp/fleet-nginx|g' \
        -e 's|proxy_pass http://xenecho;|return 200 "GET / from nginx in dom0";|' \
        -e '/proxy_/d' /tmp/xenecho-balancer/nginx.conf > /tmp/fleet-nginx/nginx.conf
    checked=no
    if nginx -p /tmp/fleet-nginx -c /tmp/fleet-nginx/nginx.conf -e /tmp/fleet-nginx/error.log \
            && [ "$(curl -s -o /dev/null -w '%{http_code}' -m 5 http://127.0.0.1:8080/)" = 200 ]; then
        checked=yes
    fi
    dom0_before=$(cpu_of "$(cpu_table)" Domain-0)
    result=$(wrk_line "$BALANCE_CONNECTIONS" "$BALANCE_SECONDS" http://127.0.0.1:8080/)
    emit "balance what=nginx-alone instances=0 checked=$checked dom0_cpu=$dom0_before/$(cpu_of "$(cpu_table)" Domain-0) $result"
    nginx_stop /tmp/fleet-nginx
}

# --- The growth -----------------------------------------------------------------------------------
is_size() { [[ " $SIZES " == *" $1 "* ]]; }

# fresh_leases: dom0's DHCP server restarted with no lease. Each fleet's guests have MACs of their
# own and keep their leases for an hour, and the pool holds 238: without this, the third fleet
# of a run would find it used up by the guests of the first two, all gone by then.
fresh_leases() {
    local _
    killall udhcpd 2>/dev/null || true
    for _ in $(seq 50); do pidof udhcpd >/dev/null 2>&1 || break; sleep 0.1; done
    : > /tmp/udhcpd.leases
    udhcpd -S /etc/udhcpd.conf || note "warning: udhcpd did not start again"
}

# grow KIND: the fleet of KIND grown to LIMIT (see the header), measured, then destroyed.
grow() {
    local kind=$1 limit=${LIMIT[$1]} i=0 attempt status reason="" why="" started=$SECONDS last_checked=0
    ADDRESS=() INDEX=() RUNNING=() CRASHES=0
    fresh_leases
    local before; before=$(cpu_table)
    emit "phase kind=$kind memory=${MEMORY[$kind]} limit=$limit sizes=\"$SIZES\" boot_timeout=${BOOT_TIMEOUT[$kind]}" \
         "free_mb=$(free_mb) dom0_avail_mb=$(dom0_avail_mb) dom0_cpu=$(cpu_of "$before" Domain-0)" \
         "xenstored_cpu=$(xenstored_cpu) domains=$(($(wc -l <<< "$before")))"
    note "$kind: growing to $limit guests of ${MEMORY[$kind]} MB, one at a time"
    while [ "$i" -lt "$limit" ]; do
        if [ $SECONDS -ge "$DEADLINE" ]; then reason=time-budget; why="the run's time budget is spent"; break; fi
        reap "$kind" grow
        i=$((i + 1))
        status=1
        for attempt in 1 2 3; do
            status=0
            start_one "$kind" "$i" "$attempt" || status=$?
            [ $status = 1 ] || break
            # Another try: the appliance once; the peer up to twice more, when the emulator fault
            # killed it (it says nothing about the host's limits).
            if [ "$kind" = appliance ] && [ "$attempt" -ge 2 ]; then break; fi
            if [ "$kind" = peer ] && [ -z "$LAST_CRASH_FAULT" ]; then break; fi
        done
        if [ $status = 2 ]; then reason=create-failed; why=$CREATE_WHY; i=$((i - 1)); break; fi
        if [ $status = 1 ]; then
            reason=no-answer
            why="guest $i did not answer within ${BOOT_TIMEOUT[$kind]} s (tries: $attempt, the last: $BOOT_STATUS)"
            i=$((i - 1))
            break
        fi
        if is_size "$i"; then checkpoint "$kind" "$i" no; last_checked=$i; fi
        if [ "$kind" = appliance ] && [ "$i" = "$BALANCE_AT" ]; then balance_curve; fi
        [ $((i % 16)) -ne 0 ] || note "$kind: $i started, ${#RUNNING[@]} running, $((SECONDS - started)) s"
    done
    [ -n "$reason" ] || { reason=limit; why="reached the largest size asked for ($limit)"; }
    if [ "$i" -gt 0 ] && [ "$last_checked" != "$i" ]; then checkpoint "$kind" "$i" yes; fi
    emit "stop kind=$kind n=$i running=${#RUNNING[@]} reason=$reason crashes=$CRASHES seconds=$((SECONDS - started))" \
         "why=\"${why//\"/\'}\""
    # The teardown: every guest of the fleet, timed.
    local t0 name; t0=$(now_us)
    for name in "${RUNNING[@]}"; do destroy_now "$name"; done
    while read -r name _; do
        case $name in "${PREFIX[$kind]}"-*) destroy_now "$name" ;; esac
    done < <(state_table)
    [ "$kind" != virsh ] || virsh list --all --name 2>/dev/null | while read -r name; do
        case $name in "${PREFIX[$kind]}"-*) virsh undefine "$name" >/dev/null 2>&1 || true ;; esac
    done
    emit "teardown kind=$kind guests=${#RUNNING[@]} ms=$(( ($(now_us) - t0) / 1000 ))"
    for name in "${RUNNING[@]}"; do wait_gone "$name" 30 >/dev/null || note "warning: $name still exists"; done
    RUNNING=()
    note "$kind: done after $((SECONDS - started)) s"
}

# --- The run ---------------------------------------------------------------------------------------
started=$SECONDS
emit "host xen=$(xl_info xen_version) xen_cpus=$(xl_info nr_cpus) total_mb=$(xl_info total_memory)" \
     "dom0_kernel=$(uname -r) dom0_vcpus=$(nproc)" \
     "dom0_mem_mb=$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo)" \
     "xenstored=$(pid=$(xenstored_pid); basename "$(readlink -f "/proc/${pid:-none}/exe" 2>/dev/null || echo unknown)")" \
     "dhcp_pool=\"$(awk '$1 == "start" { s = $2 } $1 == "end" { e = $2 } END { print s "-" e }' /etc/udhcpd.conf 2>/dev/null)\"" \
     "wrk=\"$(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }')\""
emit "config sizes=\"$SIZES\" max=$MAX peer_max=$PEER_MAX xl=$XL peers=$PEERS appliance_memory=$APPLIANCE_MEMORY" \
     "virsh=$VIRSH virsh_max=$VIRSH_MAX balance_sizes=\"$BALANCE_SIZES\" balance_at=$BALANCE_AT" \
     "balance_connections=$BALANCE_CONNECTIONS balance_seconds=$BALANCE_SECONDS" \
     "peer_memory=$PEER_MEMORY vcpus=$(cfg_value xl.cfg vcpus) peer_vcpus=$(cfg_value build/peer/peer.cfg vcpus)" \
     "boot_timeout_appliance=$BOOT_TIMEOUT_APPLIANCE boot_timeout_peer=$BOOT_TIMEOUT_PEER" \
     "wrk_threads=$WRK_THREADS wrk_connections=$WRK_CONNECTIONS wrk_seconds=$WRK_SECONDS" \
     "idle_seconds=$IDLE_SECONDS budget_s=$BUDGET_SECONDS"
# dom0's init started one appliance (xl.cfg's name and memory): the fleet starts from none.
destroy "${GUEST_NAME:-$(cfg_value xl.cfg name)}"

if [ "$XL" = yes ]; then
    grow appliance
fi
if [ "$PEERS" = yes ]; then
    grow peer
fi
if [ "$VIRSH" = yes ]; then
    # libvirtd, started on demand as in the e2e suite (testbed/dom0/bin/start-libvirtd).
    if start-libvirtd 120 > /tmp/start-libvirtd.out 2>&1; then
        grow virsh
    else
        emit "stop kind=virsh n=0 running=0 reason=libvirtd crashes=0 seconds=0" \
             "why=\"$(tail -n 1 /tmp/start-libvirtd.out | tr -d '"' | cut -c1-160)\""
    fi
fi
emit "end seconds=$((SECONDS - started))"
