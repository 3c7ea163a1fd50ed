#!/usr/bin/env bash
# PolicyDaemon benchmark (issue 3), one command from a clean checkout:
#
#   bench/policy/run.sh
#
# Measures Postfix policy delegation throughput (req/s) and latency (p50/p99) at 1, 8 and 64 persistent
# connections with 10 and 100,000 managed domains, for three servers in the same run:
#   trivial  a Kestrel server that answers action=DUNNO without work: the ceiling of generator + machine;
#   daemon   the PolicyDaemon (Release build) with its default settings, deciding from its snapshot;
#   postfwd  Debian's postfwd2 configured for the same domain check (installed here if missing).
# The generator (PolicyBench load) sends Postfix 3.7 RCPT requests, half for managed domains, and checks
# every reply. Everything runs on 127.0.0.1 free ports with a private redis-server; nothing is left behind.
#
# Each trivial/daemon measurement is repeated REPEAT times, interleaved, and the report shows medians
# (postfwd, far slower, runs once per configuration). Results: bench/policy/results/<UTC time>.md/.jsonl.
#
# Knobs (environment): DURATION=10 WARMUP=3 REPEAT=3 CONNECTIONS="1 8 64" DOMAIN_COUNTS="10 100000"
#   SERVERS="trivial daemon postfwd" POSTFWD_DURATION=$DURATION OUT=bench/policy/results
#   DOMAIN_AB=1: instead of the phases, two daemons at once (10 and 100,000 domains, each on its own Redis),
#   measured alternately per concurrency, so drift of the machine between phases cannot pass for lookup cost.
#   DAEMON_HTTP_URL (empty: no /metrics listener, so no metrics listener on the instruments either;
#   http://127.0.0.1:0 measures the daemon with its Prometheus export on)
#   BASELINE_DLL=/path/Gateway.PolicyDaemon.dll: a second daemon built from another revision runs against the same Redis
#   and is measured interleaved with this one as "daemon-baseline" (bench/compare.sh builds it from a git revision).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
REPEAT=${REPEAT:-3}
CONNECTIONS=${CONNECTIONS:-"1 8 64"}
DOMAIN_COUNTS=${DOMAIN_COUNTS:-"10 100000"}
SERVERS=${SERVERS:-"trivial daemon postfwd"}
POSTFWD_DURATION=${POSTFWD_DURATION:-$DURATION}
OUT=${OUT:-$ROOT/bench/policy/results}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
WORK=$(mktemp -d /tmp/gw-bench-XXXXXX)
chmod 755 "$WORK"
RESULTS=$OUT/$STAMP.jsonl
REPORT=$OUT/$STAMP.md
mkdir -p "$OUT"

REDIS_PID="" DAEMON_PID="" TRIVIAL_PID="" EXTRA_PIDS=()
cleanup() {
  set +e
  for p in "${EXTRA_PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
  [ -n "$TRIVIAL_PID" ] && kill "$TRIVIAL_PID" 2>/dev/null && wait "$TRIVIAL_PID" 2>/dev/null
  stop_postfwd
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

# --- dependencies -------------------------------------------------------------------------------
scripts/install-deps.sh
if ! command -v postfwd2 >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "installing postfwd"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postfwd >/dev/null
fi

log "building (Release)"
dotnet build -c Release -v q -nologo src/PolicyDaemon/PolicyDaemon.csproj >/dev/null
dotnet build -c Release -v q -nologo bench/policy/PolicyBench/PolicyBench.csproj >/dev/null
BENCH=(dotnet "$ROOT/bench/policy/PolicyBench/bin/Release/net10.0/PolicyBench.dll")
DAEMON_DLL=$ROOT/src/PolicyDaemon/bin/Release/net10.0/Gateway.PolicyDaemon.dll

port() { "${BENCH[@]}" freeport; }
wait_port() {
  for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  log "nothing listens on port $1"; return 1
}

# --- machine -------------------------------------------------------------------------------------
{
  echo "# PolicyDaemon benchmark run $STAMP"
  echo
  echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GB RAM"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- each run: $WARMUP s warm-up, then $DURATION s measured (postfwd: $POSTFWD_DURATION s); trivial and daemon runs repeated $REPEAT times, interleaved; connections: $CONNECTIONS"
  echo "- $(dotnet --version | sed 's/^/.NET SDK /'), $(postconf -d mail_version 2>/dev/null | sed 's/mail_version = /Postfix /'), postfwd2 $(dpkg-query -W -f='${Version}' postfwd 2>/dev/null)"
  echo
} > "$REPORT"

# --- Redis ---------------------------------------------------------------------------------------
REDIS_PORT=$(port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" --logfile "$WORK/redis.log" &
REDIS_PID=$!
wait_port "$REDIS_PORT"
REDIS=127.0.0.1:$REDIS_PORT

start_daemon() {
  local label=$1 dll=${2:-$DAEMON_DLL}
  DAEMON_PORT=$(port); local sm; sm=$(port)
  dotnet "$dll" --Gateway:Redis="$REDIS" \
    --PolicyDaemon:PolicyEndpoint="127.0.0.1:$DAEMON_PORT" --PolicyDaemon:SocketmapEndpoint="127.0.0.1:$sm" --PolicyDaemon:HttpUrl="${DAEMON_HTTP_URL:-}" \
    --Gateway:ProviderRanges:RefreshInterval=00:00:00 \
    --Logging:LogLevel:Default=Warning --Logging:LogLevel:Gateway.Core.Snapshot=Information \
    >"$WORK/daemon-$label.log" 2>&1 &
  DAEMON_PID=$!
  wait_port "$DAEMON_PORT"
  for _ in $(seq 1 600); do grep -q "Snapshot loaded" "$WORK/daemon-$label.log" && break; sleep 0.1; done
  local loaded; loaded=$(grep -o "Snapshot loaded: .*" "$WORK/daemon-$label.log" | head -1)
  log "daemon: $loaded"
  echo "- PolicyDaemon start ($label): $loaded" >> "$REPORT"
}
stop_daemon() { kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=""; }

# postfwd2 forks a cache and a pre-forking policy server; --kill stops all of them by the pid file.
# Logging off (--perfmon): its fastest mode, and its -L would write log lines into the client socket.
# Request cache off (-c 0): the generator repeats requests, a cache would measure the cache.
start_postfwd() {
  local names=$1
  POSTFWD_PORT=$(port)
  cat > "$WORK/postfwd.cf" <<RULES
id=INBOUND; protocol_state==RCPT; recipient_domain==file:$names; action=OK
id=NODOMAIN; protocol_state==RCPT; action=REJECT NO-DOMAIN
RULES
  chmod 644 "$WORK/postfwd.cf" "$names"
  local started=$SECONDS
  postfwd2 -u nobody -g nogroup -f "$WORK/postfwd.cf" -i 127.0.0.1 -p "$POSTFWD_PORT" \
    --pidfile "$WORK/postfwd.pid" --cache_proto unix --cache_port "$WORK/postfwd-cache.sock" \
    -c 0 --no_parent_cache -n --perfmon --noidlestats --norulestats \
    --min_servers 8 --max_servers 80 --min_spare_servers 2 --max_spare_servers 20 2>/dev/null
  wait_port "$POSTFWD_PORT"
  echo "- postfwd start with $(wc -l < "$names") domains: $((SECONDS - started)) s" >> "$REPORT"
}
stop_postfwd() {
  if [ -f "$WORK/postfwd.pid" ]; then
    local pid; pid=$(cat "$WORK/postfwd.pid")
    postfwd2 --kill --pidfile "$WORK/postfwd.pid" >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$POSTFWD_PORT") 2>/dev/null || break; sleep 0.1; done
    rm -f "$WORK/postfwd.pid"
  fi
}

TRIVIAL_PORT=$(port)
"${BENCH[@]}" trivial --listen "127.0.0.1:$TRIVIAL_PORT" >"$WORK/trivial.log" 2>&1 &
TRIVIAL_PID=$!
wait_port "$TRIVIAL_PORT"

run_load() {
  local server=$1 port=$2 domains=$3 conns=$4 duration=$5; shift 5
  log "load: $server, $domains domains, $conns connections"
  "${BENCH[@]}" load --target "127.0.0.1:$port" --server "$server" --domains "$domains" --connections "$conns" \
    --warmup "$WARMUP" --duration "$duration" --out "$RESULTS" "$@" >/dev/null || { log "load run reported reply errors (see $RESULTS)"; FAILED=1; }
}

FAILED=0
if [ -n "${DOMAIN_AB:-}" ]; then
  # A/B mode: 100,000 domains in the first Redis, 10 in a second one; both daemons run for the whole measurement.
  REDIS_B_PORT=$(port)
  redis-server --port "$REDIS_B_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" --dbfilename b.rdb --logfile "$WORK/redis-b.log" &
  EXTRA_PIDS+=($!)
  wait_port "$REDIS_B_PORT"
  log "seeding 100000 and 10 managed domains"
  "${BENCH[@]}" seed --redis "$REDIS" --to 100000 --names "$WORK/domains-100000.txt" 2>>"$REPORT.seed"
  "${BENCH[@]}" seed --redis "127.0.0.1:$REDIS_B_PORT" --to 10 --names "$WORK/domains-10.txt" 2>>"$REPORT.seed"
  start_daemon 100000; PORT_BIG=$DAEMON_PORT; EXTRA_PIDS+=("$DAEMON_PID"); DAEMON_PID=""
  REDIS_MAIN=$REDIS; REDIS=127.0.0.1:$REDIS_B_PORT
  start_daemon 10; PORT_SMALL=$DAEMON_PORT; EXTRA_PIDS+=("$DAEMON_PID"); DAEMON_PID=""; REDIS=$REDIS_MAIN
  echo "- A/B mode: both daemons up at once, alternating runs" >> "$REPORT"
  for conns in $CONNECTIONS; do
    for _ in $(seq 1 "$REPEAT"); do
      run_load trivial "$TRIVIAL_PORT" 10 "$conns" "$DURATION" --all DUNNO
      run_load daemon "$PORT_SMALL" 10 "$conns" "$DURATION"
      run_load trivial "$TRIVIAL_PORT" 100000 "$conns" "$DURATION" --all DUNNO
      run_load daemon "$PORT_BIG" 100000 "$conns" "$DURATION"
    done
  done
  DOMAIN_COUNTS=""
fi
for domains in $DOMAIN_COUNTS; do
  log "seeding $domains managed domains through the domain layer"
  "${BENCH[@]}" seed --redis "$REDIS" --to "$domains" --names "$WORK/domains-$domains.txt" 2>>"$REPORT.seed"
  BASE_PORT=""
  if [ -n "${BASELINE_DLL:-}" ]; then
    start_daemon "$domains-baseline" "$BASELINE_DLL"; BASE_PORT=$DAEMON_PORT; BASE_PID=$DAEMON_PID; DAEMON_PID=""
  fi
  [[ " $SERVERS " == *" daemon "* ]] && start_daemon "$domains"
  [[ " $SERVERS " == *" postfwd "* ]] && start_postfwd "$WORK/domains-$domains.txt"
  echo "- $("${BENCH[@]}" loadtime --redis "$REDIS" --rounds 1)" >> "$REPORT"
  for conns in $CONNECTIONS; do
    # Interleaved per concurrency, so background load from other work hits all servers alike.
    for _ in $(seq 1 "$REPEAT"); do
      [[ " $SERVERS " == *" trivial "* ]] && run_load trivial "$TRIVIAL_PORT" "$domains" "$conns" "$DURATION" --all DUNNO
      [[ " $SERVERS " == *" daemon "* ]] && run_load daemon "$DAEMON_PORT" "$domains" "$conns" "$DURATION"
      [ -n "$BASE_PORT" ] && run_load daemon-baseline "$BASE_PORT" "$domains" "$conns" "$DURATION"
    done
    [[ " $SERVERS " == *" postfwd "* ]] && run_load postfwd "$POSTFWD_PORT" "$domains" "$conns" "$POSTFWD_DURATION"
  done
  [ -n "$DAEMON_PID" ] && stop_daemon
  if [ -n "$BASE_PORT" ]; then kill "$BASE_PID"; wait "$BASE_PID" 2>/dev/null || true; fi
  stop_postfwd
done

{
  [ -f "$REPORT.seed" ] && sed 's/^/- /' "$REPORT.seed"
  echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  "${BENCH[@]}" report --in "$RESULTS"
} >> "$REPORT"
rm -f "$REPORT.seed"
cat "$REPORT"
log "results: $REPORT (raw: $RESULTS)"
exit $FAILED
