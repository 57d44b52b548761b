# Netfront on the real netback: DHCP, ping, TCP echo, negotiated features,
# and xl network-detach + network-attach without a restart.

failed_before=$FAILED
# The address of the guest's last "DHCP address" line.
dhcp_address() { sed -n 's/.*network: DHCP address \([0-9.]*\)\/.*/\1/p' "$boot_log" | tail -n 1; }
# published ADDRESS [KEY]: within 10 s, the guest's xenstore KEY (data/ipv4-address unless given:
# the appliance's own key; attr/vif/N/ipv4/0 is Xen's for vif N) is ADDRESS (not empty).
published() {
    local key=/local/domain/$GUEST_DOMID/${2:-data/ipv4-address} _
    for _ in $(seq 10); do
        [ -n "$1" ] && [ "$(xenstore-read "$key" 2>/dev/null)" = "$1" ] && return 0
        sleep 1
    done
    echo "  xenstore has '$(xenstore-read "$key" 2>/dev/null)' at $key, the guest logged '$1'"
    return 1
}
check "DHCP: the guest logged an address from dom0's udhcpd" \
    grep -qE 'network: DHCP address 10\.88\.0\.[0-9]+/24 \(router Some\(10\.88\.0\.1\)\)' "$boot_log"
logged_ip=$(dhcp_address)
check "DHCP: the guest published the address it logged ($logged_ip) in xenstore" published "$logged_ip"
check "DHCP: dom0 found that address as GUEST_IP ($GUEST_IP)" test "$GUEST_IP" = "$logged_ip"
check "DHCP: the guest published GUEST_IP where toolstacks look (attr/vif/0/ipv4/0)" \
    published "$GUEST_IP" attr/vif/0/ipv4/0

ping -c 20 -i 0.2 -W 2 "$GUEST_IP" >/tmp/ping.out 2>&1
tail -n 2 /tmp/ping.out | sed 's/^/  /'
check "ping -c 20: 0% packet loss" grep -q ' 0% packet loss' /tmp/ping.out

# Echo requests larger than the MTU: dom0 sends them in fragments, the guest
# reassembles them and sends its reply in fragments too (at most 16 KiB).
fragment_metric() { curl -s -m 5 "http://$GUEST_IP:19100/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }
reassembled_before=$(fragment_metric xenecho_ipv4_datagrams_reassembled_total)
for size in 4000 8000; do
    ping -c 3 -s "$size" -W 2 "$GUEST_IP" >/tmp/ping-frag.out 2>&1
    tail -n 2 /tmp/ping-frag.out | sed 's/^/  /'
    check "ping -c 3 -s $size (fragmented both ways): 0% packet loss" grep -q ' 0% packet loss' /tmp/ping-frag.out
done
# Two pingers at once: their datagrams complete close together, and the
# guest has one fragmentation buffer; both are answered in full.
ping -c 10 -i 0.2 -s 8000 -W 2 "$GUEST_IP" >/tmp/ping-frag-a.out 2>&1 &
pinger=$!
ping -c 10 -i 0.2 -s 6000 -W 2 "$GUEST_IP" >/tmp/ping-frag-b.out 2>&1
wait "$pinger"
for out in /tmp/ping-frag-a.out /tmp/ping-frag-b.out; do
    tail -n 2 "$out" | sed 's/^/  /'
    check "two fragmented pingers at once: 0% packet loss ($(basename "$out"))" grep -q ' 0% packet loss' "$out"
done
reassembled_after=$(fragment_metric xenecho_ipv4_datagrams_reassembled_total)
check "metrics: 26 more datagrams reassembled ($reassembled_before -> $reassembled_after)" \
    test "$((reassembled_after - reassembled_before))" -ge 26
# Beyond the reassembly bound (16,364 bytes of payload): no answer, and the
# fragment past the bound is counted.
oversized_before=$(fragment_metric xenecho_ipv4_fragments_oversized_total)
ping -c 1 -s 20000 -W 2 "$GUEST_IP" >/tmp/ping-big.out 2>&1
check "ping -s 20000 (beyond the bound) is not answered" grep -q ' 100% packet loss' /tmp/ping-big.out
oversized_after=$(fragment_metric xenecho_ipv4_fragments_oversized_total)
check "metrics: fragments beyond the bound counted ($oversized_before -> $oversized_after)" \
    test "$oversized_after" -gt "$oversized_before"
check "the guest still answers a plain ping after" ping -c 1 -W 2 "$GUEST_IP"

echo_check() {
    local expected reply
    expected="hello xenecho $(date +%s)"
    reply=$(printf '%s\n' "$expected" | timeout 15 nc -w 3 "$GUEST_IP" 7)
    [ "$reply" = "$expected" ] || { echo "  echo sent '$expected', got '$reply'"; return 1; }
}
check "TCP echo on port 7 answers byte for byte" echo_check
head -c 200000 /dev/urandom >/tmp/echo-in.bin
timeout 60 nc -w 5 "$GUEST_IP" 7 </tmp/echo-in.bin >/tmp/echo-out.bin
check "TCP echo of 200 kB of random bytes is identical" cmp -s /tmp/echo-in.bin /tmp/echo-out.bin
ls -l /tmp/echo-out.bin | awk '{ print "  echoed " $5 " bytes" }'

frontend=/local/domain/$GUEST_DOMID/device/vif/0
xenstore-ls -f "$frontend" | grep -E 'request-rx-copy|feature-|ring-ref|event-channel' | sed 's/^/  /'
for key in request-rx-copy feature-rx-notify feature-sg feature-gso-tcpv4 feature-gso-tcpv6 \
    feature-ipv6-csum-offload; do
    check "xenstore: $key = 1" test "$(xenstore-read "$frontend/$key" 2>&1)" = 1
done
# Large segments need checksum offload (Linux's netback turns segmentation offload on only for a
# frontend that takes partial checksums: TSO with IPv4's, TSO6 with IPv6's): the guest completes
# blank checksums itself.
check "xenstore: feature-no-csum-offload = 0" test "$(xenstore-read "$frontend/feature-no-csum-offload" 2>&1)" = 0
check "xenstore: frontend and backend Connected (4)" \
    test "$(xenstore-read "$frontend/state")$(xenstore-read "$(xenstore-read "$frontend/backend")/state")" = 44

# Detach and attach again: the guest follows the backend down, connects to the new one and asks
# for a lease for the new vif's MAC address.
leases=$(grep -cF "network: DHCP address" "$boot_log")
check "xl network-detach $GUEST_NAME 0" xl network-detach "$GUEST_NAME" 0
check "network-detach: the guest saw the backend close" wait_for_text "$boot_log" "was removed" 30
check "xl network-attach $GUEST_NAME bridge=xenbr0" xl network-attach "$GUEST_NAME" bridge=xenbr0
check "network-attach: the guest connected again" \
    wait_for_text "$boot_log" "the interface's address is now" 30
check "network-attach: the guest got a new DHCP lease" \
    wait_for_text "$boot_log" "network: DHCP address" 30 $((leases + 1))
new_ip=$(dhcp_address)
check "network-attach: the guest published its new address ($new_ip) in xenstore" published "$new_ip"
new_vif=$(xenstore-list "/local/domain/$GUEST_DOMID/device/vif" 2>/dev/null | sort -n | head -n 1)
check "network-attach: and under the new vif's number (attr/vif/$new_vif/ipv4/0)" \
    published "$new_ip" "attr/vif/$new_vif/ipv4/0"
ping -c 5 -i 0.3 -W 2 "$new_ip" >/tmp/ping2.out 2>&1
check "network-attach: ping the guest again (0% loss at $new_ip)" grep -q ' 0% packet loss' /tmp/ping2.out
[ "$FAILED" -eq "$failed_before" ] || { show "$boot_log" 30; cat /tmp/ping.out /tmp/ping2.out 2>/dev/null | tail -5; }

# A guest short of memory: netfront's pools do not fit in 4 MB, so it shrinks them (and says so)
# instead of staying off the network.
failed_before=$FAILED
small=xenecho-small
xl create -q xl.cfg "name=\"$small\"" memory=4 >/dev/null
small_ip=$(guest_address "$small" 60)
check "4 MB guest: got an address by DHCP ($small_ip)" test -n "$small_ip"
check "4 MB guest: logged its smaller buffer pools" grep -q 'netfront: short of memory' "$(console_log "$small")"
check "4 MB guest: answers HTTP" test "$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "http://$small_ip/")" = 200
[ "$FAILED" -eq "$failed_before" ] || show "$(console_log "$small")" 30
xl destroy "$small" 2>/dev/null
