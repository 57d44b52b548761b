# Two test hosts, host b (tests/two-hosts/run.sh joins this after tests/e2e/lib.sh): no guest of
# its own; it receives the appliance host a migrates to it (see host-a.sh), and checks that the
# guest runs here, publishes the same address and serves. Its dom0 is 10.88.0.252 on the bridge
# the wire joins to host a's.
#   port 8001: answers "ready" (host a waits for it before it moves the guest);
#   port 8002: `xl migrate-receive` for one incoming migration (socat in place of ssh);
#   port 8003: host a's "done ADDRESS" when its side is over (or "done none").
HERE=10.88.0.252
wait_seconds=${TWO_HOSTS_B_SECONDS:-1200}
socat "TCP-LISTEN:8001,bind=$HERE,reuseaddr,fork" SYSTEM:"echo ready" 2>/dev/null &
ready_pid=$!
socat "TCP-LISTEN:8002,bind=$HERE,reuseaddr" EXEC:"xl migrate-receive" 2> /tmp/migrate-receive.log &
receive_pid=$!
socat -u "TCP-LISTEN:8003,bind=$HERE,reuseaddr" OPEN:/tmp/two-hosts-done,creat,trunc 2>/dev/null &
done_pid=$!
echo "  host b: listening on $HERE ports 8001 (ready), 8002 (xl migrate-receive), 8003 (done)"

# Until host a says it is done; the incoming domain noted when it appears.
arrived=""
deadline=$((SECONDS + wait_seconds))
while [ $SECONDS -lt $deadline ] && ! grep -q '^done' /tmp/two-hosts-done 2>/dev/null; do
    if [ -z "$arrived" ] && xl domid "$GUEST_NAME" >/dev/null 2>&1; then
        arrived=$SECONDS
        echo "  host b: $GUEST_NAME is here as domain $(xl domid "$GUEST_NAME")"
    fi
    sleep 1
done
told=$(cat /tmp/two-hosts-done 2>/dev/null)
kill "$ready_pid" 2>/dev/null
check "host a said it is done (\"${told:-nothing}\" within $wait_seconds s)" grep -q '^done' /tmp/two-hosts-done
address=${told#done }

wait "$receive_pid"
receive_status=$?
sed 's/^/  xl migrate-receive: /' /tmp/migrate-receive.log | grep -v 'progress: Frames'
check "xl migrate-receive took the guest (status $receive_status)" test "$receive_status" -eq 0
domid=$(xl domid "$GUEST_NAME" 2>/dev/null)
state=$(domain_state "$GUEST_NAME")
check "the guest runs on host b (domain ${domid:-none}, state '${state:-gone}')" \
    bash -c "[ -n '$domid' ] && [[ '$state' != *[scd]* ]]"
check "the guest publishes its address here too (${address:-none})" \
    test -n "$address" -a "$(guest_address "$GUEST_NAME" 30)" = "$address"
check "the guest serves host b's dom0 as domain ${domid:-none}" \
    bash -c "curl -sS -m 10 -D - -o /dev/null 'http://$address/?instance' | tr -d '\r' | grep -qx 'X-Echo-Domid: $domid'"
incoming_log=$(console_log "$GUEST_NAME--incoming")
check "the guest's console here says it resumed in a new domain" \
    grep -q 'resumed in a new domain: connecting the network again' "$incoming_log"
show "$incoming_log" 15
kill "$done_pid" 2>/dev/null
xl destroy "$GUEST_NAME" 2>/dev/null
