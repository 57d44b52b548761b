# Suspend and resume (x86_64): `xl save` + `xl restore`, then `xl migrate` to this same host, each
# SUSPEND_ROUNDS times in a row (5; `make test` runs 1, `make test-suspend` 5), with `wrk -c16` running across every move: it must see no
# socket error and no non-2xx; the guest keeps its address and serves after each move; the longest
# blackout a curl loop saw (one request every 0.1 s, 1 s timeout each) is reported per move. Runs
# before check-20, which ends the guest; sets GUEST_DOMID to the domain the guest is at the end.
# ARM64: Xen has no save or migration there; check-20 holds `xl save` to failing at once.
#
# `xl migrate` normally runs `ssh HOST xl migrate-receive`; the test host's dom0 has no ssh (nor
# sshd), so the receiving end is started through xl's own escape hatch: `-s ""` makes xl run the
# host argument itself, through sh, as the receiving command: `xl migrate -s "" NAME "xl
# migrate-receive"` migrates to this host over a pipe, as ssh to localhost would.
if [ "$(uname -m)" = x86_64 ]; then
failed_before=$FAILED
rounds=${SUSPEND_ROUNDS:-5}
# wrk runs this long per move (the move, and then serving, inside it); a request may wait this
# long for its answer (a save or a migration on the emulated host takes tens of seconds).
wrk_seconds=${SUSPEND_WRK_SECONDS:-45}
wrk_timeout=${SUSPEND_WRK_TIMEOUT:-60}
save_file=/tmp/xenecho-suspend.save
boot_log=${boot_log:-$(console_log "$GUEST_NAME")} # set by check-10, unless run alone (make test-suspend)
home=/local/domain/$GUEST_DOMID
check "suspend: control/feature-suspend = 1" test "$(xenstore-read "$home/control/feature-suspend" 2>&1)" = 1
address=$(guest_address "$GUEST_NAME" 60)
check "suspend: the guest has an address ($address)" test -n "$address"
url="http://$address"

wrk_start() {
    wrk -t2 -c16 -d"$wrk_seconds"s --timeout "$wrk_timeout"s "$url/" >/tmp/wrk-move.out 2>&1 &
    wrk_pid=$!
}
wrk_ok() {
    wait "$wrk_pid"
    sed 's/^/  /' /tmp/wrk-move.out
    grep -q 'Requests/sec' /tmp/wrk-move.out || return 1
    ! grep -q 'Socket errors' /tmp/wrk-move.out || return 1
    ! grep -q 'Non-2xx' /tmp/wrk-move.out
}
# xenconsoled names a console log after the domain when the domain appears, and the domain `xl
# migrate` makes is called NAME--incoming until the move completes: after a migration the guest's
# console goes on in guest-NAME--incoming.log (docs/lifecycle.md). Resumes are counted in both.
incoming_log=$(console_log "$GUEST_NAME--incoming")
rm -f "$incoming_log"
resumes() {
    cat "$boot_log" "$incoming_log" 2>/dev/null | grep -c 'resumed in a new domain: connecting the network again'
}
# after_move WHAT OLD_DOMID: the checks after each move.
after_move() {
    local what=$1 old_domid=$2 domid
    domid=$(xl domid "$GUEST_NAME" 2>/dev/null)
    check "$what: the guest runs as a new domain ($old_domid -> ${domid:-none})" \
        test -n "$domid" -a "$domid" != "$old_domid"
    check "$what: the guest keeps its address" test "$(guest_address "$GUEST_NAME" 60)" = "$address"
    check "$what: the guest serves" test "$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "$url/after")" = 200
    check "$what: X-Echo-Domid names the new domain" \
        bash -c "curl -sS -m 10 -D - -o /dev/null '$url/?instance' | tr -d '\r' | grep -qx 'X-Echo-Domid: $domid'"
    check "$what: wrk -c16 across the move: no socket errors, no non-2xx" wrk_ok
    probe_stop
    echo "  $what: longest blackout $(longest_blackout) s"
    GUEST_DOMID=${domid:-$GUEST_DOMID}
}

# begin_move: the load and the probe started, 5 s of them before the move; notes the domain and
# the time the move starts.
begin_move() {
    old_domid=$(xl domid "$GUEST_NAME")
    probe_start "$url/probe"
    wrk_start
    sleep 5
    start=$SECONDS
}

resumed_before=$(resumes)
for round in $(seq "$rounds"); do
    what="xl save + xl restore $round/$rounds"
    begin_move
    xl save "$GUEST_NAME" "$save_file" >/tmp/xl-save.out 2>&1
    save_status=$?
    grep -v 'progress: Frames' /tmp/xl-save.out | sed 's/^/  xl save: /'
    check "$what: xl save succeeded (status $save_status)" test "$save_status" -eq 0
    check "$what: the saved domain is gone" wait_gone "$GUEST_NAME" 30
    xl restore "$save_file" >/tmp/xl-restore.out 2>&1
    restore_status=$?
    sed 's/^/  xl restore: /' /tmp/xl-restore.out
    echo "  $what: save and restore took $((SECONDS - start)) s"
    check "$what: xl restore succeeded (status $restore_status)" test "$restore_status" -eq 0
    after_move "$what" "$old_domid"
    rm -f "$save_file"
done
check "xl save + xl restore: the guest resumed $rounds times in new domains" \
    test "$(($(resumes) - resumed_before))" -eq "$rounds"

# xl save -c: a checkpoint. The guest suspends, is saved, and is resumed where it was (a cancelled
# suspend, as the guest sees it): the same domain, the same link, serving on.
what="xl save -c (checkpoint)"
begin_move
xl save -c "$GUEST_NAME" "$save_file" >/tmp/xl-save.out 2>&1
save_status=$?
grep -v 'progress: Frames' /tmp/xl-save.out | sed 's/^/  xl save -c: /'
echo "  $what: took $((SECONDS - start)) s"
check "$what: xl save -c succeeded (status $save_status)" test "$save_status" -eq 0
check "$what: the guest runs on in the same domain" test "$(xl domid "$GUEST_NAME" 2>/dev/null)" = "$old_domid"
check "$what: the guest logged a cancelled suspend" \
    wait_for_text "$boot_log" "suspend cancelled: carrying on in the same domain" 10
check "$what: the guest serves" test "$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "$url/after")" = 200
check "$what: wrk -c16 across it: no socket errors, no non-2xx" wrk_ok
probe_stop
echo "  $what: longest blackout $(longest_blackout) s"
rm -f "$save_file"

resumed_before=$(resumes)
for round in $(seq "$rounds"); do
    what="xl migrate localhost $round/$rounds"
    begin_move
    xl migrate -s "" "$GUEST_NAME" "xl migrate-receive" >/tmp/xl-migrate.out 2>&1
    migrate_status=$?
    sed 's/^/  xl migrate: /' /tmp/xl-migrate.out
    echo "  $what: the migration took $((SECONDS - start)) s"
    check "$what: xl migrate succeeded (status $migrate_status)" test "$migrate_status" -eq 0
    after_move "$what" "$old_domid"
done
check "xl migrate: the guest resumed $rounds times in new domains" \
    test "$(($(resumes) - resumed_before))" -eq "$rounds"
check "suspend: no crash logged" bash -c "! cat '$boot_log' '$incoming_log' 2>/dev/null | grep -q FATAL"
if [ "$rounds" -gt 0 ]; then
    echo "  logs after the moves:"; ls -l /var/log/xen/console /var/log/xen | sed 's/^/    /'
    check "xl migrate: the guest's console goes on in $incoming_log" \
        grep -q 'resumed in a new domain: connecting the network again' "$incoming_log"
    boot_log=$incoming_log # for the checks that follow
fi
[ "$FAILED" -eq "$failed_before" ] || { show "$boot_log" 60; show "$(xl_log "$GUEST_NAME")" 30; }
fi
