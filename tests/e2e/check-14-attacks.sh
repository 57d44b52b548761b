# Hostile and careless clients from dom0 (tools/attack, built into build/xenecho-attack) against
# a guest of their own: a SYN flood from spoofed off-link addresses, silent clients, zero-window
# readers, slow bodies, and clients that vanish from the network. The attackers use a second
# address of dom0's (per-client=24 keeps one address from taking every slot); during each attack
# a fresh client from dom0's own address must get a 200 within 2 s, and within 60 s after it the
# guest's open-connection and half-open gauges must be back to 0.

attack_tool=$PWD/build/xenecho-attack
if [ "$(uname -m)" != x86_64 ]; then
    echo "SKIP: attack checks (the attack tool is built for the x86_64 test host only)"
elif [ ! -x "$attack_tool" ]; then
    fail "attack checks: no $attack_tool (make test-e2e builds it: make attack-tool)"
else
failed_before=$FAILED
target=xenecho-attacked
attacker=10.88.0.250
xl create -q xl.cfg "name=\"$target\"" 'extra="per-client=24"' >/dev/null
target_domid=$(xl domid "$target" 2>/dev/null)
target_ip=$(guest_address "$target" 60)
check "attack target has an address ($target_ip)" test -n "$target_ip"
ip addr add "$attacker/24" dev xenbr0

# gauge NAME: the value of a metric of the target, or nothing.
gauge() { curl -s -m 5 "http://$target_ip:19100/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }

# fresh_client WHEN: a new connection from dom0's own address gets 200 within 2 s.
fresh_client() {
    local code
    code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$target_ip/fresh")
    check "$1: a fresh client gets 200 within 2 s (got $code)" test "$code" = 200
}

# back_to_idle WHEN: within 60 s no connection is open or half-open.
back_to_idle() {
    local open half started=$SECONDS
    while [ $((SECONDS - started)) -lt 60 ]; do
        open=$(gauge xenecho_http_open_connections) half=$(gauge xenecho_http_half_open_connections)
        [ "$open" = 0 ] && [ "$half" = 0 ] && break
        sleep 2
    done
    check "$1: open and half-open back to 0 within 60 s (open $open, half-open $half after $((SECONDS - started)) s)" \
        test "$open" = 0 -a "$half" = 0
}

# SYN flood: 10 000 SYNs at 2 000 a second from 198.18.0.0/15; once half the backlog is
# half-open, SYN cookies answer it (docs/availability.md).
"$attack_tool" syn-flood "$target_ip:80" 10000 2000 >/tmp/attack-flood.out 2>&1 &
flood=$!
sleep 2
fresh_client "SYN flood, after 2 s"
sleep 3
fresh_client "SYN flood, after 5 s"
sleep 3
fresh_client "SYN flood, after 8 s"
wait "$flood"
sed 's/^/  /' /tmp/attack-flood.out
check "SYN flood: SYN cookies answered it ($(gauge xenecho_syn_cookies_sent_total) sent)" \
    test "$(gauge xenecho_syn_cookies_sent_total)" -gt 1000
back_to_idle "after the SYN flood"

# attack_round MODE CONNECTIONS SECONDS BOUND: the attack runs SECONDS from the second address; a
# fresh client is served during it; the appliance ended every connection it ended within BOUND s.
attack_round() {
    local mode=$1 connections=$2 seconds=$3 bound=$4 pid ended longest oldest
    "$attack_tool" "$mode" "$target_ip:80" "$connections" "$seconds" "$attacker" >/tmp/attack-$mode.out 2>&1 &
    pid=$!
    sleep 4
    fresh_client "$mode clients"
    wait "$pid"
    sed 's/^/  /' "/tmp/attack-$mode.out"
    # "...the appliance ended N (the longest had lasted A s); M still open at the end (the oldest B s)"
    read -r ended longest oldest <<<"$(sed -n \
        's/.*the appliance ended \([0-9]*\) (the longest had lasted \([0-9]*\)\.[0-9] s).*(the oldest \([0-9]*\)\.[0-9] s)/\1 \2 \3/p' \
        "/tmp/attack-$mode.out")"
    check "$mode clients: the appliance ended ${ended:-none}; none lived more than $bound s (longest ${longest:-?} s, oldest left ${oldest:-?} s)" \
        test "${ended:-0}" -gt 0 -a "${longest:-999}" -le "$bound" -a "${oldest:-999}" -le "$bound"
    back_to_idle "after the $mode clients"
}
# Silent: 10 s head timer, then 10 s to close. Zero window and slow body: 10 s of rate-floor
# grace, then a reset.
attack_round silent 40 30 22
attack_round zero-window 30 20 16
attack_round slow-body 30 20 16

# Vanishing clients: 24 keep-alive connections whose address then leaves the network (no FIN, no
# RST); the idle timer (30 s) or the silence timeout (30 s) and the close bound (10 s) free them.
"$attack_tool" hold "$target_ip:80" 24 120 "$attacker" >/tmp/attack-hold.out 2>&1 &
holder=$!
sleep 6
held=$(gauge xenecho_http_open_connections)
check "vanishing clients: connections held before they vanish ($held)" test "${held:-0}" -ge 20
ip addr del "$attacker/24" dev xenbr0
fresh_client "vanished clients"
back_to_idle "after the clients vanished"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

# xl pause under load: keep-alive load and new connections across a 5 s pause all complete (the
# network's clock leaves the pause out: runtime/src/running_clock.rs).
wrk -t1 -c16 -d20s --timeout 30s "http://$target_ip/pause" >/tmp/pause-wrk.out 2>&1 &
load=$!
(
    end=$((SECONDS + 20))
    while [ $SECONDS -lt $end ]; do
        code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -H 'Connection: close' "http://$target_ip/churn")
        status=$?
        [ "$code" = 200 ] && echo ok || echo "failed $code (curl exit $status, ${SECONDS} s)"
    done
) >/tmp/pause-churn.out &
churn=$!
sleep 5
pause_state=$(xl pause "$target" && domain_state "$target")
sleep 5
xl unpause "$target"
unpause_status=$?
wait "$load" "$churn"
check "xl pause: the guest was paused (state '$pause_state') and unpaused (status $unpause_status)" \
    test "${pause_state//[^p]/}" = p -a "$unpause_status" = 0
grep -E 'requests in|Socket errors|Non-2xx' /tmp/pause-wrk.out | sed 's/^/  /'
grep '^failed' /tmp/pause-churn.out | head -5 | sed 's/^/  /'
check "xl pause 5 s under load: wrk saw no socket error and no non-2xx" \
    eval '! grep -qE "Socket errors|Non-2xx" /tmp/pause-wrk.out && grep -q "requests in" /tmp/pause-wrk.out'
check "xl pause 5 s under load: every new connection answered ($(grep -c '^ok' /tmp/pause-churn.out) ok)" \
    eval '! grep -q "^failed" /tmp/pause-churn.out && grep -q "^ok" /tmp/pause-churn.out'

check "the attacked guest is still running (domid $target_domid)" still_running "$target" "$target_domid"
curl -s -m 5 "http://$target_ip:19100/metrics" | grep -E '^xenecho_http_(timeouts|close_timeouts|half_open_dropped|refused|connections)_total' | sed 's/^/  /'
[ "$FAILED" -eq "$failed_before" ] || show "$(console_log "$target")" 30
xl destroy "$target" 2>/dev/null
ip addr del "$attacker/24" dev xenbr0 2>/dev/null
fi
