# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this
# The ARM64 test host's part of the cache (sourced after ../lib.sh, never run): ../lib.sh's names
# pointed at <cache>/arm64/, which holds QEMU 7.2's qemu-system-aarch64, Debian's arm64 Xen 4.17,
# an arm64 Linux dom0 and its initramfs.

HOST_CACHE=$CACHE/arm64
ARM64_APT=$HOST_CACHE/apt                           # a private apt configuration for arm64 packages
MANIFESTS=$HOST_CACHE/manifests
QEMU_ROOT=$HOST_CACHE/qemu                          # qemu-system-arm 7.2 (amd64 build), extracted
QEMU_BIN=$QEMU_ROOT/usr/bin/qemu-system-aarch64
XEN_IMAGE=$HOST_CACHE/xen/xen                       # /boot/xen-4.17-arm64: an arm64 Image
DOM0_KERNEL=$HOST_CACHE/dom0/Image                  # Debian's arm64 vmlinuz is an uncompressed Image
DOM0_INITRAMFS=$HOST_CACHE/dom0/initramfs.cpio.gz

# apt-get / apt-cache on the private arm64 configuration: the host's Debian sources and keys,
# its own lists and an empty dpkg status, so nothing on the host changes (no
# `dpkg --add-architecture`).
arm64_apt_options() {
    ARM64_APT_OPTIONS=(-o "Dir=$ARM64_APT/" -o "Dir::State::status=$ARM64_APT/var/lib/dpkg/status"
        -o APT::Architecture=arm64 -o "APT::Architectures::=arm64"
        -o Dir::Etc::trusted=/etc/apt/trusted.gpg -o Dir::Etc::trustedparts=/etc/apt/trusted.gpg.d
        -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
}

# The command that runs the extracted qemu-system-aarch64 with its libraries and data (in place of
# ../lib.sh's x86_64 one).
qemu_command() {
    QEMU_COMMAND=(env
        "LD_LIBRARY_PATH=$QEMU_ROOT/lib/x86_64-linux-gnu:$QEMU_ROOT/usr/lib/x86_64-linux-gnu"
        "QEMU_MODULE_DIR=$QEMU_ROOT/usr/lib/x86_64-linux-gnu/qemu"
        "$QEMU_BIN" -L "$QEMU_ROOT/usr/share/qemu")
}
