# ARM64: the guest boots from the arm64 Image, logs the device tree's facts
# through the PV console, and reports a panic and a translation fault (ESR,
# FAR, ELR) as a crash. The configuration, HTTP, network and lifecycle checks that follow are
# the x86_64 suite's own (tests/e2e/check-{11,12,14,15,20}-*.sh; 14 skips itself here).

boot_log=$(console_log "$GUEST_NAME")
failed_before=$FAILED
check "guest $GUEST_NAME (domid $GUEST_DOMID) is running" still_running "$GUEST_NAME" "$GUEST_DOMID"
check "banner on the PV console" wait_for_text "$boot_log" "HTTP echo appliance on Xen" 60
check "command line from /chosen/bootargs" grep -qF 'command line: "loglevel=info"' "$boot_log"
check "memory map from the device tree" grep -qE 'memory map \([0-9]+ KiB of RAM\)' "$boot_log"
check "RAM bank 0 at 0x40000000 listed" grep -qE '0x000040000000-0x[0-9a-f]+ +[0-9]+ KiB Ram' "$boot_log"
check "device tree: the xen,xen hypervisor node and its grant-table region" \
    grep -qE 'device tree: hypervisor xen,xen-4\.[0-9]+, grant-table region 0x38000000-0x39000000' "$boot_log"
check "device tree: event-channel PPI (INTID 31), GICv3, vuart" \
    grep -qE 'device tree: event channel INTID 31, GICv3 .*, vuart 0x22000000' "$boot_log"
check "grant table mapped in the device tree's region" \
    grep -qE 'grant table: [0-9]+ frames mapped at 0x38000000' "$boot_log"
check "time from the generic timer" grep -qE 'clock: [0-9]+ ns since boot, generic timer [0-9]+ kHz' "$boot_log"
check "heap exercised" grep -qF "heap check passed" "$boot_log"
[ "$FAILED" -eq "$failed_before" ] || { show "$boot_log"; show "$(xl_log "$GUEST_NAME")" 20; }

timeout 10 xl console "$GUEST_NAME" </dev/null >/tmp/xl-console.out 2>&1
check "xl console shows the banner" grep -qF "HTTP echo appliance on Xen" /tmp/xl-console.out
check "xl console shows the device tree facts" grep -qF "device tree: hypervisor xen,xen" /tmp/xl-console.out

# selftest=panic: message and location on the console (and, with debugport,
# on the vuart), domain crashed.
name=xenecho-panic
failed_before=$FAILED
xl create -q xl.cfg "name=\"$name\"" 'extra="selftest=panic debugport"' 'on_crash="preserve"' >/dev/null
check "selftest=panic: domain crashed" wait_for_state "$name" c 120
check "selftest=panic: panic message on the console" \
    wait_for_text "$(console_log "$name")" "selftest: panic requested on the command line" 10
check "selftest=panic: location on the console" grep -qE 'FATAL: panicked at [a-z_/-]+\.rs:[0-9]+:[0-9]+' \
    "$(console_log "$name")"
# The crash report: the last log lines (the selftest's own among them), then the reason.
check "selftest=panic: the last log lines before the reason" awk '
    /^[[] *[0-9]+[.][0-9][0-9][0-9][]] crash: the last [1-8] log lines, oldest first:/ { heading = NR }
    heading && /^  [|] [[] *[0-9]+[.][0-9][0-9][0-9][]] WARN  xenecho: running selftest=panic/ { own = NR }
    /^[[] *[0-9]+[.][0-9][0-9][0-9][]] FATAL: panicked at / { fatal = NR }
    END { exit !(heading && own > heading && fatal > own) }' "$(console_log "$name")"
timeout 5 xl console -t vuart "$name" </dev/null >/tmp/vuart.out 2>&1
check "selftest=panic: the message on the vuart too (debugport)" \
    grep -qF "selftest: panic requested on the command line" /tmp/vuart.out
check "selftest=panic: the crash report's last log lines on the vuart too" \
    grep -qF "WARN  xenecho: running selftest=panic" /tmp/vuart.out
check "selftest=panic: xl saw reason code 3 (crash)" grep -qE 'shut ?down, reason code 3' "$(xl_log "$name")"
[ "$FAILED" -eq "$failed_before" ] || { show "$(console_log "$name")" 10; show /tmp/vuart.out 10; }
xl destroy "$name" 2>/dev/null

# selftest=pagefault: a data abort at an unmapped address, reported with the
# syndrome, the instruction and the fault address.
name=xenecho-pagefault
failed_before=$FAILED
xl create -q xl.cfg "name=\"$name\"" 'extra="selftest=pagefault"' 'on_crash="preserve"' >/dev/null
check "selftest=pagefault: domain crashed" wait_for_state "$name" c 120
check "selftest=pagefault: data abort reported" \
    wait_for_text "$(console_log "$name")" "(class 0x25, data abort)" 10
check "selftest=pagefault: ELR and fault address reported" \
    grep -qE 'elr 0x4[0-9a-f]+, fault address \(far\) 0x8deadb000' "$(console_log "$name")"
[ "$FAILED" -eq "$failed_before" ] || show "$(console_log "$name")" 10
xl destroy "$name" 2>/dev/null

