# shellcheck shell=bash
# dom0's view of the domains, through xl and xenstore: sourced by dom0's scripts (its /init,
# wait-domain-gone, the e2e suite, bench/dom0.sh, tests/soak/dom0.sh). The initramfs holds it as
# /usr/local/lib/testbed/domains.sh (testbed/setup-lib.sh puts it there). Sourced, never run; fit
# for `set -euo pipefail` and for scripts without it.

# The appliance's HTTP and metrics ports when its command line sets none (port=, metrics-port=).
XENECHO_HTTP_PORT=80
XENECHO_METRICS_PORT=19100

# guest_port WORD: the port the command line in /xenecho/xl.cfg (extra = "...") sets with WORD=N
# (port or metrics-port), or the appliance's default for WORD; as the appliance reads it, the last
# one counts and a value that is not a port leaves the default.
guest_port() {
    local word port="" default
    case $1 in
    port) default=$XENECHO_HTTP_PORT ;;
    metrics-port) default=$XENECHO_METRICS_PORT ;;
    *) return 1 ;;
    esac
    local extra words=()
    extra=$(sed -n 's/^[[:space:]]*extra[[:space:]]*=[[:space:]]*["'\'']\([^"'\'']*\)["'\''].*/\1/p' \
        "${XENECHO_DIR:-/xenecho}/xl.cfg" 2>/dev/null | tail -n 1)
    read -ra words <<< "$extra"
    for word in "${words[@]}"; do
        case $word in "$1="*) port=${word#*=} ;; esac
    done
    [[ $port =~ ^[0-9]{1,5}$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || port=$default
    echo "$port"
}

# domain_address DOMID: the IPv4 address domain DOMID published in xenstore (data/ipv4-address);
# status 1 while it has published none.
domain_address() { xenstore-read "/local/domain/$1/data/ipv4-address" 2>/dev/null; }

# guest_address NAME SECONDS: the address domain NAME published, waiting up to SECONDS for it;
# prints nothing (status 1) if there is none by then.
guest_address() {
    local address _
    for _ in $(seq "$2"); do
        address=$(domain_address "$(xl domid "$1" 2>/dev/null)") && { echo "$address"; return 0; }
        sleep 1
    done
    return 1
}

# domain_state NAME: the state letters of `xl list` for domain NAME ("r-----", "-b----", "--c---",
# ...), or nothing if there is no such domain.
domain_state() {
    { xl list "$1" 2>/dev/null || true; } | awk 'NR == 2 { print $5 }'
}

# wait_gone NAME SECONDS: until domain NAME no longer exists (it powered off, crashed or was
# destroyed and xl cleaned it up); status 1, saying so, if it still exists after SECONDS.
wait_gone() {
    local name=$1 deadline=$((SECONDS + $2))
    while xl domid "$name" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "  $name still exists after $2 s"
            return 1
        fi
        sleep 1   # never busy-poll: every vCPU shares one emulated core
    done
}
