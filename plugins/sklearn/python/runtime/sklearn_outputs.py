"""The result columns of a fitted scikit-learn model, as the Python runtime serves them.

The same names and dtypes as the ONNX converter's graph outputs (pyml_sklearn/outputs.py), so a pickle has one
signature whichever runtime serves it: classifiers `label` (INT64, BYTES or FP64, as `classes_`) and
`probability_<class>` (FP64) when they have predict_proba; regressors `prediction` (FP64). Used at build time by
convert.py and in the image by sklearn_model.py; no import of pyml or onnx here.
"""
import numpy as np


class NotServable(ValueError):
    """A model the runtime cannot map to dataframe columns (neither a classifier nor a single-output regressor)."""


def label_dtype(classes):
    classes = np.asarray(classes)
    if classes.dtype.kind in "iub":
        return "INT64"
    if classes.dtype.kind in "OUS" and all(isinstance(c, str) for c in classes):
        return "BYTES"
    if classes.dtype.kind == "f":
        return "FP64"
    raise NotServable(f"class labels of dtype {classes.dtype} (only integer, bool, float or string classes)")


def final_estimator(model):
    steps = getattr(model, "steps", None)
    return final_estimator(steps[-1][1]) if steps else model


def output_columns(model):
    """[(column, dtype)] of the model's results."""
    from sklearn.base import is_classifier, is_regressor
    name = type(final_estimator(model)).__name__
    if is_classifier(model):
        classes = getattr(model, "classes_", None)
        if classes is None or np.asarray(classes).ndim != 1:
            raise NotServable(f"{name} has several outputs (only single-output classifiers)")
        columns = [("label", label_dtype(classes))]
        if hasattr(model, "predict_proba"):
            columns += [(f"probability_{c}", "FP64") for c in np.asarray(classes)]
        return columns
    if is_regressor(model):
        if getattr(final_estimator(model), "n_outputs_", 1) != 1:
            raise NotServable(f"{name} has several outputs (only single-output regressors)")
        return [("prediction", "FP64")]
    raise NotServable(f"{name} is neither a classifier nor a regressor; the sklearn plugin serves those")


def predict_columns(model, X, columns):
    """{column: 1-D array} for `columns` (output_columns of the model): what predict / predict_proba return."""
    out = {}
    label = columns[0][0] == "label"
    prediction = np.asarray(model.predict(X))
    if label:
        out["label"] = prediction.reshape(-1)
        if len(columns) > 1:
            proba = np.asarray(model.predict_proba(X), dtype=np.float64)
            for k, (column, _) in enumerate(columns[1:]):
                out[column] = proba[:, k]
    else:
        out["prediction"] = prediction.reshape(-1).astype(np.float64, copy=False)
    return out
