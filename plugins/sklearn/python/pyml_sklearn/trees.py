"""Decision trees and their ensembles: ai.onnx.ml TreeEnsembleRegressor finds the leaf, float64 does the rest.

The ensemble returns, for every tree, the id of the leaf a row reaches (exact in its float32 output); the leaf
values are then gathered from float64 tables and averaged or summed in float64, as scikit-learn does, so the
results carry no float32 rounding. scikit-learn's trees compare float32 features: the features are cast to
float32 and thresholds rounded down to float32, so that `x <= threshold` decides exactly as scikit-learn's
float32-vs-float64 comparison does. HistGradientBoosting compares float64 features with float64 thresholds
(nodes_values_as_tensor) and sends NaN where the tree learned to."""
import numpy as np
from onnx import TensorProto, numpy_helper

from .graph import Unsupported
from .outputs import binary_from_p1, classifier_outputs, regressor_output, single_output

ATTRS = ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_truenodeids",
         "nodes_falsenodeids", "target_treeids", "target_nodeids", "target_ids", "target_weights"]


def float32_at_most(t):
    """Largest float32 <= t: x_f32 <= t  <=>  x_f32 <= float32_at_most(t)."""
    f = np.float32(t)
    if float(f) > float(t):
        f = np.nextafter(f, np.float32(-np.inf), dtype=np.float32)
    return float(f)


class TreeArrays:
    """One tree as arrays: feature, threshold, left, right, leaf mask, and where NaN goes (HistGradientBoosting)."""

    def __init__(self, feature, threshold, left, right, leaf, missing_left=None):
        self.feature, self.threshold, self.left, self.right = feature, threshold, left, right
        self.leaf = np.asarray(leaf, dtype=bool)
        self.missing_left = missing_left

    @staticmethod
    def of_sklearn(tree):
        t = tree.tree_
        return TreeArrays(t.feature, t.threshold, t.children_left, t.children_right, t.children_left == -1)


def leaf_index(g, x, trees, float64_thresholds=False):
    """[N, T] int64: the leaf each row reaches in each tree, as a position in the concatenation of the trees' nodes."""
    attrs = {k: [] for k in ATTRS}
    thresholds, missing = [], []
    for t, tree in enumerate(trees):
        for i in range(len(tree.leaf)):
            attrs["nodes_treeids"].append(t)
            attrs["nodes_nodeids"].append(i)
            if tree.leaf[i]:
                attrs["nodes_featureids"].append(0)
                attrs["nodes_modes"].append("LEAF")
                thresholds.append(0.0)
                missing.append(0)
                attrs["nodes_truenodeids"].append(0)
                attrs["nodes_falsenodeids"].append(0)
                attrs["target_treeids"].append(t)
                attrs["target_nodeids"].append(i)
                attrs["target_ids"].append(t)
                attrs["target_weights"].append(float(i))  # the leaf's id (exact in float32): values come later
            else:
                attrs["nodes_featureids"].append(int(tree.feature[i]))
                attrs["nodes_modes"].append("BRANCH_LEQ")
                thresholds.append(float(tree.threshold[i]) if float64_thresholds else float32_at_most(tree.threshold[i]))
                missing.append(int(tree.missing_left[i]) if tree.missing_left is not None else 0)
                attrs["nodes_truenodeids"].append(int(tree.left[i]))
                attrs["nodes_falsenodeids"].append(int(tree.right[i]))
    if float64_thresholds:
        attrs["nodes_values_as_tensor"] = numpy_helper.from_array(np.asarray(thresholds, dtype=np.float64), "thresholds")
        attrs["nodes_missing_value_tracks_true"] = missing
        features = x
    else:
        attrs["nodes_values"] = thresholds
        features = g.cast(x, TensorProto.FLOAT)
    ids = g.node("TreeEnsembleRegressor", [features], base="leaf_ids", domain="ai.onnx.ml", n_targets=len(trees),
                 aggregate_function="SUM", post_transform="NONE", **attrs)
    offsets = np.cumsum([0] + [len(tree.leaf) for tree in trees[:-1]]).astype(np.int64)
    return g.node("Add", [g.cast(ids, TensorProto.INT64), g.i64(offsets)], base="leaf_index")


def leaf_values(g, table, index):
    """table[index]: [N, T] for a 1-D table of node values, [N, T, C] for a [nodes, C] table."""
    return g.node("Gather", [g.f64(table), index], axis=0, base="leaf_values")


def forest(est, g, x, outs, classifier):
    single_output(est, est.n_outputs_)
    trees = est.estimators_ if hasattr(est, "estimators_") else [est]
    index = leaf_index(g, x, [TreeArrays.of_sklearn(t) for t in trees])
    if classifier:
        # Each tree's predict_proba: the leaf's class weights normalised; the forest averages them.
        tables = []
        for t in trees:
            v = t.tree_.value[:, 0, :].astype(np.float64)
            total = v.sum(axis=1, keepdims=True)
            tables.append(v / np.where(total == 0, 1.0, total))
        proba = g.node("ReduceMean", [leaf_values(g, np.concatenate(tables), index)], axes=[1], keepdims=0, base="proba")
        classifier_outputs(g, proba, est.classes_, outs)
    else:
        values = np.concatenate([t.tree_.value[:, 0, 0].astype(np.float64) for t in trees])
        regressor_output(g, g.node("ReduceMean", [leaf_values(g, values, index)], axes=[1], keepdims=0), outs)


def gradient_boosting(est, g, x, outs, classifier):
    from sklearn.dummy import DummyClassifier, DummyRegressor
    name = type(est).__name__
    if not (est.init_ == "zero" or isinstance(est.init_, (DummyClassifier, DummyRegressor))):
        raise Unsupported(name, f"init={type(est.init_).__name__} (only the default or 'zero' init)")
    k = est.estimators_.shape[1]
    base = np.asarray(est._raw_predict_init(np.zeros((1, est.n_features_in_), dtype=np.float32))[0], dtype=np.float64)
    trees, classes, values = [], [], []
    for stage in est.estimators_:
        for j, tree in enumerate(stage):
            trees.append(TreeArrays.of_sklearn(tree))
            classes.append(j)
            values.append(est.learning_rate * tree.tree_.value[:, 0, 0].astype(np.float64))
    index = leaf_index(g, x, trees)
    assign = np.zeros((len(trees), k))
    assign[np.arange(len(trees)), classes] = 1.0
    raw = g.node("Add", [g.node("MatMul", [leaf_values(g, np.concatenate(values), index), g.f64(assign)]), g.f64(base)], base="raw")
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
    trees, classes, values = [], [], []
    for it in predictors:
        for c, pred in enumerate(it):
            nd = pred.nodes
            trees.append(TreeArrays(nd["feature_idx"], nd["num_threshold"], nd["left"], nd["right"], nd["is_leaf"] == 1,
                                    nd["missing_go_to_left"]))
            classes.append(c)
            values.append(nd["value"].astype(np.float64))  # leaf values already carry the learning rate
    if not trees:
        raise Unsupported(name, "no trees")
    index = leaf_index(g, x, trees, float64_thresholds=True)
    assign = np.zeros((len(trees), k))
    assign[np.arange(len(trees)), classes] = 1.0
    baseline = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
    raw = g.node("Add", [g.node("MatMul", [leaf_values(g, np.concatenate(values), index), g.f64(assign)]), g.f64(baseline)], base="raw")
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
