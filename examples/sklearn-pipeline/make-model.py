"""Makes the example's customer table (data/customers.csv) and the churn Pipeline fitted on it (weights/model.pkl).

Run with Debian's python3 (python3-sklearn, python3-pandas):  /usr/bin/python3 examples/sklearn-pipeline/make-model.py
Deterministic (fixed seeds), so the committed files are reproduced byte for byte by the same scikit-learn.
The Pipeline is the shape most production models have: a ColumnTransformer that imputes and scales the numbers
and one-hot encodes the strings (categories never seen in training are ignored), then the estimator.
"""
import os
import pickle
import sys

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "weights", "model.pkl")
csv = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "data", "customers.csv")

rng = np.random.default_rng(7)
n = 300
frame = pd.DataFrame({
    "id": np.arange(1, n + 1),
    "age": rng.integers(18, 80, n),
    "tenure_months": rng.integers(0, 120, n),
    "monthly_spend": rng.normal(60, 25, n).round(2).clip(5, None),
    "city": rng.choice(["paris", "lyon", "nice", "lille"], n),
    "plan": rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2]),
})
frame.loc[rng.random(n) < 0.1, "monthly_spend"] = np.nan  # unknown spend: imputed with the median
risk = 1.2 - frame.tenure_months / 40 + (frame.plan == "basic") * 0.8 + (frame.city == "lille") * 0.5 \
    + np.nan_to_num((frame.monthly_spend - 60) / 50) + rng.normal(0, 0.6, n)
frame["churn"] = np.where(risk > 0, "leaves", "stays")

features = ["age", "tenure_months", "monthly_spend", "city", "plan"]
model = Pipeline([
    ("pre", ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["age", "tenure_months", "monthly_spend"]),
        ("categories", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
    ])),
    ("classifier", LogisticRegression(max_iter=1000)),
]).fit(frame[features], frame.churn)

tmp = out + ".tmp"
with open(tmp, "wb") as f:
    pickle.dump(model, f, protocol=4)
os.replace(tmp, out)
os.makedirs(os.path.dirname(csv), exist_ok=True)
frame.to_csv(csv + ".tmp", index=False)
os.replace(csv + ".tmp", csv)
print(f"wrote {out}: classes {list(model.classes_)}, accuracy {model.score(frame[features], frame.churn):.3f}")
