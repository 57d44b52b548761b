#!/bin/bash
# POSTs, as curl sends them: the appliance answers with the body, byte for byte, under the
# request's own Content-Type; first a line of JSON, then 1 MiB of random bytes.
#
#   make run DOM0_SCRIPT=examples/curl-post.sh     (in `make shell`: bash examples/curl-post.sh)
#
# Runs in dom0 with GUEST_IP, the appliance's address, set. Exits non-zero unless both bodies
# come back unchanged.
set -euo pipefail
url="http://${GUEST_IP:?GUEST_IP: the address of the appliance}/upload"
body='{"hello": "xenecho"}'
answer=$(curl -sS --fail -m 30 -H 'Content-Type: application/json' --data-binary "$body" "$url")
echo "sent $body, received $answer"
[ "$answer" = "$body" ] || { echo "curl-post: FAILED: the JSON body came back changed" >&2; exit 1; }

file=$(mktemp)
trap 'rm -f "$file" "$file.back"' EXIT
head -c 1048576 /dev/urandom > "$file"
curl -sS --fail -m 120 -H 'Content-Type: application/octet-stream' --data-binary @"$file" -o "$file.back" "$url"
echo "sent 1 MiB: sha256 $(sha256sum < "$file" | cut -c1-16)..., received: sha256 $(sha256sum < "$file.back" | cut -c1-16)..."
cmp -s "$file" "$file.back" || { echo "curl-post: FAILED: the 1 MiB body came back changed" >&2; exit 1; }
echo "curl-post: both bodies came back byte for byte"
