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

# The blackout probe across a move (check-19, tests/two-hosts/): probe_start URL runs a curl loop,
# one request every 0.1 s with a 1 s timeout, one line per request in /tmp/probe.log ("<seconds
# since the epoch> ok|fail"); probe_stop ends it; longest_blackout prints the longest time between
# two answered requests, in seconds.
probe_start() {
    local url=$1
    (while :; do
        if curl -s -m 1 -o /dev/null "$url"; then echo "$(date +%s.%N) ok"; else echo "$(date +%s.%N) fail"; fi
        sleep 0.1
    done) >/tmp/probe.log 2>&1 &
    probe=$!
}
probe_stop() { kill "$probe" 2>/dev/null; wait "$probe" 2>/dev/null; }
longest_blackout() {
    awk '$2 == "ok" { if (last) { gap = $1 - last; if (gap > most) most = gap } last = $1 }
         END { printf "%.1f", most }' /tmp/probe.log
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

# wait_new_domid NAME OLD SECONDS: until domain NAME exists under another domid than OLD (after
# `xl reboot`); prints that domid (nothing if none came).
wait_new_domid() {
    local domid="" _
    for _ in $(seq "$3"); do
        domid=$(xl domid "$1" 2>/dev/null)
        [ -n "$domid" ] && [ "$domid" != "$2" ] && break
        sleep 1
    done
    echo "$domid"
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

# check_exposition FILE: FILE is valid Prometheus text (0.0.4). With promtool in dom0, `promtool
# check metrics` judges it; dom0 has none (Debian's prometheus package is 96 MB installed), so
# this awk program applies the rules the host tests' checker applies (src/metrics/exposition.rs):
# only HELP and TYPE comments, each once per family and before its samples, a family's lines
# together, names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*, label values with
# only the \\ \" \n escapes, no series twice, counters named *_total, a histogram's buckets with
# ascending le and cumulative counts ending in +Inf equal to its _count, and a _sum. Prints the
# first problem.
check_exposition() {
    if command -v promtool >/dev/null 2>&1; then
        echo "  exposition checked by promtool"
        promtool check metrics <"$1"
        return
    fi
    echo "  exposition checked by the awk rules (no promtool in dom0)"
    awk '
    function bad(why) { printf "  line %d: %s: %s\n", NR, why, $0; failed = 1; exit 1 }
    function declare(name) {
        if (name !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) bad("bad name")
        if (name != family) {
            if (name in declared) bad("family declared again, apart from its first lines")
            family = name; declared[name] = 1
        }
        if (samples[name] > 0) bad("HELP or TYPE after the samples")
    }
    function number(text) { if (text == "+Inf") return 1e308 * 10; if (text == "-Inf") return -1e308 * 10; return text + 0 }
    /^# HELP / { declare($3); if (help[$3]++) bad("HELP twice"); next }
    /^# TYPE / {
        declare($3)
        if (type[$3] != "") bad("TYPE twice")
        if ($4 !~ /^(counter|gauge|histogram|summary|untyped)$/) bad("unknown type")
        if ($4 == "counter" && $3 !~ /_total$/) bad("a counter not named *_total")
        type[$3] = $4; next
    }
    /^#/ { bad("a comment that is not HELP or TYPE") }
    /^$/ { bad("an empty line") }
    {
        line = $0; brace = index(line, "{")
        if (brace > 0) {
            name = substr(line, 1, brace - 1); rest = substr(line, brace + 1); labels = ""; le = ""
            while (substr(rest, 1, 1) != "}") {
                if (!match(rest, /^[a-zA-Z_][a-zA-Z0-9_]*="/)) bad("bad label")
                key = substr(rest, 1, RLENGTH - 2); rest = substr(rest, RLENGTH + 1); value = ""
                while (1) {
                    c = substr(rest, 1, 1)
                    if (c == "") bad("unterminated label value")
                    if (c == "\"") break
                    if (c == "\\") {
                        e = substr(rest, 2, 1)
                        if (e != "\\" && e != "\"" && e != "n") bad("bad escape in a label value")
                        value = value c e; rest = substr(rest, 3); continue
                    }
                    value = value c; rest = substr(rest, 2)
                }
                if (index("," labels, "," key "=") > 0) bad("label twice")
                labels = labels key "=" value ","
                if (key == "le") le = value
                rest = substr(rest, 2); if (substr(rest, 1, 1) == ",") rest = substr(rest, 2)
            }
            rest = substr(rest, 2)
            if (substr(rest, 1, 1) != " ") bad("no space before the value")
            val = substr(rest, 2); series = name "{" labels "}"
        } else {
            name = $1; val = $2; labels = ""; le = ""; series = name
            if (NF != 2) bad("not NAME VALUE")
        }
        if (name !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) bad("bad name")
        if (val !~ /^([-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|[-+]Inf|NaN)$/) bad("bad value")
        if (series in seen) bad("the same series twice"); seen[series] = 1
        if (family == "" || type[family] == "" || !help[family]) bad("a sample without HELP and TYPE before it")
        t = type[family]
        if (name == family && t != "histogram") { samples[family]++; next }
        if (t == "histogram" && name == family "_bucket") {
            if (le == "") bad("a bucket without le")
            if (have_le[family] && number(le) <= last_le[family]) bad("le not ascending")
            if (have_le[family] && val + 0 < last_bucket[family]) bad("buckets not cumulative")
            have_le[family] = 1; last_le[family] = number(le); last_bucket[family] = val + 0; last_le_text[family] = le
            samples[family]++; next
        }
        if (t == "histogram" && name == family "_sum") { sums[family] = 1; samples[family]++; next }
        if (t == "histogram" && name == family "_count") {
            if (last_le_text[family] != "+Inf" || last_bucket[family] != val + 0) bad("+Inf bucket missing or not the count")
            counts[family] = 1; samples[family]++; next
        }
        bad("a sample of another family than " family)
    }
    END {
        if (failed) exit 1
        for (name in declared) {
            if (!samples[name]) { print "  " name ": no sample"; exit 1 }
            if (type[name] == "histogram" && !(sums[name] && counts[name])) { print "  " name ": no _sum or _count"; exit 1 }
        }
    }' "$1"
}
