# From outside: this machine's Python http.client and a real headless Chromium reach the appliance
# through the loopback ports QEMU forwards to dom0, which passes each connection on to the guest
# at its address of the moment (tests/e2e-host/). `host-checks` asks testbed/run.sh to run them
# now and waits, so the guest is as the checks above left it; run.sh prints their PASS and FAIL
# lines itself, and their counts are added to this suite's.

report=$(host-checks 900)
case $? in
0) read -r host_passed host_failed <<< "$report"
   PASSED=$((PASSED + host_passed))
   FAILED=$((FAILED + host_failed))
   echo "  ($host_passed passed and $host_failed failed on the machine that runs the test host)" ;;
2) echo "SKIP: host-side checks: $report" ;;
*) fail "host-side checks: $report" ;;
esac
