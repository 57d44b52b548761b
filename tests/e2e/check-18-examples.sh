# The examples (examples/*.sh; /xenecho/examples in dom0), each run as `make run DOM0_SCRIPT=...`
# runs it: a bash of its own in /xenecho, with GUEST_IP and the rest set. Each must exit 0.

# The guest's address changed when its vif was attached again (check-15).
example_ip=$(guest_address "$GUEST_NAME" 30)
run_example() {
    (cd "$XENECHO_DIR" && GUEST_IP=$example_ip bash "$1") > /tmp/example.out 2>&1 && return 0
    tail -n 20 /tmp/example.out | sed 's/^/  | /'
    return 1
}
examples=("$XENECHO_DIR"/examples/*.sh)
check "examples: ${#examples[@]} in $XENECHO_DIR/examples, the guest at ${example_ip:-no address}" \
    test -f "${examples[0]}" -a -n "$example_ip"
for example in "${examples[@]}"; do
    [ -f "$example" ] && check "example ${example##*/} exits 0" run_example "$example"
done
