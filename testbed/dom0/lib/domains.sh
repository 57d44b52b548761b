# shellcheck shell=bash
# dom0's view of the domains, through xl and xenstore: sourced by dom0's scripts (its /init,
# wait-domain-gone, the e2e suite, bench/dom0.sh, tests/soak/dom0.sh). The initramfs holds it as
# /usr/local/lib/testbed/domains.sh (testbed/setup-lib.sh puts it there). Sourced, never run; fit
# for `set -euo pipefail` and for scripts without it.

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
