"""Trains nothing: builds a small MLP with a fixed seed, traces it and saves weights/mlp.pt (TorchScript).

    /usr/bin/python3 examples/pytorch-mlp/make-model.py [OUT]

The same seed gives the same parameters on any machine with the same torch, so the test can remake the file.
"""
import os
import sys

import torch


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(8, 32)
        self.out = torch.nn.Linear(32, 3)

    def forward(self, x):
        logits = self.out(torch.relu(self.hidden(x)))
        return torch.softmax(logits, dim=1)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "mlp.pt")
    torch.manual_seed(20240611)
    model = MLP().eval()
    traced = torch.jit.trace(model, torch.zeros(2, 8))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp"
    torch.jit.save(traced, tmp)
    os.replace(tmp, out)
    print(out)


if __name__ == "__main__":
    main()
