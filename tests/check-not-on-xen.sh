#!/usr/bin/env bash
# Boots the x86_64 image on plain QEMU, without Xen (QEMU's own PVH loader takes the ELF's
# PHYS32_ENTRY note), and checks that the kernel's fatal message reaches the first serial port
# (COM1): someone who starts the appliance outside Xen sees why it stopped. Uses the test host's
# QEMU from the cache (testbed/setup.sh fills it; run by `make test-e2e` after the dom0 suite).
#
# usage: tests/check-not-on-xen.sh [IMAGE]    (default build/xenecho.elf)
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:-build/xenecho.elf}
# shellcheck source=testbed/lib.sh
source testbed/lib.sh
fail() { echo "check-not-on-xen: FAIL: $*" >&2; exit 1; }

[ -f "$image" ] || fail "no $image (run make first)"
bash testbed/setup.sh >&2 || fail "testbed/setup.sh could not set up the test host's QEMU"
out=$(mktemp -d)
[[ $out != *,* ]] || fail "the temporary folder $out contains a comma, which QEMU's options cannot take"
qemu=""
cleanup() {
    [ -n "$qemu" ] && kill "$qemu" 2>/dev/null
    rm -rf "$out"
}
trap cleanup EXIT

qemu_command
"${QEMU_COMMAND[@]}" -machine pc -accel tcg -cpu qemu64 -m 128 \
    -nodefaults -display none -monitor none -no-reboot \
    -serial "file:$out/com1" \
    -kernel "$image" </dev/null >"$out/qemu.out" 2>&1 &
qemu=$!
# The message comes within a second of boot; QEMU then idles (the CPU halted) until killed.
for _ in $(seq 60); do
    grep -q "not running on Xen" "$out/com1" 2>/dev/null && break
    kill -0 "$qemu" 2>/dev/null || break
    sleep 1
done
kill "$qemu" 2>/dev/null || true
wait "$qemu" 2>/dev/null || true
qemu=""
grep -qE '\[ *[0-9]+\.[0-9]{3}\] FATAL: not running on Xen \(no sign of Xen: ' "$out/com1" ||
    fail "COM1 showed no 'FATAL: not running on Xen' within 60 s; it showed: $(head -c 600 "$out/com1" 2>/dev/null)" \
        "; QEMU said: $(head -c 600 "$out/qemu.out")"
echo "check-not-on-xen: $image on QEMU without Xen: $(tr -d '\r' <"$out/com1" | grep -m1 'FATAL')"
