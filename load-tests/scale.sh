#!/usr/bin/env bash
# Scale-out figures, all measured in one run on this machine:
#   1. Redis memory per customer: a simulated history (`touchpoint simulate`, 20,000
#      customers) imported into a fresh redis-server, `INFO memory` used_memory before and
#      after, for 90 days of history (about 40 events a customer), 110 and 320; with the
#      average stored profile (`STRLEN` of 2,000 of them: version, format, compressed body);
#   2. batch planning (`touchpoint decide --customers`, every customer, outbound on every
#      consented channel) on the embedded store, on one Redis, and on a six-node Redis
#      Cluster (three masters, a replica each) on this machine, the same history loaded;
#   3. NATS JetStream ingest: an event file published to a private `nats-server -js` (100
#      events a message), then consumed by `serve` into a fresh Redis, events/s until all are
#      applied, next to `touchpoint import` of the same file into another fresh Redis (the
#      reference of the same run).
# Usage: load-tests/scale.sh [customers] [nats-events]
# Writes load-tests/results/scale.json.
source "$(dirname "$0")/common.sh"
CUSTOMERS="${1:-20000}"
NATS_EVENTS="${2:-300000}"
OUT="$ROOT/load-tests/results"
mkdir -p "$OUT"
build

used_memory() { redis-cli -p "$1" info memory | tr -d '\r' | sed -n 's/^used_memory://p'; }

fresh_redis() { # port
  redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
    --daemonize no >"$WORK/redis-$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && break; sleep 0.05; done
}

bytes_per_customer() { # days port (a fresh redis-server's)
  local port="$2"
  "$TOUCHPOINT" simulate --out "$WORK/sim$1" --customers "$CUSTOMERS" --days "$1" --seed 42 >&2
  local before after events
  before="$(used_memory "$port")"
  TOUCHPOINT__STORE__REDIS_URL="redis://127.0.0.1:$port/0" TOUCHPOINT__LOG__LEVEL=warn \
    "$TOUCHPOINT" import --events "$WORK/sim$1/events.jsonl" >"$WORK/import$1.txt"
  after="$(used_memory "$port")"
  events="$(sed -n 's/^  accepted: *//p' "$WORK/import$1.txt")"
  compressed="$(sed -n 's/^  compressed: *\([0-9]*\).*/\1/p' "$WORK/import$1.txt")"
  stored="$(redis-cli -p "$port" --scan --pattern '*:profile' | head -2000 | sed 's/^/STRLEN /' |
    redis-cli -p "$port" | awk '{s += $1; n++} END {print int(s / n)}')"
  echo "{\"days\": $1, \"customers\": $CUSTOMERS, \"events\": $events, \"compressed\": ${compressed:-0}, \"stored_profile_bytes\": $stored, \"bytes_per_customer\": $(( (after - before) / CUSTOMERS ))}"
}

echo "== memory per customer" >&2
P90="$(free_port)"
fresh_redis "$P90"
MEM90="$(bytes_per_customer 90 "$P90")"
P110="$(free_port)"
fresh_redis "$P110"
MEM110="$(bytes_per_customer 110 "$P110")"
SINGLE_PORT="$(free_port)" # keeps the 320-day history for the planning runs
fresh_redis "$SINGLE_PORT"
MEM320="$(bytes_per_customer 320 "$SINGLE_PORT")"
echo "$MEM90 $MEM110 $MEM320" >&2

python3 -c "
import sys
n = int(sys.argv[1])
open(sys.argv[2], 'w').write(''.join('c-%06d\n' % i for i in range(n)))" "$CUSTOMERS" "$WORK/customers.txt"

rate_of() { sed -n 's/.*(\([0-9]*\)\/s).*/\1/p' "$1" | tail -1; }

echo "== batch planning: embedded store" >&2
TOUCHPOINT__LOG__LEVEL=warn TOUCHPOINT__DECISION__LOG__SINK=off "$TOUCHPOINT" decide \
  --customers "$WORK/customers.txt" --events "$WORK/sim320/events.jsonl" --out /dev/null 2>"$WORK/d-mem.txt"
echo "== batch planning: one Redis" >&2
TOUCHPOINT__STORE__REDIS_URL="redis://127.0.0.1:$SINGLE_PORT/0" TOUCHPOINT__LOG__LEVEL=warn \
  TOUCHPOINT__DECISION__LOG__SINK=off "$TOUCHPOINT" decide \
  --customers "$WORK/customers.txt" --out /dev/null 2>"$WORK/d-redis.txt"

echo "== batch planning: a Redis Cluster of three masters and three replicas" >&2
NODES=()
for i in 1 2 3 4 5 6; do
  p="$(free_port)"
  mkdir -p "$WORK/c$i"
  redis-server --port "$p" --cluster-port "$(free_port)" --bind 127.0.0.1 \
    --cluster-enabled yes --cluster-node-timeout 2000 \
    --cluster-config-file nodes.conf --dir "$WORK/c$i" --save "" --appendonly no \
    --repl-diskless-sync-delay 0 >"$WORK/c$i/log" 2>&1 &
  PIDS+=($!)
  NODES+=("127.0.0.1:$p")
done
for n in "${NODES[@]}"; do
  for _ in $(seq 100); do redis-cli -p "${n#*:}" ping >/dev/null 2>&1 && break; sleep 0.05; done
done
redis-cli --cluster create "${NODES[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
for _ in $(seq 200); do
  ok=0
  for n in "${NODES[@]}"; do
    redis-cli -p "${n#*:}" cluster info | grep -q cluster_state:ok && ok=$((ok + 1))
  done
  [ "$ok" = 6 ] && break
  sleep 0.1
done
CLUSTER="$(printf 'redis://%s,' "${NODES[@]}")"
CLUSTER="${CLUSTER%,}"
TOUCHPOINT__STORE__REDIS_CLUSTER_NODES="$CLUSTER" TOUCHPOINT__LOG__LEVEL=warn \
  "$TOUCHPOINT" import --events "$WORK/sim320/events.jsonl" >"$WORK/import-cluster.txt"
TOUCHPOINT__STORE__REDIS_CLUSTER_NODES="$CLUSTER" TOUCHPOINT__LOG__LEVEL=warn \
  TOUCHPOINT__DECISION__LOG__SINK=off "$TOUCHPOINT" decide \
  --customers "$WORK/customers.txt" --out /dev/null 2>"$WORK/d-cluster.txt"
CLUSTER_IMPORT="$(sed -n 's/.*(\([0-9]*\) events\/s).*/\1/p' "$WORK/import-cluster.txt")"

echo "== NATS JetStream ingest against import (the reference)" >&2
"$LOADGEN" events-file --out "$WORK/nats-events.jsonl" --events "$NATS_EVENTS" --customers 50000
REF_PORT="$(free_port)"
fresh_redis "$REF_PORT"
TOUCHPOINT__STORE__REDIS_URL="redis://127.0.0.1:$REF_PORT/0" TOUCHPOINT__LOG__LEVEL=warn \
  "$TOUCHPOINT" import --events "$WORK/nats-events.jsonl" >"$WORK/import-ref.txt"
REF_RATE="$(sed -n 's/.*(\([0-9]*\) events\/s).*/\1/p' "$WORK/import-ref.txt")"

NATS_PORT="$(free_port)"
nats_bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
"$nats_bin" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && break; sleep 0.05; done
ING_PORT="$(free_port)"
fresh_redis "$ING_PORT"
REDIS_URL="redis://127.0.0.1:$ING_PORT/0"
# The service makes the stream; then it is stopped, the events published, and it starts
# again to consume them all.
start_service TOUCHPOINT__INGEST__NATS__URL="nats://127.0.0.1:$NATS_PORT" TOUCHPOINT__DECISION__LOG__SINK=off
sleep 1
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
"$LOADGEN" nats-publish --url "nats://127.0.0.1:$NATS_PORT" --subject touchpoint.events \
  --events "$WORK/nats-events.jsonl" --batch 100 >&2
STARTED="$(date +%s.%N)"
start_service TOUCHPOINT__INGEST__NATS__URL="nats://127.0.0.1:$NATS_PORT" TOUCHPOINT__DECISION__LOG__SINK=off
applied() {
  curl -sf "$SERVICE/metrics" | awk '/^touchpoint_ingest_nats_events_total\{result="(applied|duplicate)"\}/ {s += $2} END {print s + 0}'
}
for _ in $(seq 1200); do
  [ "$(applied)" -ge "$NATS_EVENTS" ] && break
  sleep 0.1
done
ENDED="$(date +%s.%N)"
NATS_APPLIED="$(applied)"
NATS_RATE="$(python3 -c "print(round($NATS_APPLIED / ($ENDED - $STARTED)))")"

python3 - "$OUT/scale.json" <<PY
import json, sys
result = {
    "memory": [$MEM90, $MEM110, $MEM320],
    "decide_per_second": {
        "embedded": $(rate_of "$WORK/d-mem.txt"),
        "redis": $(rate_of "$WORK/d-redis.txt"),
        "redis_cluster_3x2": $(rate_of "$WORK/d-cluster.txt"),
    },
    "import_events_per_second": {"redis": $REF_RATE, "redis_cluster_3x2": $CLUSTER_IMPORT},
    "nats_ingest": {"events": $NATS_APPLIED, "events_per_second": $NATS_RATE,
                    "ratio_to_import": round($NATS_RATE / $REF_RATE, 2)},
}
json.dump(result, open(sys.argv[1], "w"), indent=2)
print(json.dumps(result, indent=2))
PY
