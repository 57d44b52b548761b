# PV services: xenstore features, idle cost, timer against dom0's clock,
# xl reboot, xl save refused on ARM64 (x86_64 saves: check-19), and xl
# shutdown through control/shutdown.

failed_before=$FAILED
home=/local/domain/$GUEST_DOMID
check "grant table frames mapped" grep -qE 'grant table: [0-9]+ frames mapped' "$(console_log "$GUEST_NAME")"
check "xenstore: control/feature-poweroff = 1" test "$(xenstore-read "$home/control/feature-poweroff" 2>&1)" = 1
check "xenstore: control/feature-reboot = 1" test "$(xenstore-read "$home/control/feature-reboot" 2>&1)" = 1
# Suspend: carried out on x86_64 (check-19), not on ARM64 (Xen has no save or migration there).
if [ "$(uname -m)" = x86_64 ]; then suspend_feature=1; else suspend_feature=0; fi
check "xenstore: control/feature-suspend = $suspend_feature" \
    test "$(xenstore-read "$home/control/feature-suspend" 2>&1)" = "$suspend_feature"
xenstore-ls -f "$home/control" 2>&1 | sed 's/^/  xenstore-ls: /'

# Idle cost: Xen's CPU accounting over 10 s of dom0 time.
cpu_seconds() { xl list "$1" | awk 'NR == 2 { print $6 }'; }
before=$(cpu_seconds "$GUEST_NAME")
sleep 10
after=$(cpu_seconds "$GUEST_NAME")
echo "  idle guest used $before -> $after CPU seconds over 10 s"
# Both readings must be numbers (a guest gone from `xl list` would read as 0 s used), the second
# no smaller (a guest restarted after a crash starts again from 0).
check "idle guest uses under 5% CPU" awk -v a="$before" -v b="$after" \
    'BEGIN { exit !(a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b >= a && b - a < 0.5) }'

# The one-shot timer: ticks a second apart by the guest's clock, stamped on
# arrival with dom0's uptime; ticks 2..8 span 6 s on both clocks within 2 %
# (a long span keeps the console's delivery jitter small beside it).
name=xenecho-ticks
(xl create -c xl.cfg "name=\"$name\"" 'extra="ticks=8"' </dev/null 2>&1 \
    | while IFS= read -r line; do
        # bash builtins only: a fork per line would add tens of ms of jitter
        case $line in *"tick "*) read -r uptime _ </proc/uptime; echo "$uptime $line" ;; esac
      done > /tmp/ticks.txt) &
stamper=$!
wait_for_text /tmp/ticks.txt "tick 8/8" 60 >/dev/null
xl destroy "$name" 2>/dev/null
wait "$stamper" 2>/dev/null
sed 's/^/  /' /tmp/ticks.txt
check "timer: 8 ticks logged" test "$(grep -c 'tick [1-8]/8 at' /tmp/ticks.txt)" -eq 8
check "timer: tick spacing agrees with dom0's clock within 2%" awk '
    / tick 2\/8 at / { dom0_first = $1; guest_first = $(NF - 1) }
    / tick 8\/8 at / { dom0_last = $1; guest_last = $(NF - 1) }
    END {
        dom0 = dom0_last - dom0_first; guest = (guest_last - guest_first) / 1e6
        printf "  ticks 2..8: guest %.3f s, dom0 %.3f s\n", guest, dom0
        exit !(guest > 5.9 && dom0 > 0 && (dom0 - guest) / guest < 0.02 && (guest - dom0) / guest < 0.02)
    }' /tmp/ticks.txt

# xl reboot: the guest acknowledges, ends with reason "reboot", and xl starts
# it again. xl rebuilds the domain from its detached monitor, whose working
# directory is /, so a rebootable guest needs an absolute kernel path (see
# xl.cfg): this one gets it on the command line.
life=xenecho-life
life_log=$(console_log "$life")
kernel_path=$(sed -n 's/^[[:space:]]*kernel[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' xl.cfg | head -1)
xl create -q xl.cfg "name=\"$life\"" "kernel=\"$PWD/$kernel_path\"" >/dev/null
check "rebootable guest booted" wait_for_text "$life_log" "heap check passed" 60
old_domid=$(xl domid "$life")
xl reboot "$life" | sed 's/^/  xl reboot: /'
new_domid=$(wait_new_domid "$life" "$old_domid" 60)
check "xl reboot: guest came back as a new domain ($old_domid -> $new_domid)" \
    test -n "$new_domid" -a "$new_domid" != "$old_domid"
check "xl reboot: the guest logged the request" grep -qF "shutdown requested (Reboot)" "$life_log"
check "xl reboot: xl saw reason code 1 (reboot)" grep -qE 'shut ?down, reason code 1' "$(xl_log "$life")"
feature_written() {
    local _
    for _ in $(seq 60); do
        [ "$(xenstore-read "/local/domain/$1/control/feature-poweroff" 2>/dev/null)" = 1 ] && return 0
        sleep 1
    done
    return 1
}
check "xl reboot: the new domain advertises feature-poweroff" feature_written "$new_domid"
check "xl reboot: banner printed by both domains" test "$(grep -c 'HTTP echo appliance on Xen' "$life_log")" -ge 2
xl shutdown -w "$life" >/dev/null 2>&1
[ "$FAILED" -eq "$failed_before" ] || { show "$life_log" 30; show "$(xl_log "$life")" 30; }

# xl save on ARM64: Xen has no save or migration there, xl has no save command, and the guest says
# so (control/feature-suspend = 0): `xl save` fails at once, and the guest serves on, neither paused
# nor suspended (docs/lifecycle.md). x86_64 saves, restores and migrates: check-19.
if [ "$(uname -m)" != x86_64 ]; then
    failed_before=$FAILED
    save_limit=10 save_reason="command not implemented"
    start=$SECONDS
    xl save "$GUEST_NAME" /tmp/x.save >/tmp/xl-save.out 2>&1
    save_status=$?
    save_took=$((SECONDS - start))
    rm -f /tmp/x.save
    sed 's/^/  xl save: /' /tmp/xl-save.out
    echo "  xl save took $save_took s"
    # not_paused NAME: the state column of domain NAME has no p.
    not_paused() {
        local state
        state=$(domain_state "$1")
        [[ $state != *p* ]] || { echo "  $1: state '$state'"; return 1; }
    }
    check "xl save: refused (status $save_status)" test "$save_status" -ne 0
    check "xl save: refused within $save_limit s (took $save_took s)" test "$save_took" -le "$save_limit"
    check "xl save: xl says why ($save_reason)" grep -qF "$save_reason" /tmp/xl-save.out
    check "xl save: the guest still runs as domain $GUEST_DOMID" still_running "$GUEST_NAME" "$GUEST_DOMID"
    check "xl save: the guest is not paused" not_paused "$GUEST_NAME"
    address=$(domain_address "$GUEST_DOMID")
    check "xl save: the guest still answers HTTP at $address" \
        test "$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "http://$address/")" = 200
    [ "$FAILED" -eq "$failed_before" ] || { show /tmp/xl-save.out 30; show "$boot_log" 20; }
fi

# xl trigger nmi (x86_64; ARM has no NMI to send): counted, logged, and the guest carries on.
if [ "$(uname -m)" = x86_64 ]; then
    failed_before=$FAILED
    nmi_domid=$(xl domid "$GUEST_NAME")
    xl trigger "$GUEST_NAME" nmi >/tmp/xl-trigger.out 2>&1
    nmi_status=$?
    sed 's/^/  xl trigger: /' /tmp/xl-trigger.out
    check "xl trigger nmi: accepted (status $nmi_status)" test "$nmi_status" -eq 0
    check "xl trigger nmi: the guest logged it" wait_for_text "$boot_log" "NMI received (1 since boot" 10
    check "xl trigger nmi: the same domain runs on" still_running "$GUEST_NAME" "$nmi_domid"
    check "xl trigger nmi: the guest still answers HTTP" \
        test "$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "http://$(domain_address "$nmi_domid")/")" = 200
    [ "$FAILED" -eq "$failed_before" ] || show "$boot_log" 20
fi

# xl shutdown: a clean poweroff within 10 s.
start=$SECONDS
xl shutdown "$GUEST_NAME" >/tmp/xl-shutdown.out 2>&1
shutdown_status=$?
cat /tmp/xl-shutdown.out | sed 's/^/  xl shutdown: /'
check "xl shutdown accepted (PV control interface)" test "$shutdown_status" -eq 0
check "xl shutdown: domain gone within 10 s" wait_gone "$GUEST_NAME" 10
echo "  shutdown took $((SECONDS - start)) s"
check "xl shutdown: the guest logged the request" grep -qF "shutdown requested (Poweroff)" "$boot_log"
check "xl shutdown: xl saw reason code 0 (poweroff)" grep -qE 'shut ?down, reason code 0' "$(xl_log "$GUEST_NAME")"
[ "$FAILED" -eq "$failed_before" ] || { show "$boot_log" 30; show "$(xl_log "$GUEST_NAME")" 30; }
