#!/usr/bin/env bash
# Installs what is missing and runs the gateway on this machine with the default ports:
#   Redis          127.0.0.1:6379   AOF on, appendfsync always, data in ./data/redis
#   ControlPlane   127.0.0.1:50051  gRPC (h2c), reflection and grpc.health.v1; 127.0.0.1:50052 HTTP/JSON
#   PolicyDaemon   127.0.0.1:10040 (policy), 127.0.0.1:10041 (socketmap)
#   Deliverer      127.0.0.1:10025  SMTP intake
# Runs in the foreground; Ctrl-C stops everything. With --background it returns once all is up,
# and scripts/stop.sh stops it. Environment: GATEWAY_DATA (default ./data), GATEWAY_REDIS_PORT,
# and any Gateway__* setting (e.g. Gateway__OperatorKey, Gateway__GatewayDomain).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BACKGROUND=0
[ "${1:-}" = "--background" ] && BACKGROUND=1

DATA=${GATEWAY_DATA:-$ROOT/data}
REDIS_PORT=${GATEWAY_REDIS_PORT:-6379}
mkdir -p "$DATA/redis" "$DATA/logs" "$DATA/run"

scripts/install-deps.sh
echo "Building (Release)..."
dotnet build Gateway.sln -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 300); do port_open "$1" && return 0; sleep 0.1; done
  echo "error: nothing listens on 127.0.0.1:$1 after 30 s; see $DATA/logs" >&2; return 1
}
running() { [ -f "$DATA/run/$1.pid" ] && kill -0 "$(cat "$DATA/run/$1.pid")" 2>/dev/null; }

# Redis: ours, with AOF, so that a 250 from the Deliverer means the message is on disk.
if running redis; then
  echo "Redis already running (pid $(cat "$DATA/run/redis.pid"))"
elif port_open "$REDIS_PORT"; then
  echo "error: 127.0.0.1:$REDIS_PORT is taken by another Redis or program." >&2
  echo "       Stop it (service redis-server stop) or choose GATEWAY_REDIS_PORT=6380." >&2
  exit 1
else
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" \
    --appendonly yes --appendfsync always --save "" \
    --daemonize yes --pidfile "$DATA/run/redis.pid" --logfile "$DATA/logs/redis.log"
  wait_port "$REDIS_PORT"
  echo "Redis on 127.0.0.1:$REDIS_PORT (AOF, appendfsync always) with data in $DATA/redis"
fi

export Gateway__Redis="${Gateway__Redis:-127.0.0.1:$REDIS_PORT}"
export Gateway__OperatorKeyFile="${Gateway__OperatorKeyFile:-$DATA/operator.key}"
export DOTNET_NOLOGO=1

start() { # name dll
  if running "$1"; then echo "$1 already running (pid $(cat "$DATA/run/$1.pid"))"; return; fi
  nohup dotnet "$2" >"$DATA/logs/$1.log" 2>&1 &
  echo $! >"$DATA/run/$1.pid"
}
start controlplane src/ControlPlane/bin/Release/net10.0/Gateway.ControlPlane.dll
start policydaemon src/PolicyDaemon/bin/Release/net10.0/Gateway.PolicyDaemon.dll
start deliverer src/Deliverer/bin/Release/net10.0/Gateway.Deliverer.dll

wait_port 50051
if [ -z "${Gateway__OperatorKey:-}" ]; then
  for _ in $(seq 1 100); do [ -s "$Gateway__OperatorKeyFile" ] && break; sleep 0.1; done
fi

cat <<INFO

The gateway is running.
  ControlPlane  127.0.0.1:50051 (gRPC, h2c; reflection on)   log: $DATA/logs/controlplane.log
                127.0.0.1:50052 (HTTP/JSON, curl)
  PolicyDaemon                                               log: $DATA/logs/policydaemon.log
  Deliverer                                                  log: $DATA/logs/deliverer.log
  Redis         127.0.0.1:$REDIS_PORT                              data: $DATA/redis
INFO
if [ -n "${Gateway__OperatorKey:-}" ]; then
  echo "  Operator key: from Gateway__OperatorKey"
elif [ -s "$Gateway__OperatorKeyFile" ]; then
  echo "  Operator key: in $Gateway__OperatorKeyFile (owner-only; generated at first start)"
else
  echo "  Operator key: generated earlier and not in $Gateway__OperatorKeyFile; see $DATA/logs/controlplane.log"
fi
echo

if [ "$BACKGROUND" = 1 ]; then
  echo "Stop with scripts/stop.sh"
  exit 0
fi

trap 'echo; scripts/stop.sh; exit 0' INT TERM
echo "Ctrl-C stops the gateway. Following the logs:"
tail -n 0 -F "$DATA/logs/controlplane.log" "$DATA/logs/policydaemon.log" "$DATA/logs/deliverer.log" &
wait
