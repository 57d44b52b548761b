#!/usr/bin/env bash
# Builds the emulated Xen test host from Debian bookworm packages, into the cache (see lib.sh):
#   - QEMU 7.2 (qemu-system-x86 and its libraries, BIOS and data), extracted, never installed;
#   - Xen 4.17 (the gunzipped multiboot1 hypervisor ELF);
#   - the Debian kernel that runs as PV dom0, and the dom0 initramfs: busybox, the Xen tools and
#     daemons, the vif hotplug script's real tools, curl, wrk, jq, libvirtd and virsh (libvirt's
#     Xen driver) and the bridge/netback modules.
# The steps are setup-lib.sh's, shared with the ARM64 host (arm64/setup.sh); this file says what
# the x86_64 host and its benchmark peer are made of.
# Idempotent: a second run with everything in place checks a few stamps and returns at once.
# Only what changed is redone; the initramfs is rebuilt whenever testbed/setup.sh, lib.sh,
# setup-lib.sh or anything under testbed/dom0/ changes (stamp by hash). Nothing is downloaded twice.
#
# usage: testbed/setup.sh [--peer] [--host-checks]
#   --peer         also build the benchmark peer (`make bench`): a Linux PVH domU from the same
#                  Debian kernel with an initramfs holding busybox and nginx, into <cache>/peer/
#                  (vmlinuz, initramfs.cpio.gz). Only when asked, so that `make test` never pays
#                  for it.
#   --host-checks  only make sure this machine has what the host-side e2e checks run
#                  (tests/e2e-host/): python3, and a headless Chromium (Debian's chromium package,
#                  installed with apt-get when none is found; see chromium_command in lib.sh).
set -euo pipefail
# shellcheck source=testbed/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=testbed/setup-lib.sh
source "$TESTBED_DIR/setup-lib.sh"

# --- What the x86_64 test host is made of (see setup-lib.sh) ----------------------------------
QEMU_PACKAGES=(qemu-system-x86 qemu-system-common qemu-system-data seabios ipxe-qemu)
MACHINE_APT_CACHE=apt-cache             # the host's own: the emulated machine is amd64 too
XEN_PACKAGE=xen-hypervisor-4.17-amd64
XEN_FILE=boot/xen-4.17-amd64.gz
KERNEL_METAPACKAGE=linux-image-amd64
# The NIC of the forwarded loopback ports (run.sh --http-port): QEMU's e1000.
DOM0_MODULES+=(e1000)
KERNEL_MODULE_DIRS+=(drivers/net/ethernet/intel/e1000)
# libvirt's Xen driver, for tests/e2e/check-24-libvirt.sh and `virsh` in `make shell` (x86_64
# only: the ARM64 host has no libvirt). Whole: libvirt0 (libvirt.so and the CPU map the driver's
# capabilities read) and libvirt-daemon-driver-xen (the libxl driver module libvirtd loads from
# /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/); from libvirt-daemon only libvirtd (not
# its storage, network and other modules), from libvirt-clients only virsh. dom0's own
# /etc/libvirt (testbed/dom0/etc/libvirt) replaces Debian's configuration packages, and
# libvirtd is started on demand (testbed/dom0/bin/start-libvirtd), never at boot.
DOM0_WHOLE_PACKAGES+=(libvirt0 libvirt-daemon-driver-xen)
DOM0_PROGRAM_PACKAGES+=(libvirt-daemon libvirt-clients)
DOM0_PROGRAMS+=(/usr/sbin/libvirtd /usr/bin/virsh)
LIBDIR=usr/lib/x86_64-linux-gnu
LIBRARY_DIRS=(lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib64 usr/lib64 usr/lib/xen-4.17/lib)
LOADER=lib64/ld-linux-x86-64.so.2
LOADER_LINK=../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
USR_LINKS=(lib lib64)
LD_SO_CACHE=yes
DOM0_ARCH_CONF=""
INITRAMFS_INPUTS=(setup.sh lib.sh setup-lib.sh dom0)
LOG_PREFIX=""
# The benchmark peer (--peer, setup-lib.sh's PEER_PACKAGES): a PVH (and PV) domU, in <cache>/peer/.
PEER_DIR=$CACHE/peer
PEER_KERNEL=vmlinuz
PEER_INPUTS=(setup.sh setup-lib.sh peer)

# --- The hooks setup-lib.sh calls -------------------------------------------------------------
# Runs a command as root (through sudo unless we are root already).
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# apt-get update, once per run.
apt_update_once() {
    [ -n "${APT_UPDATED:-}" ] && return 0
    log "apt-get update"
    as_root apt-get update -qq
    APT_UPDATED=1
}

# apt-get install of the packages named, without recommends.
apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# apt-get install of the packages named, its chatter kept in a file that is shown only if the
# install fails (after one apt-get update).
install_packages() {
    local output; output=$(mktemp)
    if ! apt_install "$@" > "$output" 2>&1; then
        apt_update_once
        apt_install "$@" > "$output" 2>&1 || { cat "$output" >&2; rm -f "$output"; die "cannot install $*"; }
    fi
    rm -f "$output"
}

# Host programs the build needs; installed with apt-get only when missing.
prepare_host() {
    local missing=() tool package
    for tool in cpio:cpio readelf:binutils depmod:kmod modinfo:kmod gzip:gzip ldconfig:libc-bin \
                dpkg-deb:dpkg apt-get:apt sha256sum:coreutils; do
        package=${tool#*:}
        command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    log "installing host tools: ${missing[*]}"
    install_packages "${missing[@]}"
}

# What the host-side e2e checks need: python3 (its standard library only) and a headless
# Chromium, installed with apt-get when missing.
setup_host_checks() {
    local missing=()
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    chromium_command >/dev/null || missing+=(chromium)
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing for the host-side checks: ${missing[*]} (about 300 MB for chromium)"
    install_packages "${missing[@]}"
    chromium_command >/dev/null \
        || die "no headless Chromium found after installing ${missing[*]}: set CHROMIUM=/path/to/chromium"
}

# The host's apt lists, refreshed once if they do not know the Xen tools yet.
ensure_apt_lists() {
    apt-cache show --no-all-versions xen-utils-4.17 >/dev/null 2>&1 || apt_update_once
}

# Every manifest's packages (the peer's too, once built) that the cache lacks, with the host's apt.
download_missing() {
    download_debs apt_get_host "$MANIFESTS"/*.list && return 0
    # Stale lists name versions the mirror no longer has: refresh, re-resolve, retry once.
    [ -z "${APT_UPDATED:-}" ] || die "apt-get download failed"
    apt_update_once
    rm -f "$MANIFESTS/spec" "$MANIFESTS/peer.spec"
    resolve_manifests
    # The peer's list (when it was ever built) is downloaded with the rest: refresh it too.
    [ ! -f "$MANIFESTS/peer.list" ] || resolve_peer_manifest
    download_missing
}

# The applets of the busybox in $1/bin: an amd64 program, it runs here.
busybox_applets() { "$1/bin/busybox" --list-full; }

# --- Main -----------------------------------------------------------------------------------------
# The test host, and with --peer the benchmark peer.
main() {
    local peer=0
    while [ $# -gt 0 ]; do
        case $1 in
        --peer) peer=1; shift ;;
        --host-checks) setup_host_checks; return ;;
        -h|--help) sed -n '/^# usage:/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
        *) die "unknown argument: $1 (usage: testbed/setup.sh [--peer] [--host-checks])" ;;
        esac
    done
    setup_test_host
    if [ "$peer" = 1 ]; then setup_peer; fi
}

main "$@"
