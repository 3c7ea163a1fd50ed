#!/usr/bin/env bash
# Deliverer benchmark, one command: bench/deliverer/run.sh [N]
#   (a) smtp-source -> Postfix -> smtp-sink
#   (b) smtp-source -> Postfix -> Deliverer -> smtp-sink, as deploy/postfix/main.cf wires them: the intake is Postfix's
#       before-queue proxy (smtpd_proxy_filter), the message is queued once, in Redis, before the client's 250
#   (q) the same with Postfix in after-queue mode: Postfix queues the message, then relays it to the intake
#   (k) smtp-source -> smtp-sink: the sink's own ceiling on this machine, the peer (c) is measured against (issue 14)
#   (c) smtp-source -> Deliverer -> smtp-sink, Redis appendfsync always, then everysec; each after WARM (10,000) untimed
#       messages to another domain, so the JIT's work on a fresh process is not counted (WARM=0: cold, as before 2026-12-06)
#   (d) delay from a refused primary to delivery on the next host (message log timestamps)
#   (o) outbound: smtp-source -> Deliverer -> recipient MX (smtp-sink) with the recipient domain's MTA-STS policy (testing mode,
#       served over HTTPS on loopback), side by side without DKIM, with DKIM RSA-2048 and with DKIM Ed25519 on every message;
#       counts the MTA-STS policy fetches (once per max_age, not per message) (issue 17). O_ROUNDS=3 repeats the three
#       in turn (medians); O_DKIM picks variants; O_STS_MODE=testing|enforce|none; O_DELIVERER adds Deliverer settings
#   (m) memory: M_COUNT (10) concurrent messages of M_SIZE (20 MB) through the intake and out to smtp-sink; the Deliverer's peak
#       RSS (VmHWM) against the total message bytes (issue 14: target <= 1.5x)
#   (s) starvation: delivery latency (intake -> delivered, from the message log) of S_N (200) messages to a healthy domain,
#       without and then with a black hole (accepts TCP, never greets) holding S_HOLE (500) messages (issue 14: p99 <= 1.2x)
# N messages of 4 KB (default 20,000), SESSIONS parallel smtp-source sessions (default 20).
# Everything runs on 127.0.0.1 with free ports, in a temporary folder, and is stopped at the end.
set -euo pipefail
N=${1:-20000}
SIZE=${SIZE:-4096}
SESSIONS=${SESSIONS:-20}
FAILOVER_N=${FAILOVER_N:-500}
SCENARIOS=${SCENARIOS:-abqkcdoms}  # a subset, e.g. SCENARIOS=b; KEEP=1 keeps the work folder (Postfix logs); C needs BASELINE_DLL
B_FSYNC=${B_FSYNC:-always}   # Redis appendfsync in (b) and (q): 'everysec' shows how much the fsyncs cost there
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/gw-bench.XXXXXX)
chmod 755 "$WORK" # Postfix (user postfix) must reach its data directory inside
PIDS=()
POSTFIX_DIRS=()

cleanup() {
  for d in "${POSTFIX_DIRS[@]}"; do postfix -c "$d/conf" stop >/dev/null 2>&1 || true; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { echo "missing $1 (scripts/install-deps.sh installs it)" >&2; exit 1; }; }
need smtp-source; need smtp-sink; need postfix; need redis-server; need redis-cli; need python3; need dotnet

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
now() { date +%s.%N; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && { exec 3>&- 3<&-; return 0; }; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }

if [ "${NO_BUILD:-0}" != 1 ]; then # NO_BUILD=1: use the last Release build (e.g. while CPU use is being measured)
  echo "building the Deliverer (Release)..." >&2
  dotnet build "$ROOT/src/Deliverer/Deliverer.csproj" -c Release -v q -nologo >/dev/null
fi
DLL="$ROOT/src/Deliverer/bin/Release/net10.0/Gateway.Deliverer.dll"
PEER="$ROOT/bench/deliverer/OutboundPeer/bin/Release/net10.0/OutboundPeer.dll"
if [[ $SCENARIOS == *o* ]] && [ "${NO_BUILD:-0}" != 1 ]; then
  dotnet build "$ROOT/bench/deliverer/OutboundPeer/OutboundPeer.csproj" -c Release -v q -nologo >/dev/null
fi

# ---- smtp-sink: counts messages ("mesg=N" on stdout with -c)
SINK=0
start_sink() {
  SINK=$(freeport)
  : > "$WORK/sink.out"
  smtp-sink -u postfix -c "127.0.0.1:$SINK" 1024 > "$WORK/sink.out" 2>"$WORK/sink.err" &
  SINK_PID=$!; PIDS+=("$SINK_PID")
  wait_port "$SINK"
}
stop_sink() { kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; }
sink_count() { tr '\r' '\n' < "$WORK/sink.out" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || true; }
wait_sink() { # $1 = count, $2 = timeout seconds
  local deadline=$(( $(date +%s) + $2 ))
  while :; do
    local c; c=$(sink_count); c=${c:-0}
    [ "$c" -ge "$1" ] && return 0
    [ "$(date +%s)" -ge "$deadline" ] && { echo "sink got $c of $1 in time" >&2; return 1; }
    sleep 0.05
  done
}

# ---- a private Postfix instance relaying everything for bench.test to 127.0.0.1:$2
. "$(dirname "$0")/../postfix.sh"
start_postfix() { # $1 = name, $2 = next hop port; sets PF_PORT
  local extra=""
  # (b) as deploy/postfix/main.cf: the intake is the before-queue proxy; (q) relays to it after queueing (relayhost).
  if [ "$1" = b ]; then extra="smtpd_proxy_filter = 127.0.0.1:$2"; fi
  # (b) and (q): B_POSTFIX adds main.cf lines for the Postfix in front of the Deliverer (e.g. its concurrency to the intake).
  if [ "$1" != a ] && [ -n "${B_POSTFIX:-}" ]; then extra="${extra:+$extra
}$B_POSTFIX"; fi
  start_bench_postfix "$1" "$2" "$extra"
}

# ---- Redis + Deliverer
REDIS=0
start_redis() { # $1 = appendfsync
  # REDIS_DIR puts Redis' AOF on another file system than Postfix's queue (e.g. /dev/shm to see what the shared disk costs).
  REDIS=$(freeport); local dir="${REDIS_DIR:-$WORK}/redis-$REDIS"; mkdir -p "$dir"
  redis-server --port "$REDIS" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly yes --appendfsync "$1" \
    --daemonize no --logfile "$dir/log" &
  PIDS+=("$!"); wait_port "$REDIS"
}
domain_json() { # $1 = domain, then rows "host:port:pref"
  local d=$1; shift; local rows="" sep=""
  for r in "$@"; do IFS=: read -r h p pref <<<"$r"; rows="$rows$sep{\"recipient\":\"*@$d\",\"host\":\"$h\",\"port\":$p,\"preference\":$pref}"; sep=","; done
  printf '{"name":"%s","company_id":"bench","settings":{"inbound_enabled":true,"inbound_servers":[%s],"outbound":{"enabled":false,"office365":false,"google_workspace":false,"custom_ips":[]}},"verification":{"token":"00","verified":false,"method":"None"},"create_time":"2026-01-01T00:00:00+00:00","update_time":"2026-01-01T00:00:00+00:00"}' "$d" "$rows"
}
add_domain() { # $1 = domain, rows...; written as the ControlPlane's DomainStore writes it (docs/architecture.md)
  local d=$1
  redis-cli -p "$REDIS" HSET 'gw:{cfg}:domains' "$d" bench >/dev/null
  redis-cli -p "$REDIS" HSET "gw:{d:$d}:config" company bench etag 1 data "$(domain_json "$@")" >/dev/null
}
DELIVERER=0
start_deliverer() { # extra arguments go to the Deliverer; USE_DLL runs another build
  DELIVERER=$(freeport)
  dotnet "${USE_DLL:-$DLL}" --Gateway:Redis="127.0.0.1:$REDIS" --Gateway:Deliverer:Listen="127.0.0.1:$DELIVERER" --Gateway:Deliverer:HttpUrl= \
    --Gateway:Queue:HostName=bench-deliverer.test --Logging:LogLevel:Default=Warning \
    --Gateway:Protection:Mode=Off --Gateway:AllowLoopbackDestinations=true "$@" > "$WORK/deliverer-$DELIVERER.log" 2>&1 &  # the queue alone; scanning: bench/protection; the sinks are on loopback
  DELIVERER_PID=$!; PIDS+=("$DELIVERER_PID"); wait_port "$DELIVERER"
}
stop_deliverer() { kill "$DELIVERER_PID" 2>/dev/null || true; wait "$DELIVERER_PID" 2>/dev/null || true; }

run_source() { # $1 = port [, $2 = sender, $3 = recipient]; prints seconds from the first connection to the N-th message at the sink
  local t0; t0=$(now)
  smtp-source -s "$SESSIONS" -l "$SIZE" -m "$N" -f "${2:-sender@remote.test}" -t "${3:-user@bench.test}" "127.0.0.1:$1" 2>"$WORK/source.err"
  wait_sink $((SINK_BASE + N)) 900
  python3 -c "print(f'{$(now) - $t0:.3f}')"
}
# A fresh Deliverer spends its first thousands of messages in the JIT: .NET compiles each method quickly first, then again
# optimised once it is hot (tiered compilation), and that second pass was still 15-20 % of its CPU after 3,000 messages.
# (c) measures the steady state of a running gateway: WARM (10,000) messages to another domain first, not timed (warm.test,
# added with bench.test before the Deliverer starts: it reads the domains at start).
SINK_BASE=0
warm_deliverer() {
  [ "${WARM:-10000}" -gt 0 ] || { SINK_BASE=0; return 0; }
  smtp-source -s "$SESSIONS" -l "$SIZE" -m "${WARM:-10000}" -f sender@remote.test -t user@warm.test "127.0.0.1:$DELIVERER" 2>>"$WORK/source.err"
  wait_sink "${WARM:-10000}" 900; sleep 1; SINK_BASE=$(sink_count)
}
rate() { python3 -c "print(f'{$N / $1:.0f}')"; }

declare -A RESULT
echo "N=$N messages of $SIZE bytes, $SESSIONS sessions; $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# (a) Postfix alone
if [[ $SCENARIOS == *a* ]]; then
start_sink; start_postfix a "$SINK"
s=$(run_source "$PF_PORT"); RESULT[a]=$(rate "$s"); echo "(a) Postfix -> smtp-sink: $s s, ${RESULT[a]} msg/s" >&2
postfix -c "$WORK/a/conf" stop >/dev/null; stop_sink
fi

# (b) Postfix -> Deliverer -> smtp-sink (Redis appendfsync always, as run.sh configures it); (q) the same after-queue
for mode in b q; do
  [[ $SCENARIOS == *$mode* ]] || continue
  start_sink; start_redis "${B_FSYNC:-always}"; add_domain bench.test "127.0.0.1:$SINK:10"; start_deliverer; start_postfix "$mode" "$DELIVERER"
  s=$(run_source "$PF_PORT"); RESULT[$mode]=$(rate "$s")
  echo "($mode) Postfix -> Deliverer -> smtp-sink ($([ $mode = b ] && echo before-queue proxy || echo after-queue relay)): $s s, ${RESULT[$mode]} msg/s" >&2
  postfix -c "$WORK/$mode/conf" stop >/dev/null; stop_deliverer; stop_sink
done

# (k) smtp-source -> smtp-sink: how fast the sink and the source go by themselves, in the same run as (c)
if [[ $SCENARIOS == *k* ]]; then
start_sink
s=$(run_source "$SINK"); RESULT[k]=$(rate "$s"); echo "(k) smtp-source -> smtp-sink: $s s, ${RESULT[k]} msg/s" >&2
stop_sink
fi

# (c) smtp-source -> Deliverer -> smtp-sink
for fsync in always everysec; do
  [[ $SCENARIOS == *c* ]] || continue
  start_sink; start_redis "$fsync"; add_domain bench.test "127.0.0.1:$SINK:10"; add_domain warm.test "127.0.0.1:$SINK:10"
  start_deliverer; warm_deliverer
  s=$(run_source "$DELIVERER"); RESULT[c_$fsync]=$(rate "$s"); SINK_BASE=0; echo "(c) Deliverer ($fsync) -> smtp-sink: $s s, ${RESULT[c_$fsync]} msg/s" >&2
  redis-cli -p "$REDIS" INFO commandstats > "$WORK/redis-commands-c-$fsync.txt" # kept with KEEP=1: Redis calls per message
  stop_deliverer; stop_sink
done

# (C) = (c) with appendfsync always for this build and BASELINE_DLL (another revision, bench/compare.sh), alternately
# REPEAT_C times each, so the machine's drift hits both alike.
if [[ $SCENARIOS == *C* && -n "${BASELINE_DLL:-}" ]]; then
  declare -a CUR=() BASE=()
  for i in $(seq 1 "${REPEAT_C:-3}"); do
    for which in current baseline; do
      start_sink; start_redis always; add_domain bench.test "127.0.0.1:$SINK:10"; add_domain warm.test "127.0.0.1:$SINK:10"
      if [ "$which" = current ]; then start_deliverer; else USE_DLL=$BASELINE_DLL start_deliverer; fi
      warm_deliverer; s=$(run_source "$DELIVERER"); r=$(rate "$s"); SINK_BASE=0
      if [ "$which" = current ]; then CUR+=("$r"); else BASE+=("$r"); fi
      echo "(C$i) $which Deliverer (always) -> smtp-sink: $s s, $r msg/s" >&2
      stop_deliverer; stop_sink
    done
  done
  median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
  RESULT[c_current]=$(median "${CUR[@]}"); RESULT[c_baseline]=$(median "${BASE[@]}")
  echo "(C) median of ${#CUR[@]}: this build ${RESULT[c_current]} msg/s (${CUR[*]}), baseline ${RESULT[c_baseline]} msg/s (${BASE[*]})" >&2
fi

# (o) outbound with MTA-STS, without and with DKIM signing of every message, side by side
STS_FETCHES=n/a
if [[ $SCENARIOS == *o* ]]; then
  mkdir -p "$WORK/peer"
  exec 7> >(dotnet "$PEER" serve "$WORK/peer" bench-out.test "${O_STS_MODE:-testing}" > "$WORK/peer.log" 2>&1)
  for _ in $(seq 1 300); do [ -s "$WORK/peer/peer.env" ] && break; sleep 0.1; done
  # shellcheck disable=SC1091
  . "$WORK/peer/peer.env"
  # O_ROUNDS rounds of the variants in turn (the machine is shared: interleaving spreads its noise over all of them); the table
  # shows each variant's median.
  declare -A O_RUNS
  for round in $(seq 1 "${O_ROUNDS:-1}"); do
  for dkim in ${O_DKIM:-none rsa ed25519}; do
    start_sink; start_redis always
    dotnet "$PEER" seed "127.0.0.1:$REDIS" "$WORK/peer" bench-from.test "$dkim"
    start_deliverer --Gateway:Dns:Servers:0="$DNS" --Gateway:Deliverer:OutboundPort="$SINK" --Gateway:Secrets:KeyFile="$WORK/peer/kek.key" \
      --Gateway:Tls:TrustedCaFile="$CA" --Gateway:Deliverer:MtaSts:PolicyPortForTests="$POLICY_PORT" --Gateway:AllowLoopbackDestinations=true ${O_DELIVERER:-}
    s=$(run_source "$DELIVERER" user@bench-from.test someone@bench-out.test); r=$(rate "$s")
    O_RUNS[$dkim]="${O_RUNS[$dkim]:-} $r"
    RESULT[o_$dkim]=$(python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.0f}')" ${O_RUNS[$dkim]})
    echo "(o) round $round, outbound, DKIM $dkim: $s s, $r msg/s, MTA-STS fetches so far $(cat "$WORK/peer/fetches")" >&2
    redis-cli -p "$REDIS" INFO commandstats > "$WORK/redis-commands-o-$dkim.txt" # kept with KEEP=1
    [ -z "${KEEP:-}" ] || redis-cli -p "$REDIS" --raw XRANGE 'gw:{d:bench-from.test}:log' - + > "$WORK/log-o-$dkim.txt"
    stop_deliverer; stop_sink
  done
  done
  exec 7>&-
  sleep 0.5
  O_COUNT=$(( $(wc -w <<<"${O_DKIM:-none rsa ed25519}") * ${O_ROUNDS:-1} ))
  STS_FETCHES="$(cat "$WORK/peer/fetches") fetches for $((O_COUNT * N)) messages ($O_COUNT runs, each with a new Redis: one fetch per run)"
fi
ratio_o() { [ -n "${RESULT[o_none]:-}" ] && [ -n "${RESULT[$1]:-}" ] && python3 -c "print(f'{${RESULT[$1]}/${RESULT[o_none]}:.2f}× (o) without DKIM')" || echo "-"; }

# (d) refused primary -> next host: time between the failed attempt and the delivery, from the message log
FAILOVER=n/a
if [[ $SCENARIOS == *d* ]]; then
start_sink; start_redis always; DEAD=$(freeport)
add_domain failover.test "127.0.0.1:$DEAD:10" "127.0.0.1:$SINK:20"; start_deliverer
smtp-source -s 4 -l "$SIZE" -m "$FAILOVER_N" -f sender@remote.test -t user@failover.test "127.0.0.1:$DELIVERER" 2>>"$WORK/source.err"
wait_sink "$FAILOVER_N" 300
sleep 1
redis-cli -p "$REDIS" --raw XRANGE 'gw:{d:failover.test}:log' - + > "$WORK/failover.log"
FAILOVER=$(python3 "$ROOT/bench/deliverer/log_latency.py" "$WORK/failover.log" refused)
echo "(d) refused primary -> next host: $FAILOVER" >&2
stop_deliverer; stop_sink
fi
# (m) memory of the Deliverer with big messages in flight
MEM=n/a
if [[ $SCENARIOS == *m* ]]; then
  M_COUNT=${M_COUNT:-10}; M_SIZE=${M_SIZE:-20971520}
  # M_REDIS_TIMEOUT: with 10 x 20 MB at once the one multiplexed Redis connection carries 200 MB of writes; on a loaded machine
  # that takes longer than StackExchange.Redis's default 5 s and the intake answers 451 (see docs/benchmarks.md).
  start_sink; start_redis always; add_domain bench.test "127.0.0.1:$SINK:10"
  start_deliverer ${M_REDIS_TIMEOUT:+--Gateway:Redis=127.0.0.1:$REDIS,asyncTimeout=$M_REDIS_TIMEOUT,syncTimeout=$M_REDIS_TIMEOUT}
  sleep 2
  idle_kb=$(awk '/VmRSS/ {print $2}' "/proc/$DELIVERER_PID/status")
  smtp-source -s "$M_COUNT" -l "$M_SIZE" -m "$M_COUNT" -f sender@remote.test -t user@bench.test "127.0.0.1:$DELIVERER" 2>>"$WORK/source.err"
  wait_sink "$M_COUNT" 900
  peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$DELIVERER_PID/status")
  MEM=$(python3 -c "t=$M_COUNT*$M_SIZE; p=$peak_kb*1024; i=$idle_kb*1024; print(f'peak RSS {p/2**20:.0f} MiB (idle {i/2**20:.0f} MiB, growth {(p-i)/2**20:.0f} MiB) for {t/2**20:.0f} MiB of messages: growth {(p-i)/t:.2f}x, peak {p/t:.2f}x')")
  echo "(m) $M_COUNT x $M_SIZE bytes: $MEM" >&2
  stop_deliverer; stop_sink
fi

# (s) latency to a healthy domain without and with a black hole holding S_HOLE messages
declare -A STARVE=()
if [[ $SCENARIOS == *s* ]]; then
  S_N=${S_N:-200}; S_HOLE=${S_HOLE:-500}
  HOLE=$(freeport)
  python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4096)
held = []
while True:
    c, _ = s.accept(); held.append(c)  # never greets, never closes
' "$HOLE" & PIDS+=("$!"); wait_port "$HOLE"
  # S_ROUNDS rounds, each without and then with the black hole (the shared machine's noise hits both alike); the table lists every round.
  for round in $(seq 1 "${S_ROUNDS:-1}"); do
  for with in alone hole; do
    start_sink; start_redis always; add_domain bench.test "127.0.0.1:$SINK:10"; add_domain blackhole.test "127.0.0.1:$HOLE:10"
    add_domain warm.test "127.0.0.1:$SINK:10"; start_deliverer
    # A fresh Deliverer's first messages pay for JIT and connection set-up: 50 to another domain first, in both runs.
    smtp-source -s 2 -l "$SIZE" -m 50 -f sender@remote.test -t user@warm.test "127.0.0.1:$DELIVERER" 2>>"$WORK/source.err"
    wait_sink 50 300
    if [ "$with" = hole ]; then
      smtp-source -s 10 -l "$SIZE" -m "$S_HOLE" -f sender@remote.test -t user@blackhole.test "127.0.0.1:$DELIVERER" 2>>"$WORK/source.err"
      sleep 2
    fi
    smtp-source -s 2 -l "$SIZE" -m "$S_N" -f sender@remote.test -t user@bench.test "127.0.0.1:$DELIVERER" 2>>"$WORK/source.err"
    wait_sink $((S_N + 50)) 600
    sleep 1
    redis-cli -p "$REDIS" --raw XRANGE 'gw:{d:bench.test}:log' - + > "$WORK/starve-$with.log"
    r=$(python3 "$ROOT/bench/deliverer/log_latency.py" "$WORK/starve-$with.log" intake)
    STARVE[$with]="${STARVE[$with]:+${STARVE[$with]}; }round $round: $r"
    [ "$with" = hole ] && STARVE[held]=$(redis-cli -p "$REDIS" ZCARD 'gw:{d:blackhole.test}:queue')
    echo "(s) round $round, healthy domain, $([ "$with" = hole ] && echo "black hole holding ${STARVE[held]} queued" || echo "no black hole"): $r" >&2
    stop_deliverer; stop_sink
  done
  done
fi

ratio_k() { [ -n "${RESULT[k]:-}" ] && [ -n "${RESULT[$1]:-}" ] && python3 -c "print(f'{${RESULT[$1]}/${RESULT[k]}:.2f}× (k)')" || echo "-"; }
ratio() { [ -n "${RESULT[a]:-}" ] && [ -n "${RESULT[$1]:-}" ] && python3 -c "print(f'{${RESULT[$1]}/${RESULT[a]}:.2f}× (a)')" || echo "-"; }

cat <<OUT
| scenario | messages/s |
|---|---|
| (a) smtp-source → Postfix → smtp-sink | ${RESULT[a]:--} |
| (b) smtp-source → Postfix → Deliverer → smtp-sink, as deployed: before-queue proxy (Redis appendfsync always) | ${RESULT[b]:--} ($(ratio b)) |
| (q) the same, Postfix in after-queue mode (queues, then relays to the intake) | ${RESULT[q]:--} ($(ratio q)) |
| (k) smtp-source → smtp-sink, the sink's own ceiling | ${RESULT[k]:--} |
| (c) smtp-source → Deliverer → smtp-sink, appendfsync always | ${RESULT[c_always]:--} ($(ratio_k c_always)) |
| (c) smtp-source → Deliverer → smtp-sink, appendfsync everysec | ${RESULT[c_everysec]:--} |
| (C) the same (always), this build, median | ${RESULT[c_current]:--} |
| (C) the same (always), baseline build (BASELINE_DLL), median | ${RESULT[c_baseline]:--} |
| (d) refused primary → delivered on the next host | $FAILOVER |
| (o) outbound (MTA-STS testing policy) without DKIM (median of ${O_ROUNDS:-1}) | ${RESULT[o_none]:--} |
| (o) outbound, DKIM RSA-2048 on every message | ${RESULT[o_rsa]:--} ($(ratio_o o_rsa)) |
| (o) outbound, DKIM Ed25519 on every message | ${RESULT[o_ed25519]:--} ($(ratio_o o_ed25519)) |
| (o) MTA-STS policy fetches | $STS_FETCHES |
| (m) Deliverer memory, ${M_COUNT:-10} concurrent messages of ${M_SIZE:-20971520} bytes through the intake to smtp-sink | $MEM |
| (s) latency intake → delivered to a healthy domain, no black hole | ${STARVE[alone]:-n/a} |
| (s) the same while a black hole (accepts TCP, never greets) holds ${STARVE[held]:-?} queued messages | ${STARVE[hole]:-n/a} |

N=$N, $SIZE-byte messages, $SESSIONS smtp-source sessions, $(nproc) cores, load average after: $(cut -d' ' -f1-3 /proc/loadavg)
OUT
