#!/usr/bin/env bash
# The test command (`npm test`): installs what the tests need, then runs every test/<area>/*.test.ts with uvu
# under tsx, one process per area so a stuck or crashed area cannot take the others down.
#   npm test                 every area
#   npm test -- serve batch  only those areas
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
if [ -z "${PYML_TEST_CACHE:-}" ]; then
  # One blob cache per run: the node base layer is compressed once, and nothing leaks between runs.
  PYML_TEST_CACHE=$(mktemp -d /tmp/pyml-test-cache.XXXXXX)
  trap 'rm -rf "$PYML_TEST_CACHE"' EXIT
fi
export PYML_TEST_CACHE
areas=("$@")
if [ ${#areas[@]} -eq 0 ]; then
  mapfile -t areas < <(find test -name '*.test.ts' -printf '%h\n' | sed 's|^test/||' | sort -u)
fi
per_area_timeout="${PYML_TEST_AREA_TIMEOUT:-900}"
passed=0; failed=0; failed_areas=()
for area in "${areas[@]}"; do
  echo "=== test/$area"
  out=$(mktemp)
  start=$(date +%s)
  timeout --kill-after=10 "$per_area_timeout" node --import tsx --import ./test/helpers/hook-errors.ts node_modules/uvu/bin.js "test/$area" '\.test\.ts$' 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  clean=$(sed 's/\x1b\[[0-9;]*m//g' "$out")
  total=$(awk '/Total:/ {print $2}' <<<"$clean" | tail -1)
  ok=$(awk '/Passed:/ {print $2}' <<<"$clean" | tail -1)
  rm -f "$out"
  total=${total:-0}; ok=${ok:-0}
  bad=$((total - ok))
  # A crash, a hang (timeout exits 124) or no test at all counts as a failure of the area.
  if [ "$status" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
  if [ "$total" -eq 0 ]; then bad=1; fi
  passed=$((passed + ok)); failed=$((failed + bad))
  [ "$bad" -gt 0 ] && failed_areas+=("$area (exit $status)")
  echo "--- test/$area: $ok passed, $bad failed in $(( $(date +%s) - start )) s"
done
[ ${#failed_areas[@]} -gt 0 ] && echo "failed areas: ${failed_areas[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
