"""Trains the example's iris classifier and pickles it to weights/model.pkl.

Run with Debian's python3 (python3-sklearn):  /usr/bin/python3 examples/sklearn-iris/make-model.py
Deterministic (fixed random_state), so the committed pickle is reproduced byte for byte by the same scikit-learn.
"""
import os
import pickle
import sys

import warnings

import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "weights", "model.pkl")

iris = load_iris()
X = iris.data
y = iris.target_names[iris.target]  # string classes: setosa, versicolor, virginica
model = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
# Without pandas the estimator learns no feature names; set them so the image's columns are named.
model.feature_names_in_ = np.array(COLUMNS, dtype=object)

warnings.filterwarnings("ignore", message="X does not have valid feature names")
tmp = out + ".tmp"
with open(tmp, "wb") as f:
    pickle.dump(model, f, protocol=4)
os.replace(tmp, out)
# The dataset as CSV too (id, the four columns, species), for `pyml predict`/`pyml batch` examples.
csv = os.path.join(here, "data", "iris.csv")
if len(sys.argv) <= 1:
    os.makedirs(os.path.dirname(csv), exist_ok=True)
    with open(csv + ".tmp", "w") as f:
        f.write("id," + ",".join(COLUMNS) + ",species\n")
        for i, (row, species) in enumerate(zip(X, y), start=1):
            f.write(f"{i}," + ",".join(repr(float(v)) for v in row) + f",{species}\n")
    os.replace(csv + ".tmp", csv)
print(f"wrote {out}: {type(model).__name__}, classes {list(model.classes_)}, accuracy {model.score(X, y):.3f}")
