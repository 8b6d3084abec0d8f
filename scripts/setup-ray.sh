#!/usr/bin/env bash
# Makes the Python environment of pyml's distributed batch (Ray Data, and pyarrow for the Spark job's executor
# side): a venv at .venv-ray/ in the checkout, made once from Debian's python3 with pip (which reads the machine's
# configured index/wheel mirror). A marker file records what it was made with; a different Python or package list
# makes it anew. Idempotent: a second run checks the marker and returns.
#   PYML_RAY_VENV          where the venv lives (default: .venv-ray in the checkout)
#   PYML_RAY_BASE_PYTHON   the Python it is made from (default: /usr/bin/python3)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PYML_RAY_VENV:-$PWD/.venv-ray}"
python="${PYML_RAY_BASE_PYTHON:-/usr/bin/python3}"
# Pinned to what the mirror has, so every machine makes the same environment.
requirements=("ray[data]==2.58.0" "pyarrow==25.0.1" "pandas")
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  # Debian splits venv's pip bootstrap into python3-venv.
  if [ "$(id -u)" != 0 ]; then echo "setup-ray: $python has no venv module: apt-get install python3-venv (as root)" >&2; exit 1; fi
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
marker="$venv/.pyml-made-with"
# Found without importing them (importing ray takes seconds).
installed='import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in ("ray", "pyarrow", "pandas")) else 1)'
want="python=$("$python" -c 'import sys; print(sys.version.split()[0])') ${requirements[*]}"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && "$venv/bin/python" -c "$installed" 2>/dev/null; then
  exit 0
fi
echo "setup-ray: making $venv ($want)" >&2
# No retries: an index this machine cannot reach (the default one, offline) fails at once and pip goes on with the
# configured mirror; with retries it waits seconds per package.
# The marker is written last: a run cut short leaves no marker, and the next run makes the venv anew.
rm -rf "$venv"
"$python" -m venv "$venv"
log="$venv/pip-install.log"
if ! "$venv/bin/pip" install --retries 0 "${requirements[@]}" >"$log" 2>&1; then
  tail -20 "$log" >&2
  echo "setup-ray: pip could not install ${requirements[*]} into $venv (full log: $log)" >&2
  exit 1
fi
"$venv/bin/python" -c 'import ray, ray.data, pyarrow, pandas'
echo "$want" >"$marker"
echo "setup-ray: ready ($("$venv/bin/python" -c 'import ray, pyarrow; print("ray", ray.__version__, "pyarrow", pyarrow.__version__)'))" >&2
