"""pandas + onnxruntime: the whole Parquet file as a DataFrame, one run, predictions written as Parquet.

    python batch_pandas.py MODEL.onnx IN.parquet OUT.parquet
"""
import sys

import numpy as np
import onnxruntime as ort
import pandas as pd

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
df = pd.read_parquet(sys.argv[2], columns=["id", *FEATURES])
probabilities, label = session.run(["probabilities", "label"], {"input": df[FEATURES].to_numpy(dtype=np.float32)})
out = pd.DataFrame({"id": df["id"], "p_setosa": probabilities[:, 0], "p_versicolor": probabilities[:, 1], "p_virginica": probabilities[:, 2], "label": label})
out.to_parquet(sys.argv[3], index=False)
print(len(out))
