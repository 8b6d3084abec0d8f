"""pyarrow + onnxruntime: Parquet in, predictions out as Parquet, batch by batch (the batch peer).

    python batch_pyarrow.py MODEL.onnx IN.parquet OUT.parquet

The model's one input takes every column but `id`, in file order, as FLOAT; each output becomes a column (a 2-D
output a fixed-size list), beside `id`. Prints the row count.
"""
import sys

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
outputs = [o.name for o in session.get_outputs()]
source = pq.ParquetFile(sys.argv[2])
features = [name for name in source.schema_arrow.names if name != "id"]
writer = None
for batch in source.iter_batches(batch_size=65536, columns=["id", *features]):
    x = np.column_stack([batch.column(f).to_numpy() for f in features]).astype(np.float32, copy=False)
    results = session.run(outputs, {input_name: x})
    columns = {"id": batch.column("id")}
    for name, value in zip(outputs, results):
        columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(value.ravel()), value.shape[1]) if value.ndim == 2 else pa.array(value)
    out = pa.table(columns)
    writer = writer or pq.ParquetWriter(sys.argv[3], out.schema)
    writer.write_table(out)
writer.close()
print(source.metadata.num_rows)
