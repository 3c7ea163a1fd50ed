#!/usr/bin/env bash
# This checkout against another revision, side by side in one run (issue 13: "within 10 % of the figures before"):
#
#   sudo bench/compare.sh [REV]        # REV: a git revision, default ff520a2 (before issue 13)
#
# Builds REV's PolicyDaemon and Deliverer in a temporary worktree, then runs bench/policy/run.sh with that daemon as
# "daemon-baseline" (interleaved with this build's daemon) and bench/deliverer/run.sh scenario (C) (this build's and REV's
# Deliverer alternately, smtp-source -> Deliverer -> smtp-sink, appendfsync always). Knobs of both scripts apply
# (DURATION, REPEAT, CONNECTIONS, DOMAIN_COUNTS, N, REPEAT_C).
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:-ff520a2}
BASE=$(mktemp -d /tmp/gw-baseline-XXXXXX)
cleanup() { git worktree remove --force "$BASE" >/dev/null 2>&1 || rm -rf "$BASE"; }
trap cleanup EXIT
git worktree add -q --detach "$BASE" "$REV"
echo "building $REV in $BASE" >&2
dotnet build -c Release -v q -nologo "$BASE/src/PolicyDaemon/PolicyDaemon.csproj" >/dev/null
dotnet build -c Release -v q -nologo "$BASE/src/Deliverer/Deliverer.csproj" >/dev/null
SERVERS=${SERVERS:-"trivial daemon"} BASELINE_DLL="$BASE/src/PolicyDaemon/bin/Release/net10.0/Gateway.PolicyDaemon.dll" bench/policy/run.sh
SCENARIOS=C BASELINE_DLL="$BASE/src/Deliverer/bin/Release/net10.0/Gateway.Deliverer.dll" bench/deliverer/run.sh "${N:-20000}"
