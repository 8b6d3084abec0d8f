"""Converts a pickled/joblib scikit-learn model (an estimator or a Pipeline) to ONNX, for @pyml/plugin-sklearn.

Run with Debian's python3 (python3-sklearn, python3-onnx); skl2onnx is not needed. Usage:
    convert.py INPUT OUTPUT [--columns JSON] [--column-types JSON]
Prints one JSON line describing the conversion on stdout. Exit 3 = unsupported model, 4 = unreadable input.

The graph is dataframe-shaped: one input of shape [N] per column of the frame the model was fitted on, one
output per result column (`label` and `probability_<class>` for classifiers, `prediction` for regressors).
No ZipMap: probabilities are split into one tensor per class instead of a sequence of maps, which
onnxruntime-node could not return. An input column is BYTES when a step reads it as strings (encoders with
string categories), INT64 when only encoders with integer categories read it, FP64 otherwise; --column-types
({"col": "INT32", ...}) declares others, cast to float64 inside the graph. Everything downstream of the columns
computes in float64 as scikit-learn does; the parts (pyml_sklearn/) say where it differs and why.
"""
import json
import sys

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper
except ImportError as e:  # pragma: no cover - reported to the build
    print(f"python3-onnx is not installed for {sys.executable}: {e}", file=sys.stderr)
    sys.exit(5)

from pyml_sklearn.estimators import SUPPORTED_STEPS, convert_estimator, is_estimator, supported_estimators
from pyml_sklearn.graph import ONNX_TYPE, Columns, Graph, Unsupported, numeric, source_blocks, width
from pyml_sklearn.steps import transform, with_path

OPSET = 15
ML_OPSET = 3


def input_columns(model, columns):
    n = getattr(model, "n_features_in_", None)
    if n is None:
        raise Unsupported(type(model).__name__, "not a fitted scikit-learn estimator")
    if columns is None:
        names = getattr(model, "feature_names_in_", None)
        columns = [str(c) for c in names] if names is not None else [f"x{i}" for i in range(n)]
    if len(columns) != n:
        raise ValueError(f"{len(columns)} column names given for a model fitted on {n} features")
    if len(set(columns)) != len(columns):
        raise ValueError(f"column names repeat: {columns}")
    return columns


def build(model, g, cols, outs):
    """Steps of a Pipeline in order, then its final estimator (or a lone estimator)."""
    from sklearn.pipeline import Pipeline
    blocks = source_blocks(cols)
    if isinstance(model, Pipeline):
        steps = [(i, name, s) for i, (name, s) in enumerate(model.steps) if s is not None and s != "passthrough"]
        if not steps or not is_estimator(steps[-1][2]):
            raise Unsupported("Pipeline", "its last step is not an estimator with predict")
        for i, name, step in steps[:-1]:
            blocks = transform(step, blocks, g, cols, (f"pipeline.steps[{i}] {name!r}",))
        i, name, est = steps[-1]
        path = (f"pipeline.steps[{i}] {name!r}",)
    else:
        est, path = model, ()
    with_path(lambda: convert_estimator(est, g, numeric(g, cols, blocks), outs), path)


def convert(model, columns=None, column_types=None):
    columns = input_columns(model, columns)
    for c, t in (column_types or {}).items():
        if c not in columns:
            raise ValueError(f"columnTypes names {c!r}, which is not a column of the model ({', '.join(columns)})")
        if t not in ONNX_TYPE:
            raise ValueError(f"columnTypes[{c!r}] is {t!r}; expected one of {', '.join(ONNX_TYPE)}")
    g = Graph()
    cols = Columns(columns, column_types)
    outs = []
    build(model, g, cols, outs)
    graph = helper.make_graph(
        g.nodes, f"sklearn_{type(model).__name__}",
        [helper.make_tensor_value_info(c, cols.onnx_type(c), ["N"]) for c in columns],
        [helper.make_tensor_value_info(name, t, ["N"]) for name, t in outs],
        g.inits)
    m = helper.make_model(graph, producer_name="pyml-sklearn-converter", producer_version="2",
                          opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)])
    m.ir_version = 8
    m.metadata_props.append(onnx.StringStringEntryProto(key="sklearn.estimator", value=describe(model)))
    onnx.checker.check_model(m)
    return m, columns, [o for o, _ in outs]


def describe(model):
    from sklearn.pipeline import Pipeline
    if isinstance(model, Pipeline):
        return "Pipeline(" + ", ".join(type(s).__name__ for _, s in model.steps if s is not None and s != "passthrough") + ")"
    return f"{type(model).__module__}.{type(model).__name__}"


def unsupported_message(e):
    where = " → ".join(e.path + (e.what,))
    reason = f" ({e.reason})" if e.reason else ""
    return (f"{where}{reason} is not supported by the ONNX converter yet; a model with this step needs a Python "
            f"runtime to be served, which the sklearn plugin does not have yet.\n"
            f"Supported steps: {SUPPORTED_STEPS}. Supported estimators: {supported_estimators()}.")


def main(argv):
    args = argv[1:]
    options = {}
    for flag in ("--columns", "--column-types"):
        if flag in args:
            i = args.index(flag)
            options[flag] = json.loads(args[i + 1])
            del args[i:i + 2]
    if len(args) != 2:
        print("usage: convert.py INPUT OUTPUT [--columns JSON] [--column-types JSON]", file=sys.stderr)
        return 2
    src, dst = args
    try:
        import joblib
        model = joblib.load(src)
    except Exception as e:
        print(f"cannot unpickle {src}: {type(e).__name__}: {e}", file=sys.stderr)
        return 4
    try:
        m, columns, outputs = convert(model, options.get("--columns"), options.get("--column-types"))
    except Unsupported as e:
        print(unsupported_message(e), file=sys.stderr)
        return 3
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 3
    with open(dst, "wb") as f:
        f.write(m.SerializeToString())
    print(json.dumps({"estimator": describe(model), "columns": columns, "outputs": outputs}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
