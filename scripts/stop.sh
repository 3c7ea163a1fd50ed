#!/usr/bin/env bash
# Stops what scripts/run.sh started (the programs first, then Redis, which flushes its AOF).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${GATEWAY_DATA:-$ROOT/data}
export GATEWAY_DATA=$DATA
# The demo (private Postfix and sink) first: Postfix hands mail to the Deliverer.
if [ -d "$DATA/postfix" ] || [ -f "$DATA/run/sink.pid" ]; then
  "$ROOT/scripts/demo-postfix.sh" stop
fi
for name in deliverer policydaemon controlplane; do
  pidfile="$DATA/run/$name.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
    kill "$(cat "$pidfile")" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    echo "stopped $name"
  fi
  rm -f "$pidfile"
done
# The scanning engines once nothing asks them any more.
if [ -f "$DATA/run/scanners.dir" ]; then
  GATEWAY_SCANNERS_DIR=$(cat "$DATA/run/scanners.dir") "$ROOT/scripts/scanners.sh" stop
fi
for pidfile in "$DATA/run/redis.pid" "$DATA"/run/redis-cluster-*.pid; do
  [ -f "$pidfile" ] || continue
  redis_pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
    kill "$redis_pid"
    for _ in $(seq 1 50); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
    echo "stopped $(basename "$pidfile" .pid)"
  fi
  rm -f "$pidfile"
done
