#!/usr/bin/env bash
# Installs what is missing and runs the gateway on this machine with the default ports:
#   Redis          127.0.0.1:6379   AOF on, appendfsync always, data in ./data/redis
#   ControlPlane   127.0.0.1:50051  gRPC (h2c), reflection and grpc.health.v1
#                  127.0.0.1:50052  HTTP/JSON, /healthz, /metrics
#   PolicyDaemon   127.0.0.1:10040 (policy), 127.0.0.1:10041 (socketmap), 127.0.0.1:10042 (/healthz, /metrics)
#   Deliverer      127.0.0.1:10025  SMTP intake; 127.0.0.1:10026 (/healthz, /metrics)
#   rspamd, clamd  127.0.0.1:11333 (controller 11334), 127.0.0.1:3310: the scanning engines (scripts/scanners.sh)
# and, unless --no-demo, the newcomer demo (scripts/demo-postfix.sh; needs root or sudo):
#   Postfix        127.0.0.1:2525   a private instance from deploy/postfix wired to the programs
#   SMTP sink      127.0.0.1:2526   stands in for a customer's mail server; messages land in ./data/sink
#                                   (so the demo allows inbound servers on loopback: Gateway:AllowLoopbackDestinations)
# Runs in the foreground; Ctrl-C stops everything. With --background it returns once all is up,
# and scripts/stop.sh stops it. --no-build skips the build (the Release binaries must exist).
# Environment: GATEWAY_DATA (default ./data), the ports GATEWAY_REDIS_PORT, GATEWAY_GRPC_PORT, GATEWAY_HTTP_PORT,
# GATEWAY_POLICY_PORT, GATEWAY_SOCKETMAP_PORT, GATEWAY_POLICY_HTTP_PORT, GATEWAY_INTAKE_PORT,
# GATEWAY_DELIVERER_HTTP_PORT, GATEWAY_SMTP_PORT, GATEWAY_SINK_PORT, GATEWAY_RSPAMD_PORT, GATEWAY_RSPAMD_CONTROLLER_PORT,
# GATEWAY_CLAMD_PORT, GATEWAY_RSPAMD_REDIS_PORT, GATEWAY_RSPAMD_DNS (see scripts/scanners.sh), GATEWAY_CONFIGURATION (Release),
# GATEWAY_REDIS_CLUSTER=1 (a 3-master Redis Cluster on GATEWAY_REDIS_PORT and the next two ports), and any
# Gateway__* setting (e.g. Gateway__OperatorKey, Gateway__GatewayDomain).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BACKGROUND=0
DEMO=1
BUILD=1
for arg in "$@"; do
  case "$arg" in
    --background) BACKGROUND=1 ;;
    --no-demo) DEMO=0 ;;
    --no-build) BUILD=0 ;;
    *) echo "usage: $0 [--background] [--no-demo] [--no-build]" >&2; exit 2 ;;
  esac
done

DATA=${GATEWAY_DATA:-$ROOT/data}
export GATEWAY_DATA=$DATA
REDIS_PORT=${GATEWAY_REDIS_PORT:-6379}
GRPC_PORT=${GATEWAY_GRPC_PORT:-50051}
HTTP_PORT=${GATEWAY_HTTP_PORT:-50052}
POLICY_PORT=${GATEWAY_POLICY_PORT:-10040}
SOCKETMAP_PORT=${GATEWAY_SOCKETMAP_PORT:-10041}
POLICY_HTTP_PORT=${GATEWAY_POLICY_HTTP_PORT:-10042}
INTAKE_PORT=${GATEWAY_INTAKE_PORT:-10025}
DELIVERER_HTTP_PORT=${GATEWAY_DELIVERER_HTTP_PORT:-10026}
SMTP_PORT=${GATEWAY_SMTP_PORT:-2525}
SINK_PORT=${GATEWAY_SINK_PORT:-2526}
export GATEWAY_POLICY_PORT=$POLICY_PORT GATEWAY_SOCKETMAP_PORT=$SOCKETMAP_PORT GATEWAY_INTAKE_PORT=$INTAKE_PORT \
  GATEWAY_SMTP_PORT=$SMTP_PORT GATEWAY_SINK_PORT=$SINK_PORT
CONFIGURATION=${GATEWAY_CONFIGURATION:-Release}
mkdir -p "$DATA/redis" "$DATA/logs" "$DATA/run"

# Every failing step says so on the terminal, with the lines of its log that tell why (no silent exit 1).
show_log() { # log-file [pattern]
  [ -f "$1" ] || return 0
  echo "       from $1:" >&2
  { grep -E "${2:-fatal|panic|[Ee]rror|[Ee]xception|crit|Permission denied|Address already in use}" "$1" || tail -n 5 "$1"; } \
    | tail -n 8 | sed 's/^/       /' >&2
}
trap 'status=$?; echo "error: scripts/run.sh stopped at line $LINENO: \"$BASH_COMMAND\" failed (exit $status)" >&2; exit $status' ERR

scripts/install-deps.sh
if [ "$BUILD" = 1 ]; then
  echo "Building ($CONFIGURATION)..."
  # The four programs and what they use (scripts/programs.slnf), not the test projects.
  if ! dotnet build scripts/programs.slnf -c "$CONFIGURATION" -nologo -v quiet -clp:ErrorsOnly >"$DATA/logs/build.log" 2>&1; then
    echo "error: the build failed" >&2
    show_log "$DATA/logs/build.log" ': error |error:'
    exit 1
  fi
fi
if [ "$DEMO" = 1 ] && [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "note: the demo Postfix needs root (or sudo); starting without it (--no-demo)" >&2
  DEMO=0
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
running() { [ -f "$DATA/run/$1.pid" ] && kill -0 "$(cat "$DATA/run/$1.pid")" 2>/dev/null; }
wait_port() { # port what log-file [pid-name]: waits for the listener; on failure says why, from the log
  for _ in $(seq 1 300); do
    port_open "$1" && return 0
    if [ -n "${4:-}" ] && ! running "$4"; then
      echo "error: $2 stopped before listening on 127.0.0.1:$1" >&2
      show_log "$3"
      exit 1
    fi
    sleep 0.1
  done
  echo "error: $2: nothing listens on 127.0.0.1:$1 after 30 s" >&2
  show_log "$3"
  exit 1
}

# Redis: ours, with AOF, so that a 250 from the Deliverer means the message is on disk, and a password (kept 0600 in
# $DATA/redis.password, made at first start), so that a local process cannot rewrite the gateway's data (security review
# M13; production uses deploy/redis's ACL users). redis-cli needs it: redis-cli -p PORT -a "$(cat data/redis.password)".
REDIS_PASSWORD_FILE="$DATA/redis.password"
if [ ! -s "$REDIS_PASSWORD_FILE" ]; then
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$REDIS_PASSWORD_FILE")
fi
REDIS_PASSWORD=$(cat "$REDIS_PASSWORD_FILE")
rcli() { REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli "$@"; }
# A Redis an earlier run.sh started without a password gets one now (until it restarts, then from the command line).
protect_running_redis() { # port
  if [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ]; then
    redis-cli -p "$1" CONFIG SET masterauth "$REDIS_PASSWORD" >/dev/null
    redis-cli -p "$1" CONFIG SET requirepass "$REDIS_PASSWORD" >/dev/null
  fi
}
if [ "${GATEWAY_REDIS_CLUSTER:-0}" = 1 ]; then
  # A Redis Cluster of three masters on GATEWAY_REDIS_PORT and the next two ports (docs/reliability.md).
  CLUSTER_PORTS=("$REDIS_PORT" $((REDIS_PORT + 1)) $((REDIS_PORT + 2)))
  for p in "${CLUSTER_PORTS[@]}"; do
    if running "redis-cluster-$p"; then protect_running_redis "$p"; continue; fi
    if port_open "$p"; then echo "error: 127.0.0.1:$p is taken; choose GATEWAY_REDIS_PORT." >&2; exit 1; fi
    mkdir -p "$DATA/redis-cluster/$p"
    redis-server --port "$p" --bind 127.0.0.1 --dir "$DATA/redis-cluster/$p" --cluster-enabled yes --cluster-config-file nodes.conf \
      --appendonly yes --appendfsync always --save "" --requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD" \
      --daemonize yes --pidfile "$DATA/run/redis-cluster-$p.pid" --logfile "$DATA/logs/redis-cluster-$p.log"
  done
  for p in "${CLUSTER_PORTS[@]}"; do wait_port "$p" "Redis" "$DATA/logs/redis-cluster-$p.log"; done
  if ! rcli -p "$REDIS_PORT" CLUSTER INFO | grep -q 'cluster_state:ok'; then
    if [ "$(rcli -p "$REDIS_PORT" CLUSTER INFO | grep -o 'cluster_known_nodes:[0-9]*' | cut -d: -f2)" = 1 ]; then
      rcli --cluster create "${CLUSTER_PORTS[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >/dev/null
    fi
    for _ in $(seq 1 300); do rcli -p "$REDIS_PORT" CLUSTER INFO | grep -q 'cluster_state:ok' && break; sleep 0.1; done
  fi
  export Gateway__Redis="${Gateway__Redis:-$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}" | sed 's/,$//'),password=$REDIS_PASSWORD}"
  echo "Redis Cluster on 127.0.0.1:${CLUSTER_PORTS[*]} (3 masters, AOF, appendfsync always) with data in $DATA/redis-cluster"
  REDIS_SUMMARY="cluster 127.0.0.1:${CLUSTER_PORTS[*]}           data: $DATA/redis-cluster"
elif running redis; then
  protect_running_redis "$REDIS_PORT"
  echo "Redis already running (pid $(cat "$DATA/run/redis.pid"))"
elif port_open "$REDIS_PORT"; then
  echo "error: 127.0.0.1:$REDIS_PORT is taken by another Redis or program." >&2
  echo "       Stop it (service redis-server stop) or choose GATEWAY_REDIS_PORT=6380." >&2
  exit 1
else
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" \
    --appendonly yes --appendfsync always --save "" --requirepass "$REDIS_PASSWORD" \
    --daemonize yes --pidfile "$DATA/run/redis.pid" --logfile "$DATA/logs/redis.log"
  wait_port "$REDIS_PORT" "Redis" "$DATA/logs/redis.log"
  echo "Redis on 127.0.0.1:$REDIS_PORT (AOF, appendfsync always) with data in $DATA/redis"
fi

export Gateway__Redis="${Gateway__Redis:-127.0.0.1:$REDIS_PORT,password=$REDIS_PASSWORD}"
REDIS_SUMMARY=${REDIS_SUMMARY:-"127.0.0.1:$REDIS_PORT                              data: $DATA/redis, password: $REDIS_PASSWORD_FILE"}
export Gateway__OperatorKeyFile="${Gateway__OperatorKeyFile:-$DATA/operator.key}"
# The DKIM keys' key-encryption key: generated by the ControlPlane at first start, read by the Deliverer (docs/outbound.md).
export Gateway__Secrets__KeyFile="${Gateway__Secrets__KeyFile:-$DATA/secrets.key}"
export DOTNET_NOLOGO=1
if [ "$DEMO" = 1 ]; then
  # The demo's customer server is the sink on 127.0.0.1: allow loopback destinations (off by default, so a tenant
  # cannot make the Deliverer, TestConnection or the health checks reach services on the gateway host; the
  # addresses are checked after name resolution, docs/reliability.md "Hostile tenant").
  export Gateway__AllowLoopbackDestinations="${Gateway__AllowLoopbackDestinations:-true}"
  # The demo Postfix is also the outbound listener customers' servers relay to.
  export Gateway__OutboundRelayHost="${Gateway__OutboundRelayHost:-127.0.0.1:$SMTP_PORT}"
fi

start() { # name dll args...
  local name=$1 dll=$2
  shift 2
  if running "$name"; then echo "$name already running (pid $(cat "$DATA/run/$name.pid"))"; return; fi
  nohup dotnet "$dll" "$@" >"$DATA/logs/$name.log" 2>&1 &
  echo $! >"$DATA/run/$name.pid"
}
BIN=bin/$CONFIGURATION/net10.0
start controlplane "src/ControlPlane/$BIN/Gateway.ControlPlane.dll" \
  --urls "http://127.0.0.1:$GRPC_PORT" --ControlPlane:HttpUrl="http://127.0.0.1:$HTTP_PORT"
start policydaemon "src/PolicyDaemon/$BIN/Gateway.PolicyDaemon.dll" \
  --PolicyDaemon:PolicyEndpoint="127.0.0.1:$POLICY_PORT" --PolicyDaemon:SocketmapEndpoint="127.0.0.1:$SOCKETMAP_PORT" \
  --PolicyDaemon:HttpUrl="http://127.0.0.1:$POLICY_HTTP_PORT" --PolicyDaemon:DelivererNextHop="smtp:[127.0.0.1]:$INTAKE_PORT" \
  --Gateway:LineageFile="$DATA/run/policydaemon.lineage"
# A program that cannot start is reported now, before the engines take their time to start.
wait_port "$GRPC_PORT" "the ControlPlane" "$DATA/logs/controlplane.log" controlplane
wait_port "$POLICY_PORT" "the PolicyDaemon" "$DATA/logs/policydaemon.log" policydaemon
# The intake scans every message before its 250 (docs/protection.md): the engines come first.
scripts/scanners.sh start
start deliverer "src/Deliverer/$BIN/Gateway.Deliverer.dll" \
  --Gateway:Deliverer:Listen="127.0.0.1:$INTAKE_PORT" --Gateway:Deliverer:HttpUrl="http://127.0.0.1:$DELIVERER_HTTP_PORT" \
  --Gateway:Protection:RspamdUrls:0="http://127.0.0.1:${GATEWAY_RSPAMD_PORT:-11333}" \
  --Gateway:Protection:ClamdServers:0="127.0.0.1:${GATEWAY_CLAMD_PORT:-3310}" \
  --Gateway:LineageFile="$DATA/run/deliverer.lineage"
wait_port "$INTAKE_PORT" "the Deliverer" "$DATA/logs/deliverer.log" deliverer
if [ "$DEMO" = 1 ]; then
  if ! scripts/demo-postfix.sh start; then
    echo "error: the newcomer demo did not start (see above); scripts/run.sh --no-demo runs without it" >&2
    exit 1
  fi
  wait_port "$SMTP_PORT" "the demo Postfix" "$DATA/postfix/maillog"
  wait_port "$SINK_PORT" "the demo SMTP sink" "$DATA/logs/sink.log" sink
fi
if [ -z "${Gateway__OperatorKey:-}" ]; then
  for _ in $(seq 1 100); do [ -s "$Gateway__OperatorKeyFile" ] && break; sleep 0.1; done
fi

cat <<INFO

The gateway is running.
  ControlPlane  127.0.0.1:$GRPC_PORT (gRPC, h2c; reflection on)   log: $DATA/logs/controlplane.log
                127.0.0.1:$HTTP_PORT (HTTP/JSON, curl; /healthz, /metrics)
  PolicyDaemon  127.0.0.1:$POLICY_PORT, :$SOCKETMAP_PORT; :$POLICY_HTTP_PORT (/healthz, /metrics)   log: $DATA/logs/policydaemon.log
  Deliverer     127.0.0.1:$INTAKE_PORT; :$DELIVERER_HTTP_PORT (/healthz, /metrics)   log: $DATA/logs/deliverer.log
  Scanners      rspamd 127.0.0.1:${GATEWAY_RSPAMD_PORT:-11333} (controller :${GATEWAY_RSPAMD_CONTROLLER_PORT:-11334}), clamd 127.0.0.1:${GATEWAY_CLAMD_PORT:-3310}   state: $(cat "$DATA/run/scanners.dir")
  Redis         $REDIS_SUMMARY
INFO
if [ "$DEMO" = 1 ]; then
  cat <<INFO
  Postfix       127.0.0.1:$SMTP_PORT (demo, from deploy/postfix)     log: $DATA/postfix/maillog
  SMTP sink     127.0.0.1:$SINK_PORT (the customer's server)      messages: $DATA/sink/
  Next: the newcomer path in README.md ("See it work").
INFO
fi
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
LOGS=("$DATA/logs/controlplane.log" "$DATA/logs/policydaemon.log" "$DATA/logs/deliverer.log")
if [ "$DEMO" = 1 ]; then LOGS+=("$DATA/postfix/maillog"); fi
tail -n 0 -F "${LOGS[@]}" &
wait
