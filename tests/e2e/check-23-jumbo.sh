# Jumbo frames: dom0 makes a bridge with an MTU of 9000, xenbr2 (10.90.0.1/24), for this check
# only, and starts a guest on it twice: with the trusted backend (grants) and bouncing every
# buffer (untrusted-backend). Each time the vif's MTU reaches the guest through xenstore
# (device/vif/0/mtu), the guest logs it, a 9000-byte ping crosses unfragmented both ways (the
# guest counts no fragment, dom0 reassembles none: busybox's ping has no -M do), a 9001-byte one
# is fragmented by dom0, and a 1 MiB POST comes back byte for byte over 9000-byte frames.

jname=xenecho-jumbo
jaddress=10.90.0.2
failed_before=$FAILED

ip link add xenbr2 type bridge 2>&1 | sed 's/^/  ip: /'
ip link set xenbr2 mtu 9000
ip address add 10.90.0.1/24 dev xenbr2
ip link set xenbr2 up
check "dom0: a jumbo bridge, xenbr2 (MTU 9000, 10.90.0.1/24)" sh -c 'ip link show xenbr2 | grep -q "mtu 9000"'
head -c 1048576 /dev/urandom >/tmp/jumbo.bin
# The IPv4 fragments the guest received, from its metrics.
jumbo_fragments() {
    curl -s --max-time 5 "http://$jaddress:19100/metrics" \
        | awk '$1 == "xenecho_ipv4_fragments_received_total" { print $2 }'
}
# The fragments dom0's stack took in for reassembly (ReasmReqds in /proc/net/snmp).
dom0_reassembled() {
    awk '$1 == "Ip:" { if (!names) { for (i = 2; i <= NF; i++) at[$i] = i; names = 1 } else print $at["ReasmReqds"] }' \
        /proc/net/snmp
}

for mode in trusted untrusted; do
    extra="ip=$jaddress/24"
    [ "$mode" = untrusted ] && extra="$extra untrusted-backend"
    xl create -q xl.cfg "name=\"$jname\"" "vif=['bridge=xenbr2,mac=00:16:3e:5a:03:01,mtu=9000']" \
        "extra=\"$extra\"" >/dev/null
    jlog=$(console_log "$jname")
    jip=$(guest_address "$jname" 60)
    check "jumbo guest ($mode): up at $jaddress" test "$jip" = "$jaddress"
    jdomid=$(xl domid "$jname" 2>/dev/null)
    check "jumbo guest ($mode): xenstore gives the vif MTU 9000" \
        test "$(xenstore-read "/local/domain/$jdomid/device/vif/0/mtu" 2>/dev/null)" = 9000
    check "jumbo guest ($mode): dom0's vif has MTU 9000" sh -c "ip link show vif$jdomid.0 | grep -q 'mtu 9000'"
    check "jumbo guest ($mode): the guest connected with MTU 9000" \
        wait_for_text "$jlog" "netfront: device/vif/0 connected (mac 00:16:3e:5a:03:01, mtu 9000" 20
    guest_fragments_before=$(jumbo_fragments)
    dom0_reassembled_before=$(dom0_reassembled)
    check "jumbo guest ($mode): a 9000-byte ping answered" sh -c "ping -s 8972 -c 3 -W 2 $jaddress >/dev/null"
    check "jumbo guest ($mode): ... its requests came whole (the guest counted no fragment)" \
        test "$(jumbo_fragments)" = "$guest_fragments_before"
    check "jumbo guest ($mode): ... and its answers too (dom0 reassembled nothing)" \
        test "$(dom0_reassembled)" = "$dom0_reassembled_before"
    check "jumbo guest ($mode): a 9001-byte ping answered" sh -c "ping -s 8973 -c 1 -W 2 $jaddress >/dev/null"
    check "jumbo guest ($mode): ... its request came in two fragments (beyond the MTU)" \
        test "$(jumbo_fragments)" = "$((guest_fragments_before + 2))"
    code=$(curl -s -m 60 -o /tmp/jumbo.out -w '%{http_code}' --data-binary @/tmp/jumbo.bin "http://$jaddress/")
    check "jumbo guest ($mode): a 1 MiB POST is echoed byte for byte" \
        sh -c "[ '$code' = 200 ] && cmp -s /tmp/jumbo.bin /tmp/jumbo.out"
    if [ "$FAILED" != "$failed_before" ]; then
        echo "  --- $jname ($mode) console (last 30 lines) ---"
        tail -n 30 "$jlog" | sed 's/^/  /'
        failed_before=$FAILED
    fi
    xl destroy "$jname" 2>/dev/null
    wait_gone "$jname" 30 >/dev/null 2>&1
done
rm -f /tmp/jumbo.bin /tmp/jumbo.out
ip link set xenbr2 down
ip link delete xenbr2
