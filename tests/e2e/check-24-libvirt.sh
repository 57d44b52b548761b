# libvirt (x86_64): the appliance under libvirt's Xen (libxl) driver, from the repository's
# xenecho.xml. dom0 starts libvirtd on demand (start-libvirtd), then: virsh define; start --paused
# with `virsh console` attached before the guest's first word, resume; the address the appliance
# publishes in xenstore (virsh domifaddr has no source for a bridged interface under libxl: it is
# shown, and held to that address when it names one) answering HTTP as the domain virsh names;
# virsh shutdown; start; reboot; save + restore; destroy; undefine. Last, `virsh
# domxml-from-native xen-xl xl.cfg` must give xenecho.xml's definition on the fields that matter.
#
# Its own guest: name xenecho-virsh, MAC 00:16:3e:5a:00:22 (so its own DHCP lease and address),
# xenecho.xml with only the name, the MAC and the kernel path changed. Runs after check-20, which
# ends the xl guest. The ARM64 test host has no libvirt: SKIP there.
if [ "$(uname -m)" != x86_64 ]; then
    echo "SKIP: libvirt checks (the ARM64 test host has no libvirt)"
else
failed_before=$FAILED
export LIBVIRT_DEFAULT_URI=xen:///system
lv_name=xenecho-virsh
lv_mac=00:16:3e:5a:00:22
lv_xml=/tmp/$lv_name.xml
lv_save=/tmp/$lv_name.save
lv_console=/tmp/$lv_name-console.out
lv_log=$(console_log "$lv_name")

# lv_state: the state virsh gives domain lv_name ("running", "paused", "shut off"), or nothing.
lv_state() { virsh domstate "$lv_name" 2>/dev/null | head -n 1; }
# lv_wait_state STATE SECONDS: until virsh gives that state.
lv_wait_state() {
    local deadline=$((SECONDS + $2))
    while [ "$(lv_state)" != "$1" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "  $lv_name: virsh says '$(lv_state)' after $2 s, wanted '$1'"
            return 1
        fi
        sleep 1
    done
}
# lv_domid: the domain id virsh gives (nothing unless it runs).
lv_domid() { virsh domid "$lv_name" 2>/dev/null | head -n 1 | grep -x '[0-9]*'; }
# lv_wait_new_domid OLD SECONDS: until virsh names another running domain than OLD; prints its id.
lv_wait_new_domid() {
    local domid="" _
    for _ in $(seq "$2"); do
        domid=$(lv_domid)
        [ -n "$domid" ] && [ "$domid" != "$1" ] && break
        sleep 1
    done
    echo "$domid"
}
# lv_serves ADDRESS DOMID: ADDRESS answers 200, and X-Echo-Domid names DOMID (the domain virsh
# names answers, not another one at that address).
lv_serves() {
    curl -sS -m 10 -D /tmp/lv-headers.out -o /dev/null "http://$1/?instance" >/tmp/lv-curl.out 2>&1 \
        || { sed 's/^/  curl: /' /tmp/lv-curl.out; return 1; }
    tr -d '\r' </tmp/lv-headers.out >/tmp/lv-headers.txt
    grep -q '^HTTP/1.1 200' /tmp/lv-headers.txt && grep -qx "X-Echo-Domid: $2" /tmp/lv-headers.txt && return 0
    sed 's/^/  answer: /' /tmp/lv-headers.txt
    return 1
}
# lv_fields FILE: the fields of a domain definition that must agree between xenecho.xml and what
# libvirt makes of xl.cfg, one a line: name, memory, vCPUs, the OS type and machine, the kernel's
# file name (xl.cfg's path is relative, xenecho.xml's absolute), the command line, the three
# on_* actions, each interface's type and bridge, each console's type and target. Not the MAC
# (xl.cfg pins none), the UUID, or the defaults libvirt adds (clock, input devices, balloon).
# libvirt writes one element a line; xenecho.xml is written the same way.
lv_fields() {
    awk '
        /<!--/ { comment = 1 }
        comment { if (/-->/) comment = 0; next }
        { sub(/^[ \t]+/, ""); sub(/[ \t\r]+$/, "") }
        /^<interface / { interface = 1; print; next }
        /^<\/interface>/ { interface = 0; next }
        /^<console / { console = 1; print; next }
        /^<\/console>/ { console = 0; next }
        /^<(name|memory|currentMemory|vcpu|type|cmdline|on_poweroff|on_reboot|on_crash)[ >]/ { print; next }
        /^<kernel>/ { sub(/<kernel>[^<]*\//, "<kernel>"); print; next }
        interface && /^<source / { print "  " $0; next }
        console && /^<target / { print "  " $0; next }
    ' "$1"
}
# lv_show: libvirt's side of a failure.
lv_show() {
    show /var/log/libvirt/libvirtd.log 20
    show "/var/log/libvirt/libxl/$lv_name.log" 20
    show "$lv_log" 30
}

# --- libvirtd, started on demand --------------------------------------------------------------
start=$SECONDS
start-libvirtd 60 >/tmp/start-libvirtd.out 2>&1
libvirtd_status=$?
sed 's/^/  start-libvirtd: /' /tmp/start-libvirtd.out
echo "  libvirtd answered after $((SECONDS - start)) s"
check "libvirtd started and answers virsh on xen:///system (status $libvirtd_status)" test "$libvirtd_status" -eq 0
virsh version 2>&1 | sed 's/^/  virsh version: /'
check "libvirt's Xen driver offers PVH guests (capabilities: os_type xenpvh)" \
    bash -c "virsh capabilities | grep -q '<os_type>xenpvh</os_type>'"

# The virsh sequence, on one domain; it stops early when the domain cannot be defined or started
# (the checks after would only wait out their timeouts).
lv_sequence() {
# --- The definition: xenecho.xml with this guest's name, MAC and kernel -------------------------
kernel_path=$(sed -n 's/^[[:space:]]*kernel[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' xl.cfg | head -1)
sed -e "s|<name>[^<]*</name>|<name>$lv_name</name>|" \
    -e "s|<mac address='[^']*'/>|<mac address='$lv_mac'/>|" \
    -e "s|<kernel>[^<]*</kernel>|<kernel>$PWD/$kernel_path</kernel>|" xenecho.xml >"$lv_xml"
check "xenecho.xml: name, MAC and kernel path replaced for this test" bash -c "
    grep -qF '<name>$lv_name</name>' '$lv_xml' && grep -qF \"<mac address='$lv_mac'/>\" '$lv_xml' &&
    grep -qF '<kernel>$PWD/$kernel_path</kernel>' '$lv_xml'"
virsh undefine "$lv_name" >/dev/null 2>&1 # left over from an earlier run of this check by hand
virsh define "$lv_xml" >/tmp/lv-define.out 2>&1
define_status=$?
sed 's/^/  virsh define: /' /tmp/lv-define.out
check "virsh define xenecho.xml (status $define_status)" test "$define_status" -eq 0
[ "$define_status" -eq 0 ] || { show /var/log/libvirt/libvirtd.log 20; return; }
check "virsh define: the domain is defined, shut off" test "$(lv_state)" = "shut off"
virsh dumpxml --inactive "$lv_name" >/tmp/lv-dumpxml.xml 2>&1
check "virsh dumpxml: libvirt kept the definition's fields" \
    diff -u <(lv_fields "$lv_xml") <(lv_fields /tmp/lv-dumpxml.xml)
check "virsh dumpxml: the pinned MAC $lv_mac" grep -qF "<mac address='$lv_mac'/>" /tmp/lv-dumpxml.xml
[ "$FAILED" -eq "$failed_before" ] || { show /tmp/lv-dumpxml.xml 40; show /var/log/libvirt/libvirtd.log 20; }

# --- virsh start (paused), virsh console, virsh resume ------------------------------------------
failed_before=$FAILED
virsh start --paused "$lv_name" >/tmp/lv-start.out 2>&1
start_status=$?
sed 's/^/  virsh start --paused: /' /tmp/lv-start.out
check "virsh start --paused (status $start_status)" test "$start_status" -eq 0
[ "$start_status" -eq 0 ] || { lv_show; virsh undefine "$lv_name" >/dev/null 2>&1; return; }
check "virsh start --paused: the domain is paused" lv_wait_state paused 10
# virsh console wants a terminal on its standard input: socat gives it one (a pty, its controlling
# terminal) and passes what it shows to `cat`, into a file; cat types nothing into it. Both ways
# open, so socat does not end on an end of input as it would with -u (where virsh's standard input
# is no terminal: "Cannot run interactive console without a controlling TTY").
socat "EXEC:virsh console --force $lv_name,pty,setsid,ctty" "SYSTEM:cat >$lv_console" 2>/tmp/lv-console.err &
console_pid=$!
check "virsh console: attached" wait_for_text "$lv_console" "Connected to domain" 15
virsh resume "$lv_name" >/tmp/lv-resume.out 2>&1
resume_status=$?
sed 's/^/  virsh resume: /' /tmp/lv-resume.out
check "virsh resume (status $resume_status): the domain runs" lv_wait_state running 10
check "virsh console: the appliance's banner" wait_for_text "$lv_console" "HTTP echo appliance on Xen" 60
check "virsh console: the appliance's address" wait_for_text "$lv_console" "network: DHCP address" 60
kill "$console_pid" 2>/dev/null
wait "$console_pid" 2>/dev/null
echo "  virsh console showed $(wc -l <"$lv_console") lines"
[ "$FAILED" -eq "$failed_before" ] || { show "$lv_console" 20; show /tmp/lv-console.err 10; lv_show; }

# --- Its address, and HTTP from it --------------------------------------------------------------
failed_before=$FAILED
lv_first_domid=$(lv_domid)
check "virsh domid names a domain ($lv_first_domid), the one xl knows by that name" \
    test -n "$lv_first_domid" -a "$lv_first_domid" = "$(xl domid "$lv_name" 2>/dev/null)"
lv_address=$(guest_address "$lv_name" 60)
check "the guest published an address in xenstore (${lv_address:-none})" test -n "$lv_address"
check "its address is not the xl guest's ($GUEST_IP): its own MAC, its own lease" \
    test -n "$lv_address" -a "$lv_address" != "$GUEST_IP"
check "xenstore: its vif has the pinned MAC $lv_mac" \
    test "$(xenstore-read "/local/domain/$lv_first_domid/device/vif/0/mac" 2>&1)" = "$lv_mac"
virsh domifaddr "$lv_name" >/tmp/lv-domifaddr.out 2>&1
domifaddr_status=$?
sed 's/^/  virsh domifaddr: /' /tmp/lv-domifaddr.out
domifaddr_ip=$(awk '$3 == "ipv4" { sub(/\/.*/, "", $4); print $4; exit }' /tmp/lv-domifaddr.out)
if [ -n "$domifaddr_ip" ]; then
    check "virsh domifaddr: the published address" test "$domifaddr_ip" = "$lv_address"
else
    echo "  virsh domifaddr (status $domifaddr_status) names no address: libxl's driver only knows the"
    echo "  leases of libvirt's own networks, not of a bridge; the address is xenstore's"
fi
check "HTTP at $lv_address: 200 from domain $lv_first_domid" lv_serves "$lv_address" "$lv_first_domid"
[ "$FAILED" -eq "$failed_before" ] || lv_show

# --- virsh shutdown: the drain, then poweroff; the domain stays defined ---------------------------
failed_before=$FAILED
start=$SECONDS
virsh shutdown "$lv_name" >/tmp/lv-shutdown.out 2>&1
shutdown_status=$?
sed 's/^/  virsh shutdown: /' /tmp/lv-shutdown.out
check "virsh shutdown (status $shutdown_status)" test "$shutdown_status" -eq 0
check "virsh shutdown: shut off within 30 s" lv_wait_state "shut off" 30
echo "  shutdown took $((SECONDS - start)) s"
check "virsh shutdown: the guest logged the request" grep -qF "shutdown requested (Poweroff)" "$lv_log"
check "virsh shutdown: the Xen domain is gone" wait_gone "$lv_name" 10
check "virsh shutdown: still defined" bash -c "virsh list --all --name | grep -qx '$lv_name'"
[ "$FAILED" -eq "$failed_before" ] || lv_show

# --- virsh start, then virsh reboot: libvirt makes a new domain ----------------------------------
failed_before=$FAILED
virsh start "$lv_name" >/tmp/lv-start.out 2>&1
start_status=$?
sed 's/^/  virsh start: /' /tmp/lv-start.out
check "virsh start (status $start_status): running" lv_wait_state running 10
booted_domid=$(lv_domid)
check "virsh start: serving again at $lv_address" \
    bash -c "for _ in \$(seq 60); do [ \"\$(xenstore-read /local/domain/$booted_domid/data/ipv4-address 2>/dev/null)\" = '$lv_address' ] && exit 0; sleep 1; done; exit 1"
check "virsh start: HTTP from domain $booted_domid" lv_serves "$lv_address" "$booted_domid"
banners_before=$(grep -c 'HTTP echo appliance on Xen' "$lv_log")
start=$SECONDS
virsh reboot "$lv_name" >/tmp/lv-reboot.out 2>&1
reboot_status=$?
sed 's/^/  virsh reboot: /' /tmp/lv-reboot.out
check "virsh reboot (status $reboot_status)" test "$reboot_status" -eq 0
rebooted_domid=$(lv_wait_new_domid "$booted_domid" 60)
echo "  reboot: domain $booted_domid -> ${rebooted_domid:-none} after $((SECONDS - start)) s"
check "virsh reboot: the guest logged the request" grep -qF "shutdown requested (Reboot)" "$lv_log"
check "virsh reboot: a new domain ($booted_domid -> ${rebooted_domid:-none})" \
    test -n "$rebooted_domid" -a "$rebooted_domid" != "$booted_domid"
check "virsh reboot: running" lv_wait_state running 10
check "virsh reboot: the new domain booted" \
    wait_for_text "$lv_log" "HTTP echo appliance on Xen" 60 "$((banners_before + 1))"
check "virsh reboot: the same address, published by the new domain" \
    bash -c "for _ in \$(seq 60); do [ \"\$(xenstore-read /local/domain/$rebooted_domid/data/ipv4-address 2>/dev/null)\" = '$lv_address' ] && exit 0; sleep 1; done; exit 1"
check "virsh reboot: HTTP from domain $rebooted_domid" lv_serves "$lv_address" "$rebooted_domid"
[ "$FAILED" -eq "$failed_before" ] || lv_show

# --- virsh save + virsh restore: the guest suspends, and resumes in a new domain -----------------
failed_before=$FAILED
resumed_before=$(grep -c 'resumed in a new domain: connecting the network again' "$lv_log")
saved_domid=$(lv_domid)
start=$SECONDS
virsh save "$lv_name" "$lv_save" >/tmp/lv-save.out 2>&1
save_status=$?
sed 's/^/  virsh save: /' /tmp/lv-save.out
echo "  virsh save took $((SECONDS - start)) s"
check "virsh save (status $save_status)" test "$save_status" -eq 0
check "virsh save: shut off, reason saved" \
    bash -c "virsh domstate --reason '$lv_name' | grep -qx 'shut off (saved)'"
check "virsh save: the Xen domain is gone" wait_gone "$lv_name" 30
start=$SECONDS
virsh restore "$lv_save" >/tmp/lv-restore.out 2>&1
restore_status=$?
sed 's/^/  virsh restore: /' /tmp/lv-restore.out
echo "  virsh restore took $((SECONDS - start)) s"
check "virsh restore (status $restore_status)" test "$restore_status" -eq 0
check "virsh restore: running" lv_wait_state running 10
restored_domid=$(lv_domid)
check "virsh restore: a new domain ($saved_domid -> ${restored_domid:-none})" \
    test -n "$restored_domid" -a "$restored_domid" != "$saved_domid"
check "virsh restore: the guest resumed in a new domain" \
    wait_for_text "$lv_log" "resumed in a new domain: connecting the network again" 60 "$((resumed_before + 1))"
check "virsh restore: the same address, published by the new domain" \
    bash -c "for _ in \$(seq 60); do [ \"\$(xenstore-read /local/domain/$restored_domid/data/ipv4-address 2>/dev/null)\" = '$lv_address' ] && exit 0; sleep 1; done; exit 1"
check "virsh restore: HTTP from domain $restored_domid" lv_serves "$lv_address" "$restored_domid"
rm -f "$lv_save"
[ "$FAILED" -eq "$failed_before" ] || lv_show

# --- virsh destroy, virsh undefine ---------------------------------------------------------------
failed_before=$FAILED
virsh destroy "$lv_name" >/tmp/lv-destroy.out 2>&1
destroy_status=$?
sed 's/^/  virsh destroy: /' /tmp/lv-destroy.out
check "virsh destroy (status $destroy_status): shut off" lv_wait_state "shut off" 10
check "virsh destroy: the Xen domain is gone" wait_gone "$lv_name" 10
check "virsh destroy: the address no longer answers" \
    bash -c "! curl -s -m 3 -o /dev/null 'http://$lv_address/'"
virsh undefine "$lv_name" >/tmp/lv-undefine.out 2>&1
undefine_status=$?
sed 's/^/  virsh undefine: /' /tmp/lv-undefine.out
check "virsh undefine (status $undefine_status)" test "$undefine_status" -eq 0
check "virsh undefine: libvirt no longer knows $lv_name" \
    bash -c "! virsh list --all --name | grep -qx '$lv_name' && ! virsh domstate '$lv_name' >/dev/null 2>&1"
check "no crash logged by the libvirt guest" bash -c "! grep -q FATAL '$lv_log'"
[ "$FAILED" -eq "$failed_before" ] || lv_show

}

# --- virsh domxml-from-native xen-xl xl.cfg: the same guest as xenecho.xml ------------------------
lv_from_native() {
failed_before=$FAILED
virsh domxml-from-native xen-xl xl.cfg >/tmp/lv-from-native.xml 2>/tmp/lv-from-native.err
native_status=$?
check "virsh domxml-from-native xen-xl xl.cfg (status $native_status)" test "$native_status" -eq 0
lv_fields xenecho.xml >/tmp/lv-fields-repo.txt
lv_fields /tmp/lv-from-native.xml >/tmp/lv-fields-native.txt
sed 's/^/  compared: /' /tmp/lv-fields-repo.txt
check "xenecho.xml and xl.cfg define the same guest (libvirt's reading of xl.cfg)" \
    diff -u /tmp/lv-fields-repo.txt /tmp/lv-fields-native.txt
check "the comparison saw every field (14 lines)" test "$(wc -l </tmp/lv-fields-repo.txt)" -eq 14
[ "$FAILED" -eq "$failed_before" ] || { show /tmp/lv-from-native.xml 40; show /tmp/lv-from-native.err 10; }
}

if [ "$libvirtd_status" -eq 0 ]; then
    lv_sequence
    lv_from_native
else
    show /var/log/libvirt/libvirtd.log 20
    fail "libvirt checks not run: libvirtd does not answer"
fi
fi
