#!/usr/bin/env bash
# Decision load test, against one private Redis on this machine:
#   1. a simulated history (`touchpoint simulate`) imported into Redis;
#   2. the service (Redis store; decision log to a file, the default, or with
#      DECISION_LOG=redis to a capped stream in the same Redis) and the reference
#      server (load-tests/reference_server.rs: one Redis GET and a JSON round trip) started
#      side by side on the same Redis;
#   3. open loop at a fixed arrival rate (default 10,000/s) against each: client-side
#      percentiles from an HDR histogram, and server-side percentiles from each server's
#      Prometheus histograms (difference of scrapes before and after; the same span, body
#      read to answer built, and the same buckets for both);
#   4. closed-loop saturation of each, the reference first;
#   5. a latency-by-percentile plot of both.
# Usage: [DECISION_LOG=file|redis|off] load-tests/decisions.sh [rate] [seconds] [customers]
# Writes load-tests/results/decisions-<log>.json and decisions-<log>-latency.svg.
source "$(dirname "$0")/common.sh"
RATE="${1:-10000}"
SECONDS_RUN="${2:-20}"
CUSTOMERS="${3:-10000}"
DECISION_LOG="${DECISION_LOG:-file}"
OUT="$ROOT/load-tests/results"
mkdir -p "$OUT"

build
cargo build --release --quiet --example reference_server
REFERENCE_SERVER="$ROOT/target/release/examples/reference_server"
start_redis

echo "== history: $CUSTOMERS simulated customers, 365 days" >&2
"$TOUCHPOINT" simulate --out "$WORK/sim" --customers "$CUSTOMERS" --days 365 --seed 42 >&2
TOUCHPOINT__STORE__REDIS_URL="$REDIS_URL" TOUCHPOINT__LOG__LEVEL=warn \
  "$TOUCHPOINT" import --events "$WORK/sim/events.jsonl" >&2

start_service TOUCHPOINT__DECISION__LOG__SINK="$DECISION_LOG" \
  TOUCHPOINT__DECISION__LOG__PATH="$WORK/decisions.jsonl" \
  TOUCHPOINT__DECISION__LOG__MAX_FILE_BYTES=17179869184
REF_PORT="$(free_port)"
"$REFERENCE_SERVER" --bind "127.0.0.1:$REF_PORT" --redis "$REDIS_URL" >"$WORK/reference.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$REF_PORT/readyz" >/dev/null && break; sleep 0.05; done
REFERENCE="http://127.0.0.1:$REF_PORT/v1/reference"

TARGET=(--customers "$CUSTOMERS" --id-digits 6)
echo "== warm-up" >&2
"$LOADGEN" saturate --url "$SERVICE/v1/decisions" "${TARGET[@]}" --seconds 2 >/dev/null
"$LOADGEN" saturate --url "$REFERENCE" --body reference "${TARGET[@]}" --seconds 2 >/dev/null

echo "== open loop: $RATE decisions/s for ${SECONDS_RUN}s" >&2
OPEN=$("$LOADGEN" decisions --url "$SERVICE/v1/decisions" "${TARGET[@]}" --rate "$RATE" \
  --seconds "$SECONDS_RUN" --metrics-url "$SERVICE/metrics" --curve-out "$WORK/service-curve.json")
echo "$OPEN" >&2
echo "== open loop: $RATE reference requests/s for ${SECONDS_RUN}s" >&2
OPEN_REF=$("$LOADGEN" decisions --url "$REFERENCE" --body reference "${TARGET[@]}" --rate "$RATE" \
  --seconds "$SECONDS_RUN" --metrics-url "http://127.0.0.1:$REF_PORT/metrics" \
  --curve-out "$WORK/reference-curve.json")
echo "$OPEN_REF" >&2

echo "== saturation: reference, then decisions" >&2
SAT_REF=$("$LOADGEN" saturate --url "$REFERENCE" --body reference "${TARGET[@]}" --seconds 10)
echo "$SAT_REF" >&2
SAT=$("$LOADGEN" saturate --url "$SERVICE/v1/decisions" "${TARGET[@]}" --seconds 10)
echo "$SAT" >&2
OUTCOMES=$(curl -sf "$SERVICE/metrics" | grep '^touchpoint_decisions_total' || true)
sleep 1 # the log writer catches up
case "$DECISION_LOG" in
  redis) LOGGED=$(redis-cli -p "$REDIS_PORT" xlen tp:decisions) ;;
  file) LOGGED=$(wc -l <"$WORK/decisions.jsonl") ;;
  *) LOGGED=0 ;;
esac

"$LOADGEN" plot --out "$OUT/decisions-$DECISION_LOG-latency.svg" \
  --title "Decisions at ${RATE}/s, open loop, Redis store, log: $DECISION_LOG" \
  --curve "touchpoint (client)=$WORK/service-curve.json:client" \
  --curve "touchpoint (server)=$WORK/service-curve.json:server" \
  --curve "reference (client)=$WORK/reference-curve.json:client" \
  --curve "reference (server)=$WORK/reference-curve.json:server" \
  --target-ms 1 --target-quantile 0.99

python3 - "$OPEN" "$OPEN_REF" "$SAT_REF" "$SAT" "$OUTCOMES" "$LOGGED" "$DECISION_LOG" <<'PY' | tee "$OUT/decisions-$DECISION_LOG.json"
import json, sys
open_, open_ref, sat_ref, sat = (json.loads(a) for a in sys.argv[1:5])
outcomes, logged, log = sys.argv[5], sys.argv[6], sys.argv[7]
server, server_ref = open_["server_side"], open_ref["server_side"]
print(json.dumps({
  "decision_log": log,
  "open_loop": {
    "rate": open_["rate"],
    "service_client_latency_us": open_["latency_us"],
    "service_server_latency_us": {k: v["latency_us"] for k, v in server.items()},
    "service_failed": open_["requests_failed"],
    "reference_client_latency_us": open_ref["latency_us"],
    "reference_server_latency_us": {k: v["latency_us"] for k, v in server_ref.items()},
    "reference_failed": open_ref["requests_failed"],
  },
  "saturation": {
    "reference_per_s": round(sat_ref["requests_per_second"]),
    "decisions_per_s": round(sat["requests_per_second"]),
    "ratio": round(sat["requests_per_second"] / sat_ref["requests_per_second"], 3),
    "decisions_failed": sat["requests_failed"],
  },
  "decision_outcomes": [l for l in outcomes.splitlines() if l],
  "decisions_logged": int(logged),
  "targets": {"server_p99_us": 1000, "saturation_ratio": 0.5},
}, indent=2))
PY
