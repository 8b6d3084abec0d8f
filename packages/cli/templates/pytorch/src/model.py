"""The served model: init loads the TorchScript file once; predict runs per request (numpy arrays in and out)."""
import torch

import pyml


class Model(pyml.TensorModel):
    def init(self, ctx):
        torch.set_grad_enabled(False)
        self.net = torch.jit.load(ctx.weights_path("model.pt")).eval()
        ctx.logger.info("loaded model.pt")

    def predict(self, inputs):
        x = torch.from_numpy(inputs["input"])
        return {"probabilities": self.net(x)}
