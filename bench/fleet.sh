#!/usr/bin/env bash
# `make bench-fleet`: as many appliances as the emulated Xen host holds, started one `xl create` at a
# time (with the scale-out curve behind nginx on the way, at 8), then the same by libvirt (`virsh
# define` and `virsh start`), then as many Linux + nginx guests (the peer) for the comparison; then
# the report. Steps:
#   1. testbed/setup.sh --peer: the test host and the peer image (cached, built once);
#   2. one boot of the test host running bench/fleet-dom0.sh (see there);
#   3. bench/fleet-report.py: docs/fleet.md, from what step 2 printed.
#
# usage: bench/fleet.sh [--sizes "1 8 32 64 128"] [--max N] [--memory MB] [--virsh-max N]
#                       [--no-virsh] [--balance-sizes "1 2 4 8"] [--no-balance] [--linux-max N]
#                       [--linux-memory MB] [--no-linux] [--no-xl] [--merge DIR] [--timeout S]
#                       [--report FILE]
#   --sizes L          the fleet sizes measured (checkpoints; default "1 8 32 64 128")
#   --max N            grow the appliances to N (default: the largest size); growth stops earlier
#                      when xl create fails (out of memory), a guest does not answer, or time runs out
#   --memory MB        each appliance's memory (default 8: the smallest that passes make bench's
#                      wrk probe; with xl.cfg's 64 MB the host's memory runs out long before 100)
#   --virsh-max N      grow the appliances started by libvirt to N (default: as --max)
#   --no-virsh         no fleet by libvirt
#   --balance-sizes L  the scale-out curve: L appliances behind nginx in dom0, measured when the
#                      xl fleet has the largest of L (default "1 2 4 8")
#   --no-balance       no scale-out curve
#   --linux-max N      grow the Linux + nginx guests to N (default: as --max)
#   --linux-memory MB  each Linux guest's memory (default 112: the smallest make bench found to serve)
#   --no-linux         no Linux + nginx guests
#   --no-xl            no fleet of appliances by xl (and so no scale-out curve)
#   --merge DIR        a previous run's results (DIR/results.txt and DIR/info.txt, as this run
#                      leaves them in build/testbed/fleet): the report takes from it the fleets
#                      this run does not measure, and says which run each came from
#   --timeout S        stop the test host after S seconds (default 7200); dom0 stops growing 300 s
#                      before, so that the fleet is torn down and the logs come out
#   --report FILE      where the report goes (default docs/fleet.md)
# Exit status: 0 when the run came to its end (the report says how far the fleet grew and why it
# stopped), else testbed/run.sh's status (the report is still written from what came out).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=testbed/lib.sh
source "$REPO_ROOT/testbed/lib.sh"

usage() { sed -n '/^# usage:/,/^# Exit status/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

arguments=""   # for the report, quoted as typed (printf alone would print '' for no argument)
[ $# -eq 0 ] || arguments=$(printf ' %q' "$@")
sizes="1 8 32 64 128" max="" memory=8 linux_max="" linux_memory=112 linux=yes timeout=7200
virsh_max="" virsh=yes balance_sizes="1 2 4 8" balance=yes xl=yes merge=""
report=$REPO_ROOT/docs/fleet.md
while [ $# -gt 0 ]; do
    case $1 in
    --sizes) sizes=${2:?}; shift 2 ;;
    --max) max=${2:?}; shift 2 ;;
    --memory) memory=${2:?}; shift 2 ;;
    --virsh-max) virsh_max=${2:?}; shift 2 ;;
    --no-virsh) virsh=no; shift ;;
    --no-xl) xl=no; balance=no; shift ;;
    --merge) merge=${2:?}; shift 2 ;;
    --balance-sizes) balance_sizes=${2:?}; shift 2 ;;
    --no-balance) balance=no; shift ;;
    --linux-max) linux_max=${2:?}; shift 2 ;;
    --linux-memory) linux_memory=${2:?}; shift 2 ;;
    --no-linux) linux=no; shift ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    --report) report=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "bench/fleet.sh: unknown argument: $1" >&2; usage ;;
    esac
done
largest=0
for number in $sizes; do
    [[ $number =~ ^[1-9][0-9]*$ ]] || die "--sizes: not a positive whole number: '$number'"
    [ "$number" -le "$largest" ] || largest=$number
done
[ "$largest" -gt 0 ] || die "--sizes names no size"
max=${max:-$largest}
linux_max=${linux_max:-$max}
virsh_max=${virsh_max:-$max}
balance_at=0
if [ "$balance" = yes ]; then
    for number in $balance_sizes; do
        [[ $number =~ ^[1-9][0-9]*$ ]] || die "--balance-sizes: not a positive whole number: '$number'"
        [ "$number" -le "$balance_at" ] || balance_at=$number
    done
    [ "$balance_at" -le "$max" ] || die "--balance-sizes: $balance_at appliances, more than the fleet's $max"
fi
for number in "$max" "$memory" "$virsh_max" "$linux_max" "$linux_memory" "$timeout"; do
    [[ $number =~ ^[1-9][0-9]*$ ]] || die "not a positive whole number: '$number'"
done
[ "$timeout" -gt 600 ] || die "--timeout: give the test host more than 600 s"
if [ -n "$merge" ]; then
    [ -f "$merge/results.txt" ] && [ -f "$merge/info.txt" ] || die "--merge: no results.txt and info.txt in $merge"
    merge=$(cd "$merge" && pwd)
    [ "$merge" != "$REPO_ROOT/build/testbed/fleet" ] || die "--merge: copy $merge elsewhere first (this run starts by emptying it)"
fi
image=$REPO_ROOT/build/xenecho.elf
[ -f "$image" ] || die "no $image: run make first (make bench-fleet does)"

# Everything of this run under build/testbed/, which testbed/run.sh never packs into a guest.
work=$REPO_ROOT/build/testbed/fleet
guest=$work/guest
rm -rf "$work"
mkdir -p "$guest/build/peer"
started=$SECONDS
# The revision measured: the commit, "-dirty" if files other than this benchmark's own output
# (docs/fleet.md, rewritten below) differ from it.
revision=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && ! git -C "$REPO_ROOT" diff --quiet HEAD -- . ':(exclude)docs/fleet.md'; then
    revision=$revision-dirty
fi

# --- 1. The test host and the peer ---------------------------------------------------------------
bash "$REPO_ROOT/testbed/setup.sh" --peer
peer_cache=$CACHE/peer

# --- 2. The run on the test host -------------------------------------------------------------------
# The guest directory testbed/run.sh packs as /xenecho: the appliance as `make run` has it, the
# peer's kernel, initramfs and xl config, and this run's settings.
cp "$REPO_ROOT/xl.cfg" "$guest/xl.cfg"
cp "$image" "$guest/build/xenecho.elf"
cp "$peer_cache/vmlinuz" "$peer_cache/initramfs.cpio.gz" "$guest/build/peer/"
cp "$REPO_ROOT/testbed/peer/peer.cfg" "$guest/build/peer/peer.cfg"
cat > "$guest/build/fleet.conf" <<CONF
SIZES="$sizes"
MAX=$max
APPLIANCE_MEMORY=$memory
XL=$xl
PEERS=$linux
VIRSH=$virsh
VIRSH_MAX=$virsh_max
BALANCE_SIZES="$balance_sizes"
BALANCE_AT=$balance_at
# As the sample wrk: an 8 MB appliance has fewer connection slots than 64, and one appliance alone
# must be measured at the same concurrency as eight.
BALANCE_CONNECTIONS=16
BALANCE_SECONDS=10
PEER_MAX=$linux_max
PEER_MEMORY=$linux_memory
BOOT_TIMEOUT_APPLIANCE=60
BOOT_TIMEOUT_PEER=240
WRK_THREADS=2
WRK_CONNECTIONS=16
WRK_SECONDS=5
IDLE_SECONDS=10
BUDGET_SECONDS=$((timeout - 300))
CONF

# What the report says about the machine and the software (key=value, one a line).
qemu_command
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "revision=$revision"
    echo "nproc=$(nproc)"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "memory=$(free -h | awk '/^Mem:/ { print $2 " total, " $7 " available" }')"
    echo "qemu=$("${QEMU_COMMAND[@]}" --version | head -n 1)"
    for package in xen-hypervisor-4.17-amd64 linux-image nginx; do
        echo "package.$package=$(cat "$CACHE"/manifests/*.list | awk -v p="$package" \
            'index($1, p) == 1 { print $1 " " $2; exit }')"
    done
    echo "command=bench/fleet.sh$arguments"
} > "$work/info.txt"

log "running the fleet on the test host (timeout ${timeout}s); console log: build/testbed/fleet-console.log"
status=0
bash "$REPO_ROOT/testbed/run.sh" --guest-dir "$guest" --script "$BENCH_DIR/fleet-dom0.sh" \
    --timeout "$timeout" --log "$REPO_ROOT/build/testbed/fleet-console.log" \
    | tee "$work/results.txt" || status=$?
echo "host_seconds=$((SECONDS - started))" >> "$work/info.txt"

# --- 3. The report ----------------------------------------------------------------------------------
merged=()
[ -z "$merge" ] || merged=(--results "$merge/results.txt" --info "$merge/info.txt")
python3 "$BENCH_DIR/fleet-report.py" "${merged[@]}" --results "$work/results.txt" --info "$work/info.txt" --out "$report"
log "report: ${report#"$REPO_ROOT"/} ($((SECONDS - started)) s in all)"
exit "$status"
