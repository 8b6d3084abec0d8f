"""The reference: the TorchScript module called directly, in-process, on the inputs of a V2 JSON request.

    /usr/bin/python3 torch-direct.py WEIGHTS.pt REQUEST.json  → {"probabilities": {...}, "label": {...}}
"""
import json
import sys

import numpy as np
import torch

net = torch.jit.load(sys.argv[1]).eval()
request = json.load(open(sys.argv[2]))
x = request["inputs"][0]
with torch.no_grad():
    p = net(torch.from_numpy(np.asarray(x["data"], dtype=np.float32).reshape(x["shape"])))
label = torch.argmax(p, dim=1)
print(json.dumps({
    "probabilities": {"shape": list(p.shape), "data": p.reshape(-1).tolist()},
    "label": {"shape": list(label.shape), "data": label.tolist()},
}))
