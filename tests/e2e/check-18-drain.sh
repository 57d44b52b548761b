# The drain (docs/lifecycle.md): on `xl shutdown` and `xl reboot` the appliance stops taking
# connections, lets those in flight finish (drain=5, the default) and then ends as asked. Under
# `wrk -c16` and a loop of 64 KiB POSTs, every answer is either complete or a refused connection,
# never a truncated body; a delayed answer in flight when the request comes completes; the console
# says when the drain began and ended and how many connections it cut. Runs on a guest of its own
# (xenecho-drain), so the suite's guest serves on untouched for check-19 and check-20; that guest
# is created again after the shutdown for the reboot, and is shut down at the end.

failed_before=$FAILED
drain=xenecho-drain
drain_log=$(console_log "$drain")
drain_kernel=$(sed -n 's/^[[:space:]]*kernel[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' xl.cfg | head -1)
# xl reboot rebuilds the domain from its detached monitor, whose working directory is /: an
# absolute kernel path (see check-20).
drain_create() {
    xl create -q xl.cfg "name=\"$drain\"" "kernel=\"$PWD/$drain_kernel\"" 'extra="drain=5"' >/dev/null
    guest_address "$drain" 60
}

# A 64 KiB body of known bytes; its echo is exactly as long.
head -c 65536 /dev/urandom >/tmp/drain-body.bin
body_size=$(stat -c %s /tmp/drain-body.bin)

# The POST loop: one line per request, "<curl exit> <status> <bytes downloaded>", until
# /tmp/drain-stop exists (and for at most 120 requests).
post_loop() {
    local _
    for _ in $(seq 120); do
        [ -e /tmp/drain-stop ] && break
        out=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{size_download} %{time_connect}' \
            -H 'Content-Type: application/octet-stream' --data-binary @/tmp/drain-body.bin "http://$1/" 2>/dev/null)
        echo "$? $out"
        sleep 0.2
    done >/tmp/drain-posts.log
}

# Every POST answered whole (200 and the body's size) or refused without a byte (curl 7: refused,
# 52: empty reply, 56: reset; 28, a timeout, only if it never connected: the domain was gone and
# nothing answered its SYN); prints the counts.
posts_whole_or_refused() {
    awk -v size="$body_size" '
        $1 == 0 && $2 == 200 && $3 == size { whole++; next }
        ($1 == 7 || $1 == 52 || $1 == 56) && $3 == 0 { refused++; next }
        $1 == 28 && $3 == 0 && $4 + 0 == 0 { refused++; next }
        { bad++; print "  a POST neither whole nor refused: curl " $1 ", status " $2 ", " $3 " bytes" }
        END { printf "  POSTs: %d whole, %d refused, %d neither\n", whole, refused, bad; exit !(whole > 0 && bad == 0) }
    ' /tmp/drain-posts.log
}

# wrk saw no non-2xx and no timeout. Its other socket errors are connections ending without an
# answer: wrk cannot tell a reset or a close from an answer cut short, and cannot be held to one
# per connection (during the drain it reconnects, and a connection taken just before the listener
# closed is then closed idle, as the drain closes every idle one), nor can its connect and write
# errors (it retries a domain that takes no connections, then is gone). Truncation itself is the
# POST loop's check, byte for byte; wrk's read errors are printed.
wrk_clean_across() {
    sed 's/^/  wrk: /' "$1"
    ! grep -q 'Non-2xx' "$1" || return 1
    local errors
    errors=$(grep -E 'Socket errors:' "$1")
    [ -z "$errors" ] && return 0
    echo "$errors" | awk '{ gsub(",", ""); exit !($10 == 0) }'
}

# drain_across ACTION ADDRESS: wrk, the POST loop and one delayed request running, then
# `xl ACTION -w` (shutdown) or `xl ACTION` (reboot) after 5 s.
drain_across() {
    local action=$1 address=$2
    rm -f /tmp/drain-stop
    wrk -t2 -c16 -d20s "http://$address/" >/tmp/drain-wrk.out 2>&1 &
    local wrk_pid=$!
    post_loop "$address" &
    local posts=$!
    sleep 5
    # Asked for 4 s, 1.5 s before the request: in flight when the drain begins (its head must have
    # arrived: a connection with no whole request is idle, and the drain closes it; 0.5 s was too
    # little for a busy ARM64 dom0 once), and answered in the drain's 5 s.
    curl -sS --max-time 15 -o /tmp/drain-delayed.out -w '%{http_code}' "http://$address/?delay=4s" \
        >/tmp/drain-delayed.status 2>/dev/null &
    local delayed=$!
    sleep 1.5
    local start=$SECONDS
    if [ "$action" = shutdown ]; then xl shutdown -w "$drain" >/tmp/drain-xl.out 2>&1; else xl reboot "$drain" >/tmp/drain-xl.out 2>&1; fi &
    local xl_pid=$!
    # A readiness probe 1 s into the drain (the delayed answer keeps it going 2 s longer): a new
    # connection is refused (000) or, were it taken, told 503; never 200.
    sleep 1
    curl -sS -m 3 -o /dev/null -w '%{http_code}' "http://$address/readyz" >/tmp/drain-readyz.status 2>/dev/null
    wait "$xl_pid"
    echo "$?" >/tmp/drain-xl.status
    echo "  xl $action took $((SECONDS - start)) s"
    wait "$delayed"
    sleep 3
    touch /tmp/drain-stop
    wait "$posts"
    wait "$wrk_pid"
}

address=$(drain_create)
check "drain guest has an address ($address)" test -n "$address"
if [ -n "$address" ]; then
    drain_across shutdown "$address"
    check "xl shutdown -w: accepted and waited" test "$(cat /tmp/drain-xl.status)" = 0
    check "xl shutdown: the domain is gone" wait_gone "$drain" 10
    check "xl shutdown: wrk saw no non-2xx and no timeout" \
        wrk_clean_across /tmp/drain-wrk.out
    check "xl shutdown: every POST whole or refused, never truncated" posts_whole_or_refused
    check "xl shutdown: the delayed request in flight was answered (200)" \
        test "$(cat /tmp/drain-delayed.status)" = 200
    check "xl shutdown: /readyz during the drain is not ready ($(cat /tmp/drain-readyz.status))" \
        grep -qxE '000|503' /tmp/drain-readyz.status
    check "xl shutdown: the drain began" grep -qF "drain: Poweroff requested: no new connections" "$drain_log"
    check "xl shutdown: the drain ended, saying what it cut" \
        grep -qE "drain: done after [0-9]+ ms: [0-9]+ connections cut at the deadline" "$drain_log"
    grep -E "drain: " "$drain_log" | sed 's/^/  /'
    check "xl shutdown: xl saw reason code 0 (poweroff)" grep -qE 'shut ?down, reason code 0' "$(xl_log "$drain")"
    [ "$FAILED" -eq "$failed_before" ] || { show "$drain_log" 30; show /tmp/drain-posts.log 20; }

    # The guest again, for the reboot: it must come back as a new domain and serve.
    failed_before=$FAILED
    address=$(drain_create)
    check "drain guest created again ($address)" test -n "$address"
    old_domid=$(xl domid "$drain")
    drain_across reboot "$address"
    check "xl reboot: accepted" test "$(cat /tmp/drain-xl.status)" = 0
    new_domid=$(wait_new_domid "$drain" "$old_domid" 60)
    check "xl reboot: the guest came back as a new domain ($old_domid -> $new_domid)" \
        test -n "$new_domid" -a "$new_domid" != "$old_domid"
    check "xl reboot: wrk saw no non-2xx and no timeout" \
        wrk_clean_across /tmp/drain-wrk.out
    check "xl reboot: every POST whole or refused, never truncated" posts_whole_or_refused
    check "xl reboot: the delayed request in flight was answered (200)" \
        test "$(cat /tmp/drain-delayed.status)" = 200
    check "xl reboot: the drain began and ended" \
        grep -qF "drain: Reboot requested: no new connections" "$drain_log"
    rebooted_address=$(guest_address "$drain" 60)
    check "xl reboot: the new domain answers ($rebooted_address)" \
        test "$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "http://$rebooted_address/readyz")" = 200
    [ "$FAILED" -eq "$failed_before" ] || { show "$drain_log" 30; show /tmp/drain-posts.log 20; }
    xl shutdown -w "$drain" >/dev/null 2>&1
fi
check "the suite's guest still runs (domid $GUEST_DOMID)" still_running "$GUEST_NAME" "$GUEST_DOMID"
rm -f /tmp/drain-body.bin /tmp/drain-stop
