"""Test fixture: fits each estimator the sklearn plugin converts on a dataset scikit-learn ships, pickles it,
and writes what scikit-learn itself predicts, so the test can compare served predictions.

Usage: fit-estimators.py OUT_DIR  ->  OUT_DIR/<case>/model.pkl, OUT_DIR/<case>/request.json, OUT_DIR/<case>/expected.json
"""
import json
import os
import pickle
import sys

import numpy as np
from sklearn import datasets
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier,
                              RandomForestRegressor)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

DATA = {
    "iris": datasets.load_iris(return_X_y=True),
    "breast_cancer": datasets.load_breast_cancer(return_X_y=True),
    "diabetes": datasets.load_diabetes(return_X_y=True),
}
CASES = {
    "logistic-iris": (LogisticRegression(max_iter=1000), "iris"),
    "logistic-breast_cancer": (LogisticRegression(max_iter=5000), "breast_cancer"),
    "linear-diabetes": (LinearRegression(), "diabetes"),
    "tree-iris": (DecisionTreeClassifier(random_state=0), "iris"),
    "tree-diabetes": (DecisionTreeRegressor(max_depth=6, random_state=0), "diabetes"),
    "forest-breast_cancer": (RandomForestClassifier(n_estimators=15, random_state=0), "breast_cancer"),
    "forest-diabetes": (RandomForestRegressor(n_estimators=15, max_depth=8, random_state=0), "diabetes"),
    "boosting-iris": (GradientBoostingClassifier(n_estimators=20, random_state=0), "iris"),
    "boosting-breast_cancer": (GradientBoostingClassifier(n_estimators=20, random_state=0), "breast_cancer"),
    "boosting-diabetes": (GradientBoostingRegressor(n_estimators=30, random_state=0), "diabetes"),
    # Not convertible: the build must fail naming the class.
    "unsupported-knn": (KNeighborsClassifier(), "iris"),
}


def main(out):
    for name, (est, data) in CASES.items():
        X, y = DATA[data]
        est.fit(X, y)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.pkl"), "wb") as f:
            pickle.dump(est, f)
        # Every row of the dataset, one column per feature (x0, x1, ...: trained on arrays, no feature names).
        request = {"inputs": [{"name": f"x{j}", "datatype": "FP64", "shape": [len(X)], "data": X[:, j].tolist()}
                              for j in range(X.shape[1])]}
        expected = {"estimator": type(est).__name__, "predict": est.predict(X).tolist()}
        if hasattr(est, "predict_proba"):
            expected["classes"] = est.classes_.tolist()
            expected["proba"] = est.predict_proba(X).tolist()
        with open(os.path.join(d, "request.json"), "w") as f:
            json.dump(request, f)
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(expected, f)


if __name__ == "__main__":
    main(sys.argv[1])
