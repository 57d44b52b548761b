#!/bin/bash
# A GET, as curl sends it: the appliance answers with the request's own head, as text/plain.
#
#   make run DOM0_SCRIPT=examples/curl-get.sh      (in `make shell`: bash examples/curl-get.sh)
#
# Runs in dom0 with GUEST_IP, the appliance's address, set. Exits non-zero unless the answer is
# the request's head: its request line and the header field this sent.
set -euo pipefail
url="http://${GUEST_IP:?GUEST_IP: the address of the appliance}/hello?from=example"
answer=$(curl -sS --fail -m 30 -H 'X-Example: get' "$url")
printf '%s\n' "$answer" | tr -d '\r'
if ! grep -q '^GET /hello?from=example HTTP/1.1' <<< "$answer" || ! grep -q '^X-Example: get' <<< "$answer"; then
    echo "curl-get: FAILED: the answer is not the head of the request" >&2
    exit 1
fi
echo "curl-get: the appliance echoed the request's head"
