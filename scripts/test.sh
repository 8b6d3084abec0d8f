#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test/**/*.test.ts with uvu under tsx.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
pattern="${1:-\.test\.ts$}"
out=$(mktemp)
set +e
node --import tsx node_modules/uvu/bin.js test "$pattern" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
# uvu prints "Total/Passed" on separate lines; repeat them as the plain "N passed, N failed" line CI reads.
total=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | awk '/Total:/ {print $2}' | tail -1)
passed=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | awk '/Passed:/ {print $2}' | tail -1)
rm -f "$out"
if [ -z "$total" ]; then echo "0 passed, 1 failed"; exit 1; fi
echo "$passed passed, $((total - passed)) failed"
exit "$status"
