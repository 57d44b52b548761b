#!/usr/bin/env bash
# Boots the emulated Xen host (QEMU 7.2 → Xen 4.17 → Debian Linux dom0) and starts the guest in
# it with `cd /xenecho && xl create xl.cfg`, as a user would on a real Xen host.
#
# usage: testbed/run.sh [--arch ARCH] [--script FILE | --shell] [--timeout SECONDS] [--log FILE]
#                       [--guest-dir DIR] [--http-port PORT --metrics-port PORT [--host-script FILE]]
#                       [--link a:PORT | --link b:PORT] [--verbose]
#
#   --arch ARCH     x86_64 (default): QEMU 7.2 → Xen 4.17 (x86) → dom0, the guest from xl.cfg;
#                   aarch64: qemu-system-aarch64 7.2 → Xen 4.17 for ARM → arm64 dom0, the guest from
#                   xl-arm64.cfg (copied into dom0 as /xenecho/xl.cfg, so scripts are the same).
#   (neither)       the guest's console: `xl create -p xl.cfg`, then `xl console` on this terminal
#                   (the guest is unpaused once it is attached); when the guest ends, dom0 shows the
#                   tail of xl's log and powers off. Exits with xl create's status. Ctrl-] leaves the
#                   console (dom0 then destroys the guest and powers off); Ctrl-C stops QEMU at once.
#   --shell         an interactive bash in dom0 on this terminal, once `xl create xl.cfg` is done and
#                   the guest has an address: GUEST_NAME, GUEST_DOMID, GUEST_IP, GUEST_HTTP_PORT and
#                   GUEST_METRICS_PORT set, curl, wrk and xl at hand, examples/ in /xenecho/examples.
#                   `exit` (or Ctrl-D) powers dom0 off and QEMU exits; Ctrl-C reaches dom0's shell;
#                   Ctrl-A x stops QEMU at once. Exits 0. No timeout unless --timeout says so.
#   --script FILE   dom0 runs `xl create xl.cfg`, then FILE with bash in /xenecho, with GUEST_NAME,
#                   GUEST_DOMID, GUEST_IP, GUEST_HTTP_PORT, GUEST_METRICS_PORT, GUEST_CREATE_STATUS
#                   and XENECHO_DIR set. FILE runs even if xl create failed. Its output is printed
#                   here; run.sh exits with its status.
#   --timeout S     kill the test host after S seconds (default 600; 0: never) and exit 124.
#   --log FILE      the whole serial console (Xen + dom0) followed by dom0's Xen logs (xl's log,
#                   the guests' consoles); default build/testbed/console.log in the repository.
#   --guest-dir DIR where xl.cfg and build/ are taken from (default: the repository root).
#   --http-port PORT, --metrics-port PORT
#                   forward these ports on this machine's 127.0.0.1 (only) to the appliance's HTTP
#                   and metrics ports: QEMU's user-mode network (restrict=on: the test host reaches
#                   nothing) to dom0, which passes each connection on to the guest's address of the
#                   moment. `auto` picks free ports. A port in use is an error.
#   --host-script FILE
#                   when a dom0 script runs `host-checks` (the e2e suite does), run FILE here with
#                   bash, with XENECHO_HTTP_URL, XENECHO_METRICS_URL and XENECHO_OUTPUT_DIR
#                   (build/testbed) set, print its output, and report its PASS:/FAIL: counts to dom0.
#   --link a:PORT, --link b:PORT
#                   x86_64: a wire to a second test host, joined to xenbr0 on both (tests/two-hosts/):
#                   QEMU's socket network, host a listening on this machine's 127.0.0.1:PORT, host b
#                   connecting to it (start a first), nothing else on it. Host a is as without it;
#                   host b's dom0 is 10.88.0.252, serves no DHCP and starts no guest (--script only).
#   --verbose       show the whole serial console as it comes (Xen's and dom0's boot too); without
#                   it, progress lines and then only the guest's console or dom0's shell.
#
# Exit status: the script's (or xl create's); 124 on timeout; 125 when the test host failed
# (QEMU error, Xen or dom0 crash, or dom0 powered off without reporting an end).
set -euo pipefail
# shellcheck source=testbed/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO_ROOT=$(cd "$TESTBED_DIR/.." && pwd)

usage() { sed -n '/^# usage:/,/^# Exit status/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# Whether something on this machine listens on 127.0.0.1 port $1.
# shellcheck disable=SC2016  # the inner bash expands $1
port_taken() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

# local_port VALUE OPTION MAKE-VARIABLE [PORT...]: VALUE, a free port on 127.0.0.1 (or `auto`: one
# picked that is free now and none of the PORTs); dies, naming OPTION and MAKE-VARIABLE, when it is
# taken or not a port.
local_port() {
    local port
    if [ "$1" = auto ]; then
        for port in $(shuf -i 20000-60999 -n 40); do
            [[ " ${*:4} " != *" $port "* ]] || continue
            port_taken "$port" || { echo "$port"; return 0; }
        done
        die "found no free port on 127.0.0.1"
    fi
    if ! [[ $1 =~ ^[0-9]{1,5}$ ]] || [ "$1" -lt 1 ] || [ "$1" -gt 65535 ]; then
        die "$2 wants a port (1 to 65535) or auto, not '$1'"
    fi
    if port_taken "$1"; then
        die "127.0.0.1:$1 ($2, make's $3) is in use, by another make run or make shell? Pick another: make shell $3=N (or auto)"
    fi
    echo "$1"
}

# terminal_for_dom0 DIR: the terminal type dom0's shell should use, with the host's terminfo entry
# for it copied under DIR (the per-run initramfs); vt100 when there is none (dom0 has no terminfo).
terminal_for_dom0() {
    local name=${TERM:-vt100} dir
    [[ $name =~ ^[A-Za-z0-9._+-]+$ ]] || { echo vt100; return; }
    for dir in "${TERMINFO:-}" "$HOME/.terminfo" /etc/terminfo /lib/terminfo /usr/share/terminfo; do
        if [ -n "$dir" ] && [ -f "$dir/${name:0:1}/$name" ]; then
            mkdir -p "$1/usr/share/terminfo/${name:0:1}"
            cp "$dir/${name:0:1}/$name" "$1/usr/share/terminfo/${name:0:1}/"
            echo "$name"
            return
        fi
    done
    echo vt100
}

script="" timeout=600 log="" guest_dir=$REPO_ROOT verbose=0 arch=x86_64 shell=0
http_port="" metrics_port="" host_script="" link=""
while [ $# -gt 0 ]; do
    case $1 in
    --arch) arch=${2:?--arch needs x86_64 or aarch64}; shift 2 ;;
    --script) script=${2:?--script needs a file}; shift 2 ;;
    --shell) shell=1; shift ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    --log) log=${2:?--log needs a file}; shift 2 ;;
    --guest-dir) guest_dir=${2:?--guest-dir needs a directory}; shift 2 ;;
    --http-port) http_port=${2:?--http-port needs a port or auto}; shift 2 ;;
    --metrics-port) metrics_port=${2:?--metrics-port needs a port or auto}; shift 2 ;;
    --host-script) host_script=${2:?--host-script needs a file}; shift 2 ;;
    --link) link=${2:?--link needs a:PORT or b:PORT}; shift 2 ;;
    --verbose) verbose=1; shift ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage ;;
    esac
done
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout wants whole seconds, not '$timeout'"
[ -z "$script" ] || [ -f "$script" ] || die "no such script: $script"
[ -z "$script" ] || [ "$shell" = 0 ] || die "--script and --shell exclude each other"
[ "${http_port:+set}" = "${metrics_port:+set}" ] || die "--http-port and --metrics-port go together"
link_role="" link_port=""
if [ -n "$link" ]; then
    [[ $link =~ ^([ab]):([0-9]{1,5})$ ]] || die "--link wants a:PORT or b:PORT, not '$link'"
    link_role=${BASH_REMATCH[1]} link_port=${BASH_REMATCH[2]}
    [ "$arch" = x86_64 ] || die "--link is for the x86_64 test host"
    [ "$link_role" = a ] || [ -n "$script" ] || die "--link b:PORT runs a --script (host b starts no guest)"
    # Host a listens: its port must be free. Host b connects: host a must listen already.
    [ "$link_role" = b ] || link_port=$(local_port "$link_port" --link LINK_PORT)
    [ "$link_role" = a ] || listening "$link_port" || die "--link b:$link_port: nothing listens on 127.0.0.1:$link_port (start host a first)"
fi
[ -z "$host_script" ] || [ -n "$http_port" ] || die "--host-script needs --http-port and --metrics-port"
[ -z "$host_script" ] || [ -f "$host_script" ] || die "no such host script: $host_script"
[ -z "$host_script" ] || host_script=$(cd "$(dirname "$host_script")" && pwd)/$(basename "$host_script")
guest_dir=$(cd "$guest_dir" && pwd) || die "no such directory: $guest_dir"
case $arch in
x86_64) xl_cfg=xl.cfg; [ -n "$log" ] || log=$REPO_ROOT/build/testbed/console.log
        HOSTNET_DEVICE=e1000; HOSTNET_MODULE=e1000 ;;
aarch64) xl_cfg=xl-arm64.cfg; [ -n "$log" ] || log=$REPO_ROOT/build/testbed/console-arm64.log
         HOSTNET_DEVICE=virtio-net-device; HOSTNET_MODULE=virtio_net
         # The ARM64 host's cache paths and QEMU command, in place of lib.sh's x86_64 ones.
         # shellcheck source=testbed/arm64/lib.sh
         source "$TESTBED_DIR/arm64/lib.sh" ;;
*) die "--arch wants x86_64 or aarch64, not '$arch'" ;;
esac
[ -f "$guest_dir/$xl_cfg" ] || die "no $xl_cfg in $guest_dir"
# The guest's name, for the progress lines.
guest=$(sed -n 's/^[[:space:]]*name[[:space:]]*=[[:space:]]*["'\'']\([^"'\'']*\)["'\''].*/\1/p' "$guest_dir/$xl_cfg" | head -1)
# Fail now rather than after a minute of booting when the image is missing.
kernel=$(sed -n 's/^[[:space:]]*kernel[[:space:]]*=[[:space:]]*["'\'']\([^"'\'']*\)["'\''].*/\1/p' \
    "$guest_dir/$xl_cfg" | head -1)
[ -z "$kernel" ] || [[ $kernel == /* ]] || [ -f "$guest_dir/$kernel" ] \
    || die "$xl_cfg names kernel \"$kernel\", but $guest_dir/$kernel does not exist (run make first?)"

# --- The loopback ports forwarded to the appliance --------------------------------------------------
# QEMU's user-mode network, restrict=on: the test host can reach nothing; QEMU listens on this
# machine's 127.0.0.1 only and passes connections to dom0's address HOSTNET_ADDRESS, where dom0 hands
# them on to the guest (testbed/dom0/init, testbed/dom0/bin/guest-connect).
HOSTNET_MAC=52:54:00:58:45:01
HOSTNET_ADDRESS=10.0.2.15                   # QEMU's user-mode network puts its guest at .15
LINK_MAC=52:54:00:58:4c:0${link_role:-0}    # the wire to the other test host (--link): one MAC a host
FORWARD_HTTP_PORT=8000                      # dom0's ports for the guest's HTTP and metrics ports,
FORWARD_METRICS_PORT=8001                   # and for run.sh's report of the host checks
FORWARD_REPORT_PORT=8002
host_checks_port=""
if [ -n "$http_port" ]; then
    http_port=$(local_port "$http_port" --http-port HTTP_PORT_LOCAL)
    metrics_port=$(local_port "$metrics_port" --metrics-port METRICS_PORT_LOCAL "$http_port")
    [ "$http_port" != "$metrics_port" ] || die "--http-port and --metrics-port are both $http_port"
    [ -z "$host_script" ] || host_checks_port=$(local_port auto "" "" "$http_port" "$metrics_port")
fi

if [ "$arch" = aarch64 ]; then
    bash "$TESTBED_DIR/arm64/setup.sh"
else
    bash "$TESTBED_DIR/setup.sh"
fi
# The host script's browser and Python, installed when missing.
[ -z "$host_script" ] || bash "$TESTBED_DIR/setup.sh" --host-checks

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
[ "$shell" = 1 ] && mode=shell
[ -n "$script" ] && mode=script
extra=$run_dir/extra
mkdir -p "$extra/xenecho" "$extra/testbed"
cp "$guest_dir/$xl_cfg" "$extra/xenecho/xl.cfg"
if [ -d "$guest_dir/build" ]; then
    # build/testbed holds our own logs: not the guest's business.
    (cd "$guest_dir" && find build -path build/testbed -prune -o -print0 \
        | cpio --quiet -p -0 -d -m "$extra/xenecho")
fi
# The examples, for the shell and for the e2e suite, which runs each.
[ ! -d "$REPO_ROOT/examples" ] || cp -r "$REPO_ROOT/examples" "$extra/xenecho/"
# x86_64: the libvirt definition, for virsh in the shell and the libvirt e2e check (check-22).
[ "$arch" != x86_64 ] || [ ! -f "$REPO_ROOT/xenecho.xml" ] || cp "$REPO_ROOT/xenecho.xml" "$extra/xenecho/"
{
    printf 'MODE=%s\nMARKER=%s\nVERBOSE=%s\n' "$mode" "$marker" "$verbose"
    if [ -n "$http_port" ]; then
        printf 'HOSTNET_MAC=%s\nHOSTNET_MODULE=%s\nHOSTNET_ADDRESS=%s\n' "$HOSTNET_MAC" "$HOSTNET_MODULE" "$HOSTNET_ADDRESS"
        printf 'FORWARD_HTTP_PORT=%s\nFORWARD_METRICS_PORT=%s\n' "$FORWARD_HTTP_PORT" "$FORWARD_METRICS_PORT"
        printf 'HOST_HTTP_URL=%s\nHOST_METRICS_URL=%s\n' "http://127.0.0.1:$http_port/" "http://127.0.0.1:$metrics_port/metrics"
    fi
    [ -z "$host_checks_port" ] || printf 'HOST_CHECKS_PORT=%s\n' "$FORWARD_REPORT_PORT"
    [ -z "$link" ] || printf 'LINK_ROLE=%s\nLINK_MAC=%s\nLINK_MODULE=e1000\n' "$link_role" "$LINK_MAC"
    if [ "$mode" = shell ]; then
        # The terminal dom0's shell talks to: its type (with its terminfo entry, which dom0 lacks)
        # and its size (a serial line cannot tell; a later resize does not reach dom0).
        printf 'TERM_NAME=%s\n' "$(terminal_for_dom0 "$extra")"
        if [ -t 0 ] && read -r rows columns < <(stty size); then
            printf 'TERM_SIZE="rows %s cols %s"\n' "$rows" "$columns"
        fi
    fi
} > "$extra/testbed/run.conf"
[ -n "$script" ] && cp "$script" "$extra/testbed/script"
# Linux takes concatenated (compressed) cpio archives as one initramfs: the cached dom0 image
# followed by this run's files.
(cd "$extra" && find . -print0 | cpio --quiet -o -0 -H newc -R 0:0 | gzip -1 > "$run_dir/extra.cpio.gz")
cat "$DOM0_INITRAMFS" "$run_dir/extra.cpio.gz" > "$run_dir/initrd.gz"

# --- QEMU ---------------------------------------------------------------------------------------
results=$run_dir/results
: > "$results"
# The first serial line, Xen's console with dom0's on it, is this terminal. dom0's shell gets
# Ctrl-C (signal=off), and QEMU's own escape (mux: Ctrl-A x quits) stays at hand.
if [ "$mode" = shell ]; then
    # shellcheck disable=SC2054  # QEMU's options are comma-separated
    console_serial=(-chardev stdio,id=console,mux=on,signal=off -serial chardev:console)
    console_help="dom0's shell follows: exit (or Ctrl-D) powers the test host off; Ctrl-A x stops QEMU at once"
else
    console_serial=(-serial stdio)
    console_help="its console follows: Ctrl-] leaves it and powers the test host off; Ctrl-C stops QEMU at once"
fi
# No host network; or the user-mode network of the forwarded ports; and the wire to the other
# test host (--link), on this machine's loopback. Nothing else.
network=()
if [ -n "$http_port" ]; then
    forwards="hostfwd=tcp:127.0.0.1:$http_port-$HOSTNET_ADDRESS:$FORWARD_HTTP_PORT"
    forwards+=",hostfwd=tcp:127.0.0.1:$metrics_port-$HOSTNET_ADDRESS:$FORWARD_METRICS_PORT"
    [ -z "$host_checks_port" ] || forwards+=",hostfwd=tcp:127.0.0.1:$host_checks_port-$HOSTNET_ADDRESS:$FORWARD_REPORT_PORT"
    network=(-netdev "user,id=hostnet,restrict=on,$forwards" -device "$HOSTNET_DEVICE,netdev=hostnet,mac=$HOSTNET_MAC")
fi
if [ -n "$link" ]; then
    if [ "$link_role" = a ]; then socket="listen=127.0.0.1:$link_port"; else socket="connect=127.0.0.1:$link_port"; fi
    network+=(-netdev "socket,id=link,$socket" -device "e1000,netdev=link,mac=$LINK_MAC")
fi
[ ${#network[@]} -gt 0 ] || network=(-nic none)
if [ "$arch" = aarch64 ]; then
    # Xen takes the virt machine's one UART (stdio here); dom0's results line is a virtio console
    # (dom0's /dev/hvc1, see testbed/arm64/testbed-arch.conf). guest-loader places dom0's kernel
    # and initramfs and names them in the device tree, where Xen finds them.
    for path in "$DOM0_KERNEL" "$run_dir/initrd.gz" "$results"; do
        [[ $path != *,* ]] || die "the path $path contains a comma, which QEMU's options cannot take"
    done
    qemu_command
    # shellcheck disable=SC2054  # QEMU's options are comma-separated
    QEMU_COMMAND+=(
        -machine virt,virtualization=on,gic-version=3
        -accel tcg,thread=multi -cpu cortex-a57 -smp 2 -m 2048
        -nodefaults -nographic -monitor none
        "${network[@]}"
        -no-reboot
        "${console_serial[@]}"                 # the UART: Xen's console, with dom0's hvc0 on it
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
    # shellcheck disable=SC2054  # QEMU's options are comma-separated
    QEMU_COMMAND+=(
        -machine pc -accel "tcg,thread=single" # multi-threaded TCG corrupts nested SVM state
        -cpu "qemu64,+svm,+npt"                # Debian's Xen has no shadow paging: PVH needs NPT (HAP)
        -smp 2 -m 3072
        -nodefaults -nographic -vga none -monitor none
        "${network[@]}"
        -no-reboot
        "${console_serial[@]}"                 # COM1: Xen's console, with dom0's hvc0 on it
        -serial "file:${results//,/,,}"        # COM2: dom0's /dev/ttyS1, the results line
        -kernel "$XEN_IMAGE"
        -append "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem=1024M,max:1024M dom0_max_vcpus=2 noreboot"
        -initrd "$modules"
    )
fi

started=$SECONDS
# Progress lines. While QEMU runs a console on this terminal, the terminal is raw: end lines with
# CR LF. With --verbose the console itself is shown from the start: no progress lines in it.
progress() {
    if [ "$mode" = script ]; then log "$@"
    elif [ "$verbose" = 0 ]; then printf 'testbed: %s\r\n' "$*" >&2; fi
}
if [ "$mode" = script ] || [ "$verbose" = 0 ]; then
    log "booting Xen and dom0 in QEMU ($mode mode$([ "$timeout" = 0 ] || echo ", timeout ${timeout}s")); the full log: $log"
fi
[ -z "$http_port" ] || log "the appliance, once up, from this machine: http://127.0.0.1:$http_port/ (a browser gets an HTML page) and http://127.0.0.1:$metrics_port/metrics"
if [ "$mode" = script ]; then
    "${QEMU_COMMAND[@]}" < /dev/null > "$log" 2> "$run_dir/qemu.stderr" &
    qemu_pid=$!
    if [ "$verbose" = 1 ]; then
        tail -n +1 -f --pid="$qemu_pid" "$log" >&2 &
        tail_pid=$!
    fi
else
    # The terminal is the console: QEMU puts it in raw mode, restore it whatever happens.
    [ -t 0 ] && saved_tty=$(stty -g)
    "${QEMU_COMMAND[@]}" 0<&0 > "$log" 2> "$run_dir/qemu.stderr" &
    qemu_pid=$!
    if [ "$verbose" = 1 ]; then
        tail -n +1 -f --pid="$qemu_pid" "$log" &
        tail_pid=$!
    fi
fi

# Shows the console from the line after dom0's "---- ... follows ----" on (the console of the
# guest, or dom0's shell), as it comes. That line reaches the log through Xen's serial driver, maybe
# a little after dom0's marker: wait for it, then show everything after it.
watching=0
start_watching() {
    local found="" start
    [ "$mode" != script ] && [ "$verbose" = 0 ] || return 0
    for _ in $(seq 50); do
        found=$(grep -a -b -m1 -- '^dom0-init: ---- .* follows ----' "$log") && break
        sleep 0.2
    done
    if [ -n "$found" ]; then
        start=$(( ${found%%:*} + $(printf '%s' "${found#*:}" | wc -c) + 1 ))
    else
        start=$(( $(stat -c %s "$log") + 1 ))
    fi
    tail -c "+$start" -f --pid="$qemu_pid" "$log" &
    tail_pid=$!
    watching=1
}

# When dom0's script asks (host-checks): runs the host script with the forwarded ports' URLs, shows
# its output, and reports its PASS:/FAIL: counts to dom0, which waits for them on the report port.
run_host_checks() {
    local output=$run_dir/host-checks.out status=0 passed failed reply=""
    mkdir -p "$REPO_ROOT/build/testbed"
    XENECHO_HTTP_URL=http://127.0.0.1:$http_port/ XENECHO_METRICS_URL=http://127.0.0.1:$metrics_port/metrics \
        XENECHO_OUTPUT_DIR=$REPO_ROOT/build/testbed timeout 600 bash "$host_script" < /dev/null 2>&1 \
        | tee "$output" || status=$?
    passed=$(grep -c '^PASS: ' "$output") || true
    failed=$(grep -c '^FAIL: ' "$output") || true
    if [ "$status" != 0 ] && [ "$failed" = 0 ]; then
        echo "FAIL: the host script $host_script exited with status $status"
        failed=1
    fi
    # QEMU accepts the connection whether or not dom0 listens: only dom0's "ok" says it arrived.
    for _ in $(seq 30); do
        reply=$( { exec 3<>"/dev/tcp/127.0.0.1/$host_checks_port" && printf '%s %s\n' "$passed" "$failed" >&3 \
                   && timeout 5 head -n 1 <&3; } 2>/dev/null) || true
        [ "$reply" = ok ] && return 0
        sleep 1
    done
    log "could not report the host checks to dom0"
}

# --- Follow the results line while QEMU runs -----------------------------------------------------
consumed=0 section="" end_status="" create_status="" failure=""
files=$run_dir/files
: > "$files"
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
        FORWARD) if [ "$argument" = ok ]; then
                     progress "dom0 forwards 127.0.0.1:$http_port and 127.0.0.1:$metrics_port to the guest"
                 else
                     progress "dom0 could not forward the loopback ports: ${argument#failed: }"
                 fi ;;
        CREATED) create_status=${argument%% *}
                 if [ "$create_status" = 0 ]; then
                     progress "guest ${guest:-the guest} created, domid ${argument#* }, after $((SECONDS - started)) s"
                 else
                     progress "xl create xl.cfg failed with status $create_status (see $log)"
                 fi ;;
        ADDRESS) progress "${guest:-the guest} has address $argument after $((SECONDS - started)) s" ;;
        CONSOLE) progress "$console_help"; start_watching ;;
        HOSTCHECK) run_host_checks ;;
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
    if [ "$timeout" != 0 ] && [ $((SECONDS - started)) -ge "$timeout" ]; then
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

# The log's tail, when the terminal has not shown the console (without --verbose, before the part
# a person watches began).
show_log_tail() {
    [ "$verbose" = 0 ] && [ "$watching" = 0 ] || return 0
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
    if grep -q 'host forwarding rule' "$run_dir/qemu.stderr" 2>/dev/null; then
        log "a loopback port was taken between run.sh's check and QEMU's start (another run starting?)"
    fi
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
    show_log_tail
    log "xl create xl.cfg exited with status $end_status; full log: $log"
fi
exit "$end_status"
