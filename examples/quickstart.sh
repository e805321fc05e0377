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
echo "== done: echo stopped cleanly on SIGTERM"
