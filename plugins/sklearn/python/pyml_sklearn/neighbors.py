"""k-nearest neighbours (Euclidean) by brute force over the training set stored in the graph.

Neighbours are chosen on squared distances ||x||^2 - 2 x.t + ||t||^2 (as scikit-learn's brute force does), then
their distances are recomputed from the differences, as the KD/ball trees compute them, for the weights."""
import numpy as np
from onnx import TensorProto

from .graph import Unsupported
from .outputs import classifier_outputs, regressor_output


def kneighbors(est, g, x, outs, classifier):
    name = type(est).__name__
    metric, params = est.effective_metric_, dict(est.effective_metric_params_ or {})
    if not (metric == "euclidean" or (metric == "minkowski" and params.get("p", 2) == 2)):
        raise Unsupported(name, f"metric={metric!r} {params or ''} (only Euclidean distances)".rstrip())
    if est.weights not in ("uniform", "distance"):
        raise Unsupported(name, "a callable weights")
    if hasattr(est._fit_X, "toarray"):
        raise Unsupported(name, "fitted on a sparse matrix")
    train = np.asarray(est._fit_X, dtype=np.float64)
    k = int(est.n_neighbors)
    x2 = g.node("ReduceSum", [g.node("Mul", [x, x]), g.i64([1])], keepdims=1, base="x2")
    dot = g.node("MatMul", [x, g.const(train.T.copy(), "train_t")])
    d2 = g.node("Add", [g.node("Sub", [x2, g.node("Mul", [dot, g.f64([2.0])])]), g.f64((train * train).sum(axis=1))], base="d2")
    _, ind = g.node("TopK", [d2, g.i64([k])], largest=0, sorted=1, outputs=[g.name("nearest_d2"), g.name("nearest")])
    if est.weights == "uniform":
        w = None
    else:
        near = g.node("Gather", [g.const(train, "train"), ind], axis=0, base="neighbours")  # [N, k, d]
        diff = g.node("Sub", [g.node("Unsqueeze", [x, g.i64([1])]), near])
        dist = g.node("Sqrt", [g.node("ReduceSum", [g.node("Mul", [diff, diff]), g.i64([2])], keepdims=0)], base="dist")
        # 1 / dist; a row with a neighbour at distance 0 weighs those neighbours 1 and the others 0.
        inv = g.node("Div", [g.f64([1.0]), dist], base="inv_dist")
        inf = g.node("IsInf", [inv])
        any_inf = g.node("Greater", [g.node("ReduceMax", [g.cast(inf, TensorProto.DOUBLE)], axes=[1], keepdims=1), g.f64([0.0])])
        w = g.node("Where", [any_inf, g.cast(inf, TensorProto.DOUBLE), inv], base="weights")
    y = np.asarray(est._y)
    if y.ndim != 1:
        raise Unsupported(name, "several outputs")
    if classifier:
        labels = g.node("Gather", [g.const(y.astype(np.int64), "train_labels"), ind], axis=0)   # [N, k]
        n = len(est.classes_)
        onehot = g.cast(g.node("Equal", [g.node("Unsqueeze", [labels, g.i64([2])]), g.i64(np.arange(n))]), TensorProto.DOUBLE)
        if w is not None:
            onehot = g.node("Mul", [onehot, g.node("Unsqueeze", [w, g.i64([2])])])
        votes = g.node("ReduceSum", [onehot, g.i64([1])], keepdims=0, base="class_weight")
        proba = g.node("Div", [votes, g.node("ReduceSum", [votes, g.i64([1])], keepdims=1)], base="proba")
        classifier_outputs(g, proba, est.classes_, outs)
    else:
        values = g.node("Gather", [g.const(y.astype(np.float64), "train_targets"), ind], axis=0)
        if w is None:
            pred = g.node("ReduceMean", [values], axes=[1], keepdims=0)
        else:
            pred = g.node("Div", [g.node("ReduceSum", [g.node("Mul", [values, w]), g.i64([1])], keepdims=0),
                                  g.node("ReduceSum", [w, g.i64([1])], keepdims=0)])
        regressor_output(g, pred, outs)
