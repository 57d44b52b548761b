#!/usr/bin/env bash
# Boots the emulated Xen host (QEMU 7.2 → Xen 4.17 → Debian Linux dom0) and starts the guest in
# it with `cd /xenecho && xl create xl.cfg`, as a user would on a real Xen host.
#
# usage: testbed/run.sh [--arch ARCH] [--script FILE] [--timeout SECONDS] [--log FILE] [--guest-dir DIR] [--verbose]
#
#   --arch ARCH     x86_64 (default): QEMU 7.2 → Xen 4.17 (x86) → dom0, the guest from xl.cfg;
#                   aarch64: qemu-system-aarch64 7.2 → Xen 4.17 for ARM → arm64 dom0, the guest from
#                   xl-arm64.cfg (copied into dom0 as /xenecho/xl.cfg, so scripts are the same).
#   (no --script)   interactive: `xl create -c xl.cfg`, the guest's console on this terminal; when
#                   the guest ends, dom0 shows the tail of xl's log and powers off. Exits with
#                   xl create's status. Ctrl-] leaves the console (dom0 then destroys the guest
#                   and powers off); Ctrl-C stops QEMU at once.
#   --script FILE   dom0 runs `xl create xl.cfg`, then FILE with bash in /xenecho, with GUEST_NAME,
#                   GUEST_DOMID, GUEST_IP, GUEST_CREATE_STATUS and XENECHO_DIR set. FILE runs even
#                   if xl create failed. Its output is printed here; run.sh exits with its status.
#   --timeout S     kill the test host after S seconds (default 600) and exit 124.
#   --log FILE      the whole serial console (Xen + dom0) followed by dom0's Xen logs (xl's log,
#                   the guests' consoles); default build/testbed/console.log in the repository.
#   --guest-dir DIR where xl.cfg and build/ are taken from (default: the repository root).
#   --verbose       in --script mode, also show the serial console while it runs.
#
# Exit status: the script's (or xl create's); 124 on timeout; 125 when the test host failed
# (QEMU error, Xen or dom0 crash, or dom0 powered off without reporting an end).
set -euo pipefail
# shellcheck source=testbed/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO_ROOT=$(cd "$TESTBED_DIR/.." && pwd)

usage() { sed -n '/^# usage:/,/^# Exit status/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

script="" timeout=600 log="" guest_dir=$REPO_ROOT verbose=0 arch=x86_64
while [ $# -gt 0 ]; do
    case $1 in
    --arch) arch=${2:?--arch needs x86_64 or aarch64}; shift 2 ;;
    --script) script=${2:?--script needs a file}; shift 2 ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    --log) log=${2:?--log needs a file}; shift 2 ;;
    --guest-dir) guest_dir=${2:?--guest-dir needs a directory}; shift 2 ;;
    --verbose) verbose=1; shift ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage ;;
    esac
done
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout wants whole seconds, not '$timeout'"
[ -z "$script" ] || [ -f "$script" ] || die "no such script: $script"
guest_dir=$(cd "$guest_dir" && pwd) || die "no such directory: $guest_dir"
case $arch in
x86_64) xl_cfg=xl.cfg; [ -n "$log" ] || log=$REPO_ROOT/build/testbed/console.log ;;
aarch64) xl_cfg=xl-arm64.cfg; [ -n "$log" ] || log=$REPO_ROOT/build/testbed/console-arm64.log
         # The ARM64 host's cache paths and QEMU command, in place of lib.sh's x86_64 ones.
         # shellcheck source=testbed/arm64/lib.sh
         source "$TESTBED_DIR/arm64/lib.sh" ;;
*) die "--arch wants x86_64 or aarch64, not '$arch'" ;;
esac
[ -f "$guest_dir/$xl_cfg" ] || die "no $xl_cfg in $guest_dir"
# Fail now rather than after a minute of booting when the image is missing.
kernel=$(sed -n 's/^[[:space:]]*kernel[[:space:]]*=[[:space:]]*["'\'']\([^"'\'']*\)["'\''].*/\1/p' \
    "$guest_dir/$xl_cfg" | head -1)
[ -z "$kernel" ] || [[ $kernel == /* ]] || [ -f "$guest_dir/$kernel" ] \
    || die "$xl_cfg names kernel \"$kernel\", but $guest_dir/$kernel does not exist (run make first?)"

if [ "$arch" = aarch64 ]; then
    bash "$TESTBED_DIR/arm64/setup.sh"
else
    bash "$TESTBED_DIR/setup.sh"
fi

# --- The per-run part of the initramfs: /xenecho and /testbed ------------------------------------
mkdir -p "$(dirname "$log")"
log=$(cd "$(dirname "$log")" && pwd)/$(basename "$log")
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/xenecho-testbed.XXXXXX")
saved_tty=""
qemu_pid="" tail_pid=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
    [ -n "$saved_tty" ] && stty "$saved_tty" 2>/dev/null
    rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

marker=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')   # unique per run: no output can fake it
mode=interactive
[ -n "$script" ] && mode=script
extra=$run_dir/extra
mkdir -p "$extra/xenecho" "$extra/testbed"
cp "$guest_dir/$xl_cfg" "$extra/xenecho/xl.cfg"
if [ -d "$guest_dir/build" ]; then
    # build/testbed holds our own logs: not the guest's business.
    (cd "$guest_dir" && find build -path build/testbed -prune -o -print0 \
        | cpio --quiet -p -0 -d -m "$extra/xenecho")
fi
printf 'MODE=%s\nMARKER=%s\n' "$mode" "$marker" > "$extra/testbed/run.conf"
[ -n "$script" ] && cp "$script" "$extra/testbed/script"
# Linux takes concatenated (compressed) cpio archives as one initramfs: the cached dom0 image
# followed by this run's files.
(cd "$extra" && find . -print0 | cpio --quiet -o -0 -H newc -R 0:0 | gzip -1 > "$run_dir/extra.cpio.gz")
cat "$DOM0_INITRAMFS" "$run_dir/extra.cpio.gz" > "$run_dir/initrd.gz"

# --- QEMU ---------------------------------------------------------------------------------------
results=$run_dir/results
: > "$results"
if [ "$arch" = aarch64 ]; then
    # Xen takes the virt machine's one UART (stdio here); dom0's results line is a virtio console
    # (dom0's /dev/hvc1, see testbed/arm64/testbed-arch.conf). guest-loader places dom0's kernel
    # and initramfs and names them in the device tree, where Xen finds them.
    for path in "$DOM0_KERNEL" "$run_dir/initrd.gz" "$results"; do
        [[ $path != *,* ]] || die "the path $path contains a comma, which QEMU's options cannot take"
    done
    qemu_command
    QEMU_COMMAND+=(
        -machine virt,virtualization=on,gic-version=3
        -accel tcg,thread=multi -cpu cortex-a57 -smp 2 -m 2048
        -nodefaults -nographic -monitor none
        -nic none                              # no host network: traffic stays inside the test host
        -no-reboot
        -serial stdio                          # the UART: Xen's console, with dom0's hvc0 on it
        -chardev "file,id=results,path=$results"
        -device virtio-serial-device -device virtconsole,chardev=results
        -kernel "$XEN_IMAGE"
        -append "console=dtuart loglvl=all guest_loglvl=all dom0_mem=1024M dom0_max_vcpus=2 noreboot"
        -device "guest-loader,addr=0x50000000,kernel=$DOM0_KERNEL,bootargs=console=hvc0 rdinit=/init"
        -device "guest-loader,addr=0x58000000,initrd=$run_dir/initrd.gz"
    )
else
    # Multiboot modules are separated by commas, so a comma in a module's path or command line is
    # written twice; a space would split the file name from its command line.
    for path in "$DOM0_KERNEL" "$run_dir/initrd.gz"; do
        [[ $path != *" "* ]] || die "the path $path contains a space, which QEMU's multiboot loader cannot take"
    done
    modules="${DOM0_KERNEL//,/,,} console=hvc0 earlyprintk=xen rdinit=/init,${run_dir//,/,,}/initrd.gz"
    qemu_command
    QEMU_COMMAND+=(
        -machine pc -accel "tcg,thread=single" # multi-threaded TCG corrupts nested SVM state
        -cpu "qemu64,+svm,+npt"                # Debian's Xen has no shadow paging: PVH needs NPT (HAP)
        -smp 2 -m 3072
        -nodefaults -nographic -vga none -monitor none
        -nic none                              # no host network: traffic stays inside the test host
        -no-reboot
        -serial stdio                          # COM1: Xen's console, with dom0's hvc0 on it
        -serial "file:${results//,/,,}"        # COM2: dom0's /dev/ttyS1, the results line
        -kernel "$XEN_IMAGE"
        -append "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem=1024M,max:1024M dom0_max_vcpus=2 noreboot"
        -initrd "$modules"
    )
fi

started=$SECONDS
log "booting Xen and dom0 in QEMU ($mode mode, timeout ${timeout}s); console log: $log"
if [ "$mode" = interactive ]; then
    # The terminal is the guest's console: QEMU puts it in raw mode, restore it whatever happens.
    [ -t 0 ] && saved_tty=$(stty -g)
    "${QEMU_COMMAND[@]}" 0<&0 > "$log" 2> "$run_dir/qemu.stderr" &
    qemu_pid=$!
    tail -n +1 -f --pid="$qemu_pid" "$log" &
    tail_pid=$!
else
    "${QEMU_COMMAND[@]}" < /dev/null > "$log" 2> "$run_dir/qemu.stderr" &
    qemu_pid=$!
    if [ "$verbose" = 1 ]; then
        tail -n +1 -f --pid="$qemu_pid" "$log" >&2 &
        tail_pid=$!
    fi
fi

# --- Follow the results line while QEMU runs -----------------------------------------------------
consumed=0 section="" end_status="" create_status="" failure=""
files=$run_dir/files
: > "$files"
# Progress messages; in interactive mode the terminal is raw and belongs to the console: quiet.
progress() { [ "$mode" = interactive ] || log "$@"; }
# Reads the new lines of the results line. A last line still being written (no newline yet) is
# left for the next call, unless $1 = final.
read_results() {
    local line rest word argument
    while IFS= read -r line || { [ "${1:-}" = final ] && [ -n "$line" ]; }; do
        consumed=$((consumed + 1))
        line=${line%$'\r'}   # a results line that is a console (arm64: hvc1) may add CRs
        if [[ $line != *"@@TESTBED@@ $marker "* ]]; then
            case $section in
            script) printf '%s\n' "$line" ;;
            file) printf '%s\n' "$line" >> "$files" ;;
            esac
            continue
        fi
        # Output without a final newline ends where the marker starts.
        if [ -n "${line%%@@TESTBED@@ "$marker" *}" ]; then
            case $section in
            script) printf '%s\n' "${line%%@@TESTBED@@ "$marker" *}" ;;
            file) printf '%s\n' "${line%%@@TESTBED@@ "$marker" *}" >> "$files" ;;
            esac
        fi
        rest=${line#*"@@TESTBED@@ $marker "}
        word=${rest%% *}
        argument=""
        [ "$word" = "$rest" ] || argument=${rest#* }
        case $word in
        BOOTED) ;;
        READY) progress "dom0 is up (xenstored, xenconsoled, xenbr0) after $((SECONDS - started)) s" ;;
        CREATED) create_status=$argument
                 if [ "$argument" = 0 ]; then progress "xl create xl.cfg: done after $((SECONDS - started)) s"
                 else progress "xl create xl.cfg failed with status $argument (see $log)"; fi ;;
        BEGIN) section=script ;;
        END) section=""; end_status=$argument ;;
        FILE) section="file"; printf '\n===== dom0:%s =====\n' "$argument" >> "$files" ;;
        ENDFILE) section="" ;;
        FAIL) failure=$argument ;;
        DONE) ;;
        esac
    done < <(tail -n +$((consumed + 1)) "$results")
}

# Xen or dom0 dying leaves QEMU running (noreboot): notice it instead of waiting for the timeout.
fatal_pattern='^\(XEN\) .*(Panic on CPU|Hardware Dom0 crashed)|^\[ *[0-9.]+\] Kernel panic - not syncing'
timed_out=0 crashed=""
while kill -0 "$qemu_pid" 2>/dev/null; do
    read_results
    if [ $((SECONDS - started)) -ge "$timeout" ]; then
        timed_out=1
        kill "$qemu_pid" 2>/dev/null
        break
    fi
    if [ -z "$crashed" ] && crashed=$(tr -d '\r' < "$log" | grep -m1 -E "$fatal_pattern"); then
        sleep 3   # let the rest of the crash report reach the log
        kill "$qemu_pid" 2>/dev/null
        break
    fi
    sleep 1
done
qemu_status=0
wait "$qemu_pid" || qemu_status=$?
qemu_pid=""
if [ -n "$tail_pid" ]; then wait "$tail_pid" 2>/dev/null || true; tail_pid=""; fi
[ -n "$saved_tty" ] && stty "$saved_tty" && saved_tty=""
read_results final
elapsed=$((SECONDS - started))

# The log: serial output without the CRs of the serial line, then dom0's Xen logs.
sed -i 's/\r*$//' "$log"
if [ -s "$run_dir/qemu.stderr" ]; then
    { printf '\n===== QEMU stderr =====\n'; cat "$run_dir/qemu.stderr"; } >> "$log"
fi
cat "$files" >> "$log"

show_log_tail() {
    [ "$mode" = script ] && [ "$verbose" = 0 ] || return 0
    echo "----- last 100 lines of $log -----" >&2
    tail -n 100 "$log" >&2
    echo "-----" >&2
}

if [ "$timed_out" = 1 ]; then
    show_log_tail
    log "TIMEOUT: the test host was still running after ${timeout}s and was killed; full log: $log"
    exit 124
fi
if [ -n "$crashed" ]; then
    show_log_tail
    log "the test host crashed: \"$crashed\"; full log: $log"
    exit 125
fi
if [ -z "$end_status" ]; then
    show_log_tail
    [ -s "$run_dir/qemu.stderr" ] && log "QEMU said: $(head -c 2000 "$run_dir/qemu.stderr")"
    [ -n "$failure" ] && log "dom0 failed: $failure"
    log "the test host stopped after ${elapsed}s (QEMU status $qemu_status) without reporting an end; full log: $log"
    exit 125
fi
if [ "$end_status" = 0 ]; then
    log "done in ${elapsed}s; full log: $log"
elif [ "$mode" = script ]; then
    show_log_tail
    [ "${create_status:-0}" = 0 ] || log "(xl create xl.cfg had failed with status $create_status)"
    log "the script exited with status $end_status after ${elapsed}s; full log: $log"
else
    log "xl create -c xl.cfg exited with status $end_status; full log: $log"
fi
exit "$end_status"
