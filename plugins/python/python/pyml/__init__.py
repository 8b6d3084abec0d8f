"""pyml for Python: the model contract the PyTorch sidecar serves.

A model is a class with ``init(ctx)`` and ``predict(inputs)``; inputs and outputs are dicts of named arrays.
Inputs arrive as writable numpy arrays (use ``torch.from_numpy`` to get tensors without a copy); outputs may be
numpy arrays, torch tensors, or anything ``numpy.asarray`` accepts.

    import pyml, torch

    class Model(pyml.TensorModel):
        def init(self, ctx):
            self.net = torch.jit.load(ctx.weights_path("mlp.pt")).eval()

        def predict(self, inputs):
            with torch.no_grad():
                return {"output": self.net(torch.from_numpy(inputs["input"]))}
"""
import logging
import os

__all__ = ["TensorModel", "InitContext", "TensorSpec", "Signature", "InvalidInput"]


class InvalidInput(ValueError):
    """Raise from ``predict`` when the request is at fault; the message reaches the caller as is."""


class TensorSpec:
    """One named input or output: OIP dtype ('FP32', 'INT64', ...) and shape (-1 = any size)."""

    __slots__ = ("name", "dtype", "shape")

    def __init__(self, name, dtype, shape):
        self.name, self.dtype, self.shape = name, dtype, list(shape)

    def __repr__(self):
        return f"TensorSpec({self.name!r}, {self.dtype!r}, {self.shape!r})"


class Signature:
    __slots__ = ("inputs", "outputs")

    def __init__(self, inputs, outputs):
        self.inputs, self.outputs = list(inputs), list(outputs)

    @classmethod
    def from_json(cls, data):
        spec = lambda d: TensorSpec(d["name"], d["dtype"], d["shape"])
        return cls([spec(d) for d in data.get("inputs", [])], [spec(d) for d in data.get("outputs", [])])


class InitContext:
    """What ``init`` is given: the weights directory, the signature the runtime enforces, a logger."""

    def __init__(self, weights_dir, signature, logger=None):
        self.weights_dir = weights_dir
        self.signature = signature
        self.logger = logger or logging.getLogger("pyml.model")

    def weights_path(self, file_name):
        """Absolute path of one weights file by its base name; names that leave the directory are refused."""
        full = os.path.realpath(os.path.join(self.weights_dir, file_name))
        root = os.path.realpath(self.weights_dir)
        if os.path.commonpath([full, root]) != root:
            raise ValueError(f"weights file {file_name!r} is outside the weights directory {self.weights_dir}")
        return full


class TensorModel:
    """Base class of a tensor model. Implement ``init`` and ``predict``; ``close`` is optional."""

    def init(self, ctx):
        pass

    def predict(self, inputs):
        raise NotImplementedError(f"{type(self).__name__}.predict is not implemented")

    def close(self):
        pass


class DataFrameModel:
    """Base class of a dataframe model: ``predict(df)`` gets a pandas DataFrame with one column per signature input
    (in signature order) and returns a DataFrame (or a dict of columns) with a column per signature output, one row
    per input row. Implement ``init`` and ``predict``; ``close`` is optional."""

    def init(self, ctx):
        pass

    def predict(self, df):
        raise NotImplementedError(f"{type(self).__name__}.predict is not implemented")

    def close(self):
        pass
