# Bounce mode (`untrusted-backend`): every buffer crosses by copy through
# pages granted for good, never the buffers' own pages. Full-size frames, a
# bulk POST echo and wrk all work, and the copies move about the frames'
# bytes, not a whole page per frame.

bounce=xenecho-bounce
xl create -q xl.cfg "name=\"$bounce\"" 'extra="untrusted-backend"' >/dev/null
bounce_ip=$(guest_address "$bounce" 60)
check "bounce guest has an address ($bounce_ip)" test -n "$bounce_ip"
if [ -n "$bounce_ip" ]; then
    check "bounce guest: every buffer bounced" \
        grep -q 'not trusted: bouncing every buffer' "$(console_log "$bounce")"
    ping -c 20 -i 0.2 -W 2 -s 1472 "$bounce_ip" >/tmp/bounce-ping.out 2>&1
    tail -n 2 /tmp/bounce-ping.out | sed 's/^/  /'
    check "bounce: ping -s 1472 (full-size frames): 0% packet loss" grep -q ' 0% packet loss' /tmp/bounce-ping.out
    head -c 1048576 /dev/urandom >/tmp/bounce-post.bin
    curl -sS -m 120 --data-binary @/tmp/bounce-post.bin -H 'Content-Type: application/x-xenecho' \
        -o /tmp/bounce-post.back "http://$bounce_ip/upload"
    check "bounce: POST of 1 MiB echoed identically" cmp -s /tmp/bounce-post.bin /tmp/bounce-post.back
    bounce_wrk() {
        wrk -t2 -c64 -d10s "http://$bounce_ip/" >/tmp/bounce-wrk.out 2>&1
        sed 's/^/  /' /tmp/bounce-wrk.out
        grep -q 'Requests/sec' /tmp/bounce-wrk.out || return 1
        ! grep -q 'Socket errors' /tmp/bounce-wrk.out || return 1
        ! grep -q 'Non-2xx' /tmp/bounce-wrk.out
    }
    check "bounce: wrk -t2 -c64 -d10s: no socket errors, no non-2xx" bounce_wrk
    # Bytes copied to and from bounce pages against the bytes of the frames
    # moved: one copy each way is 1.0; a whole page per frame would be
    # several times that for this mix of small and full frames.
    bounce_ratio() {
        curl -sS -m 10 "http://$bounce_ip:19100/metrics" >/tmp/bounce-metrics.out || return 1
        awk '$1 == "xenecho_dma_bounce_bytes_total" { bounce = $2 }
             $1 == "xenecho_rx_bytes_total" || $1 == "xenecho_tx_bytes_total" { frames += $2 }
             END { ratio = frames ? bounce / frames : 99
                   printf "  bounce-copied %d bytes for %d bytes of frames: %.2f\n", bounce, frames, ratio
                   exit !(frames > 0 && ratio < 1.5) }' /tmp/bounce-metrics.out
    }
    check "bounce: bytes copied within 1.5x the frames' bytes" bounce_ratio
else
    show "$(console_log "$bounce")" 30
fi
xl destroy "$bounce" 2>/dev/null
