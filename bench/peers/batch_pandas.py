"""pandas + onnxruntime: the whole Parquet file as a DataFrame, one run, predictions written as Parquet.

    python batch_pandas.py MODEL.onnx IN.parquet OUT.parquet

The model's one input takes every column but `id`, in file order, as FLOAT; each output becomes columns beside
`id` (a 2-D output one column per entry: NAME_0, NAME_1, ...). Prints the row count.
"""
import sys

import numpy as np
import onnxruntime as ort
import pandas as pd

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
outputs = [o.name for o in session.get_outputs()]
df = pd.read_parquet(sys.argv[2])
features = [name for name in df.columns if name != "id"]
results = session.run(outputs, {input_name: df[features].to_numpy(dtype=np.float32)})
columns = {"id": df["id"]}
for name, value in zip(outputs, results):
    if value.ndim == 2:
        columns.update({f"{name}_{k}": value[:, k] for k in range(value.shape[1])})
    else:
        columns[name] = value
out = pd.DataFrame(columns)
out.to_parquet(sys.argv[3], index=False)
print(len(out))
