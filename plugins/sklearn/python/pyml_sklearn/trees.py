"""Decision trees and their ensembles as ai.onnx.ml TreeEnsembleRegressor.

scikit-learn's trees compare float32 features: thresholds are rounded down to float32 so that `x <= threshold`
decides exactly as scikit-learn's float64 comparison does. HistGradientBoosting compares float64 features with
float64 thresholds (nodes_values_as_tensor) and sends NaN where the tree learned to; its ensemble returns each
tree's leaf id (exact in float32) and the leaf values are summed in float64 outside the ensemble, as
scikit-learn sums them."""
import numpy as np
from onnx import TensorProto, numpy_helper

from .graph import Unsupported
from .outputs import binary_from_p1, classifier_outputs, regressor_output, single_output

ATTRS = ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values", "nodes_truenodeids",
         "nodes_falsenodeids", "target_treeids", "target_nodeids", "target_ids", "target_weights"]


def float32_at_most(t):
    """Largest float32 <= t: x_f32 <= t  <=>  x_f32 <= float32_at_most(t)."""
    f = np.float32(t)
    if float(f) > float(t):
        f = np.nextafter(f, np.float32(-np.inf), dtype=np.float32)
    return float(f)


def tree_nodes(tree, tree_id, leaf_values, attrs):
    """Appends one sklearn tree_ to TreeEnsembleRegressor attribute lists; leaf_values(node) -> per-target weights."""
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


def tree_ensemble(g, x, trees, n_targets, leaf_values, aggregate, base_values=None):
    attrs = {k: [] for k in ATTRS}
    for i, tree in enumerate(trees):
        tree_nodes(tree, i, lambda node, tree=tree: leaf_values(tree, node), attrs)
    if base_values is not None:
        attrs["base_values"] = [float(v) for v in base_values]
    x_float = g.cast(x, TensorProto.FLOAT)
    raw = g.node("TreeEnsembleRegressor", [x_float], base="scores", domain="ai.onnx.ml",
                 n_targets=n_targets, aggregate_function=aggregate, post_transform="NONE", **attrs)
    return g.cast(raw, TensorProto.DOUBLE)


def class_proba_leaf(tree, node):
    v = tree.tree_.value[node, 0, :].astype(np.float64)
    return v / v.sum()


def regression_leaf(tree, node):
    return [tree.tree_.value[node, 0, 0]]


def forest(est, g, x, outs, classifier):
    single_output(est, est.n_outputs_)
    trees = est.estimators_ if hasattr(est, "estimators_") else [est]
    if classifier:
        proba = tree_ensemble(g, x, trees, len(est.classes_), class_proba_leaf, "AVERAGE")
        classifier_outputs(g, proba, est.classes_, outs)
    else:
        regressor_output(g, tree_ensemble(g, x, trees, 1, regression_leaf, "AVERAGE"), outs)


def gradient_boosting(est, g, x, outs, classifier):
    from sklearn.dummy import DummyClassifier, DummyRegressor
    name = type(est).__name__
    if not (est.init_ == "zero" or isinstance(est.init_, (DummyClassifier, DummyRegressor))):
        raise Unsupported(name, f"init={type(est.init_).__name__} (only the default or 'zero' init)")
    k = est.estimators_.shape[1]
    base = est._raw_predict_init(np.zeros((1, est.n_features_in_), dtype=np.float32))[0]
    trees, target_of = [], {}
    for stage in est.estimators_:
        for j, tree in enumerate(stage):
            trees.append(tree)
            target_of[id(tree)] = j
    lr = est.learning_rate

    def leaf(tree, node):
        w = [0.0] * k
        w[target_of[id(tree)]] = tree.tree_.value[node, 0, 0] * lr
        return w
    raw = tree_ensemble(g, x, trees, k, leaf, "SUM", base_values=base)
    if not classifier:
        return regressor_output(g, raw, outs)
    if k == 1:
        if est.loss == "exponential":
            raw = g.node("Mul", [raw, g.f64([2.0])])
        elif est.loss not in ("log_loss", "deviance"):
            raise Unsupported(name, f"loss={est.loss!r}")
        proba = binary_from_p1(g, g.node("Sigmoid", [raw]))
    else:
        proba = g.node("Softmax", [raw], axis=1, base="proba")
    classifier_outputs(g, proba, est.classes_, outs)


def hist_gradient_boosting(est, g, x, outs, classifier):
    name = type(est).__name__
    if getattr(est, "is_categorical_", None) is not None and np.any(est.is_categorical_):
        raise Unsupported(name, "categorical_features (only numeric features)")
    predictors = est._predictors
    k = len(predictors[0]) if predictors else 1
    attrs = {a: [] for a in ATTRS if a != "nodes_values"}
    thresholds, missing_left, leaf_values, tree_class = [], [], [], []
    for it in predictors:
        for c, pred in enumerate(it):
            t = len(tree_class)
            tree_class.append(c)
            nodes = pred.nodes
            for i, nd in enumerate(nodes):
                attrs["nodes_treeids"].append(t)
                attrs["nodes_nodeids"].append(i)
                if nd["is_leaf"]:
                    attrs["nodes_featureids"].append(0)
                    attrs["nodes_modes"].append("LEAF")
                    thresholds.append(0.0)
                    missing_left.append(0)
                    attrs["nodes_truenodeids"].append(0)
                    attrs["nodes_falsenodeids"].append(0)
                    attrs["target_treeids"].append(t)
                    attrs["target_nodeids"].append(i)
                    attrs["target_ids"].append(t)
                    attrs["target_weights"].append(float(i))  # the leaf's id, looked up below in float64
                else:
                    attrs["nodes_featureids"].append(int(nd["feature_idx"]))
                    attrs["nodes_modes"].append("BRANCH_LEQ")
                    thresholds.append(float(nd["num_threshold"]))
                    missing_left.append(int(nd["missing_go_to_left"]))
                    attrs["nodes_truenodeids"].append(int(nd["left"]))
                    attrs["nodes_falsenodeids"].append(int(nd["right"]))
            leaf_values.append(nodes["value"].astype(np.float64))
    n_trees = len(tree_class)
    baseline = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
    if n_trees == 0:
        raise Unsupported(name, "no trees")
    ids = g.node("TreeEnsembleRegressor", [x], base="leaf_ids", domain="ai.onnx.ml", n_targets=n_trees,
                 aggregate_function="SUM", post_transform="NONE",
                 nodes_values_as_tensor=numpy_helper.from_array(np.asarray(thresholds, dtype=np.float64), "t"),
                 nodes_missing_value_tracks_true=missing_left, **attrs)
    offsets = np.cumsum([0] + [len(v) for v in leaf_values[:-1]]).astype(np.int64)
    flat = g.node("Add", [g.cast(ids, TensorProto.INT64), g.i64(offsets)], base="leaf_index")
    values = g.node("Gather", [g.f64(np.concatenate(leaf_values)), flat], axis=0, base="leaf_values")
    assign = np.zeros((n_trees, k), dtype=np.float64)
    assign[np.arange(n_trees), tree_class] = 1.0
    raw = g.node("Add", [g.node("MatMul", [values, g.f64(assign)]), g.f64(baseline)], base="raw")
    if not classifier:
        link = type(est._loss.link).__name__
        if link == "LogLink":
            raw = g.node("Exp", [raw], base="prediction")
        elif link != "IdentityLink":
            raise Unsupported(name, f"loss {est.loss!r}")
        return regressor_output(g, raw, outs)
    if k == 1:
        proba = binary_from_p1(g, g.node("Sigmoid", [raw]))
    else:
        proba = g.node("Softmax", [raw], axis=1, base="proba")
    classifier_outputs(g, proba, est.classes_, outs)
