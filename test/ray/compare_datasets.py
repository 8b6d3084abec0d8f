"""Compares two Parquet outputs of pyml batch bit for bit (python compare_datasets.py A B KEY).

A and B are Parquet files or (Hive-partitioned) dataset directories. Rows are matched by KEY (a unique --keep
column), and every column is compared as raw bytes: numbers by their bit patterns (so -0.0 differs from 0.0 and
NaNs compare by payload), list columns by their flattened values and row lengths, strings exactly. Prints one JSON
line: the row counts, distinct keys, the columns and types of each side, and the first differences (none when equal).
"""
import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds


def load(path):
    table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    # A Hive partition column comes back dictionary-encoded (or as a date): its text is what both sides wrote.
    columns = []
    for name, column in zip(table.column_names, table.columns):
        if pa.types.is_dictionary(column.type) or pa.types.is_date(column.type):
            column = column.cast(pa.string())
        columns.append(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    return pa.table(columns, names=table.column_names)


def raw(array):
    """(row lengths, value bytes) of a column: lists flattened, fixed-size or not."""
    lengths = None
    while pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type) or pa.types.is_large_list(array.type):
        lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False) if lengths is None else lengths
        array = array.flatten()
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return lengths, "\0".join(array.to_pylist()).encode()
    return lengths, np.ascontiguousarray(array.to_numpy(zero_copy_only=False)).view(np.uint8).tobytes()


def main():
    a_path, b_path, key = sys.argv[1], sys.argv[2], sys.argv[3]
    a, b = load(a_path), load(b_path)
    report = {
        "rows": [a.num_rows, b.num_rows],
        "distinctKeys": [len(pc.unique(a.column(key))), len(pc.unique(b.column(key)))],
        "columns": [sorted(a.column_names), sorted(b.column_names)],
        "differences": [],
    }
    if a.num_rows == b.num_rows and sorted(a.column_names) == sorted(b.column_names):
        a = a.take(pc.sort_indices(a, [(key, "ascending")]))
        b = b.take(pc.sort_indices(b, [(key, "ascending")]))
        for name in sorted(a.column_names):
            la, va = raw(a.column(name).combine_chunks())
            lb, vb = raw(b.column(name).combine_chunks())
            if (la is None) != (lb is None) or (la is not None and not np.array_equal(la, lb)):
                report["differences"].append("%s: row lengths differ" % name)
            elif va != vb:
                report["differences"].append("%s: values differ (%d vs %d bytes)" % (name, len(va), len(vb)))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
