"""The reference: the TorchScript module called directly, in-process, on the inputs of a V2 JSON request.

    /usr/bin/python3 torch-direct.py WEIGHTS.pt REQUEST.json...  → one line per request:
        {"probabilities": {"shape", "data"}, "label": {"shape", "data"}}
"""
import json
import sys

import numpy as np
import torch

net = torch.jit.load(sys.argv[1]).eval()
for path in sys.argv[2:]:
    x = json.load(open(path))["inputs"][0]
    with torch.no_grad():
        p = net(torch.from_numpy(np.asarray(x["data"], dtype=np.float32).reshape(x["shape"])))
    label = torch.argmax(p, dim=1)
    print(json.dumps({
        "probabilities": {"shape": list(p.shape), "data": p.reshape(-1).tolist()},
        "label": {"shape": list(label.shape), "data": label.tolist()},
    }))
