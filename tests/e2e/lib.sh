#!/bin/bash
# End-to-end suite, run inside dom0 of the emulated Xen host by
# `make test-e2e` (this file, then tests/e2e/check-*.sh, then summary.sh,
# concatenated into one DOM0_SCRIPT). The runner has already done
# `xl create xl.cfg` in $XENECHO_DIR; GUEST_NAME and GUEST_DOMID name it.
#
# Each check prints "PASS: what" or "FAIL: what (why)"; the summary prints
# "N passed, M failed" and exits non-zero if anything failed.
set -u
cd "${XENECHO_DIR:-/xenecho}"

PASSED=0
FAILED=0
CONSOLE_LOG_DIR=/var/log/xen/console

pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }

# check "what" command...: PASS if the command succeeds.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# guest_address NAME SECONDS: the IPv4 address domain NAME published in xenstore
# (data/ipv4-address), waiting up to SECONDS for it; prints nothing if there is none by then.
guest_address() {
    local address
    for _ in $(seq "$2"); do
        address=$(xenstore-read "/local/domain/$(xl domid "$1" 2>/dev/null)/data/ipv4-address" 2>/dev/null) \
            && { echo "$address"; return 0; }
        sleep 1
    done
    return 1
}

# The state letters of `xl list` for a domain (e.g. "r-----", "---s--", "--c---"), or "" if gone.
domain_state() {
    xl list "$1" 2>/dev/null | awk 'NR == 2 { print $5 }'
}

# wait_for_state NAME LETTER SECONDS: until the state column has LETTER (s: shut down, c: crashed).
wait_for_state() {
    local name=$1 letter=$2 deadline=$((SECONDS + $3))
    while [ $SECONDS -lt "$deadline" ]; do
        case "$(domain_state "$name")" in *"$letter"*) return 0 ;; esac
        sleep 1
    done
    echo "  $name: state '$(domain_state "$name")' after $3 s, wanted '$letter'"
    return 1
}

# wait_gone NAME SECONDS: until the domain no longer exists.
wait_gone() {
    local name=$1 deadline=$((SECONDS + $2))
    while [ $SECONDS -lt "$deadline" ]; do
        xl domid "$name" >/dev/null 2>&1 || return 0
        sleep 1
    done
    echo "  $name still exists after $2 s"
    return 1
}

# wait_for_text FILE TEXT SECONDS: until FILE contains TEXT (a fixed string).
wait_for_text() {
    local file=$1 text=$2 deadline=$((SECONDS + $3))
    while [ $SECONDS -lt "$deadline" ]; do
        grep -qF -- "$text" "$file" 2>/dev/null && return 0
        sleep 1
    done
    echo "  '$text' not in $file after $3 s"
    return 1
}

console_log() { echo "$CONSOLE_LOG_DIR/guest-$1.log"; }
xl_log() { echo "/var/log/xen/xl-$1.log"; }

# Shows a file's tail when a check failed, to make the failure readable.
show() {
    echo "----- $1 (last ${2:-40} lines)"
    tail -n "${2:-40}" "$1" 2>/dev/null | sed 's/^/  | /'
}
