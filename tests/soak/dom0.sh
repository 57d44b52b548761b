#!/bin/bash
# `make soak`, the part that runs in dom0 of the emulated Xen host (tests/soak/run.sh starts it).
# For SOAK_MINUTES (build/soak.conf) a guest of its own meets, all at once:
#   - legitimate clients from dom0's own address: wrk keep-alive load (16 connections, 60 s runs,
#     30 s timeout) and connection churn (curl, one request per connection, Connection: close);
#   - the attacks of build/xenecho-attack from a second address (10.88.0.250), in turn: a SYN
#     flood, silent clients, zero-window readers, slow bodies, and clients that vanish;
#   - `xl pause` / `xl unpause` for 5 s every 5 minutes.
# Before and after (after a 60 s settle) it reads the guest's heap and grants in use. Every
# result is a "SOAK key=value ..." line that tests/soak/run.sh turns into docs/soak.md.
set -u
cd /xenecho
. build/soak.conf
# guest_address and domain_state: dom0's, shared with its /init, the e2e suite and the benchmark.
# shellcheck source=testbed/dom0/lib/domains.sh
. /usr/local/lib/testbed/domains.sh || { echo "SOAK error=no-domains-library"; exit 1; }
minutes=${SOAK_MINUTES:-30}
attack_tool=$PWD/build/xenecho-attack
name=xenecho-soak
attacker=10.88.0.250

xl create -q xl.cfg "name=\"$name\"" 'extra="per-client=64"' >/dev/null
ip=$(guest_address "$name" 60) || { echo "SOAK error=no-address"; exit 1; }
ip addr add "$attacker/24" dev xenbr0

metric() { curl -s -m 10 "http://$ip:19100/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }
snapshot() {
    echo "SOAK phase=$1 heap_used=$(metric xenecho_heap_used_bytes) grants_in_use=$(metric xenecho_grants_in_use)" \
        "open=$(metric xenecho_http_open_connections) half_open=$(metric xenecho_http_half_open_connections)" \
        "requests=$(metric xenecho_http_requests_total)"
}
snapshot before
started=$SECONDS
end=$((started + minutes * 60))

# Legitimate keep-alive load: one wrk run after another until the end.
(
    while [ $SECONDS -lt $end ]; do
        left=$((end - SECONDS)); [ $left -gt 60 ] && left=60; [ $left -lt 5 ] && break
        out=$(wrk -t1 -c16 -d${left}s --timeout 30s "http://$ip/soak" 2>&1)
        requests=$(echo "$out" | awk '/requests in/ { print $1 }')
        socket_errors=$(echo "$out" | sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' \
            | awk '{ print $1 + $2 + $3 + $4 }')
        non2xx=$(echo "$out" | awk '/Non-2xx/ { print $NF }')
        echo "SOAK wrk requests=${requests:-0} socket_errors=${socket_errors:-0} non2xx=${non2xx:-0}"
    done
) &
load=$!

# Legitimate churn: a new connection per request.
(
    ok=0 failed=0
    while [ $SECONDS -lt $end ]; do
        code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -H 'Connection: close' "http://$ip/churn")
        status=$?
        if [ "$code" = 200 ]; then
            ok=$((ok + 1))
        else
            failed=$((failed + 1))
            echo "SOAK churn_failure code=$code curl_exit=$status at=$((SECONDS - started))"
        fi
    done
    echo "SOAK churn ok=$ok failed=$failed"
) &
churn=$!

# Attacks, in turn, from the second address.
(
    round=0
    while [ $((SECONDS + 40)) -lt $end ]; do
        round=$((round + 1))
        case $((round % 5)) in
        1) out=$("$attack_tool" syn-flood "$ip:80" 10000 1000 2>&1) ;;
        2) out=$("$attack_tool" silent "$ip:80" 80 30 "$attacker" 2>&1) ;;
        3) out=$("$attack_tool" zero-window "$ip:80" 40 30 "$attacker" 2>&1) ;;
        4) out=$("$attack_tool" slow-body "$ip:80" 40 30 "$attacker" 2>&1) ;;
        0)
            "$attack_tool" hold "$ip:80" 40 60 "$attacker" >/tmp/soak-hold.out 2>&1 &
            holder=$!
            sleep 10
            ip addr del "$attacker/24" dev xenbr0
            sleep 20
            kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
            ip addr add "$attacker/24" dev xenbr0
            out="vanish: 40 keep-alive clients left the network"
            ;;
        esac
        echo "SOAK attack round=$round at=$((SECONDS - started)) $(echo "$out" | tr '\n' ' ')"
        sleep 5
    done
) &
attacks=$!

# Pauses.
while [ $((SECONDS + 300)) -lt $end ]; do
    sleep 300
    xl pause "$name" && sleep 5 && xl unpause "$name"
    echo "SOAK pause at=$((SECONDS - started)) seconds=5"
done
wait "$load" "$churn" "$attacks"
echo "SOAK ran seconds=$((SECONDS - started))"
sleep 60
snapshot after
echo "SOAK guest state=$(domain_state "$name")"
curl -s -m 10 "http://$ip:19100/metrics" | grep -E '^xenecho_http_(responses_total|timeouts_total|close_timeouts_total|half_open_dropped_total|refused_total|per_client_refused_total|connections_total)' \
    | sed 's/^/SOAK metric /'
