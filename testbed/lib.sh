# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this
# Shared by setup.sh and run.sh: where the cache lives, what it holds, small helpers.
# Sourced, never run. Everything here must work on a fresh Debian bookworm with apt.
# The names below are the x86_64 test host's; arm64/lib.sh, sourced after this file, points the
# same names at the ARM64 test host's part of the cache.

TESTBED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The cache lives outside the work tree so that a clean clone (CI) reuses it and `git clean`
# never throws away 150 MB of downloads.
CACHE=${XENECHO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xenecho}

DEBS_DIR=$CACHE/debs                    # every .deb we download, shared by all parts and both hosts
HOST_CACHE=$CACHE                       # this test host's part: its stamps, lock and ready mark
MANIFESTS=$HOST_CACHE/manifests         # the resolved package lists ("package version arch")
QEMU_ROOT=$HOST_CACHE/qemu              # QEMU 7.2 and its libraries, extracted (never installed)
QEMU_BIN=$QEMU_ROOT/usr/bin/qemu-system-x86_64
XEN_IMAGE=$HOST_CACHE/xen/xen.elf       # the gunzipped multiboot1 hypervisor
DOM0_KERNEL=$HOST_CACHE/dom0/vmlinuz    # the Debian kernel, run as PV dom0
DOM0_INITRAMFS=$HOST_CACHE/dom0/initramfs.cpio.gz

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { printf 'testbed: error: %s\n' "$*" >&2; exit 1; }
# listening PORT: something listens on TCP port PORT of this machine (/proc/net/tcp). It tries no
# connection: a QEMU socket network that listens there would take one for its peer.
listening() {
    local hex; hex=$(printf '%04X' "$1")
    awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
        /proc/net/tcp
}

# Library search path for the extracted QEMU. The host's own glibc is used (it is bookworm's,
# like the extracted libraries), everything else comes from the cache.
qemu_library_path() {
    printf '%s' "$QEMU_ROOT/lib/x86_64-linux-gnu:$QEMU_ROOT/usr/lib/x86_64-linux-gnu"
    printf ':%s' "$QEMU_ROOT/usr/lib/x86_64-linux-gnu/pulseaudio"
}

# The command that runs the extracted QEMU with its libraries, modules and firmware from the cache
# (through env, so that a background job's PID is QEMU's own).
qemu_command() {
    QEMU_COMMAND=(env "LD_LIBRARY_PATH=$(qemu_library_path)"
        "QEMU_MODULE_DIR=$QEMU_ROOT/usr/lib/x86_64-linux-gnu/qemu"
        "$QEMU_BIN" -L "$QEMU_ROOT/usr/share/qemu" -L "$QEMU_ROOT/usr/share/seabios")
}

# The headless browser of the host-side checks (tests/e2e-host/browser.sh): $CHROMIUM if set, else
# the first of chromium (Debian's package), chromium-headless-shell, chromium-browser and
# google-chrome on PATH. Ubuntu's chromium-browser package is only a shim that starts a snap
# (whose confinement keeps it from writing the screenshot under build/): snap launchers are skipped.
chromium_command() {
    local candidate path resolved
    for candidate in ${CHROMIUM:-} chromium chromium-headless-shell chromium-browser google-chrome-stable google-chrome; do
        path=$(command -v "$candidate" 2>/dev/null) || continue
        resolved=$(readlink -f "$path")
        case $resolved in */snap|/snap/*) continue ;; esac
        if [ "$(head -c 2 "$resolved")" = "#!" ] && grep -q 'snap' "$resolved"; then continue; fi
        echo "$path"
        return 0
    done
    return 1
}
