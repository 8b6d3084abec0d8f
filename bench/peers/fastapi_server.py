"""FastAPI + uvicorn + onnxruntime: the V2 REST server a Python user would write for one ONNX model.

    PEER_MODEL=MODEL.onnx uvicorn --workers N fastapi_server:app    (what fastapi_launch.py does, on port 0)

POST /v2/models/NAME/infer, V2 JSON in and out.
"""
import os

import numpy as np
import onnxruntime as ort
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
