"""Multi-layer perceptrons: the forward pass in float64, as scikit-learn's `_forward_pass_fast`."""
from .graph import Unsupported
from .outputs import binary_from_p1, classifier_outputs, linear_scores, regressor_output

ACTIVATION = {"relu": "Relu", "tanh": "Tanh", "logistic": "Sigmoid", "identity": None, "softmax": "Softmax"}


def activate(g, a, kind, name):
    if kind not in ACTIVATION:
        raise Unsupported(name, f"activation {kind!r}")
    op = ACTIVATION[kind]
    if op is None:
        return a
    return g.node(op, [a], axis=1) if op == "Softmax" else g.node(op, [a])


def mlp(est, g, x, outs, classifier):
    name = type(est).__name__
    a = x
    last = len(est.coefs_) - 1
    for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        a = linear_scores(g, a, w.T, b)
        a = activate(g, a, est.out_activation_ if i == last else est.activation, name)
    if not classifier:
        if est.n_outputs_ != 1:
            raise Unsupported(name, f"{est.n_outputs_} outputs")
        return regressor_output(g, a, outs)
    if est.out_activation_ == "softmax":
        proba = a
    elif est.n_outputs_ == 1:
        proba = binary_from_p1(g, a)
    else:
        raise Unsupported(name, "multilabel outputs")
    classifier_outputs(g, proba, est.classes_, outs)
