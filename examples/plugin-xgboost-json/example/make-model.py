"""Trains a small XGBoost classifier on data/iris.csv and writes what the example and its tests use.

    /usr/bin/python3 examples/plugin-xgboost-json/example/make-model.py    (Debian: apt-get install python3-xgboost)

Writes:
  weights/model.json   the booster in XGBoost's JSON model format (Booster.save_model('model.json'))
  reference.json       inputs and XGBoost's own predictions for them (Booster.predict): the format's reference values
  sample.json          a V2 request with the first rows of reference.json
  objectives/*.json    two more small models (binary:logistic, reg:squarederror) with XGBoost's predictions, for the
                       plugin's tests of other objectives

Deterministic: fixed seed, exact tree method, one thread. The committed files are what the tests check against;
nothing here runs at test time (the tests need no xgboost).
"""
import csv
import json
import math
import os

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
SPECIES = ["setosa", "versicolor", "virginica"]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

rows, labels = [], []
with open(os.path.join(HERE, "data", "iris.csv")) as f:
    for r in csv.DictReader(f):
        rows.append([float(r[k]) for k in FEATURES])
        labels.append(SPECIES.index(r["species"]))
x = np.array(rows, dtype=np.float32)
y = np.array(labels)

# A few missing values in training, so some splits learn a default direction other than the left one.
x_train = x.copy()
x_train[::7, 3] = np.nan
x_train[3::11, 2] = np.nan

dtrain = xgb.DMatrix(x_train, label=y, feature_names=FEATURES, missing=np.nan)
params = {
    "objective": "multi:softprob", "num_class": 3, "max_depth": 3, "eta": 0.3, "seed": 7,
    "tree_method": "exact", "nthread": 1, "subsample": 1.0, "min_child_weight": 1,
}
booster = xgb.train(params, dtrain, num_boost_round=8)
os.makedirs(os.path.join(HERE, "weights"), exist_ok=True)
booster.save_model(os.path.join(HERE, "weights", "model.json"))

# Reference inputs: every 5th iris row, some edge values, and rows with missing features (NaN, written as null).
ref_x = [list(map(float, r)) for r in x[::5]]
ref_x += [[0.0, 0.0, 0.0, 0.0], [100.0, -5.0, 2.45, 1.75], [5.0, 3.0, float("nan"), 1.0], [6.0, 3.0, 5.0, float("nan")],
          [float("nan")] * 4]
ref = booster.predict(xgb.DMatrix(np.array(ref_x, dtype=np.float32), feature_names=FEATURES, missing=np.nan))
nan_to_null = lambda v: None if math.isnan(v) else v
with open(os.path.join(HERE, "reference.json"), "w") as f:
    json.dump({
        "producer": f"xgboost {xgb.__version__} Booster.predict",
        "inputs": [[nan_to_null(float(np.float32(v))) for v in r] for r in ref_x],
        "probabilities": [[float(p) for p in r] for r in ref],
        "label": [int(np.argmax(r)) for r in ref],
    }, f, indent=1)
    f.write("\n")

first = [r for r in ref_x[:4]]
with open(os.path.join(HERE, "sample.json"), "w") as f:
    json.dump({"inputs": [{"name": "input", "datatype": "FP32", "shape": [len(first), 4], "data": [round(v, 6) for r in first for v in r]}]}, f)
    f.write("\n")
# Other objectives: versicolor-or-not (binary:logistic) and petal width from the other three (reg:squarederror).
os.makedirs(os.path.join(HERE, "objectives"), exist_ok=True)
for name, params, label in [
    ("binary", {"objective": "binary:logistic", "base_score": 0.3}, (y == 1).astype(float)),
    ("regression", {"objective": "reg:squarederror"}, x[:, 3].astype(float)),
]:
    p = {"max_depth": 3, "eta": 0.3, "seed": 7, "tree_method": "exact", "nthread": 1, **params}
    b = xgb.train(p, xgb.DMatrix(x_train, label=label, missing=np.nan), num_boost_round=6)
    path = os.path.join(HERE, "objectives", f"{name}.json")
    b.save_model(path)
    pred = b.predict(xgb.DMatrix(np.array(ref_x, dtype=np.float32), missing=np.nan))
    with open(os.path.join(HERE, "objectives", f"{name}.reference.json"), "w") as f:
        json.dump({"producer": f"xgboost {xgb.__version__} Booster.predict", "objective": p["objective"],
                   "inputs": [[nan_to_null(float(np.float32(v))) for v in r] for r in ref_x],
                   "outputs": [float(v) for v in pred]}, f, indent=1)
        f.write("\n")

print(f"wrote weights/model.json ({booster.num_boosted_rounds()} rounds), reference.json ({len(ref_x)} rows), sample.json")
