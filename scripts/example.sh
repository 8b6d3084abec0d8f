#!/usr/bin/env bash
# The main job: build the ONNX iris example into an image, check it, and predict with it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${PYML_EXAMPLE_OUT:-examples/onnx-iris/.pyml}
echo "== pyml build examples/onnx-iris" >&2
npx pyml build examples/onnx-iris --out "$out/image" --tar "$out/iris.tar"
echo "== pyml inspect image --verify" >&2
npx pyml inspect image "$out/image" --verify
echo "== pyml predict (sample.json)" >&2
npx pyml predict "$out/image" --input examples/onnx-iris/sample.json
