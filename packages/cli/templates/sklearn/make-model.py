"""Writes weights/model.pkl: a small LogisticRegression on a fixed toy dataset (3 features, 2 classes), so the
project builds and predicts before you bring your own estimator. Replace the pickle with yours and delete this.

    /usr/bin/python3 make-model.py [OUT.pkl]        (Debian: python3-sklearn)
"""
import os
import pickle
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

COLUMNS = ["x0", "x1", "x2"]

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "model.pkl")
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 3))
y = np.where(X @ np.array([1.0, -0.5, 0.3]) > 0, "yes", "no")
model = LogisticRegression().fit(X, y)
# Without pandas the estimator learns no feature names; set them so the image's columns are named.
model.feature_names_in_ = np.array(COLUMNS, dtype=object)
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out + ".tmp", "wb") as f:
    pickle.dump(model, f, protocol=4)
os.replace(out + ".tmp", out)
print(f"wrote {out}")
