# Shared by the load-test scripts: a release build, a private redis-server on a free port,
# and the service started against it. Source it; it cleans up on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# PREBUILT=DIR takes the binaries (touchpoint, loadgen, reference_server) from DIR instead
# of building this checkout: to compare two builds on one machine, or to edit the checkout
# while a load test runs.
build() {
  if [ -n "${PREBUILT:-}" ]; then
    TOUCHPOINT="$PREBUILT/touchpoint" LOADGEN="$PREBUILT/loadgen"
    REFERENCE_SERVER="$PREBUILT/reference_server"
    return
  fi
  cargo build --release --quiet --bin touchpoint --example loadgen --example reference_server
  TOUCHPOINT="$ROOT/target/release/touchpoint"
  LOADGEN="$ROOT/target/release/examples/loadgen"
  REFERENCE_SERVER="$ROOT/target/release/examples/reference_server"
}

start_redis() {
  REDIS_PORT="$(free_port)"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$WORK" --daemonize no >"$WORK/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
}

# start_service [extra env assignments...]
start_service() {
  SERVICE_PORT="$(free_port)"
  env "$@" TOUCHPOINT__STORE__REDIS_URL="$REDIS_URL" TOUCHPOINT__LOG__LEVEL=warn \
    "$TOUCHPOINT" serve --bind "127.0.0.1:$SERVICE_PORT" >"$WORK/service.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$SERVICE_PORT/readyz" >/dev/null && break; sleep 0.05; done
  curl -sf "http://127.0.0.1:$SERVICE_PORT/readyz" >/dev/null || { cat "$WORK/service.log"; exit 1; }
  SERVICE="http://127.0.0.1:$SERVICE_PORT"
}
