"""Test fixture: fits each model the sklearn plugin converts (estimators and Pipelines) on a dataset scikit-learn
ships or on a generated mixed frame, pickles it, and writes what scikit-learn itself predicts, so the test can
compare served predictions.

Usage: fit-estimators.py OUT_DIR [CASE...]  ->  OUT_DIR/<case>/model.pkl, frame.json, expected.json[, options.json]
frame.json holds the rows to predict, column by column (NaN written as "NaN"); the test sends them with the
dtypes of the built model's signature.
"""
import json
import math
import os
import pickle
import sys

import numpy as np
import pandas as pd
from sklearn import datasets
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor, GradientBoostingClassifier,
                              GradientBoostingRegressor, HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import (ElasticNet, HuberRegressor, Lasso, LassoCV, LinearRegression, LogisticRegression, Ridge,
                                  RidgeClassifier)
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (FunctionTransformer, MaxAbsScaler, MinMaxScaler, OneHotEncoder, OrdinalEncoder, PolynomialFeatures, QuantileTransformer,
                                   RobustScaler, StandardScaler)
from sklearn.svm import SVC, SVR, LinearSVC, NuSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor


def mixed_frame(n=400, seed=0):
    """Strings, NaNs and integer columns, with a class and a numeric target that depend on all of them."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["paris", "lyon", "nice", "lille"], n)
    plan = rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2])
    age = rng.integers(18, 80, n)
    rooms = rng.integers(1, 6, n)
    income = rng.normal(40_000, 12_000, n).round(2)
    income[rng.random(n) < 0.12] = np.nan
    score = rng.normal(0, 1, n)
    frame = pd.DataFrame({"age": age, "income": income, "city": city, "plan": plan, "rooms": rooms, "score": score})
    signal = (age - 45) / 15 + np.nan_to_num((income - 40_000) / 12_000) + (plan == "pro") * 0.8 + (plan == "team") * 1.5 \
        + (city == "paris") * 0.7 - (rooms - 3) * 0.3 + score * 0.5 + rng.normal(0, 0.5, n)
    label = np.where(signal < -0.5, "low", np.where(signal < 1.0, "mid", "high"))
    return frame, label, signal * 10 + 100


def mixed_requests(frame):
    """The training rows plus rows with categories the model never saw (handle_unknown) and NaNs everywhere numeric."""
    extra = pd.DataFrame({"age": [30, 61, 44], "income": [np.nan, 52_000.5, np.nan], "city": ["marseille", "paris", ""],
                          "plan": ["pro", "enterprise", "basic"], "rooms": [9, 2, 0], "score": [0.1, -2.0, 3.5]})
    return pd.concat([frame, extra], ignore_index=True)


def numeric_frame(data):
    X, y = data
    return X, y


DATA = {
    "iris": datasets.load_iris(return_X_y=True),
    "wine": datasets.load_wine(return_X_y=True),
    "breast_cancer": datasets.load_breast_cancer(return_X_y=True),
    "diabetes": datasets.load_diabetes(return_X_y=True),
}
# The target as a float column (0.0 / 1.0), as a pandas frame with missing values elsewhere often gives it.
DATA["breast_cancer_float"] = (DATA["breast_cancer"][0], DATA["breast_cancer"][1].astype(np.float64))
MIXED, MIXED_CLASS, MIXED_TARGET = mixed_frame()

NUMERIC = ["age", "income", "score"]
STRINGS = ["city", "plan"]


def mixed_preprocessor():
    """The common production shape: impute + scale numbers, one-hot strings (unknown ignored) and integers."""
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore"), STRINGS),
        ("rooms", OneHotEncoder(handle_unknown="ignore", sparse=False), ["rooms"]),
    ])


CASES = {
    # Estimators alone on the datasets scikit-learn ships.
    "logistic-iris": (LogisticRegression(max_iter=1000), "iris"),
    "logistic-breast_cancer": (LogisticRegression(max_iter=5000), "breast_cancer"),
    "forest-float_labels-breast_cancer": (RandomForestClassifier(n_estimators=10, random_state=0), "breast_cancer_float"),
    "linear-diabetes": (LinearRegression(), "diabetes"),
    "tree-iris": (DecisionTreeClassifier(random_state=0), "iris"),
    "tree-diabetes": (DecisionTreeRegressor(max_depth=6, random_state=0), "diabetes"),
    "forest-breast_cancer": (RandomForestClassifier(n_estimators=15, random_state=0), "breast_cancer"),
    "forest-diabetes": (RandomForestRegressor(n_estimators=15, max_depth=8, random_state=0), "diabetes"),
    "boosting-iris": (GradientBoostingClassifier(n_estimators=20, random_state=0), "iris"),
    "boosting-breast_cancer": (GradientBoostingClassifier(n_estimators=20, random_state=0), "breast_cancer"),
    "boosting-diabetes": (GradientBoostingRegressor(n_estimators=30, random_state=0), "diabetes"),
    "extratrees-wine": (ExtraTreesClassifier(n_estimators=20, random_state=0), "wine"),
    "extratrees-diabetes": (ExtraTreesRegressor(n_estimators=20, max_depth=8, random_state=0), "diabetes"),
    "hgb-iris": (HistGradientBoostingClassifier(max_iter=30, random_state=0), "iris"),
    "hgb-breast_cancer": (HistGradientBoostingClassifier(max_iter=30, random_state=0), "breast_cancer"),
    "hgb-diabetes": (HistGradientBoostingRegressor(max_iter=50, random_state=0), "diabetes"),
    "ridge-diabetes": (Ridge(alpha=0.5), "diabetes"),
    "lasso-diabetes": (Lasso(alpha=0.05), "diabetes"),
    "elasticnet-diabetes": (ElasticNet(alpha=0.01, l1_ratio=0.3), "diabetes"),
    "svc-linear-iris": (SVC(kernel="linear", probability=True, random_state=0), "iris"),
    "svc-rbf-wine": (make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)), "wine"),
    "svc-rbf-breast_cancer": (make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)), "breast_cancer"),
    "svc-noproba-iris": (SVC(), "iris"),
    "svr-rbf-diabetes": (SVR(C=50.0), "diabetes"),
    "svr-linear-diabetes": (SVR(kernel="linear", C=100.0), "diabetes"),
    "knn-iris": (make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=5)), "iris"),
    "knn-distance-wine": (make_pipeline(MinMaxScaler(), KNeighborsClassifier(n_neighbors=7, weights="distance")), "wine"),
    "knn-diabetes": (KNeighborsRegressor(n_neighbors=5), "diabetes"),
    "mlp-iris": (make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=2000, random_state=0)), "iris"),
    "mlp-breast_cancer": (make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(20, 10), activation="tanh",
                                                                         max_iter=1000, random_state=0)), "breast_cancer"),
    "poly-ridge-diabetes": (make_pipeline(StandardScaler(), PolynomialFeatures(degree=2), Ridge(alpha=1.0)), "diabetes"),
    "nusvc-poly-iris": (make_pipeline(StandardScaler(), NuSVC(kernel="poly", degree=3, probability=True, random_state=0)), "iris"),
    "linearsvc-wine": (make_pipeline(StandardScaler(), LinearSVC(max_iter=20000, random_state=0)), "wine"),
    "ridgeclassifier-breast_cancer": (make_pipeline(MaxAbsScaler(), RidgeClassifier()), "breast_cancer"),
    "maxabs-lassocv-diabetes": (make_pipeline(MaxAbsScaler(), LassoCV(cv=3)), "diabetes"),
    "huber-diabetes": (HuberRegressor(max_iter=1000), "diabetes"),
    "robust-mlpreg-diabetes": (make_pipeline(RobustScaler(), MLPRegressor(hidden_layer_sizes=(32,), max_iter=3000, random_state=0)), "diabetes"),
    # Pipelines on the mixed frame, columns by name.
    "pipeline-logistic-mixed": (Pipeline([("pre", mixed_preprocessor()), ("clf", LogisticRegression(max_iter=2000))]), "mixed-class"),
    "pipeline-forest-mixed": (Pipeline([("pre", mixed_preprocessor()), ("clf", RandomForestClassifier(n_estimators=20, random_state=0))]), "mixed-class"),
    "pipeline-svc-mixed": (Pipeline([("pre", mixed_preprocessor()), ("clf", SVC(probability=True, random_state=0))]), "mixed-class"),
    "pipeline-mlp-mixed": (Pipeline([("pre", mixed_preprocessor()), ("clf", MLPClassifier(max_iter=2000, random_state=0))]), "mixed-class"),
    "pipeline-ridge-mixed": (Pipeline([("pre", mixed_preprocessor()), ("reg", Ridge())]), "mixed-target"),
    # Columns by position, remainder passthrough, ordinal codes, an imputer with indicators, HGB reading NaN itself.
    "pipeline-positions-mixed": (Pipeline([
        ("pre", ColumnTransformer([
            ("income", SimpleImputer(strategy="mean", add_indicator=True), [1]),
            ("codes", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), [2, 3]),
        ], remainder="passthrough")),
        ("clf", GradientBoostingClassifier(n_estimators=20, random_state=0)),
    ]), "mixed-class"),
    "pipeline-hgb-mixed": (Pipeline([
        ("pre", ColumnTransformer([
            ("num", "passthrough", ["income", "score"]),
            ("ages", MinMaxScaler(), ["age"]),
            ("cat", OneHotEncoder(drop="first", handle_unknown="ignore", sparse=False), ["city", "plan"]),
        ], remainder="drop")),
        ("reg", HistGradientBoostingRegressor(max_iter=40, random_state=0)),
    ]), "mixed-target"),
    "pipeline-knn-mixed": (Pipeline([
        ("pre", ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="constant", fill_value=0.0), RobustScaler()), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), STRINGS),
        ], remainder="drop")),
        ("reg", KNeighborsRegressor(n_neighbors=4, weights="distance")),
    ]), "mixed-target"),
    # Not convertible to ONNX: under runtime 'onnx' the build fails naming the step and its path; under 'auto' the
    # pickle runs in Python (test/sklearn/python-runtime.test.ts).
    "unsupported-function": (Pipeline([
        ("pre", ColumnTransformer([("logs", make_pipeline(FunctionTransformer(np.log1p), StandardScaler()), ["income", "rooms"]),
                                   ("cat", OneHotEncoder(handle_unknown="ignore"), STRINGS)], remainder="passthrough")),
        ("reg", HistGradientBoostingRegressor(max_iter=30, random_state=0)),
    ]), "mixed-target"),
    "unsupported-quantile": (Pipeline([
        ("pre", ColumnTransformer([("num", QuantileTransformer(n_quantiles=50), NUMERIC[:1] + NUMERIC[2:]),
                                   ("cat", OneHotEncoder(handle_unknown="ignore"), STRINGS)])),
        ("clf", LogisticRegression(max_iter=1000)),
    ]), "mixed-class"),
}
OPTIONS = {
    # An integer column declared INT32 (as a DuckDB INTEGER column arrives): cast inside the graph.
    "pipeline-positions-mixed": {"columnTypes": {"age": "INT32"}},
}


def json_value(v):
    if isinstance(v, (float, np.floating)):
        return "NaN" if math.isnan(v) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


def main(out, only):
    for name, (est, data) in CASES.items():
        if only and name not in only:
            continue
        if data.startswith("mixed"):
            X = MIXED
            y = MIXED_CLASS if data == "mixed-class" else MIXED_TARGET
            rows = mixed_requests(MIXED)
            frame = {c: [json_value(v) for v in rows[c].tolist()] for c in rows.columns}
        else:
            X, y = DATA[data]
            rows = X
            frame = {f"x{j}": X[:, j].tolist() for j in range(X.shape[1])}
        est.fit(X, y)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.pkl"), "wb") as f:
            pickle.dump(est, f)
        expected = {"estimator": type(est).__name__ if not isinstance(est, Pipeline) else
                    "Pipeline(" + ", ".join(type(s).__name__ for _, s in est.steps) + ")",
                    "kind": "classifier" if is_classifier(est) else "regressor",
                    "predict": [json_value(v) for v in est.predict(rows).tolist()]}
        if hasattr(est, "predict_proba"):
            expected["classes"] = [json_value(c) for c in est.classes_.tolist()]
            expected["probability_columns"] = [f"probability_{c}" for c in est.classes_]
            expected["proba"] = est.predict_proba(rows).tolist()
        with open(os.path.join(d, "frame.json"), "w") as f:
            json.dump(frame, f)
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(expected, f)
        if name in OPTIONS:
            with open(os.path.join(d, "options.json"), "w") as f:
                json.dump(OPTIONS[name], f)


if __name__ == "__main__":
    main(sys.argv[1], set(sys.argv[2:]))
