#!/usr/bin/env bash
# The newcomer demo around the gateway's programs (scripts/run.sh starts it by default):
#   - a private Postfix from deploy/postfix on 127.0.0.1:$GATEWAY_SMTP_PORT (2525), wired to the PolicyDaemon,
#     its socketmap and the Deliverer's intake: the internet-facing MTA, on loopback only;
#   - Postfix's smtp-sink on 127.0.0.1:$GATEWAY_SINK_PORT (2526): the customer's mail server, keeping every
#     message it receives as a file in $DATA/sink/.
# Usage: scripts/demo-postfix.sh start|stop. Needs root (postfix start runs the master as root); uses sudo if
# available. The configuration and the log live under $DATA/postfix; the system's Postfix (/etc/postfix) is
# untouched. Postfix's queue and data directories live under /var/spool/gateway-demo/<id of $DATA> instead:
# Postfix opens them as its unprivileged user, which cannot reach a checkout under a private directory such as
# root's home (mode 0700). $DATA/postfix/queue points there.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${GATEWAY_DATA:-$ROOT/data}
mkdir -p "$DATA"
DATA=$(cd "$DATA" && pwd -P)
SMTP_PORT=${GATEWAY_SMTP_PORT:-2525}
SINK_PORT=${GATEWAY_SINK_PORT:-2526}
POLICY_PORT=${GATEWAY_POLICY_PORT:-10040}
SOCKETMAP_PORT=${GATEWAY_SOCKETMAP_PORT:-10041}
INTAKE_PORT=${GATEWAY_INTAKE_PORT:-10025}
PF=$DATA/postfix
# One spool per data directory, so that several checkouts (and the tests' runs) do not share a queue.
SPOOL=/var/spool/gateway-demo/$(printf '%s' "$DATA" | sha256sum | cut -c1-16)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Says what failed, with the lines of the log that tell why, and stops.
fail() { # message log-file
  echo "error: $1" >&2
  if [ -n "${2:-}" ] && $SUDO test -f "$2"; then
    echo "       from $2:" >&2
    $SUDO grep -E 'fatal|panic|error|warning|Permission denied' "$2" | tail -n 5 | sed 's/^/       /' >&2 || true
  fi
  exit 1
}

master_running() {
  [ -f "$SPOOL/queue/pid/master.pid" ] && $SUDO kill -0 "$($SUDO cat "$SPOOL/queue/pid/master.pid" | tr -d ' ')" 2>/dev/null
}

start() {
  if master_running; then
    echo "Demo Postfix already running"
  else
    $SUDO rm -rf "$PF" "$SPOOL"
    $SUDO mkdir -p "$PF/conf" "$SPOOL/queue" "$SPOOL/data"
    $SUDO chmod 755 "$PF" "$PF/conf" /var/spool/gateway-demo "$SPOOL" "$SPOOL/queue"
    # data_directory: owned by Postfix's mail_owner and private (postfix check insists on both).
    $SUDO chown postfix "$SPOOL/data"
    $SUDO chmod 700 "$SPOOL/data"
    $SUDO ln -s "$SPOOL/queue" "$PF/queue"
    $SUDO cp "$ROOT/deploy/postfix/main.cf" "$PF/conf/main.cf"
    # The public listener (master.cf's "smtp inet" service) moves to 127.0.0.1:$SMTP_PORT.
    sed -E "0,/^smtp[[:space:]]+inet[[:space:]]/s//127.0.0.1:$SMTP_PORT inet /" "$ROOT/deploy/postfix/master.cf" | $SUDO tee "$PF/conf/master.cf" >/dev/null
    # What differs from deploy/postfix (as in the tests' PostfixInstance): instance paths, a log file instead of
    # syslog, loopback only, no chroot (a jail needs files copied into the queue directory), no TLS (the demo
    # has no certificate), and the gateway_* endpoints of this run.
    $SUDO postconf -c "$PF/conf" -e \
      "queue_directory=$SPOOL/queue" "data_directory=$SPOOL/data" \
      "maillog_file=$PF/maillog" "maillog_file_prefixes=$PF" \
      "inet_interfaces=127.0.0.1" "inet_protocols=ipv4" "myhostname=gateway.localhost" \
      "smtpd_tls_security_level=none" "smtp_tls_security_level=none" \
      "gateway_policy_service=inet:127.0.0.1:$POLICY_PORT" \
      "gateway_socketmap=inet:127.0.0.1:$SOCKETMAP_PORT" \
      "gateway_intake=smtp:[127.0.0.1]:$INTAKE_PORT" \
      "gateway_intake_proxy=127.0.0.1:$INTAKE_PORT"
    $SUDO postconf -c "$PF/conf" -F -e '*/*/chroot = n'
    $SUDO postfix -c "$PF/conf" check || fail "the demo Postfix configuration in $PF/conf does not pass 'postfix check' (see above)" "$PF/maillog"
    $SUDO postfix -c "$PF/conf" start || fail "the demo Postfix did not start" "$PF/maillog"
  fi

  if [ -f "$DATA/run/sink.pid" ] && kill -0 "$(cat "$DATA/run/sink.pid")" 2>/dev/null; then
    echo "Demo SMTP sink already running"
  else
    mkdir -p "$DATA/sink" "$DATA/run" "$DATA/logs"
    chmod 1777 "$DATA/sink"
    # smtp-sink(1): -d keeps each message (envelope and content) as a file. As root it must drop to -u; it first
    # changes its root to the sink folder (-R), so the unprivileged user needs no way through $DATA's parents.
    local args=(-d "$DATA/sink/%Y%m%d-%H%M%S.")
    if [ "$(id -u)" -eq 0 ]; then args=(-R "$DATA/sink" -u nobody -d "/%Y%m%d-%H%M%S."); fi
    nohup /usr/sbin/smtp-sink "${args[@]}" -h customer-server.localhost "127.0.0.1:$SINK_PORT" 64 >"$DATA/logs/sink.log" 2>&1 &
    echo $! >"$DATA/run/sink.pid"
    sleep 0.2
    kill -0 "$(cat "$DATA/run/sink.pid")" 2>/dev/null || fail "the demo SMTP sink (smtp-sink on 127.0.0.1:$SINK_PORT) stopped at once" "$DATA/logs/sink.log"
  fi
}

stop() {
  if [ -f "$PF/conf/main.cf" ]; then
    $SUDO postfix -c "$PF/conf" stop >/dev/null 2>&1 && echo "stopped demo postfix" || true
    for _ in $(seq 1 50); do master_running || break; sleep 0.1; done
  fi
  # The spool goes with the demo, unless Postfix still holds mail in it (the next start begins afresh anyway).
  if [ -d "$SPOOL" ] && ! master_running && [ -z "$($SUDO find "$SPOOL/queue" -path '*/pid' -prune -o -type f -print -quit 2>/dev/null)" ]; then
    $SUDO rm -rf "$SPOOL"
    $SUDO rm -f "$PF/queue"
  fi
  if [ -f "$DATA/run/sink.pid" ]; then
    kill "$(cat "$DATA/run/sink.pid")" 2>/dev/null && echo "stopped demo sink" || true
    rm -f "$DATA/run/sink.pid"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
