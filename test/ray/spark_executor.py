"""The executor side of a `pyml batch --emit-spark` job, run for real without Spark (python spark_executor.py ...).

    spark_executor.py JOB.py INPUT.parquet OUTPUT.parquet BATCH_ROWS

Imports the emitted job as a module and calls its predict_partition exactly as Spark's mapInArrow would: an
iterator of Arrow record batches of at most BATCH_ROWS rows (spark.sql.execution.arrow.maxRecordsPerBatch), each
holding the frame that the job's model_frame selects on the driver: the --keep columns, then the packed input as
Spark's ArrayType(FloatType), which Arrow carries as a variable-length list<float> (F.array of the K columns). The
batches come out of the real Parquet file through pyarrow, and the image's entrypoint runs from PYML_ROOTFS. What
predict_partition yields is written as OUTPUT.parquet; one JSON line tells the batches in and out and the schema.
"""
import importlib.util
import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def spark_frame_batches(path, keep, packed, batch_rows):
    """Record batches as Spark hands them to mapInArrow after model_frame: keep columns, then F.array(packed...)."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=keep + packed):
        # Row-major: row 0's K values, then row 1's... A NULL cell stays a NULL element (F.array keeps it).
        values = np.stack([batch.column(c).fill_null(0).to_numpy(zero_copy_only=False) for c in packed], axis=1).ravel()
        nulls = np.stack([batch.column(c).is_null().to_numpy(zero_copy_only=False) for c in packed], axis=1).ravel()
        offsets = pa.array(np.arange(0, len(values) + 1, len(packed), dtype=np.int32))
        array = pa.ListArray.from_arrays(offsets, pa.array(values, type=batch.schema.field(packed[0]).type, mask=nulls))
        yield pa.RecordBatch.from_arrays([batch.column(k) for k in keep] + [array], names=keep + ["input"])


def main():
    job_file, input_path, output_path, batch_rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    spec = importlib.util.spec_from_file_location("pyml_spark_job", job_file)
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    only = job.SIGNATURE["inputs"][0]
    packed = [f.name for f in pq.read_schema(input_path) if f.name not in job.KEEP]
    assert len(packed) == only["shape"][1], "the input file has %d feature columns for %s" % (len(packed), only["shape"])
    batches_in = 0

    def counted():
        nonlocal batches_in
        for b in spark_frame_batches(input_path, job.KEEP, packed, batch_rows):
            batches_in += 1
            yield b

    out = list(job.predict_partition(counted()))
    table = pa.Table.from_batches(out)
    pq.write_table(table, output_path)
    print(json.dumps({"batchesIn": batches_in, "batchesOut": len(out), "rows": table.num_rows,
                      "schema": [f"{f.name}: {f.type}" for f in table.schema]}))


if __name__ == "__main__":
    main()
