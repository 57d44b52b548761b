# IPv6 beside IPv4: dom0 gives xenbr0 fd00:88::1/64 and sends router advertisements for
# fd00:88::/64 (radvd, testbed/dom0/etc/radvd.conf); a guest started with a static ip6= as well
# takes its link-local address (fe80::/64 and the MAC's EUI-64) and a SLAAC address, publishes
# them at attr/vif/<dev>/ipv6/<n>, answers ping6 on all three, HTTP over IPv6 (a GET, a 1 MiB
# POST echoed byte for byte) and its metrics over IPv6. The suite's own guest is gone by now
# (check-20 shut it down): this check starts one of its own and destroys it at the end.

v6name=xenecho-ipv6
v6static=fd00:88::99
v6prefix=fd00:88:
v6metrics_port=${GUEST_METRICS_PORT:-19100}
failed_before=$FAILED

forwarding_before=$(cat /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null || echo 0)
ip -6 address add fd00:88::1/64 dev xenbr0 nodad 2>&1 | sed 's/^/  ip: /'
bridge_has_address() { ip -6 address show dev xenbr0 | grep -q 'inet6 fd00:88::1/64'; }
check "dom0: xenbr0 has fd00:88::1/64" bridge_has_address
# radvd expects a router that forwards IPv6: without forwarding it warns and may advertise a
# router lifetime of 0 (no default router), which the metrics check below would see.
echo 1 >/proc/sys/net/ipv6/conf/all/forwarding
rm -f /tmp/radvd.pid /tmp/radvd.log
radvd -C /etc/radvd.conf -p /tmp/radvd.pid -m logfile -l /tmp/radvd.log
radvd_running() {
    local _
    for _ in $(seq 5); do
        [ -s /tmp/radvd.pid ] && kill -0 "$(cat /tmp/radvd.pid)" 2>/dev/null && return 0
        sleep 1
    done
    echo "  radvd is not running"
    return 1
}
check "dom0: radvd runs (router advertisements on xenbr0)" radvd_running

xl create -q xl.cfg "name=\"$v6name\"" "extra=\"ip6=$v6static/64\"" >/dev/null
v6log=$(console_log "$v6name")
v6ip=$(guest_address "$v6name" 60)
check "ipv6 guest: boots and takes its IPv4 lease beside IPv6 ($v6ip)" test -n "$v6ip"
v6domid=$(xl domid "$v6name" 2>/dev/null)
# The vif's device number, where its addresses are published.
v6vif=$(xenstore-list "/local/domain/$v6domid/device/vif" 2>/dev/null | head -n 1)
v6key() { echo "/local/domain/$v6domid/attr/vif/${v6vif:-0}/ipv6/$1"; }

# ipv6_keys SECONDS: until the guest has published three IPv6 addresses (the link-local, ip6=,
# SLAAC's); sets v6ll, v6published and v6slaac.
ipv6_keys() {
    local _
    for _ in $(seq "$1"); do
        v6ll=$(xenstore-read "$(v6key 0)" 2>/dev/null)
        v6published=$(xenstore-read "$(v6key 1)" 2>/dev/null)
        v6slaac=$(xenstore-read "$(v6key 2)" 2>/dev/null)
        [ -n "$v6slaac" ] && return 0
        sleep 1
    done
    echo "  attr/vif/${v6vif:-0}/ipv6: 0='$v6ll' 1='$v6published' 2='$v6slaac' after $1 s"
    return 1
}
v6ll='' v6published='' v6slaac=''
check "ipv6 guest: three IPv6 addresses published within 40 s (a router advertisement came)" ipv6_keys 40
check "ipv6 guest: attr/vif/N/ipv6/0 is link-local ($v6ll)" test "${v6ll#fe80::}" != "$v6ll"
check "ipv6 guest: attr/vif/N/ipv6/1 is ip6='s address ($v6published)" test "$v6published" = "$v6static"
check "ipv6 guest: attr/vif/N/ipv6/2 is in fd00:88::/64 ($v6slaac)" test "${v6slaac#"$v6prefix"}" != "$v6slaac"
# The SLAAC address and the link-local one end in the same EUI-64 interface identifier.
same_interface_id() {
    [ -n "$v6ll" ] && [ "${v6slaac#fd00:88::}" = "${v6ll#fe80::}" ] && return 0
    echo "  link-local '$v6ll', SLAAC '$v6slaac'"
    return 1
}
check "ipv6 guest: the SLAAC address and the link-local one share the interface identifier" same_interface_id
check "ipv6 guest: logged the SLAAC address" grep -qF "network: IPv6 address $v6slaac/64" "$v6log"
check "ipv6 guest: logged dom0 as its IPv6 default router" grep -qF "network: IPv6 default router fe80::" "$v6log"

# ping6 ADDRESS: 3 echo replies of 3 (busybox ping; the interface named for a link-local one).
ping6_ok() {
    local out=/tmp/ping6.out
    if ! ping -6 -c 3 -w 15 "$@" >"$out" 2>&1; then
        sed 's/^/  /' "$out"
        ip -6 neigh show dev xenbr0 | sed 's/^/  neighbour: /'
        return 1
    fi
    tail -n 2 "$out" | sed 's/^/  /'
    grep -q ' 0% packet loss' "$out"
}
check "ping6 the link-local address through xenbr0 ($v6ll%xenbr0)" ping6_ok -I xenbr0 "$v6ll%xenbr0"
check "ping6 the SLAAC address ($v6slaac)" ping6_ok "$v6slaac"
check "ping6 the static address ($v6static)" ping6_ok "$v6static"

# HTTP over IPv6: a GET echoes its head, on the SLAAC, static and link-local addresses.
get6() { curl -6 -sS -m 15 -g "$@"; }
get6 "http://[$v6slaac]/over-ipv6" >/tmp/ipv6-get.out 2>&1
check "curl -6 GET to the SLAAC address: the request's head echoed" \
    grep -q '^GET /over-ipv6 HTTP/1.1' /tmp/ipv6-get.out
check "curl -6 GET to the static address: 200" \
    test "$(get6 -o /dev/null -w '%{http_code}' "http://[$v6static]/")" = 200
check "curl -6 GET to the link-local address (zone xenbr0): 200" \
    test "$(get6 -o /dev/null -w '%{http_code}' "http://[$v6ll%25xenbr0]/")" = 200
get6 -D /tmp/ipv6-head.out -o /dev/null "http://[$v6slaac]/?instance" 2>&1
check "curl -6 ?instance: X-Echo-Address names the SLAAC address" \
    grep -qiF "X-Echo-Address: $v6slaac" /tmp/ipv6-head.out
# /readyz over IPv6 too.
check "curl -6 /readyz: ok" test "$(get6 "http://[$v6slaac]/readyz")" = ok

# A 1 MiB POST over IPv6, echoed byte for byte; netback hands the guest large IPv6 segments
# (feature-gso-tcpv6), which the guest counts.
large_segments() {
    get6 "http://[$v6slaac]:$v6metrics_port/metrics" | awk '$1 == "xenecho_rx_large_segments_total" { print $2 }'
}
large_before=$(large_segments)
head -c 1048576 /dev/urandom >/tmp/ipv6-post.bin
curl -6 -sS -m 120 -g --data-binary @/tmp/ipv6-post.bin -H 'Content-Type: application/octet-stream' \
    -o /tmp/ipv6-echo.bin "http://[$v6slaac]/" 2>/tmp/ipv6-post.err
sed 's/^/  curl: /' /tmp/ipv6-post.err
check "curl -6 POST of 1 MiB of random bytes: echoed byte for byte" cmp -s /tmp/ipv6-post.bin /tmp/ipv6-echo.bin
ls -l /tmp/ipv6-echo.bin 2>/dev/null | awk '{ print "  echoed " $5 " bytes" }'
large_after=$(large_segments)
check "curl -6 POST: it came in large IPv6 segments ($large_before, then $large_after)" \
    test "${large_after:-0}" -gt "${large_before:-0}"

# The metrics over IPv6, with IPv6's own series.
get6 "http://[$v6slaac]:$v6metrics_port/metrics" >/tmp/ipv6-metrics.txt 2>&1
check "metrics over IPv6: valid exposition" check_exposition /tmp/ipv6-metrics.txt
metric6() { awk -v name="$1" '$1 == name { print $2 }' /tmp/ipv6-metrics.txt; }
check "metrics over IPv6: xenecho_ipv6_address_bound 1" test "$(metric6 xenecho_ipv6_address_bound)" = 1
check "metrics over IPv6: xenecho_ipv6_addresses 3" test "$(metric6 xenecho_ipv6_addresses)" = 3
check "metrics over IPv6: xenecho_ipv6_default_router 1" test "$(metric6 xenecho_ipv6_default_router)" = 1
check "metrics over IPv6: router advertisements counted" \
    test "$(metric6 xenecho_ipv6_router_advertisements_total)" -ge 1
check "metrics over IPv6: IPv4 still bound" test "$(metric6 xenecho_ipv4_address_bound)" = 1
check "ipv6 guest: IPv4 HTTP still answers ($v6ip)" \
    test "$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "http://$v6ip/")" = 200

[ "$FAILED" -eq "$failed_before" ] || { show "$v6log" 40; show /tmp/radvd.log 20; ip -6 address show dev xenbr0; }

# Leave dom0 as it was: the guest, radvd, the address, forwarding.
xl destroy "$v6name" 2>/dev/null
check "ipv6 guest: destroyed" wait_gone "$v6name" 20
[ -s /tmp/radvd.pid ] && kill "$(cat /tmp/radvd.pid)" 2>/dev/null
ip -6 address del fd00:88::1/64 dev xenbr0 2>/dev/null
echo "$forwarding_before" >/proc/sys/net/ipv6/conf/all/forwarding
