#!/usr/bin/env bash
# The scanning engines of the gateway (docs/protection.md), private instances for scripts/run.sh:
#   clamd          127.0.0.1:$GATEWAY_CLAMD_PORT (3310)             deploy/clamav: settings + the small local signature database
#   rspamd         127.0.0.1:$GATEWAY_RSPAMD_PORT (11333) scanning, :$GATEWAY_RSPAMD_CONTROLLER_PORT (11334) controller
#                  Debian's /etc/rspamd with deploy/rspamd/local.d as its local configuration
#   rspamd's Redis 127.0.0.1:$GATEWAY_RSPAMD_REDIS_PORT (6380)      Bayes statistics (not the gateway's Redis)
# Usage: scripts/scanners.sh start|stop. DNS for SPF/DKIM/DMARC: $GATEWAY_RSPAMD_DNS (ip:port), else the gateway's own
# Gateway__Dns__Servers__0, else /etc/resolv.conf. State lives in $GATEWAY_SCANNERS_DIR (default $DATA/scanners; when
# rspamd's and clamd's users cannot reach that, e.g. under a 0700 home directory, /var/lib/gateway-scanners/<id>).
# $GATEWAY_RSPAMD_HS_CACHE: where rspamd keeps its compiled expressions (default: with the state).
# $GATEWAY_RSPAMD_WORKERS: normal worker processes (rspamd's default: one). $GATEWAY_RSPAMD_MILTER_PORT: also run rspamd's
# proxy worker in milter mode there (Postfix smtpd_milters), forwarding to the normal workers: the do-it-yourself set-up
# bench/protection compares the gateway with.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${GATEWAY_DATA:-$ROOT/data}
RSPAMD_PORT=${GATEWAY_RSPAMD_PORT:-11333}
CONTROLLER_PORT=${GATEWAY_RSPAMD_CONTROLLER_PORT:-11334}
CLAMD_PORT=${GATEWAY_CLAMD_PORT:-3310}
REDIS_PORT=${GATEWAY_RSPAMD_REDIS_PORT:-6380}
DNS=${GATEWAY_RSPAMD_DNS:-${Gateway__Dns__Servers__0:-}}
mkdir -p "$DATA/run" "$DATA/logs"
ROOTUSER=0
if [ "$(id -u)" -eq 0 ]; then ROOTUSER=1; fi

reachable_by() { # user dir: can that user read the folder (every parent must be searchable)?
  [ "$ROOTUSER" = 1 ] || return 0
  runuser -u "$1" -- test -r "$2" -a -x "$2" 2>/dev/null
}
scan_dir() {
  if [ -n "${GATEWAY_SCANNERS_DIR:-}" ]; then echo "$GATEWAY_SCANNERS_DIR"; return; fi
  mkdir -p "$DATA/scanners"
  chmod 755 "$DATA/scanners"
  if reachable_by _rspamd "$DATA/scanners" && reachable_by clamav "$DATA/scanners"; then
    echo "$DATA/scanners"
  else
    echo "/var/lib/gateway-scanners/$(printf '%s' "$DATA" | sha1sum | cut -c1-12)"
  fi
}
SD=$(scan_dir)
echo "$SD" >"$DATA/run/scanners.dir"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
running() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }
fail() { # message log-file
  echo "error: $1" >&2
  if [ -f "$2" ]; then echo "--- last lines of $2:" >&2; tail -n 15 "$2" >&2; fi
  exit 1
}
clamd_ping() {
  local reply=""
  exec 3<>"/dev/tcp/127.0.0.1/$CLAMD_PORT" || return 1
  printf 'zPING\0' >&3
  IFS= read -r -d '' -t 2 reply <&3 || true
  exec 3<&- 3>&-
  [ "$reply" = PONG ]
}

start() {
  for tool in rspamd clamd redis-server; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || fail "$tool is not installed; run scripts/install-deps.sh" /dev/null
  done
  mkdir -p "$SD/clamav/db" "$SD/rspamd/conf/local.d" "$SD/rspamd/conf/override.d" "$SD/rspamd/db" "$SD/rspamd/run" "$SD/rspamd/log" "$SD/redis"
  chmod 755 "$SD" "$SD/clamav" "$SD/rspamd" 2>/dev/null || true

  # rspamd's own Redis (Bayes): appendonly everysec keeps what it learned across restarts.
  if running "$SD/redis/redis.pid"; then echo "rspamd's Redis already running"; else
    port_open "$REDIS_PORT" && fail "127.0.0.1:$REDIS_PORT is taken; choose GATEWAY_RSPAMD_REDIS_PORT" /dev/null
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$SD/redis" --appendonly yes --appendfsync everysec --save "" \
      --daemonize yes --pidfile "$SD/redis/redis.pid" --logfile "$SD/redis/redis.log"
  fi

  # clamd: deploy/clamav's settings and signature database plus the instance lines.
  if running "$SD/clamav/clamd.pid"; then echo "clamd already running"; else
    port_open "$CLAMD_PORT" && fail "127.0.0.1:$CLAMD_PORT is taken; choose GATEWAY_CLAMD_PORT" /dev/null
    cp "$ROOT"/deploy/clamav/db/*.hdb "$ROOT"/deploy/clamav/db/*.ndb "$SD/clamav/db/"
    { cat "$ROOT/deploy/clamav/clamd-gateway.conf"
      printf 'TCPSocket %s\nTCPAddr 127.0.0.1\nDatabaseDirectory %s\nLogFile %s\nPidFile %s\nForeground no\n' \
        "$CLAMD_PORT" "$SD/clamav/db" "$SD/clamav/clamd.log" "$SD/clamav/clamd.pid"
      if [ "$ROOTUSER" = 1 ]; then echo "User clamav"; fi
    } >"$SD/clamav/clamd.conf"
    if [ "$ROOTUSER" = 1 ]; then chown -R clamav "$SD/clamav"; fi
    clamd -c "$SD/clamav/clamd.conf" >>"$SD/clamav/clamd.log" 2>&1 || fail "clamd did not start" "$SD/clamav/clamd.log"
  fi

  # rspamd: Debian's main configuration, deploy/rspamd/local.d, and this instance's ports, Redis, clamd and DNS.
  if running "$SD/rspamd/run/rspamd.pid"; then echo "rspamd already running"; else
    port_open "$RSPAMD_PORT" && fail "127.0.0.1:$RSPAMD_PORT is taken (a system rspamd? service rspamd stop); or choose GATEWAY_RSPAMD_PORT" /dev/null
    rm -f "$SD"/rspamd/conf/local.d/*
    cp "$ROOT"/deploy/rspamd/local.d/* "$SD/rspamd/conf/local.d/"
    local o=$SD/rspamd/conf/override.d
    printf 'bind_socket = "127.0.0.1:%s";\n' "$RSPAMD_PORT" >"$o/worker-normal.inc"
    if [ -n "${GATEWAY_RSPAMD_WORKERS:-}" ]; then printf 'count = %s;\n' "$GATEWAY_RSPAMD_WORKERS" >>"$o/worker-normal.inc"; fi
    if [ -n "${GATEWAY_RSPAMD_MILTER_PORT:-}" ]; then
      printf 'bind_socket = "127.0.0.1:%s";\nenabled = true;\nmilter = yes;\ntimeout = 120s;\nupstream "local" {\n  default = yes;\n  hosts = "127.0.0.1:%s";\n}\n' \
        "$GATEWAY_RSPAMD_MILTER_PORT" "$RSPAMD_PORT" >"$o/worker-proxy.inc"
    else
      rm -f "$o/worker-proxy.inc"
    fi
    printf 'bind_socket = "127.0.0.1:%s";\n' "$CONTROLLER_PORT" >"$o/worker-controller.inc"
    printf 'type = "file";\nfilename = "%s";\nlevel = "notice";\n' "$SD/rspamd/log/rspamd.log" >"$o/logging.inc"
    printf 'servers = "127.0.0.1:%s";\n' "$REDIS_PORT" >"$o/redis.conf"
    sed "s/servers = \"127.0.0.1:3310\";/servers = \"127.0.0.1:$CLAMD_PORT\";/" "$ROOT/deploy/rspamd/local.d/antivirus.conf" >"$o/antivirus.conf"
    # Compiled regular expressions: kept with the state, or in $GATEWAY_RSPAMD_HS_CACHE (shared by several checkouts or test runs).
    local hs=${GATEWAY_RSPAMD_HS_CACHE:-$SD/rspamd/db}
    mkdir -p "$hs"
    if [ "$ROOTUSER" = 1 ]; then chown _rspamd:_rspamd "$hs"; fi
    { printf 'hs_cache_dir = "%s/";\n' "$hs"
      if [ -n "$DNS" ]; then printf 'dns {\n  nameserver = ["%s"];\n  timeout = 1s;\n  retransmits = 2;\n}\n' "$DNS"; fi
    } >"$o/options.inc"
    local user=()
    if [ "$ROOTUSER" = 1 ]; then chown -R _rspamd:_rspamd "$SD/rspamd"; user=(-u _rspamd -g _rspamd); fi
    rspamd "${user[@]}" -c /etc/rspamd/rspamd.conf --var=LOCAL_CONFDIR="$SD/rspamd/conf" --var=DBDIR="$SD/rspamd/db" \
      --var=RUNDIR="$SD/rspamd/run" --var=LOGDIR="$SD/rspamd/log" >>"$DATA/logs/rspamd-start.log" 2>&1 \
      || fail "rspamd did not start" "$DATA/logs/rspamd-start.log"
  fi

  # The first start compiles rspamd's regular expressions (about 10 s on 2 cores; cached in $SD/rspamd/db afterwards).
  for _ in $(seq 1 600); do
    if curl -fs "http://127.0.0.1:$RSPAMD_PORT/ping" >/dev/null 2>&1 && clamd_ping; then break; fi
    sleep 0.2
  done
  curl -fs "http://127.0.0.1:$RSPAMD_PORT/ping" >/dev/null 2>&1 || fail "rspamd does not answer on 127.0.0.1:$RSPAMD_PORT" "$SD/rspamd/log/rspamd.log"
  clamd_ping || fail "clamd does not answer on 127.0.0.1:$CLAMD_PORT" "$SD/clamav/clamd.log"
  echo "Scanners: rspamd 127.0.0.1:$RSPAMD_PORT (controller :$CONTROLLER_PORT), clamd 127.0.0.1:$CLAMD_PORT, rspamd's Redis :$REDIS_PORT; state in $SD"
}

stop() {
  for entry in "rspamd:$SD/rspamd/run/rspamd.pid" "clamd:$SD/clamav/clamd.pid" "rspamd's Redis:$SD/redis/redis.pid"; do
    local name=${entry%%:*} pidfile=${entry#*:}
    if running "$pidfile"; then
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      echo "stopped $name"
    fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
