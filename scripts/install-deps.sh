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
# The scanning engines (docs/protection.md): rspamd and ClamAV's daemon; the gateway runs private instances of them.
command -v rspamd >/dev/null 2>&1 || need+=(rspamd)
[ -x /usr/sbin/clamd ] || need+=(clamav-daemon)
command -v curl >/dev/null 2>&1 || need+=(curl)
# deploy/ tests: systemd-analyze checks the units (deploy/systemd), openssl checks the API's TLS independently.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Node.js and npm: the tests run docs/clients.md's Node/TypeScript client recipe (packages from the npm registry) and the
# independent DKIM verifier (npm mailauth, tests/tools/mailauth).
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)

npm_tools() {
  # The tests' DKIM verifier (issue 17): mailauth, pinned by tests/tools/mailauth/package-lock.json.
  local dir; dir="$(cd "$(dirname "$0")/.." && pwd)/tests/tools/mailauth"
  if [ ! -d "$dir/node_modules/mailauth" ]; then
    echo "Installing the tests' npm tools in $dir" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

if [ ${#need[@]} -eq 0 ]; then
  npm_tools
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
# Likewise Debian's own rspamd (11333/11334), clamd (3310) and freshclam (which would download signatures from the
# internet): scripts/scanners.sh runs private instances; production set-ups use these services (docs/protection.md).
stop_service() { ($SUDO service "$1" stop || $SUDO systemctl stop "$1") >/dev/null 2>&1 || true; }
if printf '%s\n' "${need[@]}" | grep -qx rspamd; then stop_service rspamd; fi
if printf '%s\n' "${need[@]}" | grep -qx clamav-daemon; then stop_service clamav-daemon; stop_service clamav-freshclam; fi

npm_tools
