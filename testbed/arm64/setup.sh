#!/usr/bin/env bash
# Builds the emulated Xen-on-ARM test host from Debian bookworm packages, into the cache:
#   - QEMU 7.2's qemu-system-aarch64 (qemu-system-arm, the amd64 build), extracted, never installed;
#   - Xen 4.17 for arm64 (xen-hypervisor-4.17-arm64: /boot/xen-4.17-arm64, an arm64 Image);
#   - an arm64 Linux dom0 (linux-image-*-arm64) and its initramfs built only from arm64 packages:
#     busybox, the Xen tools and daemons, the vif hotplug script's tools, curl, wrk, jq, the bridge,
#     netback and virtio-console modules, and the same /init as the x86_64 host (testbed/dom0).
# arm64 packages come through a private apt configuration in the cache (the host's Debian sources,
# arm64 lists) and are extracted with dpkg-deb -x: nothing is installed on the host.
# The steps are ../setup-lib.sh's, shared with the x86_64 host; this file says what the ARM64 host
# is made of. Idempotent, with stamps like ../setup.sh; the initramfs is rebuilt when anything
# under arm64/ (this script, lib.sh, testbed-arch.conf), ../lib.sh, ../setup-lib.sh or anything
# under ../dom0 changes.
#
# usage: testbed/arm64/setup.sh [--peer]
#   --peer   also build the ARM64 benchmark peer (`make bench ARCH=aarch64`): a Linux arm64 domU,
#            the dom0's own kernel Image with an initramfs holding arm64 busybox and nginx (the same
#            testbed/peer/ files as the x86_64 peer), into <cache>/arm64/peer/ (Image,
#            initramfs.cpio.gz). Only when asked, so that `make test-arm64` never pays for it.
set -euo pipefail
ARM64_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed/lib.sh
source "$ARM64_DIR/../lib.sh"
# shellcheck source=testbed/arm64/lib.sh
source "$ARM64_DIR/lib.sh"
# shellcheck source=testbed/setup-lib.sh
source "$TESTBED_DIR/setup-lib.sh"

# --- What the ARM64 test host is made of (see ../setup-lib.sh) --------------------------------
QEMU_PACKAGES=(qemu-system-arm qemu-system-common qemu-system-data)
MACHINE_APT_CACHE=apt_cache_arm64
XEN_PACKAGE=xen-hypervisor-4.17-arm64
XEN_FILE=boot/xen-4.17-arm64
KERNEL_METAPACKAGE=linux-image-arm64
# virtio_mmio + virtio_console carry the results line (/dev/hvc1), virtio_net the forwarded
# loopback ports (run.sh --http-port); dependencies come with modinfo.
DOM0_MODULES+=(virtio_mmio virtio_console virtio_net)
KERNEL_MODULE_DIRS+=(drivers/virtio drivers/char drivers/net)
LIBDIR=usr/lib/aarch64-linux-gnu
LIBRARY_DIRS=(lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu usr/lib/xen-4.17/lib)
LOADER=lib/ld-linux-aarch64.so.1
LOADER_LINK=aarch64-linux-gnu/ld-linux-aarch64.so.1
USR_LINKS=(lib)
LD_SO_CACHE=no                          # the arm64 loader searches /usr/lib/aarch64-linux-gnu
DOM0_ARCH_CONF=$ARM64_DIR/testbed-arch.conf
INITRAMFS_INPUTS=(lib.sh setup-lib.sh arm64 dom0)
LOG_PREFIX="arm64: "
# The benchmark peer (--peer, setup-lib.sh's PEER_PACKAGES, from the private arm64 apt): an arm64
# domU booting dom0's Image, in <cache>/arm64/peer/.
PEER_DIR=$HOST_CACHE/peer
PEER_KERNEL=Image
PEER_INPUTS=(arm64/setup.sh setup-lib.sh peer)

# --- apt: the host's for QEMU (an amd64 program), the private one for arm64 --------------------
arm64_apt_options
# apt-get and apt-cache on the private arm64 configuration.
apt_arm64() { apt-get "${ARM64_APT_OPTIONS[@]}" "$@"; }
apt_cache_arm64() { apt-cache "${ARM64_APT_OPTIONS[@]}" "$@"; }

# The private apt configuration and its lists, made once.
setup_private_apt() {
    [ -f "$ARM64_APT/.updated" ] && return 0
    log "arm64: private apt configuration in $ARM64_APT"
    mkdir -p "$ARM64_APT"/etc/apt/{sources.list.d,preferences.d,apt.conf.d} \
        "$ARM64_APT"/var/lib/apt/lists/partial "$ARM64_APT"/var/cache/apt/archives/partial "$ARM64_APT"/var/lib/dpkg
    : > "$ARM64_APT/var/lib/dpkg/status"
    # The host's Debian sources (those signed with Debian's archive keys), nothing else.
    local file found=0
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        if [ -f "$file" ] && grep -q 'debian-archive-keyring\|^deb .*/debian' "$file"; then
            cp "$file" "$ARM64_APT/etc/apt/sources.list.d/"
            found=1
        fi
    done
    [ "$found" = 1 ] || die "no Debian apt sources on this host to take arm64 packages from"
    apt_arm64 -q update >/dev/null || die "apt-get update (arm64) failed"
    touch "$ARM64_APT/.updated"
}

# host_busybox BUSYBOX ARGUMENT...: runs the amd64 busybox-static of the version of the arm64
# BUSYBOX (Debian's build names its package version in its banner), downloaded if missing.
host_busybox() {
    local version deb dir=$HOST_CACHE/host-busybox
    version=$({ grep -ao -m 1 'BusyBox v[^ ]* (Debian [^)]*)' "$1" || true; } \
        | sed -n '1s/.*(Debian \(.*\))/\1/p')
    [ -n "$version" ] || die "$1 names no Debian version in its banner"
    shift
    deb=$(deb_file busybox-static "$version" amd64)
    if [ ! -x "$dir/$version/bin/busybox" ]; then
        [ -f "$deb" ] || (cd "$DEBS_DIR" && apt_get_host -q download "busybox-static:amd64=$version" >/dev/null) \
            || die "cannot download busybox-static $version (amd64) for its applet list"
        rm -rf "${dir:?}/$version"; mkdir -p "$dir/$version"
        dpkg-deb -x "$deb" "$dir/$version"
    fi
    "$dir/$version/bin/busybox" "$@"
}

# --- The hooks ../setup-lib.sh calls -----------------------------------------------------------
# The host tools (testbed/setup.sh installs them), then the private apt configuration.
prepare_host() {
    local tool
    for tool in cpio readelf depmod modinfo dpkg-deb gzip; do
        command -v "$tool" >/dev/null || die "$tool is missing (run testbed/setup.sh first, it installs the host tools)"
    done
    setup_private_apt
}

# The private lists (prepare_host made them for the test host; the peer's packages come from them
# too), and QEMU's come from the host's as they are.
ensure_apt_lists() { setup_private_apt; }

# QEMU's packages with the host's apt, the others (the peer's too, once resolved) with the private
# arm64 one.
download_missing() {
    local lists=("$MANIFESTS"/{xen,kernel,dom0}.list)
    [ ! -f "$MANIFESTS/peer.list" ] || lists+=("$MANIFESTS/peer.list")
    download_debs apt_get_host "$MANIFESTS/qemu.list" || die "apt-get download failed"
    download_debs apt_arm64 "${lists[@]}" || die "apt-get download (arm64) failed"
}

# The applet list comes from the amd64 build of the same busybox-static version (the arm64 one in
# $1/bin does not run here).
busybox_applets() { host_busybox "$1/bin/busybox" --list-full; }

# --- Main -----------------------------------------------------------------------------------------
# The test host, and with --peer the benchmark peer.
main() {
    local peer=0
    while [ $# -gt 0 ]; do
        case $1 in
        --peer) peer=1; shift ;;
        -h|--help) sed -n '/^# usage:/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
        *) die "unknown argument: $1 (usage: testbed/arm64/setup.sh [--peer])" ;;
        esac
    done
    setup_test_host
    if [ "$peer" = 1 ]; then setup_peer; fi
}

main "$@"
