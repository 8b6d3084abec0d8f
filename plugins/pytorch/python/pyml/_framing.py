"""The sidecar's wire format, shared with plugins/pytorch/src/framing.ts.

A frame: u32 LE body length, then the body: u32 LE header length, the header (UTF-8 JSON), zero padding to a
multiple of 8 (counted from the body's start), then the raw little-endian bytes of every fixed-width tensor,
each at the 8-aligned ``offset`` its header entry names. BYTES tensors travel in the header as a string list.
"""
import json
import struct

import numpy as np

_U32 = struct.Struct("<I")

# OIP dtype <-> numpy dtype (little-endian, as the frames carry them).
TO_NUMPY = {
    "BOOL": np.dtype("bool"), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}
FROM_NUMPY = {v: k for k, v in TO_NUMPY.items()}


def _align8(n):
    return (n + 7) & ~7


class ConnectionClosed(Exception):
    pass


def read_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionClosed()
        got += k
    return buf


def read_frame(sock):
    """Returns (header dict, body bytearray)."""
    (size,) = _U32.unpack(read_exact(sock, 4))
    body = read_exact(sock, size)
    (hlen,) = _U32.unpack_from(body, 0)
    header = json.loads(bytes(body[4:4 + hlen]))
    return header, body


def decode_tensors(header, body):
    """Named numpy arrays over the body (no copy; writable since the body is a bytearray)."""
    out = {}
    for t in header.get("tensors", []):
        name, dtype, shape = t["name"], t["dtype"], t["shape"]
        if dtype == "BYTES":
            out[name] = np.array(t["strings"], dtype=object).reshape(shape)
            continue
        npd = TO_NUMPY[dtype]
        count = 1
        for d in shape:
            count *= d
        arr = np.frombuffer(body, dtype=npd, count=count, offset=t["offset"])
        out[name] = arr.reshape(shape)
    return out


def _as_array(name, value):
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without importing torch here
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            raise TypeError(f"output {name!r} is bfloat16, which the Open Inference Protocol cannot carry; convert it to float32")
        value = value.numpy()
    arr = np.asarray(value)
    if arr.dtype.kind in "USO":
        return arr
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return np.ascontiguousarray(arr)


def encode_frame(header, tensors=None):
    """Frame bytes (as a list of buffers for sendmsg) for ``header`` plus named arrays."""
    entries = []
    chunks = []
    if tensors:
        for name, value in tensors.items():
            if not isinstance(name, str):
                raise TypeError(f"output names must be strings, got {name!r}")
            arr = _as_array(name, value)
            if arr.dtype.kind in "USO":
                entries.append({"name": name, "dtype": "BYTES", "shape": list(arr.shape),
                                "strings": [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in arr.reshape(-1).tolist()]})
                continue
            dtype = FROM_NUMPY.get(arr.dtype)
            if dtype is None:
                raise TypeError(f"output {name!r} has dtype {arr.dtype}, which has no Open Inference Protocol counterpart")
            entries.append({"name": name, "dtype": dtype, "shape": list(arr.shape), "nbytes": arr.nbytes})
            chunks.append(arr)
    header = dict(header)
    if entries:
        header["tensors"] = entries
    # Offsets depend on the header's length, which depends on the offsets: fix the width by padding digits.
    fixed = [e for e in entries if e["dtype"] != "BYTES"]
    for e in fixed:
        e["offset"] = 10 ** 11  # placeholder of maximal width
    probe = json.dumps(header, separators=(",", ":")).encode()
    start = _align8(4 + len(probe))
    pos = start
    for e in fixed:
        e["offset"] = pos
        pos = _align8(pos + e["nbytes"])
    hbytes = json.dumps(header, separators=(",", ":")).encode()
    hbytes += b" " * (len(probe) - len(hbytes))  # JSON allows trailing spaces: keep the probed length
    parts = [None, _U32.pack(len(hbytes)), hbytes, b"\0" * (start - 4 - len(hbytes))]
    pos = start
    for e, arr in zip(fixed, chunks):
        data = memoryview(arr.reshape(-1).view(np.uint8)) if arr.nbytes else b""
        parts.append(data)
        pos += arr.nbytes
        pad = _align8(pos) - pos
        if pad:
            parts.append(b"\0" * pad)
            pos += pad
    parts[0] = _U32.pack(pos)
    return parts
