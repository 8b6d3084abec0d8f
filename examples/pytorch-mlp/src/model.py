"""The served model: the traced MLP, plus the predicted class."""
import torch

import pyml
from labels import argmax_labels


class MLP(pyml.TensorModel):
    def init(self, ctx):
        torch.set_grad_enabled(False)
        self.net = torch.jit.load(ctx.weights_path("mlp.pt")).eval()
        ctx.logger.info("loaded mlp.pt")

    def predict(self, inputs):
        x = torch.from_numpy(inputs["input"])
        if x.shape[1] != 8:
            raise pyml.InvalidInput(f"input must have 8 features, got {x.shape[1]}")
        if bool(torch.isnan(x).any()):
            raise ValueError("input contains NaN")
        probabilities = self.net(x)
        return {"probabilities": probabilities, "label": argmax_labels(probabilities)}
