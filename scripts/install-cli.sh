#!/usr/bin/env bash
# Installs pyml on this machine from the checkout (`npm run install-cli`):
#   1. compiles every package with tsc (src/ → dist/, with type declarations), from clean;
#   2. packs each workspace into dist-packages/*.tgz (the tarballs a CI image can install with
#      `npm install -g ./dist-packages/*.tgz`, offline);
#   3. installs those tarballs globally, or under --prefix DIR (then DIR/bin/pyml).
# Usage: npm run install-cli [-- --prefix DIR] [--pack-only] [--out FOLDER]
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=(); pack_only=0; out=dist-packages
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=(--prefix "$(realpath -m "$2")"); shift 2 ;;
    --pack-only) pack_only=1; shift ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-cli: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -d node_modules/typescript ] || { echo "install-cli: run 'npm run setup' first (the compiler comes from the checkout's dev dependencies)" >&2; exit 1; }

echo "compiling packages (tsc -b tsconfig.build.json)" >&2
rm -rf packages/*/dist plugins/*/dist packages/*/*.tsbuildinfo plugins/*/*.tsbuildinfo
node_modules/.bin/tsc -b tsconfig.build.json

echo "packing workspaces into $out/" >&2
rm -rf "$out"; mkdir -p "$out"
npm pack --workspaces --pack-destination "$out" --silent >/dev/null
# Libraries whose objects pass from one @pyml package to another and are checked with instanceof (Arrow tables and
# record batches, gRPC metadata, protobuf types) must load as ONE copy. npm installs each global package with its
# own dependencies, so without these tarballs beside ours every @pyml package would get its own apache-arrow (and
# `pyml batch` would wait forever on batches its writer does not recognise). Installed beside the @pyml packages,
# each is the copy they all resolve. Versions: the checkout's, as its tests ran them.
for dep in apache-arrow @grpc/grpc-js protobufjs; do
  version=$(node -p "require('./node_modules/$dep/package.json').version")
  (cd "$out" && npm pack "$dep@$version" --prefer-offline --silent >/dev/null)
done
ls "$out"/*.tgz >&2
[ "$pack_only" -eq 1 ] && exit 0

# The checkout's .npmrc points @pyml/* at their sources (node-options); an installed pyml must not inherit that.
unset NODE_OPTIONS npm_config_node_options
echo "installing pyml ${prefix[*]:-globally}" >&2
# onnxruntime-node's install script would download CUDA binaries; its CPU binaries ship inside the package.
npm install -g "${prefix[@]}" --prefer-offline --no-audit --no-fund --loglevel=error \
  --onnxruntime-node-install=skip "$(realpath "$out")"/*.tgz
bin_dir=$(npm prefix -g "${prefix[@]}" 2>/dev/null)/bin
[ ${#prefix[@]} -gt 0 ] && bin_dir="${prefix[1]}/bin"
"$bin_dir/pyml" --version
