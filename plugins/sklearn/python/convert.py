"""Converts a pickled/joblib scikit-learn model (an estimator or a Pipeline) to ONNX, for @pyml/plugin-sklearn.

Run with Debian's python3 (python3-sklearn, python3-onnx); skl2onnx is not needed. Usage:
    convert.py INPUT OUTPUT [--columns JSON] [--column-types JSON] [--runtime onnx|python|auto]
Prints one JSON line on stdout: {"runtime", "estimator", "signature", "why"}. `onnx` (the default) writes OUTPUT
or fails; `python` writes nothing: the image will run the pickle itself (runtime/sklearn_model.py), and the line
gives its dataframe signature; `auto` is `onnx` when every step converts, else `python`, with `why` naming the
first step that did not convert. Exit 3 = unsupported model, 4 = unreadable input.

The graph is dataframe-shaped: one input of shape [N] per column of the frame the model was fitted on, one
output per result column (`label` and `probability_<class>` for classifiers, `prediction` for regressors).
No ZipMap: probabilities are split into one tensor per class instead of a sequence of maps, which
onnxruntime-node could not return. An input column is BYTES when a step reads it as strings (encoders with
string categories), INT64 when only encoders with integer categories read it, FP64 otherwise; --column-types
({"col": "INT32", ...}) declares others, cast to float64 inside the graph. Everything downstream of the columns
computes in float64 as scikit-learn does; the parts (pyml_sklearn/) say where it differs and why.
"""
import json
import os
import sys

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper
except ImportError as e:  # pragma: no cover - reported to the build
    print(f"python3-onnx is not installed for {sys.executable}: {e}", file=sys.stderr)
    sys.exit(5)

from pyml_sklearn.estimators import SUPPORTED_STEPS, convert_estimator, is_estimator, supported_estimators
from pyml_sklearn.graph import ONNX_TYPE, Columns, Graph, Unsupported, numeric, opaque, source_blocks
from pyml_sklearn.steps import pipeline_steps, transform, with_path

# The Python runtime's own module (shipped into images as is) says which result columns a model has.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "runtime"))
from sklearn_outputs import NotServable, output_columns  # noqa: E402

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
        steps = pipeline_steps(model)
        if not steps or not is_estimator(steps[-1][2]):
            raise Unsupported("Pipeline", "its last step is not an estimator with predict")
        for k, (i, name, step) in enumerate(steps[:-1]):
            blocks = transform(step, blocks, g, cols, (f"pipeline.steps[{i}] {name!r}",), [s for _, _, s in steps[k + 1:]])
        i, name, est = steps[-1]
        path = (f"pipeline.steps[{i}] {name!r}",)
    else:
        est, path = model, ()
    if opaque(blocks):
        cols.skip(None, blocks)
        return
    try:
        with_path(lambda: convert_estimator(est, g, numeric(g, cols, blocks), outs), path)
    except Unsupported as e:
        cols.skip(e, blocks)


def checked_columns(model, columns, column_types):
    columns = input_columns(model, columns)
    for c, t in (column_types or {}).items():
        if c not in columns:
            raise ValueError(f"columnTypes names {c!r}, which is not a column of the model ({', '.join(columns)})")
        if t not in ONNX_TYPE:
            raise ValueError(f"columnTypes[{c!r}] is {t!r}; expected one of {', '.join(ONNX_TYPE)}")
    return columns


def convert(model, columns=None, column_types=None, tolerant=False):
    """The ONNX model, its input columns and outputs; `tolerant`: steps that do not convert are skipped (in
    `cols.skipped`) and the model is None when any was: only the columns' types are then of use."""
    columns = checked_columns(model, columns, column_types)
    g = Graph()
    cols = Columns(columns, column_types, tolerant)
    outs = []
    build(model, g, cols, outs)
    if cols.skipped:
        return None, cols, outs
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
    return m, cols, outs


PYML_DTYPE = {v: k for k, v in ONNX_TYPE.items()}


def signature(cols, outputs):
    """The dataframe signature: one [-1] column per input and per output (as the plugin's planSignature)."""
    col = lambda name, dtype: {"name": name, "dtype": dtype, "shape": [-1]}
    return {"inputs": [col(c, PYML_DTYPE[cols.onnx_type(c)]) for c in cols.names],
            "outputs": [col(name, dtype) for name, dtype in outputs]}


def describe(model):
    from sklearn.pipeline import Pipeline
    if isinstance(model, Pipeline):
        return "Pipeline(" + ", ".join(type(s).__name__ for _, s in model.steps if s is not None and s != "passthrough") + ")"
    return f"{type(model).__module__}.{type(model).__name__}"


def unsupported_message(e):
    return (f"{step_message(e)} is not supported by the ONNX converter yet; serve this model with "
            f"sklearn({{ runtime: 'python' }}) (or 'auto'), which runs the pickle with scikit-learn itself in the image.\n"
            f"Supported steps: {SUPPORTED_STEPS}. Supported estimators: {supported_estimators()}.")


def step_message(e):
    reason = f" ({e.reason})" if e.reason else ""
    return " → ".join(e.path + (e.what,)) + reason


def main(argv):
    args = argv[1:]
    options = {}
    for flag in ("--columns", "--column-types", "--runtime"):
        if flag in args:
            i = args.index(flag)
            options[flag] = args[i + 1] if flag == "--runtime" else json.loads(args[i + 1])
            del args[i:i + 2]
    runtime = options.get("--runtime", "onnx")
    if len(args) != 2 or runtime not in ("onnx", "python", "auto"):
        print("usage: convert.py INPUT OUTPUT [--columns JSON] [--column-types JSON] [--runtime onnx|python|auto]", file=sys.stderr)
        return 2
    src, dst = args
    try:
        import joblib
        model = joblib.load(src)
    except Exception as e:
        print(f"cannot unpickle {src}: {type(e).__name__}: {e}", file=sys.stderr)
        return 4
    try:
        m, cols, outs = convert(model, options.get("--columns"), options.get("--column-types"), tolerant=runtime != "onnx")
        outs = output_columns(model) if m is None or runtime == "python" else [(n, PYML_DTYPE[t]) for n, t in outs]
    except Unsupported as e:
        print(unsupported_message(e), file=sys.stderr)
        return 3
    except (ValueError, NotServable) as e:
        print(str(e), file=sys.stderr)
        return 3
    result = {"estimator": describe(model), "signature": signature(cols, outs)}
    if m is not None and runtime != "python":
        with open(dst, "wb") as f:
            f.write(m.SerializeToString())
        why = "every step converts to ONNX" if runtime == "auto" else "runtime: 'onnx'"
        print(json.dumps({"runtime": "onnx", "why": why, **result}))
        return 0
    import sklearn
    why = f"{step_message(cols.skipped[0])} does not convert to ONNX" if m is None else "runtime: 'python'"
    print(json.dumps({"runtime": "python", "why": why, "sklearn": sklearn.__version__, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
