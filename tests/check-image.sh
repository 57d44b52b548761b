#!/usr/bin/env bash
# Checks the kernel image is what Xen's PVH loader needs: an ELF with a PT_NOTE
# holding the Xen note XEN_ELFNOTE_PHYS32_ENTRY (type 18) whose value is the
# 32-bit entry point, and contiguous load segments starting at 1 MiB.
set -euo pipefail
image=${1:-build/xenecho.elf}
fail() { echo "check-image: FAIL: $*" >&2; exit 1; }

notes=$(readelf -nW "$image")
line=$(grep -E '^\s*Xen\s+0x00000004\s+Unknown note type: \(0x00000012\)' <<<"$notes") \
    || fail "no Xen note of type 18 (PHYS32_ENTRY) in $image"
entry_le=$(sed -n 's/.*description data: \([0-9a-f ]*\)$/\1/p' <<<"$line" | tr -d ' ')
entry=$((16#${entry_le:6:2}${entry_le:4:2}${entry_le:2:2}${entry_le:0:2}))
symbol=$((16#$(nm "$image" | awk '$3 == "pvh_start32" { print $1 }')))
[ "$entry" -eq "$symbol" ] || fail "PHYS32_ENTRY is $(printf %#x "$entry"), pvh_start32 is $(printf %#x "$symbol")"
readelf -lW "$image" | grep -q '^\s*NOTE' || fail "no PT_NOTE program header"

# Load segments: contiguous (each starts where the previous one's pages end).
previous_end=""
while read -r address size; do
    start=$((address)) end=$((address + size))
    [ -z "$previous_end" ] && [ "$start" -ne $((0x100000)) ] && fail "first load segment at $(printf %#x "$start")"
    if [ -n "$previous_end" ] && [ "$start" -ne $(( (previous_end + 4095) / 4096 * 4096 )) ]; then
        fail "load segments not contiguous at $(printf %#x "$start")"
    fi
    previous_end=$end
done < <(readelf -lW "$image" | awk '$1 == "LOAD" { print $4, $6 }')
# The image's end (loaded segments and BSS) stays within the bound the host
# tests size the smallest guests' heaps by (kernel::memory::PVH_IMAGE_END_BOUND).
source=$(dirname "$0")/../kernel/src/memory/mod.rs
bound=$(sed -n 's/^pub const PVH_IMAGE_END_BOUND: u64 = \(0x[0-9a-f_]*\);$/\1/p' "$source" | tr -d _)
[ -n "$bound" ] || fail "PVH_IMAGE_END_BOUND not found in kernel/src/memory/mod.rs"
end=$((16#$(nm "$image" | awk '$3 == "__kernel_end" { print $1 }')))
[ "$end" -le $((bound)) ] || fail "the image ends at $(printf %#x "$end"), beyond PVH_IMAGE_END_BOUND ($bound): a 4 MB guest's heap shrinks; raise the bound only with the tests that size small guests"
echo "check-image: $image: PVH note -> $(printf %#x "$entry") (pvh_start32), load segments contiguous from 1 MiB, image ends at $(printf %#x "$end") (bound $bound)"
