#!/usr/bin/env bash
# weft's quick start: build the binary, validate the example Istio config, analyze it, and do a
# round trip through `weft echo` (the test and demo backend) over HTTP/1.1 and HTTP/2.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p weft-cli
weft=target/release/weft
if [ -n "${CARGO_TARGET_DIR:-}" ]; then weft="$CARGO_TARGET_DIR/release/weft"; fi

echo "== weft validate examples/"
"$weft" validate examples/

echo "== weft analyze examples/seeds/002-00-app.yaml examples/seeds/002-07-virtualservice-destinationrule-hello.yaml"
"$weft" analyze examples/seeds/002-00-app.yaml examples/seeds/002-07-virtualservice-destinationrule-hello.yaml || true

echo "== weft echo round trip"
out=$(mktemp)
"$weft" echo --listen 127.0.0.1:0 --name quickstart >"$out" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 100); do
    grep -q '^listening on ' "$out" && break
    sleep 0.05
done
addr=$(sed -n 's/^listening on //p' "$out" | head -n1)
echo "echo is listening on $addr"
curl -sS -i "http://$addr/hello?greeting=hi"
echo
curl -sS --http2-prior-knowledge "http://$addr/over-h2"
echo
curl -sS "http://$addr/__echo/stats"
echo
kill -TERM "$pid"
wait "$pid"
echo "== echo stopped cleanly on SIGTERM"

echo "== weft proxy: examples/proxy/mesh.yaml with two echo backends"
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work" "$out"; }
trap cleanup EXIT
wait_line() { # FILE PATTERN -> first matching line's address
    for _ in $(seq 1 200); do
        line=$(grep -m1 "$2" "$1" || true)
        [ -n "$line" ] && { echo "${line##* on }"; return; }
        sleep 0.05
    done
    echo "timed out waiting for '$2' in $1" >&2; exit 1
}
"$weft" echo --listen 127.0.0.1:0 --name reviews-v1 >"$work/v1.out" & pids+=($!)
"$weft" echo --listen 127.0.0.1:0 --name reviews-v2 >"$work/v2.out" & pids+=($!)
v1=$(wait_line "$work/v1.out" '^listening on '); v2=$(wait_line "$work/v2.out" '^listening on ')
mkdir "$work/config"
sed -e "s/http: 9081/http: ${v1##*:}/" -e "s/http: 9082/http: ${v2##*:}/" examples/proxy/mesh.yaml >"$work/config/mesh.yaml"
"$weft" proxy --config "$work/config" --outbound 127.0.0.1:0 --admin 127.0.0.1:0 >"$work/proxy.out" & pids+=($!)
outbound=$(wait_line "$work/proxy.out" '^listening outbound on ')
admin=$(wait_line "$work/proxy.out" '^listening admin on ')
curl -sf "http://$admin/ready" >/dev/null
echo "end-user: jason ->" "$(curl -s -H 'Host: reviews' -H 'end-user: jason' "http://$outbound/" -o /dev/null -w '%{http_code} ' -D - | grep -i x-echo-name | tr -d '\r')"
echo -n "20 requests without the header -> "
for _ in $(seq 1 20); do curl -s -o /dev/null -D - -H 'Host: reviews' "http://$outbound/" | grep -i '^x-echo-name' | tr -d '\r' | cut -d' ' -f2; done | sort | uniq -c | tr '\n' ' '
echo
echo "== one access-log line:"
grep -m1 '^{' "$work/proxy.out"
echo "== istio_requests_total:"
curl -s "http://$admin/metrics" | grep '^istio_requests_total' | head -3
echo "== done"
