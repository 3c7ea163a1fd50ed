#!/usr/bin/env bash
# The full hostile-input run (docs/reliability.md): scripts/fuzz.sh [ITERATIONS]
# Runs tests/Fuzz.Tests with ITERATIONS inputs per target (default 350,000): the policy parser and decision, the
# socketmap netstrings and lookups, the SMTP parser and DATA reader, plus ITERATIONS/100 whole SMTP sessions over
# sockets against a real intake. 3 x 350,000 + 3,500 sessions = over 1,000,000 inputs. CI runs the same tests
# with 2,000 per target (a few seconds). Seeds: tests/Fuzz/corpus/<target>/. A failure prints a CsCheck seed;
# rerun it with CsCheck_Seed=<seed> scripts/fuzz.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export FUZZ_ITERATIONS=${1:-${FUZZ_ITERATIONS:-350000}}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
start=$(date +%s)
status=0
dotnet test "$ROOT/tests/Fuzz.Tests/Fuzz.Tests.csproj" -c Release --logger "console;verbosity=detailed" 2>&1 | tee "$OUT" | grep -E -A6 '^\s*(fuzz |Passed|Failed|Total|CsCheck|Error Message)' || status=$?
grep -q 'Failed!' "$OUT" && status=1
inputs=$(grep -oE 'fuzz [a-z ]+: [0-9]+ (inputs|sessions)' "$OUT" | grep -oE '[0-9]+ (inputs|sessions)' | cut -d' ' -f1 | paste -sd+ | bc)
echo "fuzz total: ${inputs:-0} inputs and sessions in $(( $(date +%s) - start )) s (FUZZ_ITERATIONS=$FUZZ_ITERATIONS)"
exit $status
