"""Support vector machines (libsvm's SVC/NuSVC, SVR/NuSVR) in float64, as libsvm computes them.

Labels are libsvm's one-vs-one votes (not the argmax of the probabilities: that is what `predict` returns).
With probability=True each pair's decision value goes through its Platt sigmoid and the pairs are coupled
with libsvm's `multiclass_probability`: an iterative solver that stops, row by row, at libsvm's own tolerance.
It runs here as an ONNX Loop in which each row stops updating once it has converged, so every row takes the
same steps as in libsvm."""
import numpy as np
from onnx import TensorProto, helper

from .graph import Graph, Unsupported
from .outputs import classifier_outputs, regressor_output

MIN_PROB = 1e-7


def kernel(est, g, x):
    name = type(est).__name__
    if callable(est.kernel) or est.kernel == "precomputed":
        raise Unsupported(name, "a callable or precomputed kernel")
    if hasattr(est.support_vectors_, "toarray"):
        raise Unsupported(name, "fitted on a sparse matrix")
    sv = np.asarray(est.support_vectors_, dtype=np.float64)
    dot = g.node("MatMul", [x, g.const(sv.T.copy(), "support_vectors_t")], base="dot")
    if est.kernel == "linear":
        return dot
    gamma = float(est._gamma)
    if est.kernel == "rbf":
        x2 = g.node("ReduceSum", [g.node("Mul", [x, x]), g.i64([1])], keepdims=1, base="x2")
        d2 = g.node("Sub", [g.node("Add", [x2, g.f64((sv * sv).sum(axis=1))]), g.node("Mul", [dot, g.f64([2.0])])], base="d2")
        return g.node("Exp", [g.node("Mul", [d2, g.f64([-gamma])])], base="rbf")
    scaled = g.node("Add", [g.node("Mul", [dot, g.f64([gamma])]), g.f64([float(est.coef0)])])
    if est.kernel == "poly":
        return g.node("Pow", [scaled, g.f64([float(est.degree)])], base="poly")
    if est.kernel == "sigmoid":
        return g.node("Tanh", [scaled], base="sigmoid_kernel")
    raise Unsupported(name, f"kernel={est.kernel!r}")


def svr(est, g, x, outs):
    k = kernel(est, g, x)
    dual = np.asarray(est._dual_coef_, dtype=np.float64)
    dec = g.node("Add", [g.node("MatMul", [k, g.const(dual.T.copy(), "dual_coef")]), g.f64(np.asarray(est._intercept_))])
    regressor_output(g, dec, outs)


def svc(est, g, x, outs):
    name = type(est).__name__
    classes = est.classes_
    n = len(classes)
    if getattr(est, "break_ties", False) and est.decision_function_shape == "ovr" and n > 2:
        raise Unsupported(name, "break_ties=True")
    counts = np.asarray(est._n_support)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    dual = np.asarray(est._dual_coef_, dtype=np.float64)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    # Decision value of pair (i, j), as libsvm's svm_predict_values: sum over the support vectors of classes i
    # and j of coef * K(x, sv), minus rho (scikit-learn keeps -rho in _intercept_).
    w = np.zeros((dual.shape[1], len(pairs)))
    for p, (i, j) in enumerate(pairs):
        si, sj = slice(start[i], start[i] + counts[i]), slice(start[j], start[j] + counts[j])
        w[si, p] = dual[j - 1, si]
        w[sj, p] = dual[i, sj]
    k = kernel(est, g, x)
    dec = g.node("Add", [g.node("MatMul", [k, g.const(w, "pair_coef")]), g.f64(np.asarray(est._intercept_))], base="decision")
    # Votes: pair (i, j) votes i when its decision value is > 0, else j; the label is the first most voted.
    first, second = np.zeros((len(pairs), n)), np.zeros((len(pairs), n))
    for p, (i, j) in enumerate(pairs):
        first[p, i] = 1.0
        second[p, j] = 1.0
    positive = g.cast(g.node("Greater", [dec, g.f64([0.0])]), TensorProto.DOUBLE)
    votes = g.node("Add", [g.node("MatMul", [positive, g.f64(first - second)]), g.f64(second.sum(axis=0))], base="votes")
    label = g.node("ArgMax", [votes], axis=1, keepdims=0, base="vote_winner")
    proba = platt_probabilities(est, g, dec, pairs, n) if est.probability else None
    classifier_outputs(g, proba, classes, outs, label_index=label)


def platt_probabilities(est, g, dec, pairs, n):
    a, b = np.asarray(est._probA, dtype=np.float64), np.asarray(est._probB, dtype=np.float64)
    f = g.node("Add", [g.node("Mul", [dec, g.f64(a)]), g.f64(b)], base="fApB")
    # libsvm's sigmoid_predict: 1 / (1 + exp(fApB)), then kept within [1e-7, 1 - 1e-7].
    r = g.node("Clip", [g.node("Sigmoid", [g.node("Neg", [f])]), g.f64(MIN_PROB), g.f64(1 - MIN_PROB)], base="pairwise")
    # scikit-learn's libsvm couples the pairs with multiclass_probability for two classes as well.
    return multiclass_probability(g, r, pairs, n)


def multiclass_probability(g, rp, pairs, k):
    """libsvm's multiclass_probability (Wu, Lin and Weng's second method) on [N, pairs] pairwise probabilities."""
    m, c = np.zeros((len(pairs), k * k)), np.zeros(k * k)
    for p, (i, j) in enumerate(pairs):
        m[p, i * k + j] = 1.0
        m[p, j * k + i] = -1.0
        c[j * k + i] = 1.0
    r = g.node("Reshape", [g.node("Add", [g.node("MatMul", [rp, g.f64(m)]), g.f64(c)]), g.i64([-1, k, k])], base="r")
    rt = g.node("Transpose", [r], perm=[0, 2, 1], base="rt")
    diag = g.node("ReduceSum", [g.node("Mul", [rt, rt]), g.i64([2])], keepdims=1, base="qdiag")  # [N, k, 1]
    q = g.node("Sub", [g.node("Mul", [diag, g.f64(np.eye(k))]), g.node("Mul", [rt, r])], base="Q")
    q_row = [g.node("Gather", [q, g.i64(t)], axis=1, base=f"Q{t}") for t in range(k)]          # [N, k]
    q_tt = [g.node("Gather", [q_row[t], g.i64([t])], axis=1, base=f"Q{t}{t}") for t in range(k)]  # [N, 1]

    body = Graph(parent=g)
    p_in, done_in = "p_in", "done_in"
    qp = body.node("Squeeze", [body.node("MatMul", [q, body.node("Unsqueeze", [p_in, g.i64([2])])]), g.i64([2])], base="Qp")
    pqp = body.node("ReduceSum", [body.node("Mul", [p_in, qp]), g.i64([1])], keepdims=1, base="pQp")
    err = body.node("ReduceMax", [body.node("Abs", [body.node("Sub", [qp, pqp])])], axes=[1], keepdims=1, base="max_error")
    done = body.node("Or", [done_in, body.node("Less", [err, g.f64([0.005 / k])])], base="done")
    p = p_in
    for t in range(k):
        qp_t = body.node("Gather", [qp, g.i64([t])], axis=1, base="Qp_t")
        diff = body.node("Div", [body.node("Sub", [pqp, qp_t]), q_tt[t]], base="diff")
        one_plus = body.node("Add", [diff, g.f64([1.0])], base="one_plus_diff")
        e_t = np.zeros(k)
        e_t[t] = 1.0
        p = body.node("Add", [p, body.node("Mul", [diff, g.f64(e_t)])])
        inner = body.node("Add", [body.node("Mul", [diff, q_tt[t]]), body.node("Mul", [qp_t, g.f64([2.0])])])
        pqp = body.node("Div", [body.node("Div", [body.node("Add", [pqp, body.node("Mul", [diff, inner])]), one_plus]), one_plus], base="pQp")
        qp = body.node("Div", [body.node("Add", [qp, body.node("Mul", [diff, q_row[t]])]), one_plus], base="Qp")
        p = body.node("Div", [p, one_plus], base="p")
    body.node("Where", [done, p_in, p], outputs=["p_out"])
    body.node("Identity", [done], outputs=["done_out"])
    all_done = body.node("ReduceMin", [body.cast(done, TensorProto.INT64)], keepdims=0, base="all_done")
    body.node("Equal", [all_done, g.const(np.array(0, dtype=np.int64), "zero")], outputs=["cond_out"])
    t_dyn = lambda n, t: helper.make_tensor_value_info(n, t, None)
    graph = helper.make_graph(body.nodes, "multiclass_probability",
                              [helper.make_tensor_value_info("iter", TensorProto.INT64, []),
                               helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                               t_dyn(p_in, TensorProto.DOUBLE), t_dyn(done_in, TensorProto.BOOL)],
                              [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
                               t_dyn("p_out", TensorProto.DOUBLE), t_dyn("done_out", TensorProto.BOOL)])
    p0 = g.node("Add", [g.node("MatMul", [rp, g.f64(np.zeros((len(pairs), k)))]), g.f64(np.full(k, 1.0 / k))], base="p0")
    done0 = g.node("Less", [g.node("Gather", [p0, g.i64([0])], axis=1), g.f64([0.0])], base="done0")
    max_iter = g.const(np.array(max(100, k), dtype=np.int64), "max_iter")
    proba, _ = g.node("Loop", [max_iter, g.const(np.array(True), "true"), p0, done0],
                      outputs=[g.name("proba"), g.name("done")], body=graph)
    return proba
