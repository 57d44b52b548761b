#!/usr/bin/env bash
# `make soak`: the appliance for SOAK_MINUTES (default 30) under legitimate load, connection churn,
# the attacks of tools/attack and xl pause/unpause, all at once on the emulated Xen host
# (tests/soak/dom0.sh says what runs there); then docs/soak.md from what it printed.
#
# usage: tests/soak/run.sh [--minutes N] [--report FILE]
# Exit status: 0 when the soak ran and passed (no legitimate-client error, heap and grants in use
# the same before and after), 1 when it ran and failed, else testbed/run.sh's status.
set -euo pipefail
SOAK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SOAK_DIR/../.." && pwd)
# shellcheck source=testbed/lib.sh
source "$REPO_ROOT/testbed/lib.sh"

minutes=30 report=$REPO_ROOT/docs/soak.md
while [ $# -gt 0 ]; do
    case $1 in
    --minutes) minutes=${2:?}; shift 2 ;;
    --report) report=${2:?}; shift 2 ;;
    *) die "tests/soak/run.sh: unknown argument: $1" ;;
    esac
done
[[ $minutes =~ ^[1-9][0-9]*$ ]] || die "not a positive whole number of minutes: '$minutes'"
[ -x "$REPO_ROOT/build/xenecho-attack" ] || die "no build/xenecho-attack: run make soak (it builds it)"

work=$REPO_ROOT/build/testbed/soak
mkdir -p "$work"
echo "SOAK_MINUTES=$minutes" > "$REPO_ROOT/build/soak.conf"
revision=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && ! git -C "$REPO_ROOT" diff --quiet HEAD -- . ':(exclude)docs/soak.md'; then
    revision=$revision-dirty
fi
started=$SECONDS
log "soak: $minutes minutes on the test host; console log: build/testbed/soak-console.log"
status=0
bash "$REPO_ROOT/testbed/run.sh" --script "$SOAK_DIR/dom0.sh" --timeout $((minutes * 60 + 900)) \
    --log "$REPO_ROOT/build/testbed/soak-console.log" | tee "$work/results.txt" || status=$?
rm -f "$REPO_ROOT/build/soak.conf"
verdict=0
python3 "$SOAK_DIR/report.py" --results "$work/results.txt" --out "$report" --revision "$revision" \
    --minutes "$minutes" --host-seconds $((SECONDS - started)) || verdict=$?
[ "$status" -ne 0 ] || status=$verdict
log "report: ${report#"$REPO_ROOT"/}"
exit "$status"
