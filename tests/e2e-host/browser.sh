#!/usr/bin/env bash
# The appliance's HTML page in a real headless Chromium, from this machine, through the forwarded
# loopback port (XENECHO_HTTP_URL): Chromium asks for the page as a browser does (its Accept prefers
# text/html), with a User-Agent that carries markup (a <b> element with a marker, quotes, a
# character reference). The DOM Chromium builds (--dump-dom) must show the page's title and header
# table, and the User-Agent as text: the marker's <b> escaped, no such element in the DOM. A
# screenshot (--screenshot) is kept beside the DOM in XENECHO_OUTPUT_DIR (default build/testbed):
# browser-page.png and browser-page.html. Prints "PASS: what" or "FAIL: what (why)"; exits 1 if
# any failed. Run by tests/e2e-host/run.sh.
#
# The browser: chromium_command in testbed/lib.sh (CHROMIUM=path overrides); testbed/setup.sh
# --host-checks installs Debian's chromium when there is none. Chromium reaches nothing but
# 127.0.0.1: every other address goes to a proxy that does not exist, and its background
# services are off.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed/lib.sh
source "$here/../../testbed/lib.sh"
url=${XENECHO_HTTP_URL:-http://127.0.0.1:8080/}
url="${url%/}/browser/page?from=chromium"
out=${XENECHO_OUTPUT_DIR:-$here/../../build/testbed}
mkdir -p "$out"
dom=$out/browser-page.html screenshot=$out/browser-page.png errors=$out/browser-page.stderr
failed=0
pass() { echo "PASS: chromium: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: chromium: $*"; }

browser=$(chromium_command) || { fail "no headless Chromium (testbed/setup.sh --host-checks installs one)"; exit 1; }
profile=$(mktemp -d "${TMPDIR:-/tmp}/xenecho-chromium.XXXXXX")
trap 'rm -rf "$profile"' EXIT
marker=xenecho-marker-$RANDOM$RANDOM
agent="Mozilla/5.0 (xenecho e2e) <b id=\"injected\">$marker</b> \"double\" 'single' &amp; end"
# shellcheck disable=SC2054  # --window-size takes a comma
options=(--headless --disable-gpu --no-first-run --no-default-browser-check --disable-extensions
    --disable-background-networking --disable-component-update --disable-sync --disable-default-apps
    --proxy-server=127.0.0.1:9 --user-data-dir="$profile" --user-agent="$agent" --window-size=1100,1400)
# As root (a container, CI), Chromium's sandbox cannot start.
[ "$(id -u)" != 0 ] || options+=(--no-sandbox)

timeout 90 "$browser" "${options[@]}" --dump-dom "$url" > "$dom" 2> "$errors"
status=$?
if [ "$status" = 0 ] && grep -q '<title>xenecho: GET /browser/page?from=chromium</title>' "$dom"; then
    pass "loaded the page (its title names the request): $dom"
else
    fail "no page from $url (status $status; $(tail -n 3 "$errors" | tr '\n' ' '))"
fi
# Chromium serialises text with &lt; &gt; &amp; for < > &: the User-Agent's markup is text.
escaped="&lt;b id=\"injected\"&gt;$marker&lt;/b&gt; \"double\" 'single' &amp;amp; end"
if grep -qF -- "$escaped" "$dom"; then
    pass "the User-Agent's <b>, quotes and reference are shown as text"
else
    fail "the User-Agent is not in the page as text ($(grep -o 'User-Agent</td><td>[^<]*' "$dom" | head -c 300))"
fi
if grep -qF -- "<b id=\"injected\">" "$dom"; then
    fail "the User-Agent's <b> became an element of the page"
else
    pass "no element made from the request's bytes"
fi
if grep -qE '<tr><td>1</td><td>Host</td><td>127\.0\.0\.1:[0-9]+</td></tr>' "$dom" \
        && grep -qE '<tr><td>[0-9]+</td><td>User-Agent</td>' "$dom"; then
    pass "the header fields in order, Host first"
else
    fail "the header table is not as sent"
fi

timeout 90 "$browser" "${options[@]}" --screenshot="$screenshot" "$url" >> "$errors" 2>&1
if [ "$(head -c 8 "$screenshot" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
        && [ "$(stat -c %s "$screenshot")" -gt 5000 ]; then
    pass "screenshot of the page: $screenshot ($(stat -c %s "$screenshot") bytes)"
else
    fail "no screenshot in $screenshot ($(tail -n 3 "$errors" | tr '\n' ' '))"
fi
[ "$failed" = 0 ]
