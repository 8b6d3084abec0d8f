#!/usr/bin/env bash
# The test command (`npm test`): installs what the tests need, then runs every test/<area>/*.test.ts with uvu
# under tsx, one process per area so a stuck or crashed area cannot take the others down.
#   npm test                 every area
#   npm test -- serve batch  only those areas
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
# The checkout's tests load @pyml/* from their TypeScript sources (the exports' `source` condition), also when
# this script runs without npm (which sets it from .npmrc). The installed-path tests clear it for their pyml.
case " ${NODE_OPTIONS:-} " in *" --conditions=source "*) ;; *) export NODE_OPTIONS="--conditions=source${NODE_OPTIONS:+ $NODE_OPTIONS}";; esac
# Everything a run writes lives in one directory, removed at the end.
run_dir=$(mktemp -d /tmp/pyml-test-run.XXXXXX)
trap 'rm -rf "$run_dir"' EXIT
# One blob cache per run: the node base layer is compressed once, and nothing leaks between runs.
export PYML_TEST_CACHE="${PYML_TEST_CACHE:-$run_dir/cache}"
min_free_mb="${PYML_TEST_MIN_FREE_MB:-3000}"
free_mb() { df -Pm "$run_dir" | awk 'NR == 2 {print $4}'; }
if [ "$(free_mb)" -lt "$min_free_mb" ]; then
  echo "the tests need about ${min_free_mb} MB free on the disk of /tmp (they build and unpack images); $(free_mb) MB are free" >&2
  echo "0 passed, 1 failed"; exit 1
fi
areas=("$@")
if [ ${#areas[@]} -eq 0 ]; then
  mapfile -t areas < <(find test -name '*.test.ts' -printf '%h\n' | sed 's|^test/||' | sort -u)
fi
per_area_timeout="${PYML_TEST_AREA_TIMEOUT:-1500}"
passed=0; failed=0; failed_areas=()
for area in "${areas[@]}"; do
  echo "=== test/$area"
  out=$(mktemp)
  start=$(date +%s)
  # Each area's temp files go to a directory of its own, removed when the area ends, so no area's leftovers
  # take the disk from the next.
  area_tmp="$run_dir/tmp/${area//\//-}"
  mkdir -p "$area_tmp"
  TMPDIR="$area_tmp" timeout --kill-after=10 "$per_area_timeout" node --import tsx --import ./test/helpers/hook-errors.ts node_modules/uvu/bin.js "test/$area" '\.test\.ts$' 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  clean=$(sed 's/\x1b\[[0-9;]*m//g' "$out")
  total=$(awk '/Total:/ {print $2}' <<<"$clean" | tail -1)
  ok=$(awk '/Passed:/ {print $2}' <<<"$clean" | tail -1)
  rm -f "$out"
  rm -rf "$area_tmp"
  total=${total:-0}; ok=${ok:-0}
  bad=$((total - ok))
  # A crash, a hang (timeout exits 124) or no test at all counts as a failure of the area.
  if [ "$status" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
  if [ "$total" -eq 0 ]; then bad=1; fi
  passed=$((passed + ok)); failed=$((failed + bad))
  [ "$bad" -gt 0 ] && failed_areas+=("$area (exit $status)")
  echo "--- test/$area: $ok passed, $bad failed in $(( $(date +%s) - start )) s ($(free_mb) MB free on disk)"
done
[ ${#failed_areas[@]} -gt 0 ] && echo "failed areas: ${failed_areas[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
