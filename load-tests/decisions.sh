#!/usr/bin/env bash
# Decision load test, against one private Redis on this machine:
#   1. a simulated history (`touchpoint simulate`) imported into Redis;
#   2. the service (Redis store; decision log to a file, the default, or with
#      DECISION_LOG=redis to a capped stream in the same Redis) and the reference
#      server (load-tests/reference_server.rs: one Redis GET and a JSON round trip) started
#      side by side on the same Redis;
#   3. open loop at a fixed arrival rate (default 10,000/s), in alternating rounds against
#      the service and the reference (default 6 rounds of 10 s each): client-side
#      percentiles from an HDR histogram, and server-side percentiles from each server's
#      Prometheus histograms (difference of scrapes before and after; the same span, body
#      read to answer built, and the same buckets for both), per round and over all;
#   4. closed-loop saturation of each, in alternating rounds (default 3 of 8 s each, the
#      reference first in each; SAT_ROUNDS, SAT_SECONDS);
#   5. a latency-by-percentile plot of both.
# Usage: [DECISION_LOG=file|redis|off] load-tests/decisions.sh [rate] [seconds] [customers] [rounds]
# Writes load-tests/results/decisions-<log>.json and decisions-<log>-latency.svg.
source "$(dirname "$0")/common.sh"
RATE="${1:-10000}"
SECONDS_RUN="${2:-10}"
CUSTOMERS="${3:-10000}"
ROUNDS="${4:-6}"
SAT_ROUNDS="${SAT_ROUNDS:-3}"
SAT_SECONDS="${SAT_SECONDS:-8}"
DECISION_LOG="${DECISION_LOG:-file}"
OUT="$ROOT/load-tests/results"
mkdir -p "$OUT"

build
start_redis

echo "== history: $CUSTOMERS simulated customers, 320 days (from 2026-01-01: none ahead of the clock)" >&2
"$TOUCHPOINT" simulate --out "$WORK/sim" --customers "$CUSTOMERS" --days 320 --seed 42 >&2
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

echo "== open loop: $RATE requests/s, $ROUNDS rounds of ${SECONDS_RUN}s each, service and reference alternating" >&2
OPEN=$("$LOADGEN" decisions --url "$SERVICE/v1/decisions" "${TARGET[@]}" --rate "$RATE" \
  --seconds "$SECONDS_RUN" --rounds "$ROUNDS" --metrics-url "$SERVICE/metrics" \
  --versus-url "$REFERENCE" --versus-metrics-url "http://127.0.0.1:$REF_PORT/metrics" \
  --curve-out "$WORK/curves.json")

echo "== saturation: $SAT_ROUNDS rounds of ${SAT_SECONDS}s, reference then decisions in each" >&2
SAT_REF="[" SAT="["
for r in $(seq "$SAT_ROUNDS"); do
  [ "$r" = 1 ] || { SAT_REF+=","; SAT+=","; }
  ONE=$("$LOADGEN" saturate --url "$REFERENCE" --body reference "${TARGET[@]}" --seconds "$SAT_SECONDS")
  echo "$ONE" >&2
  SAT_REF+="$ONE"
  ONE=$("$LOADGEN" saturate --url "$SERVICE/v1/decisions" "${TARGET[@]}" --seconds "$SAT_SECONDS")
  echo "$ONE" >&2
  SAT+="$ONE"
done
SAT_REF+="]" SAT+="]"
OUTCOMES=$(curl -sf "$SERVICE/metrics" | grep '^touchpoint_decisions_total' || true)
sleep 1 # the log writer catches up
case "$DECISION_LOG" in
  redis) LOGGED=$(redis-cli -p "$REDIS_PORT" xlen tp:decisions) ;;
  file) LOGGED=$(wc -l <"$WORK/decisions.jsonl") ;;
  *) LOGGED=0 ;;
esac

"$LOADGEN" plot --out "$OUT/decisions-$DECISION_LOG-latency.svg" \
  --title "Decisions at ${RATE}/s, open loop, Redis store, log: $DECISION_LOG" \
  --curve "touchpoint (client)=$WORK/curves.json:target.client" \
  --curve "touchpoint (server)=$WORK/curves.json:target.server" \
  --curve "reference (client)=$WORK/curves.json:versus.client" \
  --curve "reference (server)=$WORK/curves.json:versus.server" \
  --target-ms 1 --target-quantile 0.99

python3 - "$OPEN" "$SAT_REF" "$SAT" "$OUTCOMES" "$LOGGED" "$DECISION_LOG" <<'PY' | tee "$OUT/decisions-$DECISION_LOG.json"
import json, statistics, sys
open_, sat_ref, sat = (json.loads(a) for a in sys.argv[1:4])
outcomes, logged, log = sys.argv[4], sys.argv[5], sys.argv[6]
service, reference = open_["target"], open_["versus"]
DECISION, REF = "touchpoint_decision_duration_seconds", "reference_request_duration_seconds"
def server(side, metric):
    return side["server_side"][metric]["latency_us"]
rounds = [
    {"service_server_us": server(s, DECISION), "reference_server_us": server(r, REF),
     "service_client_p99_us": s["latency_us"]["p99"], "reference_client_p99_us": r["latency_us"]["p99"]}
    for s, r in zip(service["per_round"], reference["per_round"])
]
p99s = [r["service_server_us"]["p99"] for r in rounds]
def rate(runs):
    """Requests per second over all rounds."""
    return sum(r["requests_ok"] for r in runs) / sum(r["seconds"] for r in runs)
ref_p99s = [r["reference_server_us"]["p99"] for r in rounds]
print(json.dumps({
  "decision_log": log,
  "open_loop": {
    "rate": open_["rate"],
    "rounds": open_["rounds"],
    "seconds_per_round": open_["seconds"],
    "service_server_latency_us": server(service, DECISION),
    "service_client_latency_us": service["latency_us"],
    "service_failed": service["requests_failed"],
    "reference_server_latency_us": server(reference, REF),
    "reference_client_latency_us": reference["latency_us"],
    "reference_failed": reference["requests_failed"],
    "server_p99_by_round_us": {"service": p99s, "reference": ref_p99s},
    "server_p99_median_of_rounds_us": {"service": statistics.median(p99s),
                                       "reference": statistics.median(ref_p99s)},
    "rounds_with_service_p99_within_1ms": sum(p <= 1000 for p in p99s),
    "per_round": rounds,
  },
  "saturation": {
    "reference_per_s": round(rate(sat_ref)),
    "decisions_per_s": round(rate(sat)),
    "ratio": round(rate(sat) / rate(sat_ref), 3),
    "ratio_by_round": [round(s["requests_per_second"] / r["requests_per_second"], 3)
                       for s, r in zip(sat, sat_ref)],
    "decisions_failed": sum(s["requests_failed"] for s in sat),
  },
  "decision_outcomes": [l for l in outcomes.splitlines() if l],
  "decisions_logged": int(logged),
  "targets": {"server_p99_us": 1000, "saturation_ratio": 0.5},
}, indent=2))
PY
