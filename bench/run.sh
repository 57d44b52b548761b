#!/usr/bin/env bash
# `make bench`: the appliance against Linux + nginx domUs (the peers: one PVH, one PV, the same
# kernel, initramfs and nginx) on one emulated Xen host, then the report. With --arch aarch64
# (`make bench ARCH=aarch64`), the ARM64 appliance on the emulated Xen-on-ARM host against one
# peer, Linux arm64 + nginx (Xen on ARM has one kind of guest: no PV peer). Steps:
#   1. testbed/setup.sh --peer (testbed/arm64/setup.sh --peer): the test host and the peer image
#      (cached, built once);
#   2. the host-side DMA micro-benchmark (cargo bench), which writes docs/benchmarks-dma.md;
#   3. one boot of the test host running bench/dom0.sh (see there) against the guests, and
#      against nginx in dom0 answering by itself (the host's ceiling);
#   4. bench/report.py: docs/benchmarks.md (docs/benchmarks-arm64.md) and its chart, from what
#      step 3 printed and the info file (arch=, the machine, the packages, the sizes).
# The DMA benchmark runs before QEMU, never beside it: both want the same two cores.
#
# usage: bench/run.sh [--arch ARCH] [--duration S] [--rounds N] [--concurrency "1 16 64 256 1024"] [--boot-rounds N]
#                     [--bulk-sizes "1 64"] [--bulk-rounds N] [--bulk-appliance WORDS] [--no-bulk]
#                     [--no-memory] [--no-dma] [--no-pv-peer]
#                     [--timeout S] [--report FILE]
#   --arch ARCH        x86_64 (default): the x86_64 test host, the appliance from xl.cfg, the peers
#                      from testbed/peer/peer.cfg and peer-pv.cfg; aarch64: the ARM64 test host, the
#                      appliance from xl-arm64.cfg (build/xenecho-arm64.img: make ARCH=aarch64
#                      image), the peer from testbed/peer/peer-arm64.cfg, no PV peer
#   --duration S       seconds per wrk run (default 10)
#   --rounds N         wrk runs per guest and concurrency, alternating guests (default 2)
#   --concurrency L    wrk connection counts (default "1 16 64 256 1024"; 1024 is beyond the
#                      appliance's slots at 64 MB, about 384: its 503s are counted and shown);
#                      nginx in dom0, the ceiling, is measured at the same counts
#   --boot-rounds N    timed boots per guest (default 3)
#   --bulk-sizes L     MiB per bulk download and upload (default "1 64"); each one of
#                      1 2 4 8 16 32 64 128 256, the files the peer has (testbed/peer/init)
#   --bulk-rounds N    bulk transfers per guest, size and direction, alternating guests (default 2)
#   --bulk-appliance W the appliance's command-line words for the bulk transfers, beside xl.cfg's
#                      (default "socket-buffer=128K": a bulk appliance's buffers; "" for none)
#   --no-bulk          skip the bulk transfers (downloads, uploads and the appliance's echo)
#   --no-memory        skip the smallest-memory search (about a third of the time)
#   --no-dma           skip the DMA micro-benchmark (the report links the last one)
#   --no-pv-peer       measure only the PVH peer (no Linux PV domU: none of its boots, runs,
#                      transfers or memory probes)
#   --timeout S        stop the test host after S seconds (default 3600)
#   --report FILE      where the report goes (default docs/benchmarks.md, with --arch aarch64
#                      docs/benchmarks-arm64.md; chart beside it)
# Exit status: 0 when the benchmark ran to its end (the report says what was measured), else
# testbed/run.sh's status (the report is still written from what came out).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=testbed/lib.sh
source "$REPO_ROOT/testbed/lib.sh"

usage() { sed -n '/^# usage:/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

arguments=""   # for the report, quoted as typed (printf alone would print '' for no argument)
[ $# -eq 0 ] || arguments=$(printf ' %q' "$@")
duration=10 rounds=2 concurrency="1 16 64 256 1024" boot_rounds=3 memory=yes dma=yes timeout=3600 pv_peer=yes
bulk=yes bulk_sizes="1 64" bulk_rounds=2 bulk_appliance="socket-buffer=128K"
arch=x86_64 report=""
while [ $# -gt 0 ]; do
    case $1 in
    --arch) arch=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --concurrency) concurrency=${2:?}; shift 2 ;;
    --boot-rounds) boot_rounds=${2:?}; shift 2 ;;
    --bulk-sizes) bulk_sizes=${2:?}; shift 2 ;;
    --bulk-rounds) bulk_rounds=${2:?}; shift 2 ;;
    --bulk-appliance) bulk_appliance=${2?}; shift 2 ;;
    --no-bulk) bulk=no; shift ;;
    --no-memory) memory=no; shift ;;
    --no-dma) dma=no; shift ;;
    --no-pv-peer) pv_peer=no; shift ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    --report) report=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "bench/run.sh: unknown argument: $1" >&2; usage ;;
    esac
done
for number in "$duration" "$rounds" "$boot_rounds" "$bulk_rounds" "$timeout" $concurrency; do
    [[ $number =~ ^[1-9][0-9]*$ ]] || die "not a positive whole number: '$number'"
done
# The peer serves a file of each of these sizes and no other (testbed/peer/init makes them), and
# the largest upload body still fits dom0's /tmp (half of its 1 GB).
peer_bulk_sizes="1 2 4 8 16 32 64 128 256"
for size in $bulk_sizes; do
    case " $peer_bulk_sizes " in
    *" $size "*) ;;
    *) die "--bulk-sizes: $size is not one of $peer_bulk_sizes (MiB)" ;;
    esac
done
[ -n "${bulk_sizes// }" ] || die "--bulk-sizes: no size given (--no-bulk skips the bulk transfers)"

# What differs between the test hosts: the image and its ELF (for its loaded size), the xl configs
# (testbed/run.sh takes the appliance's under the name its --arch wants and gives it to dom0 as
# xl.cfg; the peer's is staged as build/peer/peer.cfg, the name bench/dom0.sh starts it by), the
# peer's kernel, the setup script, the packages the report names, and where this run's files go.
case $arch in
x86_64)
    image=$REPO_ROOT/build/xenecho.elf
    elf=$image
    appliance_cfg=xl.cfg
    peer_cfg=peer.cfg
    peer_kernel=vmlinuz
    setup_script=$REPO_ROOT/testbed/setup.sh
    packages="qemu-system-x86 xen-hypervisor-4.17-amd64 linux-image nginx wrk busybox-static"
    work=$REPO_ROOT/build/testbed/bench
    console_log=$REPO_ROOT/build/testbed/bench-console.log
    run_arch=()
    [ -n "$report" ] || report=$REPO_ROOT/docs/benchmarks.md ;;
aarch64)
    image=$REPO_ROOT/build/xenecho-arm64.img
    elf=$REPO_ROOT/target/aarch64-unknown-none-softfloat/release/xenecho
    appliance_cfg=xl-arm64.cfg
    peer_cfg=peer-arm64.cfg
    peer_kernel=Image
    setup_script=$REPO_ROOT/testbed/arm64/setup.sh
    packages="qemu-system-arm xen-hypervisor-4.17-arm64 linux-image nginx wrk busybox-static"
    work=$REPO_ROOT/build/testbed/bench-arm64
    console_log=$REPO_ROOT/build/testbed/bench-arm64-console.log
    run_arch=(--arch aarch64)
    # The ARM64 test host's cache paths and QEMU command (HOST_CACHE, MANIFESTS, qemu_command).
    # shellcheck source=testbed/arm64/lib.sh
    source "$REPO_ROOT/testbed/arm64/lib.sh"
    if [ "$pv_peer" = yes ]; then
        log "no PV peer on ARM64: Xen on ARM has one kind of guest"
        pv_peer=no
    fi
    [ -n "$report" ] || report=$REPO_ROOT/docs/benchmarks-arm64.md ;;
*) die "--arch wants x86_64 or aarch64, not '$arch'" ;;
esac
[ -f "$image" ] || die "no $image: run make ARCH=$arch image first (make bench does)"

# Everything of this run under build/testbed/, which testbed/run.sh never packs into a guest.
guest=$work/guest
rm -rf "$work"
mkdir -p "$guest/build/peer"
started=$SECONDS
# The revision measured: the commit, "-dirty" if files other than this benchmark's own outputs
# (docs/benchmarks*, rewritten below) differ from it.
revision=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && ! git -C "$REPO_ROOT" diff --quiet HEAD -- . ':(exclude)docs/benchmarks*'; then
    revision=$revision-dirty
fi

# --- 1. The test host and the peer ---------------------------------------------------------------
bash "$setup_script" --peer
peer_cache=$HOST_CACHE/peer   # the setup script's PEER_DIR: <cache>/peer, <cache>/arm64/peer

# --- 2. The DMA micro-benchmark -------------------------------------------------------------------
dma_command="DMA_BENCH_REPORT=docs/benchmarks-dma.md cargo bench -p dma --bench dma_lookup"
if [ "$dma" = yes ]; then
    log "DMA micro-benchmark: $dma_command"
    (cd "$REPO_ROOT" && DMA_BENCH_REPORT=docs/benchmarks-dma.md cargo bench -p dma --bench dma_lookup) \
        > "$work/dma.log" 2>&1 || { tail -n 30 "$work/dma.log" >&2; die "the DMA benchmark failed"; }
fi

# --- 3. The run on the test host -------------------------------------------------------------------
# The guest directory testbed/run.sh packs as /xenecho: the appliance as `make run` has it, the
# peers' kernel, initramfs and xl configs, the peers' nginx.conf (nginx in dom0 runs it for the
# ceiling), and this run's settings.
cp "$REPO_ROOT/$appliance_cfg" "$guest/$appliance_cfg"
cp "$image" "$guest/build/"
cp "$peer_cache/$peer_kernel" "$peer_cache/initramfs.cpio.gz" "$guest/build/peer/"
cp "$REPO_ROOT/testbed/peer/$peer_cfg" "$guest/build/peer/peer.cfg"
cp "$REPO_ROOT/testbed/peer/nginx.conf" "$guest/build/peer/"
if [ "$pv_peer" = yes ]; then cp "$REPO_ROOT/testbed/peer/peer-pv.cfg" "$guest/build/peer/"; fi
cat > "$guest/build/bench.conf" <<CONF
DURATION=$duration
ROUNDS=$rounds
CONCURRENCIES="$concurrency"
BOOT_ROUNDS=$boot_rounds
MEMORY_PROBES=$memory
MEM_DURATION=5
MEM_CONNECTIONS=16
APPLIANCE_MEMORY_SIZES="4 8 12 16 24 32 48 64 96 128"
PEER_MEMORY_SIZES="64 96 112 128 192 256 384 512"
BULK=$bulk
BULK_SIZES="$bulk_sizes"
BULK_ROUNDS=$bulk_rounds
BULK_APPLIANCE="$bulk_appliance"
PV_PEER=$pv_peer
CONF

# What the report says about the machine and the software (key=value, one a line).
qemu_command
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "arch=$arch"
    echo "revision=$revision"
    echo "nproc=$(nproc)"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "memory=$(free -h | awk '/^Mem:/ { print $2 " total, " $7 " available" }')"
    echo "host_kernel=$(uname -sr)"
    echo "qemu=$("${QEMU_COMMAND[@]}" --version | head -n 1)"
    for package in $packages; do
        echo "package.$package=$(cat "$MANIFESTS"/*.list | awk -v p="$package" \
            'index($1, p) == 1 { print $1 " " $2; exit }')"
    done
    echo "size.appliance=$(stat -c %s "$image")"
    loaded=0
    while read -r type _ _ _ _ memory_size _; do
        if [ "$type" = LOAD ]; then loaded=$((loaded + memory_size)); fi   # hex: bash reads 0x
    done < <(readelf -lW "$elf")
    echo "size.appliance_loaded=$loaded"
    echo "size.peer_kernel=$(stat -c %s "$peer_cache/$peer_kernel")"
    echo "size.peer_initramfs=$(stat -c %s "$peer_cache/initramfs.cpio.gz")"
    echo "size.peer_initramfs_unpacked=$(gzip -dc "$peer_cache/initramfs.cpio.gz" | wc -c)"
    echo "command.bench=bench/run.sh$arguments"
    echo "command.dma=$dma_command"
    echo "dma_ran=$dma"
    echo "config.duration=$duration"
} > "$work/info.txt"

log "running the benchmark on the test host (timeout ${timeout}s); console log: ${console_log#"$REPO_ROOT"/}"
status=0
bash "$REPO_ROOT/testbed/run.sh" "${run_arch[@]}" --guest-dir "$guest" --script "$BENCH_DIR/dom0.sh" \
    --timeout "$timeout" --log "$console_log" \
    | tee "$work/results.txt" || status=$?
echo "host_seconds=$((SECONDS - started))" >> "$work/info.txt"

# --- 4. The report ----------------------------------------------------------------------------------
python3 "$BENCH_DIR/report.py" --results "$work/results.txt" --info "$work/info.txt" \
    --dma "$REPO_ROOT/docs/benchmarks-dma.md" --out "$report"
log "report: ${report#"$REPO_ROOT"/} ($((SECONDS - started)) s in all)"
exit "$status"
