# Two test hosts, host a (tests/two-hosts/run.sh joins this after tests/e2e/lib.sh): the appliance
# runs here (dom0's init created it from xl.cfg and it took its address from this dom0's DHCP
# server); a client in this dom0 keeps `wrk` going against it while `xl migrate` moves it to host b
# over the wire between the two hosts, whose bridges that wire joins into one network.
#
# Held: no socket error and no non-2xx in wrk across the move; the guest gone from here and
# answering as a new domain, with the same name and address, from host b; this bridge learnt the
# guest's MAC on the wire port from what the guest sent after the move (its gratuitous ARPs), so
# nothing waited for a switch table to age out. Reported: the migration's time, the longest
# blackout a curl loop saw (one request every 0.1 s), wrk's figures.
#
# The other side: host b (10.88.0.252) runs host-b.sh, which answers "ready" on port 8001, receives
# the migration on port 8002 (`xl migrate-receive` behind socat, as ssh would run it), and takes
# "done ADDRESS" on port 8003 when this side has finished, to check its side and end.
HOST_B=10.88.0.252
wrk_seconds=${TWO_HOSTS_WRK_SECONDS:-60}
wrk_timeout=${TWO_HOSTS_WRK_TIMEOUT:-30}
now_ms() { local t=$EPOCHREALTIME; echo $(( ${t/./} / 1000 )); }   # bash 5, no fork
# Host b is told when this side ends, however it ends, so that it does not wait out its timeout.
tell_b() { echo "done ${GUEST_IP:-none}" | socat -u - "TCP:$HOST_B:8003,connect-timeout=5" 2>/dev/null || true; }
trap tell_b EXIT

# --- Host b, over the wire ----------------------------------------------------------------------
b_ready() {
    local _
    for _ in $(seq 150); do
        [ "$(socat -u "TCP:$HOST_B:8001,connect-timeout=2" - 2>/dev/null)" = ready ] && return 0
        sleep 2
    done
    return 1
}
start=$SECONDS
check "host b answers over the wire between the hosts ($HOST_B)" b_ready
echo "  host b ready after $((SECONDS - start)) s"
wire=$(bridge link show 2>/dev/null | awk '/master xenbr0/ && $2 !~ /^vif/ { sub(":", "", $2); print $2; exit }')
check "the wire is a port of xenbr0 (${wire:-none})" test -n "$wire"

# --- The guest, before -----------------------------------------------------------------------------
url="http://$GUEST_IP"
old_domid=$GUEST_DOMID
mac=$(xenstore-read "/local/domain/$old_domid/device/vif/0/mac" 2>/dev/null)
check "the guest serves here first ($GUEST_NAME, domain $old_domid, $GUEST_IP, MAC ${mac:-none})" \
    bash -c "curl -sS -m 10 -D - -o /dev/null '$url/?instance' | tr -d '\r' | grep -qx 'X-Echo-Domid: $old_domid'"

# --- The move, under load ------------------------------------------------------------------------
cat > /tmp/two-hosts.lua <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d max_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.max, latency:percentile(99)))
end
LUA
probe_start "$url/probe"
wrk -t2 -c16 -d"${wrk_seconds}s" --timeout "${wrk_timeout}s" -s /tmp/two-hosts.lua "$url/" > /tmp/wrk-two-hosts.out 2>&1 &
wrk_pid=$!
sleep 10
start_ms=$(now_ms)
# xl runs the "host" argument through sh with -s "": the stream goes over the wire to host b's
# `xl migrate-receive`, as ssh would carry it.
xl migrate -s "" "$GUEST_NAME" "socat - TCP:$HOST_B:8002" > /tmp/xl-migrate.out 2>&1
migrate_status=$?
end_ms=$(now_ms)
grep -v 'progress: Frames' /tmp/xl-migrate.out | sed 's/^/  xl migrate: /'
migrate_ms=$((end_ms - start_ms))
echo "  xl migrate took $migrate_ms ms"
check "xl migrate to host b succeeded (status $migrate_status)" test "$migrate_status" -eq 0
check "the guest is gone from host a" wait_gone "$GUEST_NAME" 30

# --- The guest, after ------------------------------------------------------------------------------
# The first answer after the move: from host b's new domain (X-Echo-Domid tells the domains apart:
# a new domain at host b is numbered by host b).
answer_after() {
    local _ headers
    for _ in $(seq 300); do
        headers=$(curl -sS -m 1 -D - -o /dev/null "$url/?instance" 2>/dev/null | tr -d '\r')
        if grep -q '^HTTP/1.1 200' <<< "$headers" && grep -qx "X-Echo-Instance: $GUEST_NAME" <<< "$headers"; then
            new_domid=$(sed -n 's/^X-Echo-Domid: //p' <<< "$headers")
            first_ms=$(( $(now_ms) - end_ms ))
            return 0
        fi
        sleep 0.1
    done
    return 1
}
new_domid="" first_ms=""
check "the guest answers at $GUEST_IP from host b" answer_after
echo "  first answer ${first_ms:-never} ms after xl migrate returned; X-Echo-Domid ${new_domid:-none}"
# Where this bridge sends the guest's MAC now: the wire, learnt from a frame the guest sent from
# host b (its vif here is gone, and with it the old entry).
fdb_on_wire() {
    local _
    for _ in $(seq 20); do
        bridge fdb show br xenbr0 2>/dev/null | grep -i "^$mac dev $wire " && return 0
        sleep 0.5
    done
    bridge fdb show br xenbr0 | sed 's/^/  fdb: /'
    return 1
}
check "xenbr0 here sends the guest's MAC over the wire ($wire) at once, no ageing waited for" fdb_on_wire

wait "$wrk_pid"
sed 's/^/  /' /tmp/wrk-two-hosts.out
result=$(sed -n 's/^WRK //p' /tmp/wrk-two-hosts.out | tail -n 1)
field() { local v; v=$(sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p" <<< "$result"); echo "${v:-0}"; }
check "wrk ran across the move (${wrk_seconds} s, $(field requests) requests)" test "$(field requests)" -gt 0
errors=$(( $(field err_connect) + $(field err_read) + $(field err_write) + $(field err_timeout) ))
check "wrk across the move: no socket error ($errors)" test "$errors" -eq 0
check "wrk across the move: no non-2xx ($(field err_status))" test "$(field err_status)" -eq 0
probe_stop
blackout=$(longest_blackout)
echo "  longest blackout (curl every 0.1 s, new connections): $blackout s; wrk's slowest request:" \
     "$(( $(field max_us) / 1000 )) ms"
echo "TWOHOSTS migrate_ms=$migrate_ms first_answer_ms=${first_ms:-nan} blackout_s=$blackout" \
     "wrk_requests=$(field requests) wrk_errors=$errors wrk_non2xx=$(field err_status) wrk_max_ms=$(( $(field max_us) / 1000 ))"
