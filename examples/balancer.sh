#!/bin/bash
# Several appliances behind one address: nginx in dom0 as the balancer, its upstream list made from
# the running domains.
#
#   make run DOM0_SCRIPT=examples/balancer.sh       (in `make shell`: bash examples/balancer.sh)
#   bash examples/balancer.sh [--port P] [--instances N] [--keep]
#
# Every running domain `xl list` shows (those libvirt started too: its Xen driver is libxl, as
# xl's is; not one that is paused, shutting down or crashed) that published an address in xenstore
# (data/ipv4-address, which only the appliance writes) goes into an nginx `upstream` block, round
# robin, with idle keep-alive connections to each; the first N of them in domain-id order with
# --instances N. An appliance that does not take a connection within 2 s is passed over for the
# next one (and left alone for 10 s), so one that ends between two runs of this script costs a
# request 2 s, not an error. nginx then listens on port P (8080) of every dom0
# address, and the script asks it for `GET /?instance` twice per appliance: the `X-Echo-Instance`
# header of each answer names the appliance that served it. Exits non-zero unless every request
# was answered 200 by an appliance of the list and every appliance answered at least once.
# nginx is stopped at the end unless --keep is given (then `nginx -s stop -p DIR` stops it, DIR
# printed below; running the script again replaces it). Port P must be free in dom0.
#
# On a host of your own: the same, with your nginx (or haproxy: one `server NAME ADDRESS:80` line
# per appliance in a backend) and the list refreshed whenever appliances come or go.
set -euo pipefail
port=8080 instances=0 keep=no
while [ $# -gt 0 ]; do
    case $1 in
    --port) port=${2:?}; shift 2 ;;
    --instances) instances=${2:?}; shift 2 ;;
    --keep) keep=yes; shift ;;
    *) echo "balancer: unknown argument: $1" >&2; exit 2 ;;
    esac
done
dir=/tmp/xenecho-balancer

# The appliances: "name address" lines, in domain-id order. xl list's state column: r running, b
# blocked (waiting for an event: an idle appliance), p paused, s shut down, c crashed, d dying.
appliances() {
    xl list | awk 'NR > 1 && $2 != 0 && $5 !~ /[pscd]/ { print $2, $1 }' | sort -n | while read -r domid name; do
        address=$(xenstore-read "/local/domain/$domid/data/ipv4-address" 2>/dev/null) || continue
        echo "$name $address"
    done
}
mapfile -t list < <(appliances)
[ "$instances" -eq 0 ] || list=("${list[@]:0:$instances}")
if [ ${#list[@]} -eq 0 ]; then
    echo "balancer: FAILED: no running domain has published an address (data/ipv4-address)" >&2
    exit 1
fi

# The configuration: one worker per dom0 CPU, no logging, keep-alive on both sides.
mkdir -p "$dir" /var/lib/nginx
{
    cat <<CONF
worker_processes auto;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream xenecho {
CONF
    for entry in "${list[@]}"; do
        printf '        server %s:80 max_fails=1 fail_timeout=10s;    # %s\n' "${entry#* }" "${entry%% *}"
    done
    cat <<CONF
        keepalive 16;
    }
    server {
        listen $port reuseport;
        location / {
            proxy_pass http://xenecho;
            proxy_connect_timeout 2s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }
    }
}
CONF
} > "$dir/nginx.conf"
echo "balancer: ${#list[@]} appliance(s) behind port $port:"
sed -n 's/^ *server \([^ ]*\) .*;  *# \(.*\)/  \2 \1/p' "$dir/nginx.conf"

# (Re)start nginx with it.
[ ! -s "$dir/nginx.pid" ] || nginx -s stop -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>/dev/null || true
for _ in $(seq 50); do [ -s "$dir/nginx.pid" ] || break; sleep 0.1; done
nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
stop() { [ "$keep" = yes ] || nginx -s stop -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>/dev/null || true; }
trap stop EXIT

# Who answers: two requests per appliance through the balancer.
declare -A served=()
failed=0
for _ in $(seq $((2 * ${#list[@]}))); do
    name=$(curl -sS -m 10 -o /dev/null -D - "http://127.0.0.1:$port/?instance" \
        | tr -d '\r' | sed -n 's/^X-Echo-Instance: //p') || true
    if [ -n "$name" ] && printf '%s\n' "${list[@]}" | grep -q "^$name "; then
        served[$name]=$(( ${served[$name]:-0} + 1 ))
    else
        failed=$((failed + 1))
    fi
done
for entry in "${list[@]}"; do
    echo "  ${entry%% *}: ${served[${entry%% *}]:-0} answer(s)"
done
if [ "$failed" -gt 0 ] || [ ${#served[@]} -ne ${#list[@]} ]; then
    echo "balancer: FAILED: $failed request(s) not answered by an appliance of the list;" \
         "${#served[@]} of ${#list[@]} appliances answered" >&2
    tail -n 5 "$dir/error.log" >&2 2>/dev/null || true
    exit 1
fi
echo "balancer: ${#list[@]} appliance(s) answered through http://127.0.0.1:$port/" \
     "$([ "$keep" = yes ] && echo "(nginx left running: nginx -s stop -p $dir)")"
