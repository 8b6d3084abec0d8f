"""Baseline for bench/serve-python.ts: the example's Python model class called in-process, no sidecar.

    /usr/bin/python3 bench/serve-python-inprocess.py EXAMPLE_DIR PYML_PYTHON_DIR SECONDS ROWS
Prints {"count", "p50_us", "p99_us", "rps"} for one predict at a time.
"""
import json
import os
import sys
import time

import numpy as np

example, pyml_dir, seconds, rows = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
sys.path[:0] = [pyml_dir, os.path.join(example, "src")]
import pyml  # noqa: E402
import model as user_model  # noqa: E402

m = user_model.MLP()
m.init(pyml.InitContext(os.path.join(example, "weights"), None))
x = np.random.default_rng(1).standard_normal((rows, 8)).astype(np.float32)
for _ in range(200):
    m.predict({"input": x.copy()})
lat = []
end = time.perf_counter() + seconds
start = time.perf_counter()
while time.perf_counter() < end and len(lat) < 200_000:
    t = time.perf_counter_ns()
    m.predict({"input": x.copy()})  # a fresh array per call, as the sidecar decodes one per request
    lat.append(time.perf_counter_ns() - t)
elapsed = time.perf_counter() - start
lat.sort()
print(json.dumps({"count": len(lat), "p50_us": lat[len(lat) // 2] / 1000, "p99_us": lat[int(len(lat) * 0.99)] / 1000, "rps": len(lat) / elapsed}))
