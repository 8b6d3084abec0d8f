"""FastAPI + uvicorn + onnxruntime: the V2 REST server a Python user would write for one ONNX model.

    python fastapi_server.py MODEL.onnx WORKERS

Binds 127.0.0.1:0 itself, prints {"port": N} on stdout, then serves POST /v2/models/iris/infer with WORKERS
uvicorn worker processes sharing that socket (uvicorn's own multi-process supervisor, as `uvicorn --workers`).
"""
import json
import os
import socket
import sys

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, HTTPException, Request

DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}



def load(model: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("PEER_ORT_THREADS", "1"))
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


app = FastAPI()
# Loaded when uvicorn imports this module in each worker (the launcher below sets PEER_MODEL first).
session = load(os.environ["PEER_MODEL"]) if os.environ.get("PEER_MODEL") else None


@app.get("/v2/health/ready")
def ready() -> dict:
    return {"ready": session is not None}


@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request) -> dict:
    body = await request.json()
    feeds = {}
    for t in body["inputs"]:
        if t["datatype"] not in DTYPES:
            raise HTTPException(400, f"unsupported datatype {t['datatype']}")
        feeds[t["name"]] = np.asarray(t["data"], dtype=DTYPES[t["datatype"]]).reshape(t["shape"])
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, feeds)
    return {
        "model_name": name,
        "outputs": [{"name": n, "datatype": NAMES[r.dtype], "shape": list(r.shape), "data": r.ravel().tolist()} for n, r in zip(names, results)],
    }


if __name__ == "__main__":
    os.environ["PEER_MODEL"] = os.path.abspath(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    sock.set_inheritable(True)
    print(json.dumps({"port": sock.getsockname()[1], "pid": os.getpid()}), flush=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    config = uvicorn.Config("fastapi_server:app", workers=workers, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    if workers == 1:
        server.run(sockets=[sock])
    else:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
