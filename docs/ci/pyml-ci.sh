#!/usr/bin/env bash
# The pyml CI recipe: build, verify, gate on the signature, push. Plain bash; used as is by docs/ci.md and tested by
# test/cli/ci-recipe.test.ts.
#
#   PROJECT=.                                   model project (holds pyml.config.ts)
#   OUT=build                                   where the image, tarball and JSON reports go
#   BASELINE_REF=registry/team/model:main       image to compare with (optional; none yet = first build, no gate)
#   FAIL_ON=breaking                            breaking | signature | any   (see pyml diff --help)
#   PUSH_REFS="registry/team/model:1.2.0 registry/team/model:main"   push targets (optional, space-separated)
#   PYML="npx pyml"                             how to run pyml
#
# Exit codes: 0 done; 1 a step failed (build, verification, signature gate, push); 2 usage or config error.
set -euo pipefail

PROJECT=${PROJECT:-.}
OUT=${OUT:-build}
FAIL_ON=${FAIL_ON:-breaking}
PYML=${PYML:-npx pyml}
# Reproducible: the same commit gives the same image digest on any machine.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$PROJECT" log -1 --format=%ct 2>/dev/null || echo 0)}

mkdir -p "$OUT"
echo "pyml-ci: build $PROJECT" >&2
$PYML build "$PROJECT" --out "$OUT/image" --tar "$OUT/image.tar" --json > "$OUT/build.json"

echo "pyml-ci: verify every blob of $OUT/image" >&2
$PYML inspect image "$OUT/image" --verify --json > "$OUT/inspect.json"

if [ -n "${BASELINE_REF:-}" ]; then
  rm -rf "$OUT/baseline"
  if $PYML pull "$BASELINE_REF" --out "$OUT/baseline" --json > "$OUT/pull.json" 2> "$OUT/pull.err"; then
    echo "pyml-ci: compare with $BASELINE_REF (--fail-on $FAIL_ON)" >&2
    # Exit 1 here fails the job: the image breaks clients of the baseline. diff.json says what changed.
    $PYML diff "$OUT/baseline" "$OUT/image" --fail-on "$FAIL_ON" --json > "$OUT/diff.json"
  elif grep -Eqi 'does not exist|manifest.unknown|name.unknown|not found' "$OUT/pull.err"; then
    echo "pyml-ci: no baseline at $BASELINE_REF yet: first build, no signature gate" >&2
  else
    cat "$OUT/pull.err" >&2
    exit 1
  fi
fi

for ref in ${PUSH_REFS:-}; do
  echo "pyml-ci: push $ref" >&2
  $PYML push "$OUT/image" "$ref" --json > "$OUT/push-$(echo "$ref" | tr '/:@' '___').json"
done
echo "pyml-ci: done: $(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).digest)' "$OUT/build.json")" >&2
