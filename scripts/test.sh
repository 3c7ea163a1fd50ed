#!/usr/bin/env bash
# The whole test suite: installs what is missing, then runs every test project of Gateway.sln.
# Integration tests start their own redis-server (and later Postfix, DNS, SMTP sinks) on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
dotnet test Gateway.sln -c Release --logger "console;verbosity=minimal" "$@"
