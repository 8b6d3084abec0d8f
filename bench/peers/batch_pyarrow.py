"""pyarrow + onnxruntime: Parquet in, predictions out as Parquet, batch by batch (the batch peer).

    python batch_pyarrow.py MODEL.onnx IN.parquet OUT.parquet
"""
import sys

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
source = pq.ParquetFile(sys.argv[2])
writer = None
for batch in source.iter_batches(batch_size=65536, columns=["id", *FEATURES]):
    x = np.column_stack([batch.column(f).to_numpy() for f in FEATURES]).astype(np.float32, copy=False)
    probabilities, label = session.run(["probabilities", "label"], {"input": x})
    out = pa.table({
        "id": batch.column("id"),
        "probabilities": pa.FixedSizeListArray.from_arrays(pa.array(probabilities.ravel()), 3),
        "label": pa.array(label),
    })
    writer = writer or pq.ParquetWriter(sys.argv[3], out.schema)
    writer.write_table(out)
writer.close()
print(source.metadata.num_rows)
