# Configuration and diagnostics: every log line starts with the time since boot; the settings in
# effect are logged as key=value; a guest given misspelt, malformed, repeated and conflicting
# words says so in one line each, with the value it uses, and serves with those values; `help`
# lists the words and the guest boots on; a guest on a bridge with no DHCP server says so 30 s
# after asking for a lease, and again at 60 s.

# The guest with no DHCP server starts first: its hints take a minute to come, and the other
# checks run meanwhile. Its bridge, xenbr1, has no address and no DHCP server (dom0's udhcpd
# serves xenbr0 only).
nodhcp=xenecho-nodhcp
ip link add xenbr1 type bridge && ip link set xenbr1 up
xl create -q xl.cfg "name=\"$nodhcp\"" "vif=['bridge=xenbr1']" >/dev/null

# STAMP: the time stamp that starts a log line, for grep -E.
STAMP='^\[ *[0-9]+\.[0-9]{3}\] '

# stamps_never_go_back FILE: the time stamps of FILE's log lines never decrease.
stamps_never_go_back() {
    awk '
        /^[[] *[0-9]+[.][0-9][0-9][0-9][]] / { split($0, part, /[][]/); time = part[2] + 0
                     if (time < last) { print "  " $0 " (after " last ")"; bad = 1 }
                     last = time; lines++ }
        END { if (lines < 10) { print "  only " lines " stamped lines"; bad = 1 }; exit bad }' "$1"
}

failed_before=$FAILED
check "log lines start with the time since boot" grep -qE "${STAMP}INFO  xenecho: xenecho .*HTTP echo appliance on Xen" \
    "$boot_log"
check "log time stamps never go back" stamps_never_go_back "$boot_log"
check "settings as key=value: kernel and network" grep -qE \
    "${STAMP}INFO  xenecho: settings: loglevel=info heap=[0-9]+[KMG]? debugport=off ip=dhcp untrusted-backend=off drain=5" \
    "$boot_log"
check "settings as key=value: the services" grep -qE \
    "${STAMP}INFO  xenecho: settings: port=80 metrics-port=19100 connections=[0-9]+ backlog=[0-9]+ per-client=off max-body=unlimited min-rate=1K" \
    "$boot_log"
check "xl.cfg's own command line gives no warning" test "$(grep -c ' WARN  xenecho: ' "$boot_log")" -eq 0
[ "$FAILED" -eq "$failed_before" ] || show "$boot_log" 30

# Misspelt, malformed, repeated and conflicting words: one warning each, naming the value used;
# the guest serves as the settings line says (HTTP on 8080 with a 2K body limit, metrics moved
# off 8080 to 19100, one connection slot).
name=xenecho-config
log=$(console_log "$name")
failed_before=$FAILED
xl create -q xl.cfg "name=\"$name\"" \
    'extra="loglevl=debug max-body=10MB loglevel=loud per-client=lots port=8080 metrics-port=8080 connections=0 min-rate=fast max-body=2K"' \
    >/dev/null
check "config guest: logged its settings" wait_for_text "$log" "settings: port=" 60
for warning in \
    'loglevl=debug: unknown word (did you mean loglevel?): ignored' \
    'max-body=10MB: repeated later (the last one, max-body=2K, counts): ignored' \
    'loglevel=loud: not off, error, warn, info, debug or trace: using loglevel=info' \
    'per-client=lots: not a number or off: using per-client=off' \
    'connections=0: at least 1: using connections=1' \
    'min-rate=fast: not a size (bytes a second, or a number with k, M or G) or off: using min-rate=1K' \
    'metrics-port=8080: HTTP has port 8080: using metrics-port=19100'; do
    check "config guest warns once: $warning" test "$(grep -cF " WARN  xenecho: $warning" "$log")" -eq 1
done
check "config guest: seven warnings, no more" test "$(grep -c ' WARN  xenecho: ' "$log")" -eq 7
check "config guest: the settings in effect" grep -qF \
    'settings: port=8080 metrics-port=19100 connections=1 backlog=1 per-client=off max-body=2K min-rate=1K' "$log"
config_ip=$(guest_address "$name" 60)
check "config guest has an address ($config_ip)" test -n "$config_ip"
status_of() { curl -sS -m 10 -o /dev/null -w '%{http_code}' "$@"; }
head -c 3000 /dev/zero >/tmp/config-body.bin
head -c 2000 /dev/zero >/tmp/config-small.bin
check "config guest: HTTP on port 8080" test "$(status_of "http://$config_ip:8080/")" = 200
check "config guest: a 2000-byte body is echoed (max-body=2K)" \
    test "$(status_of --data-binary @/tmp/config-small.bin "http://$config_ip:8080/")" = 200
check "config guest: a 3000-byte body gets 413 (max-body=2K)" \
    test "$(status_of --data-binary @/tmp/config-body.bin "http://$config_ip:8080/")" = 413
check "config guest: nothing on port 80" test "$(status_of "http://$config_ip/" 2>/dev/null)" = 000
check "config guest: metrics on 19100, one slot" \
    eval "curl -sS -m 10 'http://$config_ip:19100/metrics' | grep -qx 'xenecho_http_connection_slots 1'"
[ "$FAILED" -eq "$failed_before" ] || show "$log" 40
xl destroy "$name" 2>/dev/null

# help: the heading and one line per word, then the guest boots with the defaults and serves.
name=xenecho-help
log=$(console_log "$name")
failed_before=$FAILED
xl create -q xl.cfg "name=\"$name\"" 'extra="help"' >/dev/null
check "help guest: logged its settings" wait_for_text "$log" "settings: port=80 " 60
check "help guest: 28 help lines (a heading, 23 words and 4 per-vif words)" \
    test "$(grep -cE "${STAMP}INFO  xenecho: help: " "$log")" -eq 28
for key in loglevel heap debugport ticks selftest ip gw ip6 gw6 port metrics-port metrics-address metrics-vif vifN.ip connections backlog per-client socket-buffer drain \
    max-body min-rate untrusted-backend help; do
    check "help lists $key" grep -qE "INFO  xenecho: help: ${key}[= ]" "$log"
done
check "help guest: no warning" test "$(grep -c ' WARN  xenecho: ' "$log")" -eq 0
help_ip=$(guest_address "$name" 60)
check "help guest boots on and serves HTTP ($help_ip)" test "$(status_of "http://$help_ip/")" = 200
[ "$FAILED" -eq "$failed_before" ] || show "$log" 40
xl destroy "$name" 2>/dev/null

# No DHCP server: the hint 30 s after asking (by the guest's own time stamps), then at 60 s; no
# address published meanwhile.
log=$(console_log "$nodhcp")
failed_before=$FAILED
hint='network: no DHCP lease after 30 s: is there a DHCP server on the bridge? or set ip=ADDR/LEN gw=ADDR'
check "no DHCP server: the guest asked for a lease" wait_for_text "$log" "network: asking for an address by DHCP" 60
check "no DHCP server: the hint after 30 s" wait_for_text "$log" " WARN  runtime::vif: $hint" 90
# seconds_between FILE FIRST SECOND: the guest's time from FIRST's line to SECOND's (fixed strings).
seconds_between() {
    awk -v first="$2" -v second="$3" '
        index($0, first) && !a { split($0, part, /[][]/); a = part[2] + 0 }
        index($0, second) && !b { split($0, part, /[][]/); b = part[2] + 0 }
        END { if (a && b) printf "%.3f", b - a }' "$1"
}
waited=$(seconds_between "$log" "network: asking for an address by DHCP" "no DHCP lease after 30 s")
# The hint is due 30 s after asking on the network's clock, which leaves out time the guest did
# not run (runtime/src/running_clock.rs): on a busy emulated host the stamps may show a little more.
check "no DHCP server: the hint came 30 s after asking by the guest's clock ($waited s)" \
    awk -v waited="$waited" 'BEGIN { exit !(waited != "" && waited >= 30 && waited < 40) }'
check "no DHCP server: the hint again after 60 s" wait_for_text "$log" "network: no DHCP lease after 60 s" 50
check "no DHCP server: each hint once" test "$(grep -c 'no DHCP lease after 30 s' "$log")" -eq 1
# no_address NAME: domain NAME runs and has published no address.
no_address() {
    local domid
    domid=$(xl domid "$1" 2>/dev/null) && [ -n "$domid" ] && [ -z "$(domain_address "$domid")" ]
}
check "no DHCP server: still running, no address in xenstore" no_address "$nodhcp"
[ "$FAILED" -eq "$failed_before" ] || show "$log" 30
xl destroy "$nodhcp" 2>/dev/null
ip link del xenbr1 2>/dev/null
