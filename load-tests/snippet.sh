#!/usr/bin/env bash
# What the website snippet adds to a page on loopback: the example shop page served by a
# static server, the snippet and decisions from the service (release build, web key, signed
# identity, CORS for the shop's origin), loaded in headless Chromium with and without the
# snippet's script tag in alternating rounds (tests/browser/measure.cjs). Needs what
# scripts/test installs (chromium, node, playwright-core under target/browser).
# Usage: load-tests/snippet.sh [rounds]
source "$(dirname "$0")/common.sh"
ROUNDS="${1:-30}"
build
PORT="$(free_port)"; SHOP="$(free_port)"
KEYGEN="$("$TOUCHPOINT" keys new --name shop --scopes web)"
KEY="$(printf '%s\n' "$KEYGEN" | sed -n 's/^key (shown once[^:]*: //p')"
{
  printf '%s\n' "$KEYGEN" | sed -n '/^\[\[auth.keys\]\]/,$p'
  printf '[web]\nidentity_secret = "measure"\nallowed_origins = ["http://127.0.0.1:%s"]\n' "$SHOP"
} >"$WORK/touchpoint.toml"
TOUCHPOINT__DECISION__LOG__SINK=off TOUCHPOINT__LOG__LEVEL=warn \
  "$TOUCHPOINT" serve --config "$WORK/touchpoint.toml" --bind "127.0.0.1:$PORT" >"$WORK/service.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.05; done
IDENTITY="$(python3 "$ROOT/examples/identity.py" measure c-measure 3600)"
mkdir -p "$WORK/shop"
sed -e "s#TOUCHPOINT_URL#http://127.0.0.1:$PORT#" -e "s#WEB_KEY#$KEY#" -e "s#IDENTITY#$IDENTITY#" \
  -e "s#API_BASE##" -e "s#TIMEOUT_MS#600#" "$ROOT/examples/shop/index.html" >"$WORK/shop/with.html"
grep -v 'sdk/touchpoint.js\|data-base=' "$WORK/shop/with.html" >"$WORK/shop/without.html"
(cd "$WORK/shop" && exec python3 -m http.server "$SHOP" --bind 127.0.0.1 >"$WORK/shop.log" 2>&1) &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$SHOP/with.html" >/dev/null && break; sleep 0.05; done
echo "== snippet: $(wc -c <"$ROOT/web/touchpoint.js") bytes, $(gzip -9c "$ROOT/web/touchpoint.js" | wc -c) gzipped" >&2
TOUCHPOINT_BROWSER_DEPS="${TOUCHPOINT_BROWSER_DEPS:-$ROOT/target/browser}" \
  node "$ROOT/tests/browser/measure.cjs" "http://127.0.0.1:$SHOP/with.html" "http://127.0.0.1:$SHOP/without.html" "$ROUNDS"
