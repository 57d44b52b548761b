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

# domain_address, guest_address, domain_state and wait_gone: dom0's, shared with its /init, the
# benchmark and the soak (testbed/dom0/lib/domains.sh).
# shellcheck source=testbed/dom0/lib/domains.sh
source /usr/local/lib/testbed/domains.sh || { echo "FAIL: no /usr/local/lib/testbed/domains.sh in dom0"; exit 1; }

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

# still_running NAME DOMID: domain NAME is still domain DOMID and has neither crashed nor shut
# down (xl.cfg has on_crash="restart": a crashed guest comes back under its name, as a new domid).
still_running() {
    local domid state
    domid=$(xl domid "$1" 2>/dev/null)
    state=$(domain_state "$1")
    [ -n "$domid" ] && [ "$domid" = "$2" ] && [ -n "$state" ] && [[ $state != *[scd]* ]] && return 0
    echo "  $1: domid '$domid' (wanted '$2'), state '$state'"
    return 1
}

# wait_for_text FILE TEXT SECONDS [COUNT]: until FILE has COUNT (default 1) lines with TEXT (a
# fixed string) in them.
wait_for_text() {
    local file=$1 text=$2 count=${4:-1} deadline=$((SECONDS + $3)) found=0
    while [ $SECONDS -lt "$deadline" ]; do
        found=$(grep -cF -- "$text" "$file" 2>/dev/null)
        [ "${found:-0}" -ge "$count" ] && return 0
        sleep 1
    done
    echo "  '$text' is in $file on ${found:-0} lines after $3 s, wanted $count"
    return 1
}

console_log() { echo "$CONSOLE_LOG_DIR/guest-$1.log"; }
# xl's log of a domain's monitor: after `xl migrate` the receiving xl watches the domain and
# names its log after NAME--incoming, the domain's name when it started; the newer of the two.
xl_log() {
    local log=/var/log/xen/xl-$1.log incoming=/var/log/xen/xl-$1--incoming.log
    if [ "$incoming" -nt "$log" ]; then echo "$incoming"; else echo "$log"; fi
}

# Shows a file's tail when a check failed, to make the failure readable.
show() {
    echo "----- $1 (last ${2:-40} lines)"
    tail -n "${2:-40}" "$1" 2>/dev/null | sed 's/^/  | /'
}
