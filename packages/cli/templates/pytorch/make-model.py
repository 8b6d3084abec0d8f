"""Writes weights/model.pt: a tiny linear classifier (3 features -> 2 classes, fixed seed, untrained), traced to
TorchScript, so the project builds and predicts before you bring your own model. Replace it and delete this.

    /usr/bin/python3 make-model.py [OUT.pt]        (Debian: python3-torch)
"""
import os
import sys

import torch


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, x):
        return torch.softmax(self.fc(x), dim=1)


out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "model.pt")
torch.manual_seed(0)
traced = torch.jit.trace(Linear().eval(), torch.zeros(2, 3))
os.makedirs(os.path.dirname(out), exist_ok=True)
torch.jit.save(traced, out + ".tmp")
os.replace(out + ".tmp", out)
print(f"wrote {out}")
