#!/usr/bin/env bash
# Installs everything pyml and its tests need on a fresh machine: npm packages and Debian tools.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules/.package-lock.json ] || [ -f node_modules/.package-lock.json ] || npm ci --no-audit --no-fund
need=()
for tool in skopeo umoci; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: need Debian packages ${need[*]} (run as root or apt-get install them)" >&2; exit 1; fi
  echo "setup: installing ${need[*]} from Debian" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
