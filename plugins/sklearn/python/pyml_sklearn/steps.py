"""Pipeline, ColumnTransformer and the preprocessing steps, as ONNX on the feature blocks of graph.py.

Every step computes in float64 with the same operations, in the same order, as its `transform` (X -= mean_;
X /= scale_ ...), so a converted pipeline feeds its estimator the values scikit-learn would."""
import numpy as np
from onnx import TensorProto, helper

from .graph import Block, Unsupported, class_name, numeric, opaque, select, split, unsupported, width


def is_nan(v):
    try:
        return v is None or (isinstance(v, float) and np.isnan(v))
    except TypeError:
        return False


def with_path(fn, path):
    """Runs fn(); an Unsupported raised by a leaf step is located at `path`."""
    try:
        return fn()
    except Unsupported as e:
        if not e.path:
            e.path = tuple(path)
        raise


def pipeline_steps(pipeline):
    """(index, name, step) of a Pipeline's steps that do something."""
    return [(i, name, s) for i, (name, s) in enumerate(pipeline.steps) if s is not None and not (isinstance(s, str) and s == "passthrough")]


def reads_strings(later):
    """Whether the first of `later` steps (what follows a skipped step in its Pipeline) takes strings: an encoder
    of string categories or an imputer of strings. Then the skipped step most likely reads strings too."""
    from sklearn.pipeline import Pipeline
    for step in later:
        if isinstance(step, Pipeline):
            return reads_strings([s for _, _, s in pipeline_steps(step)])
        if class_name(step) in ("OneHotEncoder", "OrdinalEncoder"):
            return any(is_string_categories(np.asarray(c)) for c in getattr(step, "categories_", []))
        if class_name(step) == "SimpleImputer":
            return np.asarray(step.statistics_).dtype.kind == "O"
        return False
    return False


def transform(step, blocks, g, cols, path, later=()):
    """The feature blocks after `step` (a fitted transformer, a Pipeline of them, or a ColumnTransformer).
    `later`: the steps after it in its Pipeline (for cols.skip's guess of what a skipped step reads)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    if opaque(blocks):
        return cols.skip(None, blocks)  # after a skipped step: nothing more to convert
    if isinstance(step, Pipeline):
        steps = pipeline_steps(step)
        for k, (i, name, sub) in enumerate(steps):
            blocks = transform(sub, blocks, g, cols, path + (f"Pipeline.steps[{i}] {name!r}",), [s for _, _, s in steps[k + 1:]])
        return blocks
    try:
        if isinstance(step, ColumnTransformer):
            return with_path(lambda: column_transformer(step, blocks, g, cols, path), path)
        fn = TRANSFORMERS.get(class_name(step))
        if fn is None:
            raise Unsupported(class_name(step), None, path)
        return with_path(lambda: fn(step, blocks, g, cols), path)
    except Unsupported as e:
        return cols.skip(e, blocks, reads_strings(later))


def column_transformer(ct, blocks, g, cols, path):
    if width(blocks) != ct.n_features_in_:
        raise Unsupported("ColumnTransformer", f"receives {width(blocks)} columns, fitted on {ct.n_features_in_}")
    indices = ct._transformer_to_input_indices
    out = []
    for i, (name, trans, _) in enumerate(ct.transformers_):
        idx = list(indices.get(name, []))
        if (isinstance(trans, str) and trans == "drop") or not idx:
            continue  # as ColumnTransformer.transform: dropped and empty selections add no columns
        where = "ColumnTransformer.remainder" if name == "remainder" and i == len(ct.transformers) else \
            f"ColumnTransformer.transformers[{i}] {name!r}"
        sub = select(g, blocks, idx)
        if isinstance(trans, str) and trans == "passthrough":
            out.extend(sub)
        else:
            out.extend(transform(trans, sub, g, cols, path + (where,)))
    if getattr(ct, "sparse_output_", False) and any(b.kind == "string" for b in out):
        raise Unsupported("ColumnTransformer", "sparse output with string columns")
    return out


def double_block(g, tensor, k):
    return [Block("double", tensor, k)]


# ---- scalers -----------------------------------------------------------------------------------------------

def standard_scaler(s, blocks, g, cols):
    x = numeric(g, cols, blocks)
    if s.with_mean:
        x = g.node("Sub", [x, g.f64(s.mean_)], base="centred")
    if s.with_std:
        x = g.node("Div", [x, g.f64(s.scale_)], base="scaled")
    return double_block(g, x, width(blocks))


def min_max_scaler(s, blocks, g, cols):
    x = numeric(g, cols, blocks)
    x = g.node("Add", [g.node("Mul", [x, g.f64(s.scale_)]), g.f64(s.min_)], base="minmax")
    if getattr(s, "clip", False):
        lo, hi = s.feature_range
        x = g.node("Clip", [x, g.f64(lo), g.f64(hi)], base="clipped")
    return double_block(g, x, width(blocks))


def robust_scaler(s, blocks, g, cols):
    x = numeric(g, cols, blocks)
    if s.with_centering:
        x = g.node("Sub", [x, g.f64(s.center_)], base="centred")
    if s.with_scaling:
        x = g.node("Div", [x, g.f64(s.scale_)], base="scaled")
    return double_block(g, x, width(blocks))


def max_abs_scaler(s, blocks, g, cols):
    x = numeric(g, cols, blocks)
    return double_block(g, g.node("Div", [x, g.f64(s.scale_)], base="scaled"), width(blocks))


# ---- imputer ---------------------------------------------------------------------------------------------

def simple_imputer(imp, blocks, g, cols):
    stats = np.asarray(imp.statistics_)
    if stats.dtype.kind == "O":
        return string_imputer(imp, blocks, g, cols)
    x = numeric(g, cols, blocks)
    mv = imp.missing_values
    if is_nan(mv):
        mask = g.node("IsNaN", [x], base="missing")
    else:
        mask = g.node("Equal", [x, g.f64(float(mv))], base="missing")
    keep = list(range(len(stats)))
    if not (imp.strategy == "constant" or getattr(imp, "keep_empty_features", False)):
        keep = [j for j in keep if not np.isnan(stats[j])]  # features never observed in fit are dropped
    filled = g.node("Where", [mask, g.f64(np.where(np.isnan(stats), 0.0, stats).astype(np.float64)), x], base="imputed")
    out = [Block("double", filled if len(keep) == len(stats) else g.columns(filled, keep), len(keep))]
    if imp.add_indicator:
        features = list(imp.indicator_.features_)
        if features:
            ind = g.cast(g.columns(mask, features), TensorProto.DOUBLE)
            out.append(Block("double", ind, len(features)))
    return [b for b in out if b.width > 0]


def string_imputer(imp, blocks, g, cols):
    """Strings cannot be null in a request, so only a missing_values that is itself a string can occur."""
    if imp.add_indicator:
        raise unsupported(imp, "add_indicator on string columns")
    mv = imp.missing_values
    out = []
    for b, stat in zip(split(g, blocks), imp.statistics_):
        if not isinstance(stat, str):
            raise unsupported(imp, f"statistic {stat!r} of a string column is not a string")
        s = string_tensor(g, cols, b, imp)
        if isinstance(mv, str):
            hit = g.node("LabelEncoder", [s], domain="ai.onnx.ml", base="is_missing",
                         keys_strings=[mv], values_int64s=[1], default_int64=0)
            s = g.node("Where", [g.cast(hit, TensorProto.BOOL), g.const(np.array([stat], dtype=object), "fill"), s],
                       base="imputed")
        elif not is_nan(mv):
            raise unsupported(imp, f"missing_values={mv!r} on string columns")
        out.append(Block("string", s))
    return out


def string_tensor(g, cols, b, step):
    if b.kind == "source":
        return cols.read(g, b.column, "string")
    if b.kind == "string":
        return b.tensor
    raise unsupported(step, "string categories for a column the previous step made numeric")


# ---- encoders --------------------------------------------------------------------------------------------

def is_string_categories(cats):
    return cats.dtype.kind in "OUS" and any(isinstance(c, str) for c in cats)


def category_index(g, cols, b, cats, step):
    """[N,1] double: the position of the value in `cats`, -1 when it is none of them."""
    if is_string_categories(cats):
        keys, values = [], []
        for i, c in enumerate(cats):
            if isinstance(c, str):
                keys.append(c)
                values.append(i)
            elif not is_nan(c):
                raise unsupported(step, f"category {c!r} among string categories")
        s = string_tensor(g, cols, b, step)
        idx = g.node("LabelEncoder", [s], domain="ai.onnx.ml", base="category",
                     keys_strings=keys, values_int64s=values, default_int64=-1)
        return g.cast(idx, TensorProto.DOUBLE)
    hits = category_hits(g, cols, b, cats, step)
    # Categories are distinct, so at most one hit per row: sum((i + 1) * hit_i) - 1.
    pos = g.node("MatMul", [hits, g.f64(np.arange(1, len(cats) + 1, dtype=np.float64).reshape(-1, 1))])
    return g.node("Sub", [pos, g.f64([1.0])], base="category")


def category_hits(g, cols, b, cats, step):
    """[N,k] double one-hot of the value among `cats` (all zeros when unknown)."""
    k = len(cats)
    if is_string_categories(cats):
        idx = category_index(g, cols, b, cats, step)
        return g.cast(g.node("Equal", [idx, g.f64(np.arange(k, dtype=np.float64))]), TensorProto.DOUBLE)
    if cats.dtype.kind not in "iufb":
        raise unsupported(step, f"categories of dtype {cats.dtype}")
    if b.kind == "source":
        x = cols.read(g, b.column, "double", integer_hint=cats.dtype.kind in "iub")
    elif b.kind == "double":
        x = b.tensor
    else:
        raise unsupported(step, "numeric categories for a column of strings")
    values = cats.astype(np.float64)
    nan = np.isnan(values)
    hit = g.node("Equal", [x, g.f64(np.where(nan, 0.0, values))], base="hit")
    if nan.any():
        hit = g.node("And", [hit, g.const(~nan, "not_nan_category")])
        hit = g.node("Or", [hit, g.node("And", [g.node("IsNaN", [x]), g.const(nan, "nan_category")])])
    return g.cast(hit, TensorProto.DOUBLE)


def check_infrequent(enc):
    if getattr(enc, "_infrequent_enabled", False):
        raise unsupported(enc, "infrequent categories (min_frequency / max_categories)")


def one_hot_encoder(enc, blocks, g, cols):
    check_infrequent(enc)
    drop = getattr(enc, "drop_idx_", None)
    out = []
    for j, (b, cats) in enumerate(zip(split(g, blocks), enc.categories_)):
        hits = category_hits(g, cols, b, np.asarray(cats), enc)
        d = None if drop is None else drop[j]
        if d is not None:
            keep = [i for i in range(len(cats)) if i != int(d)]
            if not keep:
                continue
            hits = g.columns(hits, keep)
            out.append(Block("double", hits, len(keep)))
        else:
            out.append(Block("double", hits, len(cats)))
    # handle_unknown='error' raises in scikit-learn; here an unknown value encodes as all zeros, as 'ignore' does.
    return out


def ordinal_encoder(enc, blocks, g, cols):
    check_infrequent(enc)
    unknown = enc.unknown_value if enc.handle_unknown == "use_encoded_value" else np.nan
    missing = getattr(enc, "_missing_indices", {}) or {}
    out = []
    for j, (b, cats) in enumerate(zip(split(g, blocks), enc.categories_)):
        idx = category_index(g, cols, b, np.asarray(cats), enc)
        if j in missing:
            is_missing = g.node("Equal", [idx, g.f64([float(missing[j])])])
            idx = g.node("Where", [is_missing, g.f64([float(enc.encoded_missing_value)]), idx])
        known = g.node("GreaterOrEqual", [idx, g.f64([0.0])])
        out.append(Block("double", g.node("Where", [known, idx, g.f64([float(unknown)])], base="ordinal"), 1))
    return [Block("double", g.concat([b.tensor for b in out]), len(out))] if out else []


# ---- features ------------------------------------------------------------------------------------------

def polynomial_features(pf, blocks, g, cols):
    x = numeric(g, cols, blocks)
    n = width(blocks)
    powers = np.asarray(pf.powers_)
    degree = int(powers.sum(axis=1).max()) if len(powers) else 0
    # Column n of [x, 1] is the constant 1: each output k is the product of `degree` gathered columns, the
    # factors of x_j^p listed in ascending j and padded with the 1.
    rows = g.node("Slice", [g.node("Shape", [x]), g.i64([0]), g.i64([1])], base="rows")
    ones = g.node("ConstantOfShape", [g.node("Concat", [rows, g.i64([1])], axis=0)], base="ones",
                  value=helper.make_tensor("one", TensorProto.DOUBLE, [1], [1.0]))
    x1 = g.node("Concat", [x, ones], axis=1, base="x1")
    factors = [[j for j in range(n) for _ in range(int(p[j]))] for p in powers]
    padded = [f + [n] * (max(degree, 1) - len(f)) for f in factors]
    product = None
    for d in range(max(degree, 1)):
        term = g.columns(x1, [f[d] for f in padded])
        product = term if product is None else g.node("Mul", [product, term], base="poly")
    return [Block("double", product, len(powers))]


TRANSFORMERS = {
    "StandardScaler": standard_scaler,
    "MinMaxScaler": min_max_scaler,
    "RobustScaler": robust_scaler,
    "MaxAbsScaler": max_abs_scaler,
    "SimpleImputer": simple_imputer,
    "OneHotEncoder": one_hot_encoder,
    "OrdinalEncoder": ordinal_encoder,
    "PolynomialFeatures": polynomial_features,
}
