"""The dataframe's result columns: `label` + `probability_<class>` for classifiers, `prediction` for regressors."""
import numpy as np
from onnx import TensorProto

from .graph import Unsupported


def linear_scores(g, x, coef, intercept):
    w = g.const(np.asarray(coef, dtype=np.float64).T.copy(), "coef")
    b = g.const(np.asarray(intercept, dtype=np.float64).reshape(-1), "intercept")
    return g.node("Add", [g.node("MatMul", [x, w]), b], base="scores")


def binary_from_p1(g, p1):
    one = g.const(np.array([1.0], dtype=np.float64), "one")
    return g.node("Concat", [g.node("Sub", [one, p1]), p1], axis=1, base="proba")


def label_output(g, idx, classes, outs):
    """`label` = classes[idx] for an int64 [N] index."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "iub":
        labels = g.const(classes.astype(np.int64), "classes")
        label_type = TensorProto.INT64
    elif classes.dtype.kind in "OUS" and all(isinstance(c, str) for c in classes):
        labels = g.const(np.array([str(c) for c in classes], dtype=object), "classes")
        label_type = TensorProto.STRING
    elif classes.dtype.kind == "f":
        # A target read from a float column (0.0 / 1.0): labels stay float64, as predict returns them.
        labels = g.const(classes.astype(np.float64), "classes")
        label_type = TensorProto.DOUBLE
    else:
        raise Unsupported(f"class labels of dtype {classes.dtype}", "only integer, bool, float or string classes")
    g.node("Gather", [labels, idx], axis=0, outputs=["label"])
    outs.append(("label", label_type))


def classifier_outputs(g, proba, classes, outs, label_index=None):
    """label (argmax of `proba` unless the estimator decides otherwise: `label_index`) and one column per class."""
    idx = label_index or g.node("ArgMax", [proba], axis=1, keepdims=0, base="argmax")
    label_output(g, idx, classes, outs)
    if proba is None:
        return
    for i, c in enumerate(classes):
        name = f"probability_{c}"
        g.node("Gather", [proba, g.const(np.array(i, dtype=np.int64), "k")], axis=1, outputs=[name])
        outs.append((name, TensorProto.DOUBLE))


def regressor_output(g, scores, outs):
    g.node("Reshape", [scores, g.const(np.array([-1], dtype=np.int64), "shape")], outputs=["prediction"])
    outs.append(("prediction", TensorProto.DOUBLE))


def single_output(est, n_outputs):
    if n_outputs != 1:
        raise Unsupported(type(est).__name__, f"{n_outputs} outputs (only single-output models)")
