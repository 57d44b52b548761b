# Boot: the guest boots and logs through the PV console (banner, command line,
# memory map, heap check), read from the console log and through `xl console`;
# on request it panics or page-faults, reports where (after the last log lines),
# and ends as crashed.

boot_log=$(console_log "$GUEST_NAME")
failed_before=$FAILED
check "guest $GUEST_NAME (domid $GUEST_DOMID) is running" still_running "$GUEST_NAME" "$GUEST_DOMID"
check "banner on the PV console" wait_for_text "$boot_log" "HTTP echo appliance on Xen" 60
check "command line on the PV console" grep -qF 'command line: "loglevel=info"' "$boot_log"
check "memory map on the PV console" grep -qE 'memory map \([0-9]+ KiB of RAM\)' "$boot_log"
check "RAM region listed" grep -qE '0x000000000000-0x[0-9a-f]+ +[0-9]+ KiB Ram' "$boot_log"
check "heap exercised" grep -qF "heap check passed" "$boot_log"
[ "$FAILED" -eq "$failed_before" ] || { show "$boot_log"; show "$(xl_log "$GUEST_NAME")" 20; }

# The same output through `xl console` itself.
timeout 10 xl console "$GUEST_NAME" </dev/null >/tmp/xl-console.out 2>&1
check "xl console shows the banner" grep -qF "HTTP echo appliance on Xen" /tmp/xl-console.out
check "xl console shows the memory map" grep -qE 'memory map \([0-9]+ KiB of RAM\)' /tmp/xl-console.out

# selftest=panic: message and location on the console, domain crashed.
name=xenecho-panic
failed_before=$FAILED
xl create -q xl.cfg "name=\"$name\"" 'extra="selftest=panic"' 'on_crash="preserve"' >/dev/null
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
check "selftest=panic: xl saw reason code 3 (crash)" grep -qE 'shut ?down, reason code 3' "$(xl_log "$name")"
[ "$FAILED" -eq "$failed_before" ] || show "$(console_log "$name")" 10
xl destroy "$name" 2>/dev/null

# selftest=pagefault: vector, error code, RIP and the faulting address.
name=xenecho-pagefault
failed_before=$FAILED
xl create -q xl.cfg "name=\"$name\"" 'extra="selftest=pagefault"' 'on_crash="preserve"' >/dev/null
check "selftest=pagefault: domain crashed" wait_for_state "$name" c 120
check "selftest=pagefault: vector 14 reported" \
    wait_for_text "$(console_log "$name")" "exception 14 (#PF page fault)" 10
check "selftest=pagefault: faulting address reported" \
    grep -qE 'rip 0x[0-9a-f]+.*fault address \(cr2\) 0x8deadb000' "$(console_log "$name")"
[ "$FAILED" -eq "$failed_before" ] || show "$(console_log "$name")" 10
xl destroy "$name" 2>/dev/null
