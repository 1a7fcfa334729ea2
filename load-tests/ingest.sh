#!/usr/bin/env bash
# Ingest load test, all against one private Redis on this machine:
#   1. reference: redis-benchmark, pipelined SETs of profile-sized values (the ceiling of
#      any Redis-backed store here, measured in the same run);
#   2. `touchpoint import` of a 1,000,000-event file (100,000 customers);
#   3. `POST /v1/events` in batches of 100 from 16 connections for 15 s.
# Usage: load-tests/ingest.sh [events] [seconds]
source "$(dirname "$0")/common.sh"
EVENTS="${1:-1000000}"
SECONDS_HTTP="${2:-15}"
build
start_redis

echo "== reference: redis-benchmark SET, pipeline 100, 1 KiB values" >&2
REF=$(redis-benchmark -p "$REDIS_PORT" -t set -P 100 -n 2000000 -d 1024 -r 100000 --csv \
  | awk -F'"' '/"SET"/ {print $4}')
redis-cli -p "$REDIS_PORT" flushall >/dev/null

echo "== touchpoint import: $EVENTS events" >&2
"$LOADGEN" events-file --out "$WORK/events.jsonl" --events "$EVENTS" --customers 100000
IMPORT_OUT=$(TOUCHPOINT__STORE__REDIS_URL="$REDIS_URL" TOUCHPOINT__LOG__LEVEL=warn \
  "$TOUCHPOINT" import --events "$WORK/events.jsonl")
echo "$IMPORT_OUT" >&2
IMPORT_RATE=$(echo "$IMPORT_OUT" | sed -n 's/.*(\([0-9]*\) events\/s).*/\1/p')
redis-cli -p "$REDIS_PORT" flushall >/dev/null

echo "== POST /v1/events, batches of 100, ${SECONDS_HTTP}s" >&2
start_service
HTTP_OUT=$("$LOADGEN" events --url "$SERVICE/v1/events" --batch 100 --connections 16 --seconds "$SECONDS_HTTP")
echo "$HTTP_OUT" >&2
HTTP_RATE=$(echo "$HTTP_OUT" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["units_per_second"]))')

python3 - "$REF" "$IMPORT_RATE" "$HTTP_RATE" <<'PY'
import json, sys
ref, imp, http = (float(x) for x in sys.argv[1:])
print(json.dumps({
  "reference_redis_set_per_s": ref,
  "import_events_per_s": imp, "import_vs_reference": round(imp / ref, 3),
  "http_events_per_s": http, "http_vs_reference": round(http / ref, 3),
  "targets": {"import": 100000, "http": 30000},
}, indent=2))
PY
