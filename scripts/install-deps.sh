#!/usr/bin/env bash
# Installs the Debian packages the gateway and its tests need, if missing. Idempotent.
# Used by scripts/run.sh and scripts/test.sh; needs root (or sudo) only when something is missing.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
# Postfix: the internet-facing MTA; the PolicyDaemon tests start private instances of it (and its smtp-sink).
[ -x /usr/sbin/postfix ] || need+=(postfix)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# deploy/ tests: systemd-analyze checks the units (deploy/systemd), openssl checks the API's TLS independently.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Node and npm: the tests run docs/clients.md's Node/TypeScript client recipe with packages from the npm registry.
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

echo "Installing: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Postfix without Debian's auto-configuration: the gateway ships its own main.cf/master.cf (deploy/postfix).
if printf '%s\n' "${need[@]}" | grep -qx postfix; then
  echo 'postfix postfix/main_mailer_type select No configuration' | $SUDO debconf-set-selections
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

# Debian starts its own redis-server service on 6379 when the package is installed; the gateway runs
# its own Redis (AOF on, data in ./data) there instead, so stop the distribution's service.
if printf '%s\n' "${need[@]}" | grep -qx redis-server; then
  ($SUDO service redis-server stop || $SUDO systemctl stop redis-server) >/dev/null 2>&1 || true
fi
