#!/usr/bin/env bash
# The end-to-end checks that run on this machine, outside the test host: the appliance through the
# loopback ports QEMU forwards (testbed/run.sh --http-port, --metrics-port), as Python's http.client
# (http_client.py) and a real headless Chromium (browser.sh) see it. Each prints "PASS: what" or
# "FAIL: what (why)"; the exit status is non-zero if any failed.
#
# `make test` runs them while the e2e suite in dom0 waits (tests/e2e/check-17-host.sh asks
# testbed/run.sh, which runs this as its --host-script and reports the counts back to the suite).
# They also run by hand against `make shell` or `make run` in another terminal:
#   tests/e2e-host/run.sh       (XENECHO_HTTP_URL, XENECHO_METRICS_URL: the URLs those print;
#                                defaults http://127.0.0.1:8080/ and http://127.0.0.1:8081/metrics)
# The screenshot and the page's DOM go to XENECHO_OUTPUT_DIR (default build/testbed).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export XENECHO_HTTP_URL=${XENECHO_HTTP_URL:-http://127.0.0.1:8080/}
export XENECHO_METRICS_URL=${XENECHO_METRICS_URL:-http://127.0.0.1:8081/metrics}
export XENECHO_OUTPUT_DIR=${XENECHO_OUTPUT_DIR:-$here/../../build/testbed}
mkdir -p "$XENECHO_OUTPUT_DIR"
status=0
python3 "$here/http_client.py" || status=1
bash "$here/browser.sh" || status=1
exit "$status"
