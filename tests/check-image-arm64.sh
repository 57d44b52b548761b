#!/usr/bin/env bash
# Checks the aarch64 kernel image is what Xen's ARM guest loader (libxl) takes:
# the 64-byte Linux arm64 Image header with the `ARM\x64` magic at 0x38, a
# branch as its first instruction (libxl jumps to the first byte), text_offset
# 0, and an image_size that covers the file (and the BSS after it).
set -euo pipefail
image=${1:-build/xenecho-arm64.img}
fail() { echo "check-image-arm64: FAIL: $*" >&2; exit 1; }

[ -f "$image" ] || fail "no $image"
le64() { od -An -t u8 -j "$1" -N 8 "$image" | tr -d ' '; }
le32() { od -An -t u4 -j "$1" -N 4 "$image" | tr -d ' '; }
[ "$(od -An -c -j 56 -N 4 "$image" | tr -d ' ')" = 'ARMd' ] || fail "no ARM\\x64 magic at 0x38"
code0=$(le32 0)
[ $(( code0 >> 26 )) -eq 5 ] || fail "the first word $(printf %#x "$code0") is not a branch (b)"
[ "$(le64 8)" -eq 0 ] || fail "text_offset is $(le64 8), not 0"
size=$(stat -c %s "$image")
[ "$(le64 16)" -ge "$size" ] || fail "image_size $(le64 16) is smaller than the file ($size bytes)"
echo "check-image-arm64: $image: arm64 Image header, entry branch, image_size $(le64 16) >= $size bytes"
