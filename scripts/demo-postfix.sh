#!/usr/bin/env bash
# The newcomer demo around the gateway's programs (scripts/run.sh starts it by default):
#   - a private Postfix from deploy/postfix on 127.0.0.1:$GATEWAY_SMTP_PORT (2525), wired to the PolicyDaemon,
#     its socketmap and the Deliverer's intake: the internet-facing MTA, on loopback only;
#   - Postfix's smtp-sink on 127.0.0.1:$GATEWAY_SINK_PORT (2526): the customer's mail server, keeping every
#     message it receives as a file in $DATA/sink/.
# Usage: scripts/demo-postfix.sh start|stop. Needs root (postfix start runs the master as root); uses sudo if
# available. Everything lives under $DATA/postfix and $DATA/sink; the system's Postfix (/etc/postfix) is untouched.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${GATEWAY_DATA:-$ROOT/data}
SMTP_PORT=${GATEWAY_SMTP_PORT:-2525}
SINK_PORT=${GATEWAY_SINK_PORT:-2526}
POLICY_PORT=${GATEWAY_POLICY_PORT:-10040}
SOCKETMAP_PORT=${GATEWAY_SOCKETMAP_PORT:-10041}
INTAKE_PORT=${GATEWAY_INTAKE_PORT:-10025}
PF=$DATA/postfix
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

start() {
  if [ -f "$PF/queue/pid/master.pid" ] && $SUDO kill -0 "$($SUDO cat "$PF/queue/pid/master.pid" | tr -d ' ')" 2>/dev/null; then
    echo "Demo Postfix already running"
  else
    $SUDO rm -rf "$PF"
    $SUDO mkdir -p "$PF/conf" "$PF/queue" "$PF/data"
    $SUDO chmod 755 "$PF" "$PF/conf" "$PF/queue" "$PF/data"
    $SUDO chown postfix "$PF/data"
    $SUDO cp "$ROOT/deploy/postfix/main.cf" "$PF/conf/main.cf"
    # The public listener (master.cf's "smtp inet" service) moves to 127.0.0.1:$SMTP_PORT.
    sed -E "0,/^smtp[[:space:]]+inet[[:space:]]/s//127.0.0.1:$SMTP_PORT inet /" "$ROOT/deploy/postfix/master.cf" | $SUDO tee "$PF/conf/master.cf" >/dev/null
    # What differs from deploy/postfix (as in the tests' PostfixInstance): instance paths, a log file instead of
    # syslog, loopback only, no chroot (a jail needs files copied into the queue directory), no TLS (the demo
    # has no certificate), and the gateway_* endpoints of this run.
    $SUDO postconf -c "$PF/conf" -e \
      "queue_directory=$PF/queue" "data_directory=$PF/data" \
      "maillog_file=$PF/maillog" "maillog_file_prefixes=$PF" \
      "inet_interfaces=127.0.0.1" "inet_protocols=ipv4" "myhostname=gateway.localhost" \
      "smtpd_tls_security_level=none" "smtp_tls_security_level=none" \
      "gateway_policy_service=inet:127.0.0.1:$POLICY_PORT" \
      "gateway_socketmap=inet:127.0.0.1:$SOCKETMAP_PORT" \
      "gateway_intake=smtp:[127.0.0.1]:$INTAKE_PORT" \
      "gateway_intake_proxy=127.0.0.1:$INTAKE_PORT"
    $SUDO postconf -c "$PF/conf" -F -e '*/*/chroot = n'
    $SUDO postfix -c "$PF/conf" check
    $SUDO postfix -c "$PF/conf" start 2>/dev/null
  fi

  if [ -f "$DATA/run/sink.pid" ] && kill -0 "$(cat "$DATA/run/sink.pid")" 2>/dev/null; then
    echo "Demo SMTP sink already running"
  else
    mkdir -p "$DATA/sink" "$DATA/run" "$DATA/logs"
    chmod 1777 "$DATA/sink"
    # smtp-sink(1): -d keeps each message (envelope and content) as a file; as root it must drop to -u.
    local user=()
    if [ "$(id -u)" -eq 0 ]; then user=(-u nobody); fi
    nohup /usr/sbin/smtp-sink "${user[@]}" -h customer-server.localhost -d "$DATA/sink/%Y%m%d-%H%M%S." \
      "127.0.0.1:$SINK_PORT" 64 >"$DATA/logs/sink.log" 2>&1 &
    echo $! >"$DATA/run/sink.pid"
  fi
}

stop() {
  if [ -f "$PF/conf/main.cf" ]; then
    $SUDO postfix -c "$PF/conf" stop >/dev/null 2>&1 && echo "stopped demo postfix" || true
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
