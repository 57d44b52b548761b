# The HTTP/1.1 echo appliance, as curl, nc and wrk see it from dom0.

failed_before=$FAILED
url=http://$GUEST_IP

curl -sS -m 10 -o /tmp/get.out -D /tmp/get.head "$url/path?query=1" -H 'X-Test: yes'
check "GET: 200 with its own head back as text/plain" \
    awk 'NR == 1 { ok = /^HTTP\/1\.1 200 / } /^Content-Type: text\/plain/ { text = 1 } END { exit !(ok && text) }' \
        /tmp/get.head
check "GET: the body is the request head" grep -q '^GET /path?query=1 HTTP/1.1' /tmp/get.out
check "GET: request headers echoed" grep -q '^X-Test: yes' /tmp/get.out

post_check() {
    local size=$1 sent received
    head -c "$size" /dev/urandom >/tmp/post.bin
    curl -sS -m 120 --data-binary @/tmp/post.bin -H 'Content-Type: application/x-xenecho' \
        -D /tmp/post.head -o /tmp/post.back "$url/upload" || return 1
    sent=$(sha256sum </tmp/post.bin | cut -d' ' -f1)
    received=$(sha256sum </tmp/post.back | cut -d' ' -f1)
    grep -q 'Content-Type: application/x-xenecho' /tmp/post.head || { echo "  wrong Content-Type"; return 1; }
    [ "$sent" = "$received" ] || { echo "  $size bytes: sent $sent, received $received"; return 1; }
}
for size in 0 1 1460 65536 1048576 16777216; do
    check "POST of $size random bytes echoed identically (sha256)" post_check "$size"
done

head -c 300000 /dev/urandom >/tmp/chunked.bin
curl -sS -m 60 -H 'Transfer-Encoding: chunked' --data-binary @/tmp/chunked.bin -o /tmp/chunked.back "$url/chunked"
check "chunked upload echoed identically" cmp -s /tmp/chunked.bin /tmp/chunked.back

printf 'GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' \
    | timeout 10 nc -w 5 "$GUEST_IP" 80 >/tmp/pipelined.out
check "pipelined requests answered in order" \
    awk '/^GET \/first/ { first = NR } /^GET \/second/ { second = NR } END { exit !(first && second > first) }' \
        /tmp/pipelined.out
check "pipelined: two responses" test "$(grep -c '^HTTP/1.1 200 OK' /tmp/pipelined.out)" -eq 2

curl -sS -m 10 -v "$url/one" "$url/two" -o /dev/null -o /dev/null 2>/tmp/keepalive.err
check "keep-alive: curl reused the connection" grep -qi 're-using existing connection\|reusing existing connection' \
    /tmp/keepalive.err
# Raw, not curl -I: curl reads no body after a HEAD, so it would not see one sent by mistake.
printf 'HEAD /head HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' | timeout 10 nc -w 3 "$GUEST_IP" 80 >/tmp/head.out
check "HEAD: 200, headers only" \
    awk 'NR == 1 { ok = /^HTTP\/1\.1 200 / } body { extra = 1 } /^\r?$/ { body = 1 } END { exit !(ok && body && !extra) }' \
        /tmp/head.out

status_of() { curl -sS -m 10 -o /dev/null -w '%{http_code}' "$@"; }
bad=$(printf 'BROKEN\r\n\r\n' | timeout 10 nc -w 3 "$GUEST_IP" 80 | head -1)
check "malformed request: 400 ($bad)" test "${bad%%$'\r'}" = "HTTP/1.1 400 Bad Request"
big_header=$(head -c 9000 /dev/zero | tr '\0' 'a')
check "oversized header section: 431" test "$(status_of -H "X-Big: $big_header" "$url/")" = 431
check "still serving after errors" test "$(status_of "$url/after")" = 200

wrk_check() {
    local connections=$1 seconds=$2
    wrk -t2 -c"$connections" -d"$seconds"s "$url/" >/tmp/wrk.out 2>&1
    sed 's/^/  /' /tmp/wrk.out
    grep -q 'Requests/sec' /tmp/wrk.out || return 1
    ! grep -q 'Socket errors' /tmp/wrk.out || return 1
    ! grep -q 'Non-2xx' /tmp/wrk.out
}
check "wrk -t2 -c64 -d20s: no socket errors, no non-2xx" wrk_check 64 20
check "wrk -t2 -c256 -d10s: no socket errors, no non-2xx" wrk_check 256 10
check "still serving after the load" test "$(status_of "$url/after-load")" = 200
check "the domain is still running (domid $GUEST_DOMID)" still_running "$GUEST_NAME" "$GUEST_DOMID"

curl -sS -m 10 "$url:19100/metrics" >/tmp/metrics.out
check "metrics: Prometheus text on port 19100" grep -q '^# TYPE xenecho_http_requests_total counter' /tmp/metrics.out
grep -E '^xenecho_(build_info|start_time|http_requests|http_responses_total\{code="200"\}|hypercalls|netfront_notifications|grants_total|dma_syncs|link_up|ipv4_address_bound|draining)' \
    /tmp/metrics.out | sed 's/^/  /'
check "metrics: a real scrape is valid exposition text" check_exposition /tmp/metrics.out
check "metrics: build info names the architecture" grep -qE "^xenecho_build_info\{version=\"[^\"]+\",revision=\"[^\"]+\",arch=\"$(uname -m | sed 's/arm64/aarch64/')\"\} 1$" /tmp/metrics.out
check "metrics: link up and address bound" grep -qx 'xenecho_link_up 1' /tmp/metrics.out
check "metrics: the request durations counted" \
    awk '$1 == "xenecho_http_request_duration_seconds_count" { exit !($2 > 0) } END { if (NR == 0) exit 1 }' /tmp/metrics.out
start_time=$(awk '$1 == "xenecho_start_time_seconds" { print int($2) }' /tmp/metrics.out)
check "metrics: start time within a day of dom0's clock ($start_time)" \
    test "${start_time:-0}" -gt $(($(date +%s) - 86400)) -a "${start_time:-0}" -le "$(date +%s)"
check "metrics: /metricsfoo is 404" test "$(status_of "$url:19100/metricsfoo")" = 404
check "metrics: /metrics?x=1 is 200" test "$(status_of "$url:19100/metrics?x=1")" = 200
check "health: /healthz is 200 ok" test "$(curl -sS -m 10 "$url/healthz")" = ok
check "health: /readyz is 200 ok" test "$(curl -sS -m 10 -w '%{http_code}' "$url/readyz" | tr '\n' ' ')" = "ok 200"
check "health: /healthzz is echoed" grep -q '^GET /healthzz HTTP/1.1' <(curl -sS -m 10 "$url/healthzz")

# Limits on a second guest: a body maximum (413) and a pool of 2 connections (503 beyond).
limits=xenecho-limits
xl create -q xl.cfg "name=\"$limits\"" 'extra="max-body=1000 connections=2"' >/dev/null
limits_ip=$(guest_address "$limits" 60)
check "limits guest has an address ($limits_ip)" test -n "$limits_ip"
[ -n "$limits_ip" ] || { xl list; show "/var/log/xen/console/guest-$limits.log" 30; }
head -c 5000 /dev/zero >/tmp/big.bin
check "body over max-body: 413" test "$(status_of --data-binary @/tmp/big.bin "http://$limits_ip/")" = 413
(sleep 8 | nc "$limits_ip" 80 >/dev/null) & (sleep 8 | nc "$limits_ip" 80 >/dev/null) &
sleep 2
check "pool full: 503 Service Unavailable" test "$(status_of "http://$limits_ip/")" = 503
wait
check "pool free again: 200" test "$(status_of "http://$limits_ip/")" = 200
xl destroy "$limits" 2>/dev/null
[ "$FAILED" -eq "$failed_before" ] || show "$boot_log" 20
