# Several vifs: a management network. Dom0 makes a second bridge, xenbr1 (10.89.0.1/24, no DHCP
# server), for this check only. A guest started with one vif on xenbr0 and
# "metrics-vif=1 vif1.ip=10.89.0.2/24" serves HTTP on its main interface and no metrics there;
# `xl network-attach` gives it vif 1 on xenbr1 at run time, which gets an interface of its own:
# its address is published at attr/vif/1/ipv4/0, it answers ping, and its metrics listener
# answers /metrics, /healthz and /readyz while port 80 there is closed. Detached again, the
# metrics go and HTTP on the main interface goes on. A second guest has both vifs from the start.
# The check's guests are destroyed at the end.

vname=xenecho-vifs
vmac0=00:16:3e:5a:02:01
vmac1=00:16:3e:5a:02:02
vmgmt=10.89.0.2
vmetrics_port=${GUEST_METRICS_PORT:-19100}
failed_before=$FAILED

ip link add xenbr1 type bridge 2>&1 | sed 's/^/  ip: /'
ip address add 10.89.0.1/24 dev xenbr1
ip link set xenbr1 up
check "dom0: a second bridge, xenbr1 (10.89.0.1/24)" sh -c 'ip -4 address show dev xenbr1 | grep -q 10.89.0.1/24'

xl create -q xl.cfg "name=\"$vname\"" "vif=['bridge=xenbr0,mac=$vmac0']" \
    "extra=\"metrics-vif=1 vif1.ip=$vmgmt/24\"" >/dev/null
vlog=$(console_log "$vname")
vip=$(guest_address "$vname" 60)
check "vifs guest: boots with one vif and takes its lease on xenbr0 ($vip)" test -n "$vip"
vdomid=$(xl domid "$vname" 2>/dev/null)
check "vifs guest: logs its settings with metrics-vif=1 and vif1.ip" \
    grep -qE "settings: .* vif1\.ip=$vmgmt/24" "$vlog"
check "vifs guest: says the metrics are on vif 1 alone" \
    grep -qF "serving metrics, /healthz and /readyz on vif 1 alone (metrics-vif=1)" "$vlog"

# http_status URL: the status code of a GET (000: no answer at all).
http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1"; }
# status_within URL STATUS SECONDS: until a GET of URL gets STATUS.
status_within() {
    local _ status
    for _ in $(seq "$3"); do
        status=$(http_status "$1")
        [ "$status" = "$2" ] && return 0
        sleep 1
    done
    echo "  $1: $status, not $2, after $3 s"
    return 1
}
check "vifs guest: HTTP on the main interface answers 200" test "$(http_status "http://$vip/hello")" = 200
check "vifs guest: no metrics on the main interface (nothing listens)" \
    test "$(http_status "http://$vip:$vmetrics_port/metrics")" = 000

xl network-attach "$vname" bridge=xenbr1 "mac=$vmac1"
# vif_key SECONDS: until attr/vif/1/ipv4/0 holds the management address.
vif_key() {
    local _
    for _ in $(seq "$1"); do
        [ "$(xenstore-read "/local/domain/$vdomid/attr/vif/1/ipv4/0" 2>/dev/null)" = "$vmgmt" ] && return 0
        sleep 1
    done
    echo "  attr/vif/1/ipv4/0: '$(xenstore-read "/local/domain/$vdomid/attr/vif/1/ipv4/0" 2>&1)'"
    return 1
}
check "vifs guest: vif 1 attached at run time publishes $vmgmt at attr/vif/1/ipv4/0" vif_key 30
check "vifs guest: data/ipv4-address is still the main interface's" \
    test "$(xenstore-read "/local/domain/$vdomid/data/ipv4-address" 2>/dev/null)" = "$vip"
check "vifs guest: answers ping on the management address" sh -c "ping -c 3 -W 2 $vmgmt >/dev/null"
vmetrics=$(curl -s --max-time 5 "http://$vmgmt:$vmetrics_port/metrics")
check "vifs guest: /metrics on the management interface" grep -q '^xenecho_http_requests_total' <<<"$vmetrics"
check "vifs guest: the metrics count two interfaces" grep -qE '^xenecho_interfaces 2$' <<<"$vmetrics"
check "vifs guest: vif 1's first handshake is no reconnect" \
    grep -qE '^xenecho_netfront_reconnects_total 0$' <<<"$vmetrics"
check "vifs guest: /healthz on the management interface says ok" \
    test "$(curl -s --max-time 5 "http://$vmgmt:$vmetrics_port/healthz")" = ok
check "vifs guest: /readyz on the management interface says ok" \
    test "$(curl -s --max-time 5 "http://$vmgmt:$vmetrics_port/readyz")" = ok
check "vifs guest: no HTTP on the management interface (nothing listens on port 80)" \
    test "$(http_status "http://$vmgmt/hello")" = 000
check "vifs guest: HTTP on the main interface still answers 200" test "$(http_status "http://$vip/again")" = 200

xl network-detach "$vname" 1
check "vifs guest: vif 1 detached: the management address is gone" \
    status_within "http://$vmgmt:$vmetrics_port/healthz" 000 20
check "vifs guest: HTTP on the main interface answers after the detach" \
    test "$(http_status "http://$vip/after")" = 200
check "vifs guest: the main interface kept vif 0 (no new lease asked)" \
    test "$(grep -c 'network: DHCP address' "$vlog")" -eq 1

if [ "$FAILED" != "$failed_before" ]; then
    echo "  --- $vname console (last 40 lines) ---"
    tail -n 40 "$vlog" | sed 's/^/  /'
fi
xl destroy "$vname" 2>/dev/null
wait_gone "$vname" 30 >/dev/null 2>&1

# Both vifs from the start, as xl.cfg would list them.
failed_before=$FAILED
vname2=xenecho-vifs2
vmgmt2=10.89.0.3
xl create -q xl.cfg "name=\"$vname2\"" "vif=['bridge=xenbr0,mac=00:16:3e:5a:02:03', 'bridge=xenbr1,mac=00:16:3e:5a:02:04']" \
    "extra=\"metrics-vif=1 vif1.ip=$vmgmt2/24\"" >/dev/null
vip2=$(guest_address "$vname2" 60)
check "two-vif guest: boots and takes its lease on xenbr0 ($vip2)" test -n "$vip2"
check "two-vif guest: /healthz on vif 1's static address" status_within "http://$vmgmt2:$vmetrics_port/healthz" 200 20
check "two-vif guest: HTTP on the main interface answers 200" test "$(http_status "http://$vip2/hello")" = 200
check "two-vif guest: no metrics on the main interface" test "$(http_status "http://$vip2:$vmetrics_port/metrics")" = 000
if [ "$FAILED" != "$failed_before" ]; then
    echo "  --- $vname2 console (last 40 lines) ---"
    tail -n 40 "$(console_log "$vname2")" | sed 's/^/  /'
fi
xl destroy "$vname2" 2>/dev/null
wait_gone "$vname2" 30 >/dev/null 2>&1
ip link set xenbr1 down
ip link delete xenbr1
