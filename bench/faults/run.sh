#!/usr/bin/env bash
# Fault benchmark, one command: bench/faults/run.sh [N]   (docs/reliability.md)
# Sends N messages (default 20,000), each with a unique token, through a private Postfix (deploy/postfix) into
# the gateway: 2 PolicyDaemons (one per Postfix listener), 2 Deliverers (Postfix's next hop is both intakes),
# the ControlPlane, Redis with AOF and appendfsync always; all Release builds as their own processes. Meanwhile:
#   (1) every KILL_EVERY seconds (5) a random Deliverer gets SIGKILL and is started again on its port, while the
#       messages are sent and KILL_AFTER seconds (30) more, as long as Postfix still holds mail for the gateway;
#   (2) Redis is killed (SIGKILL) and restarted from its AOF once, when REDIS_AT % (50) of the messages are sent;
#   (3) the only host of flap.test refuses connections for FLAP_FOR seconds (20) from FLAP_AT % (20), then accepts.
# Then it waits until Postfix's queue and the gateway's queue are empty and counts, by token, at the sinks
# (smtp-sink, one file per message): sent (accepted by Postfix) / delivered / duplicated / lost, and checks that
# none of the messages Postfix had to refuse (unmanaged domain; outbound from a client that is not a source of
# the sender's domain) arrived anywhere. Exit code 1 if lost > 0 or a refused message arrived.
# Everything is on 127.0.0.x with free ports in a temporary folder (KEEP=1 keeps it) and is stopped at the end.
# Needs root (Postfix's master runs as root) and the packages of scripts/install-deps.sh.
set -euo pipefail
# The whole script is one compound command: bash reads it completely before running it, so editing this file
# during a run (they take minutes) cannot change the running script.
{
N=${1:-${N:-20000}}
SESSIONS=${SESSIONS:-8}
KILL_EVERY=${KILL_EVERY:-5}
REDIS_AT=${REDIS_AT:-50}
FLAP_AT=${FLAP_AT:-20}
FLAP_FOR=${FLAP_FOR:-20}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-900}
KILL_AFTER=${KILL_AFTER:-30}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/gw-faults.XXXXXX)
chmod 755 "$WORK"
RUN=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$ROOT/bench/faults/results
mkdir -p "$RESULTS"
PF=$WORK/postfix
PIDFILE=$WORK/pids # every process this script starts (the chaos loop restarts some in its own subshell)
: > "$PIDFILE"
track() { echo "$1" >> "$PIDFILE"; }

cleanup() {
  [ -n "${CHAOS_PID:-}" ] && kill "$CHAOS_PID" 2>/dev/null || true
  postfix -c "$PF/conf" stop >/dev/null 2>&1 || true
  while read -r p; do kill "$p" 2>/dev/null || true; done < "$PIDFILE"
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "work folder kept: $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { echo "missing $1 (scripts/install-deps.sh installs it)" >&2; exit 1; }; }
need smtp-sink; need postfix; need postconf; need redis-server; need redis-cli; need python3; need dotnet
[ "$(id -u)" -eq 0 ] || { echo "run as root: Postfix's master must start as root" >&2; exit 1; }

freeport() { python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1]); s.close()' "${1:-127.0.0.1}"; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_port() { for _ in $(seq 1 600); do port_open "$1" "$2" && return 0; sleep 0.1; done; echo "$1:$2 did not open" >&2; return 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
# SIGKILL, then wait until the process is gone and its port closed: a restart on the same port must not race the
# dying process (its listener would answer the readiness check, and the new one would fail to bind).
kill_hard() { # $1 = pid, $2 = port
  kill -9 "$1" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  for _ in $(seq 1 200); do port_open 127.0.0.1 "$2" || break; sleep 0.05; done
}

log "building the programs (Release)..."
for p in ControlPlane PolicyDaemon Deliverer; do dotnet build "$ROOT/src/$p/$p.csproj" -c Release -v q -nologo >/dev/null; done
BIN=bin/Release/net10.0

# ---- Redis: AOF, appendfsync always (as scripts/run.sh runs it: on disk before the intake's 250)
REDIS=$(freeport); mkdir -p "$WORK/redis"
start_redis() {
  redis-server --port "$REDIS" --bind 127.0.0.1 --dir "$WORK/redis" --save "" --appendonly yes --appendfsync always \
    --daemonize no --logfile "$WORK/redis/log" &
  REDIS_PID=$!; track "$REDIS_PID"; wait_port 127.0.0.1 "$REDIS"
  sleep 0.2; kill -0 "$REDIS_PID" 2>/dev/null || { echo "redis-server did not start (see $WORK/redis/log)" >&2; echo "$(date -u +%T) redis-server did not start" >> "$WORK/events"; }
}
start_redis

# ---- sinks: smtp-sink keeps each message as a file; main.test has two hosts of equal preference, flap.test one.
declare -A SINK_ADDR=([a]=127.0.0.2 [b]=127.0.0.3 [f]=127.0.0.4)
declare -A SINK_PORT SINK_PID
for s in a b f; do SINK_PORT[$s]=$(freeport "${SINK_ADDR[$s]}"); mkdir -p "$WORK/sink-$s"; chown nobody "$WORK/sink-$s"; done
start_sink() { # $1 = a|b|f
  smtp-sink -u nobody -h "sink-$1.test" -d "$WORK/sink-$1/%H%M%S." "${SINK_ADDR[$1]}:${SINK_PORT[$1]}" 256 >/dev/null 2>>"$WORK/sink-$1.err" &
  SINK_PID[$1]=$!; track "${SINK_PID[$1]}"; wait_port "${SINK_ADDR[$1]}" "${SINK_PORT[$1]}"
}
for s in a b f; do start_sink "$s"; done

# ---- domains, written as the ControlPlane's DomainStore writes them (docs/architecture.md), before the programs start
domain_json() { # $1 = name, $2 = inbound rows JSON, $3 = outbound JSON, $4 = verified
  printf '{"name":"%s","company_id":"bench","settings":{"inbound_enabled":%s,"inbound_servers":[%s],"outbound":%s},"verification":{"token":"00","verified":%s,"method":"%s"},"create_time":"2026-01-01T00:00:00+00:00","update_time":"2026-01-01T00:00:00+00:00"}' \
    "$1" "$([ -n "$2" ] && echo true || echo false)" "$2" "$3" "$4" "$([ "$4" = true ] && echo Txt || echo None)"
}
row() { printf '{"recipient":"*@%s","host":"%s","port":%s,"preference":10}' "$1" "$2" "$3"; }
add_domain() {
  redis-cli -p "$REDIS" HSET 'gw:{cfg}:domains' "$1" bench >/dev/null
  redis-cli -p "$REDIS" ZADD 'gw:{cfg}:tenant:bench:domains' 0 "$1" >/dev/null
  redis-cli -p "$REDIS" HSET "gw:{d:$1}:config" company bench etag 1 data "$(domain_json "$@")" >/dev/null
}
NO_OUT='{"enabled":false,"office365":false,"google_workspace":false,"custom_ips":[]}'
redis-cli -p "$REDIS" HSET 'gw:{cfg}:tenants' bench '{"company_id":"bench","display_name":"bench","create_time":"2026-01-01T00:00:00+00:00"}' >/dev/null
redis-cli -p "$REDIS" ZADD 'gw:{cfg}:tenant-ids' 0 bench >/dev/null
add_domain main.test "$(row main.test 127.0.0.2 "${SINK_PORT[a]}"),$(row main.test 127.0.0.3 "${SINK_PORT[b]}")" "$NO_OUT" false
add_domain flap.test "$(row flap.test 127.0.0.4 "${SINK_PORT[f]}")" "$NO_OUT" false
# Outbound on and verified, but its only sending source is 192.0.2.1: mail from 127.0.0.1 must be refused.
add_domain out.test "" '{"enabled":true,"office365":false,"google_workspace":false,"custom_ips":["192.0.2.1"]}' true

# ---- the programs
COMMON=(--Gateway:Redis="127.0.0.1:$REDIS" --Gateway:AllowLoopbackDestinations=true --Gateway:Queue:HostName=gateway.faults.bench
  --Gateway:Queue:Lease=00:00:10 --Gateway:Queue:FirstRetryDelay=00:00:05 --Gateway:Queue:MaxRetryDelay=00:00:15
  --Gateway:ProviderRanges:RefreshInterval=00:00:00 --Logging:LogLevel:Default=Warning)
start_program() { # name dll args...
  local name=$1 dll=$2; shift 2
  dotnet "$ROOT/src/$dll" "${COMMON[@]}" "$@" >>"$WORK/$name.log" 2>&1 &
  LAST_PID=$!; track "$LAST_PID"
}
CP=$(freeport); CP_HTTP=$(freeport)
start_program controlplane "ControlPlane/$BIN/Gateway.ControlPlane.dll" --urls "http://127.0.0.1:$CP" --ControlPlane:HttpUrl="http://127.0.0.1:$CP_HTTP" \
  --Gateway:OperatorKey=faults-bench-operator-key --Gateway:Onboarding:BackgroundChecks=false
D=("$(freeport)" "$(freeport)")
DELIVERER_PID=()
start_deliverer() { # $1 = 0|1
  start_program "deliverer-$1" "Deliverer/$BIN/Gateway.Deliverer.dll" --Gateway:Deliverer:Listen="127.0.0.1:${D[$1]}" --Gateway:Deliverer:HttpUrl= \
    --Gateway:Protection:Mode=Off
  DELIVERER_PID[$1]=$LAST_PID
}
start_deliverer 0; start_deliverer 1
POL=("$(freeport)" "$(freeport)"); SM=("$(freeport)" "$(freeport)")
for k in 0 1; do
  start_program "policydaemon-$k" "PolicyDaemon/$BIN/Gateway.PolicyDaemon.dll" --PolicyDaemon:PolicyEndpoint="127.0.0.1:${POL[$k]}" \
    --PolicyDaemon:SocketmapEndpoint="127.0.0.1:${SM[$k]}" --PolicyDaemon:HttpUrl= \
    --PolicyDaemon:DelivererNextHop="smtp:[127.0.0.1]:${D[0]},[127.0.0.1]:${D[1]}"
  done
for p in "${D[@]}" "${POL[@]}" "${SM[@]}" "$CP"; do wait_port 127.0.0.1 "$p"; done

# ---- Postfix from deploy/postfix: two listeners, each asking its own PolicyDaemon; retries fast for a bench
PF1=$(freeport); PF2=$(freeport)
mkdir -p "$PF/conf" "$PF/queue" "$PF/data"; chown postfix "$PF/data"
cp "$ROOT/deploy/postfix/main.cf" "$PF/conf/main.cf"
# Each listener passes its mail to its own Deliverer's intake (before-queue proxy, as deployed): a killed Deliverer
# makes that listener answer 451 until it is back, and the sender retries. AFTER_QUEUE=1: Postfix queues and relays
# to both intakes instead (next-hop list from the PolicyDaemons' transport answer).
if [ "${AFTER_QUEUE:-0}" = 1 ]; then PROXY1=""; PROXY2=""; else PROXY1="127.0.0.1:${D[0]}"; PROXY2="127.0.0.1:${D[1]}"; fi
awk -v l1="127.0.0.1:$PF1 inet n - n - - smtpd -o gateway_policy_service=inet:127.0.0.1:${POL[0]} -o gateway_socketmap=inet:127.0.0.1:${SM[0]} -o smtpd_proxy_filter=$PROXY1" \
    -v l2="127.0.0.1:$PF2 inet n - n - - smtpd -o gateway_policy_service=inet:127.0.0.1:${POL[1]} -o gateway_socketmap=inet:127.0.0.1:${SM[1]} -o smtpd_proxy_filter=$PROXY2" \
    '/^smtp[ \t]+inet/ { print l1; print l2; next } { print }' "$ROOT/deploy/postfix/master.cf" > "$PF/conf/master.cf"
postconf -c "$PF/conf" -e "queue_directory=$PF/queue" "data_directory=$PF/data" "maillog_file=$PF/maillog" "maillog_file_prefixes=$PF" \
  "inet_interfaces=127.0.0.1" "inet_protocols=ipv4" "myhostname=gateway.faults.bench" \
  "smtpd_tls_security_level=none" "smtp_tls_security_level=none" \
  "gateway_policy_service=inet:127.0.0.1:${POL[0]}" "gateway_socketmap=inet:127.0.0.1:${SM[0]}" \
  "gateway_intake=smtp:[127.0.0.1]:${D[0]}" "gateway_intake_proxy=127.0.0.1:${D[0]}" \
  "queue_run_delay=1s" "minimal_backoff_time=1s" "maximal_backoff_time=5s" "smtp_connect_timeout=5s"
postconf -c "$PF/conf" -F -e '*/*/chroot = n'
postfix -c "$PF/conf" start >/dev/null 2>"$WORK/postfix-start.err" || { cat "$WORK/postfix-start.err" "$PF/maillog" >&2; exit 1; }
wait_port 127.0.0.1 "$PF1"; wait_port 127.0.0.1 "$PF2"

# ---- chaos while the sender runs and Postfix still holds mail for the Deliverers
pf_queue() { find "$PF/queue/incoming" "$PF/queue/active" "$PF/queue/deferred" "$PF/queue/maildrop" -type f 2>/dev/null | wc -l; }
PROGRESS=$WORK/progress; echo 0 > "$PROGRESS"
EVENTS=$WORK/events; : > "$EVENTS"
chaos() {
  local kills=0 flapped=0 redis_done=0 flap_until=0 last_kill t sent_at=0
  last_kill=$(date +%s)
  while :; do
    sleep 0.5
    local sent; sent=$(cat "$PROGRESS" 2>/dev/null || true); sent=${sent:-0}
    t=$(date +%s)
    if [ "$flapped" = 0 ] && [ "$sent" -ge $(( N * FLAP_AT / 100 )) ]; then
      kill "${SINK_PID[f]}"; wait "${SINK_PID[f]}" 2>/dev/null || true
      echo "$(date -u +%T) flap.test host down (connections refused) at $sent sent" >> "$EVENTS"
      flapped=1; flap_until=$(( t + FLAP_FOR ))
    fi
    if [ "$flapped" = 1 ] && [ "$t" -ge "$flap_until" ]; then
      start_sink f; echo "$(date -u +%T) flap.test host up again" >> "$EVENTS"; flapped=2
    fi
    if [ "$redis_done" = 0 ] && [ "$sent" -ge $(( N * REDIS_AT / 100 )) ]; then
      kill_hard "$REDIS_PID" "$REDIS"
      start_redis; echo "$(date -u +%T) Redis killed (SIGKILL) and restarted from its AOF at $sent sent" >> "$EVENTS"; redis_done=1
    fi
    # Kills go on while sending and a while after, as long as Postfix holds mail; not until it drains, which under
    # heavy load they would keep from ever happening (each restart costs the Deliverer seconds of CPU).
    local busy=1
    if [ "$sent" -ge "$N" ]; then
      [ "$sent_at" = 0 ] && sent_at=$t
      if [ "$(pf_queue)" -eq 0 ] || [ $(( t - sent_at )) -ge "$KILL_AFTER" ]; then busy=0; fi
    fi
    if [ "$busy" = 0 ] && [ "$flapped" = 2 ] && [ "$redis_done" = 1 ]; then break; fi
    if [ $(( t - last_kill )) -ge "$KILL_EVERY" ] && [ "$busy" = 1 ]; then
      local k=$(( RANDOM % 2 ))
      kill_hard "${DELIVERER_PID[$k]}" "${D[$k]}"
      start_deliverer "$k"; wait_port 127.0.0.1 "${D[$k]}"; kills=$(( kills + 1 )); last_kill=$t
      echo "$(date -u +%T) Deliverer $k killed (SIGKILL) and restarted ($kills) at $sent sent" >> "$EVENTS"
    fi
  done
  echo "$kills" > "$WORK/kills"
}

log "N=$N, $SESSIONS sessions; $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
T0=$(date +%s)
chaos & CHAOS_PID=$!
python3 "$ROOT/bench/faults/send.py" "$N" "$RUN" "$WORK/sent.txt" "$PROGRESS" "$PF1,$PF2" "$SESSIONS"
T_SENT=$(date +%s)
log "sent in $(( T_SENT - T0 )) s; Deliverer kills go on for up to ${KILL_AFTER}s more"
wait "$CHAOS_PID"; CHAOS_PID=
for k in 0 1; do wait_port 127.0.0.1 "${D[$k]}"; done

# ---- drain: Postfix's queue and the gateway's queue empty
gw_queue() { local t=0 c; for s in $(seq 0 7); do c=$(redis-cli -p "$REDIS" ZCARD "gw:{sched:$s}:due"); t=$(( t + c )); done; echo "$t"; }
deadline=$(( $(date +%s) + DRAIN_TIMEOUT ))
while :; do
  pq=$(pf_queue); gq=$(gw_queue)
  [ "$pq" -eq 0 ] && [ "$gq" -eq 0 ] && break
  [ "$(date +%s)" -ge "$deadline" ] && { log "drain timed out: postfix queue $pq, gateway queue $gq"; break; }
  sleep 2
done
T_END=$(date +%s)
sleep 2 # the sinks finish writing their files

REPORT=$RESULTS/$RUN.txt
STATUS=0
python3 - "$WORK" "$N" "$(cat "$WORK/kills" 2>/dev/null || echo 0)" "$(( T_SENT - T0 ))" "$(( T_END - T0 ))" "$(pf_queue)" "$(gw_queue)" > "$REPORT" <<'PY' || STATUS=$?
import collections, os, re, sys
work, n, kills, t_sent, t_end, pq, gq = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
sent = {}
for line in open(os.path.join(work, "sent.txt")):
    token, kind, status, *_ = line.split(" ")
    sent[token] = (kind, status)
arrived = collections.Counter()
per_sink = collections.Counter()
pattern = re.compile(rb"token (\S+-\d+)")
for s in "abf":
    d = os.path.join(work, "sink-" + s)
    for root, _, files in os.walk(d):
        for f in files:
            m = pattern.search(open(os.path.join(root, f), "rb").read())
            if m:
                arrived[m.group(1).decode()] += 1
                per_sink[s] += 1
accepted = [t for t, (k, st) in sent.items() if st == "accepted"]
must_refuse = [t for t, (k, st) in sent.items() if k.startswith("refuse")]
refused_ok = [t for t in must_refuse if sent[t][1] == "refused"]
wrongly_accepted = [t for t in must_refuse if sent[t][1] == "accepted"]
failed = [t for t, (k, st) in sent.items() if st == "failed"]
delivered = sum(1 for t in accepted if arrived[t] > 0)
duplicated = sum(arrived[t] - 1 for t in accepted if arrived[t] > 1)
lost = sum(1 for t in accepted if arrived[t] == 0)
refused_arrived = sum(1 for t in must_refuse if arrived[t] > 0)
unknown = sum(c for t, c in arrived.items() if t not in sent)
print(f"messages generated     {n}")
print(f"sent (Postfix 250)     {len(accepted)}")
print(f"delivered (unique)     {delivered}")
print(f"duplicated (extra)     {duplicated}")
print(f"lost                   {lost}")
print(f"must be refused        {len(must_refuse)}: refused {len(refused_ok)}, accepted by mistake {len(wrongly_accepted)}, arrived at a sink {refused_arrived}")
print(f"never answered         {len(failed)}")
print(f"unknown at sinks       {unknown}")
print(f"sink main a / b / flap {per_sink['a']} / {per_sink['b']} / {per_sink['f']}")
print(f"Deliverer kills        {kills}")
print(f"seconds: sending {t_sent}, until drained {t_end}; left in Postfix queue {pq}, gateway queue {gq}")
sys.exit(1 if lost or refused_arrived or wrongly_accepted else 0)
PY
{
  echo "run $RUN, N=$N, $SESSIONS sessions, kill every ${KILL_EVERY}s (until ${KILL_AFTER}s after sending), Redis restart at ${REDIS_AT}%, flap at ${FLAP_AT}% for ${FLAP_FOR}s"
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), .NET $(dotnet --version), Postfix $(postconf -d -h mail_version), $(redis-server --version | cut -d' ' -f3)"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "events:"; sed 's/^/  /' "$EVENTS"
} >> "$REPORT"
cat "$REPORT"
exit $STATUS
}
