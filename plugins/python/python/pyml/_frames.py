"""Dataframe models' columns <-> pandas DataFrame, in the sidecar.

The entrypoint sends a dataframe as one 1-D array per signature input (numpy views of the frame's bytes, strings as
an object array); the model gets a pandas DataFrame of them, in signature order, and returns a DataFrame (or a dict
of columns). Each signature output is read back as one 1-D array of its dtype, one value per input row.
"""
import numpy as np

from ._framing import TO_NUMPY


def frame_of_columns(columns, specs):
    import pandas as pd

    return pd.DataFrame({spec.name: columns[spec.name] for spec in specs}, copy=False)


def _column(result, name):
    if isinstance(result, dict):
        if name not in result:
            raise KeyError(f"the frame predict returned has no column {name!r} (it has {', '.join(map(str, result)) or 'none'})")
        return result[name]
    if name not in result.columns:
        raise KeyError(f"the frame predict returned has no column {name!r} (it has {', '.join(map(str, result.columns)) or 'none'})")
    return result[name]


def columns_of_frame(result, specs, rows):
    if not isinstance(result, dict) and not hasattr(result, "columns"):
        raise TypeError(f"a DataFrameModel's predict must return a pandas DataFrame or a dict of columns, got {type(result).__name__}")
    out = {}
    for spec in specs:
        values = np.asarray(_column(result, spec.name))
        if values.ndim != 1 or len(values) != rows:
            raise ValueError(f"output column {spec.name!r} has shape {values.shape}; expected {rows} values, one per input row")
        if spec.dtype == "BYTES":
            out[spec.name] = np.array([v if isinstance(v, str) else str(v) for v in values], dtype=object)
        else:
            want = TO_NUMPY[spec.dtype]
            if values.dtype.kind not in "biuf":
                raise TypeError(f"output column {spec.name!r} holds {values.dtype}; the signature says {spec.dtype}")
            out[spec.name] = values.astype(want, copy=False)
    return out
