"""The sidecar's wire format, shared with plugins/pytorch/src/framing.ts.

A frame: u32 LE body length, then the body: u32 LE header length, the header (UTF-8 JSON), zero padding to a
multiple of 8 (counted from the body's start), then the data section: the raw little-endian bytes of every
fixed-width tensor, each at the 8-aligned ``offset`` (from the data section's start) its header entry names.
BYTES tensors travel in the header as a string list.
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


class FrameStream:
    """Reads frames with as few system calls as possible: one recv takes every frame the socket holds, so
    pipelined requests are parsed from memory. Each body is copied into its own bytearray (the model may keep
    the arrays it is given)."""

    def __init__(self, sock, chunk=1 << 20):
        self.sock = sock
        self.buf = bytearray(chunk)
        self.start = 0
        self.end = 0

    def _fill(self):
        if self.start == self.end:
            self.start = self.end = 0
        elif self.end == len(self.buf):
            self.buf[: self.end - self.start] = self.buf[self.start:self.end]
            self.end -= self.start
            self.start = 0
        k = self.sock.recv_into(memoryview(self.buf)[self.end:])
        if k == 0:
            raise ConnectionClosed()
        self.end += k

    def pending(self):
        """True when a whole frame is already buffered (no recv needed to read it)."""
        if self.end - self.start < 4:
            return False
        (size,) = _U32.unpack_from(self.buf, self.start)
        return self.end - self.start >= 4 + size

    def read(self):
        while self.end - self.start < 4:
            self._fill()
        (size,) = _U32.unpack_from(self.buf, self.start)
        self.start += 4
        body = bytearray(size)
        have = min(size, self.end - self.start)
        body[:have] = self.buf[self.start:self.start + have]
        self.start += have
        if have < size:  # a big frame: read the rest straight into the body
            view = memoryview(body)
            got = have
            while got < size:
                k = self.sock.recv_into(view[got:], size - got)
                if k == 0:
                    raise ConnectionClosed()
                got += k
        (hlen,) = _U32.unpack_from(body, 0)
        return json.loads(bytes(body[4:4 + hlen])), body


def decode_tensors(header, body):
    """Named numpy arrays over the body (no copy; writable since the body is a bytearray)."""
    out = {}
    (hlen,) = _U32.unpack_from(body, 0)
    data_start = _align8(4 + hlen)
    for t in header.get("tensors", []):
        name, dtype, shape = t["name"], t["dtype"], t["shape"]
        if dtype == "BYTES":
            out[name] = np.array(t["strings"], dtype=object).reshape(shape)
            continue
        npd = TO_NUMPY[dtype]
        count = 1
        for d in shape:
            count *= d
        arr = np.frombuffer(body, dtype=npd, count=count, offset=data_start + t["offset"])
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
    # Offsets count from the data section (8-aligned after the header), so they do not depend on the header's length.
    pos = 0
    for e in entries:
        if e["dtype"] != "BYTES":
            e["offset"] = pos
            pos = _align8(pos + e["nbytes"])
    hbytes = json.dumps(header, separators=(",", ":")).encode()
    start = _align8(4 + len(hbytes))
    parts = [_U32.pack(start + pos), _U32.pack(len(hbytes)), hbytes]
    if start - 4 - len(hbytes):
        parts.append(b"\0" * (start - 4 - len(hbytes)))
    at = 0
    for arr in chunks:
        if arr.nbytes:
            parts.append(memoryview(arr.reshape(-1).view(np.uint8)))
        at += arr.nbytes
        pad = _align8(at) - at
        if pad:
            parts.append(b"\0" * pad)
            at += pad
    return parts
