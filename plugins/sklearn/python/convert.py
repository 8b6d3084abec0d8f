"""Converts a pickled/joblib scikit-learn estimator to ONNX, for @pyml/plugin-sklearn.

Run with Debian's python3 (python3-sklearn, python3-onnx); skl2onnx is not needed. Usage:
    convert.py INPUT OUTPUT [--columns a,b,c]
Prints one JSON line describing the conversion on stdout. Exit 3 = unsupported estimator, 4 = unreadable input.

The graph is dataframe-shaped: one double input of shape [N] per feature column, one output per result column
(`label` and `probability_<class>` for classifiers, `prediction` for regressors). No ZipMap: probabilities are
split into one tensor per class instead of a sequence of maps, which onnxruntime-node could not return.
Trees compare float32 features, as scikit-learn does; thresholds are rounded down to float32 so that
`x <= threshold` decides exactly as scikit-learn's float64 comparison does.
"""
import json
import sys

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # pragma: no cover - reported to the build
    print(f"python3-onnx is not installed for {sys.executable}: {e}", file=sys.stderr)
    sys.exit(5)

OPSET = 15
ML_OPSET = 3


class Unsupported(Exception):
    pass


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self.n = 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, array, base="c"):
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def node(self, op, inputs, base=None, domain="", outputs=None, **attrs):
        outs = outputs or [self.name(base or op.lower())]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.name(op), domain=domain, **attrs))
        return outs[0] if len(outs) == 1 else outs


def float32_at_most(t):
    """Largest float32 <= t: x_f32 <= t  <=>  x_f32 <= float32_at_most(t)."""
    f = np.float32(t)
    if float(f) > float(t):
        f = np.nextafter(f, np.float32(-np.inf), dtype=np.float32)
    return float(f)


def tree_nodes(tree, tree_id, leaf_values, attrs):
    """Appends one sklearn tree_ to TreeEnsembleRegressor attribute lists; leaf_values(node) -> list of per-target weights."""
    t = tree.tree_
    for node in range(t.node_count):
        left, right = int(t.children_left[node]), int(t.children_right[node])
        attrs["nodes_treeids"].append(tree_id)
        attrs["nodes_nodeids"].append(node)
        if left == -1:
            attrs["nodes_featureids"].append(0)
            attrs["nodes_modes"].append("LEAF")
            attrs["nodes_values"].append(0.0)
            attrs["nodes_truenodeids"].append(0)
            attrs["nodes_falsenodeids"].append(0)
            for target, w in enumerate(leaf_values(node)):
                attrs["target_treeids"].append(tree_id)
                attrs["target_nodeids"].append(node)
                attrs["target_ids"].append(target)
                attrs["target_weights"].append(float(w))
        else:
            attrs["nodes_featureids"].append(int(t.feature[node]))
            attrs["nodes_modes"].append("BRANCH_LEQ")
            attrs["nodes_values"].append(float32_at_most(t.threshold[node]))
            attrs["nodes_truenodeids"].append(left)
            attrs["nodes_falsenodeids"].append(right)


def tree_ensemble(g, x_float, trees, n_targets, leaf_values, aggregate, base_values=None):
    attrs = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
                             "nodes_truenodeids", "nodes_falsenodeids", "target_treeids", "target_nodeids",
                             "target_ids", "target_weights"]}
    for i, tree in enumerate(trees):
        tree_nodes(tree, i, lambda node, tree=tree: leaf_values(tree, node), attrs)
    if base_values is not None:
        attrs["base_values"] = [float(v) for v in base_values]
    raw = g.node("TreeEnsembleRegressor", [x_float], base="scores", domain="ai.onnx.ml",
                 n_targets=n_targets, aggregate_function=aggregate, post_transform="NONE", **attrs)
    return g.node("Cast", [raw], base="scores64", to=TensorProto.DOUBLE)


def class_proba_leaf(tree, node):
    v = tree.tree_.value[node, 0, :].astype(np.float64)
    return v / v.sum()


def regression_leaf(scale=1.0):
    return lambda tree, node: [tree.tree_.value[node, 0, 0] * scale]


def linear_scores(g, x, coef, intercept):
    w = g.const(np.asarray(coef, dtype=np.float64).T.copy(), "coef")
    b = g.const(np.asarray(intercept, dtype=np.float64).reshape(-1), "intercept")
    return g.node("Add", [g.node("MatMul", [x, w]), b], base="scores")


def binary_from_p1(g, p1):
    one = g.const(np.array([1.0], dtype=np.float64), "one")
    return g.node("Concat", [g.node("Sub", [one, p1]), p1], axis=1, base="proba")


def classifier_outputs(g, proba, classes, outs):
    idx = g.node("ArgMax", [proba], axis=1, keepdims=0, base="argmax")
    if classes.dtype.kind in "iu":
        labels = g.const(classes.astype(np.int64), "classes")
        label_type = TensorProto.INT64
    elif classes.dtype.kind in "OUS" and all(isinstance(c, str) for c in classes):
        labels = g.const(np.array([str(c) for c in classes], dtype=object), "classes")
        label_type = TensorProto.STRING
    elif classes.dtype.kind == "b":
        labels = g.const(classes.astype(np.int64), "classes")
        label_type = TensorProto.INT64
    else:
        raise Unsupported(f"class labels of dtype {classes.dtype} (only integer, bool or string classes)")
    g.node("Gather", [labels, idx], axis=0, outputs=["label"])
    outs.append(("label", label_type))
    for i, c in enumerate(classes):
        name = f"probability_{c}"
        col = g.node("Gather", [proba, g.const(np.array(i, dtype=np.int64), "k")], axis=1, outputs=[name])
        outs.append((name, TensorProto.DOUBLE))


def regressor_output(g, scores, outs):
    g.node("Reshape", [scores, g.const(np.array([-1], dtype=np.int64), "shape")], outputs=["prediction"])
    outs.append(("prediction", TensorProto.DOUBLE))


def convert_estimator(est, g, x, outs):
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
    from sklearn.ensemble import (RandomForestClassifier, RandomForestRegressor,
                                  GradientBoostingClassifier, GradientBoostingRegressor)
    from sklearn.dummy import DummyClassifier, DummyRegressor
    cls = type(est)
    x_float = lambda: g.node("Cast", [x], base="x32", to=TensorProto.FLOAT)

    def single_output(n_outputs):
        if n_outputs != 1:
            raise Unsupported(f"{cls.__name__} with {n_outputs} outputs (only single-output models)")

    if cls is LinearRegression:
        if np.ndim(est.coef_) != 1:
            raise Unsupported("LinearRegression with several targets")
        regressor_output(g, linear_scores(g, x, est.coef_.reshape(1, -1), np.atleast_1d(est.intercept_)), outs)
    elif cls is LogisticRegression:
        scores = linear_scores(g, x, est.coef_, est.intercept_)
        k = len(est.classes_)
        ovr = est.multi_class in ("ovr", "warn") or (est.multi_class == "auto" and (k <= 2 or est.solver == "liblinear"))
        if k == 2:
            proba = binary_from_p1(g, g.node("Sigmoid", [scores]))
        elif ovr:
            p = g.node("Sigmoid", [scores])
            proba = g.node("Div", [p, g.node("ReduceSum", [p, g.const(np.array([1], dtype=np.int64), "axes")], keepdims=1)], base="proba")
        else:
            proba = g.node("Softmax", [scores], axis=1, base="proba")
        classifier_outputs(g, proba, est.classes_, outs)
    elif cls in (DecisionTreeClassifier, RandomForestClassifier):
        single_output(est.n_outputs_)
        trees = [est] if cls is DecisionTreeClassifier else est.estimators_
        proba = tree_ensemble(g, x_float(), trees, len(est.classes_), class_proba_leaf, "AVERAGE")
        classifier_outputs(g, proba, est.classes_, outs)
    elif cls in (DecisionTreeRegressor, RandomForestRegressor):
        single_output(est.n_outputs_)
        trees = [est] if cls is DecisionTreeRegressor else est.estimators_
        regressor_output(g, tree_ensemble(g, x_float(), trees, 1, regression_leaf(), "AVERAGE"), outs)
    elif cls in (GradientBoostingClassifier, GradientBoostingRegressor):
        if not (est.init_ == "zero" or isinstance(est.init_, (DummyClassifier, DummyRegressor))):
            raise Unsupported(f"{cls.__name__} with init={type(est.init_).__name__} (only the default or 'zero' init)")
        k = est.estimators_.shape[1]
        base = est._raw_predict_init(np.zeros((1, est.n_features_in_), dtype=np.float32))[0]
        trees, targets = [], []
        for stage in est.estimators_:
            for j, tree in enumerate(stage):
                trees.append(tree)
                targets.append(j)
        target_of = {id(t): j for t, j in zip(trees, targets)}
        lr = est.learning_rate

        def leaf(tree, node):
            w = [0.0] * k
            w[target_of[id(tree)]] = tree.tree_.value[node, 0, 0] * lr
            return w
        raw = tree_ensemble(g, x_float(), trees, k, leaf, "SUM", base_values=base)
        if cls is GradientBoostingRegressor:
            regressor_output(g, raw, outs)
        else:
            if k == 1:
                if est.loss == "exponential":
                    raw = g.node("Mul", [raw, g.const(np.array([2.0], dtype=np.float64), "two")])
                elif est.loss not in ("log_loss", "deviance"):
                    raise Unsupported(f"GradientBoostingClassifier with loss={est.loss!r}")
                proba = binary_from_p1(g, g.node("Sigmoid", [raw]))
            else:
                proba = g.node("Softmax", [raw], axis=1, base="proba")
            classifier_outputs(g, proba, est.classes_, outs)
    else:
        raise Unsupported(f"{cls.__module__}.{cls.__name__}")


SUPPORTED = ("LogisticRegression, LinearRegression, DecisionTreeClassifier, DecisionTreeRegressor, "
             "RandomForestClassifier, RandomForestRegressor, GradientBoostingClassifier, GradientBoostingRegressor")


def convert(est, columns=None):
    n = getattr(est, "n_features_in_", None)
    if n is None:
        raise Unsupported(f"{type(est).__module__}.{type(est).__name__} (not a fitted scikit-learn estimator)")
    if columns is None:
        names = getattr(est, "feature_names_in_", None)
        columns = [str(c) for c in names] if names is not None else [f"x{i}" for i in range(n)]
    if len(columns) != n:
        raise ValueError(f"{len(columns)} column names given for an estimator fitted on {n} features")
    if len(set(columns)) != len(columns):
        raise ValueError(f"column names repeat: {columns}")
    g = Graph()
    axes = g.const(np.array([1], dtype=np.int64), "axes")
    cols = [g.node("Unsqueeze", [c, axes], base="col") for c in columns]
    x = g.node("Concat", cols, axis=1, base="x")
    outs = []
    convert_estimator(est, g, x, outs)
    graph = helper.make_graph(
        g.nodes, f"sklearn_{type(est).__name__}",
        [helper.make_tensor_value_info(c, TensorProto.DOUBLE, ["N"]) for c in columns],
        [helper.make_tensor_value_info(name, t, ["N"]) for name, t in outs],
        g.inits)
    model = helper.make_model(graph, producer_name="pyml-sklearn-converter", producer_version="1",
                              opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)])
    model.ir_version = 8
    model.metadata_props.append(onnx.StringStringEntryProto(key="sklearn.estimator", value=f"{type(est).__module__}.{type(est).__name__}"))
    onnx.checker.check_model(model)
    return model, columns, [o for o, _ in outs]


def main(argv):
    args = argv[1:]
    columns = None
    if "--columns" in args:
        i = args.index("--columns")
        columns = json.loads(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        print("usage: convert.py INPUT OUTPUT [--columns JSON]", file=sys.stderr)
        return 2
    src, dst = args
    try:
        import joblib
        est = joblib.load(src)
    except Exception as e:
        print(f"cannot unpickle {src}: {type(e).__name__}: {e}", file=sys.stderr)
        return 4
    try:
        model, columns, outputs = convert(est, columns)
    except Unsupported as e:
        print(f"unsupported estimator {e}; supported: {SUPPORTED}", file=sys.stderr)
        return 3
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 3
    with open(dst, "wb") as f:
        f.write(model.SerializeToString())
    cls = type(est)
    print(json.dumps({"estimator": f"{cls.__module__}.{cls.__name__}", "columns": columns, "outputs": outputs}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
