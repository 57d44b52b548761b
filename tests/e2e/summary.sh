
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
