"""The ONNX graph under construction, the dataframe's input columns, and the feature blocks passed between steps."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper


class Unsupported(Exception):
    """A step the converter cannot express; `path` locates it in the pipeline (filled in by the step walkers)."""

    def __init__(self, what, reason=None, path=()):
        super().__init__(what)
        self.what, self.reason, self.path = what, reason, tuple(path)


def class_name(obj):
    return type(obj).__name__


def unsupported(obj, reason=None):
    return Unsupported(class_name(obj), reason)


# Declared ONNX type of an input column, by the pyml dtype a user may ask for with sklearn({ columnTypes }).
ONNX_TYPE = {
    "FP64": TensorProto.DOUBLE, "FP32": TensorProto.FLOAT, "INT64": TensorProto.INT64, "INT32": TensorProto.INT32,
    "INT16": TensorProto.INT16, "INT8": TensorProto.INT8, "UINT8": TensorProto.UINT8, "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32, "UINT64": TensorProto.UINT64, "BOOL": TensorProto.BOOL, "BYTES": TensorProto.STRING,
}


class Graph:
    def __init__(self, parent=None):
        self.nodes, self.inits = [], []
        self.parent = parent
        self.n = 0

    def name(self, base):
        if self.parent is not None:
            return self.parent.name(base)
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, array, base="c"):
        # Constants of a subgraph live in the outermost graph: a Loop body sees outer-scope values.
        if self.parent is not None:
            return self.parent.const(array, base)
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def node(self, op, inputs, base=None, domain="", outputs=None, **attrs):
        outs = outputs or [self.name(base or op.lower())]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.name(op), domain=domain, **attrs))
        return outs[0] if len(outs) == 1 else outs

    # Shorthands for the ops most steps use.
    def f64(self, values):
        return self.const(np.asarray(values, dtype=np.float64))

    def i64(self, values):
        return self.const(np.asarray(values, dtype=np.int64), "idx")

    def cast(self, x, to):
        return self.node("Cast", [x], base="cast", to=to)

    def columns(self, x, indices):
        """x[:, indices] of a 2-D tensor."""
        return self.node("Gather", [x, self.i64(list(indices))], axis=1, base="cols")

    def concat(self, tensors):
        return tensors[0] if len(tensors) == 1 else self.node("Concat", list(tensors), axis=1, base="concat")


class Block:
    """A run of feature columns between steps: `double` [N, width], `string` [N, 1], a `source` column of the
    dataframe not read yet (its type is decided by the steps that read it), or `opaque`: what a step the
    converter skipped leaves (tolerant mode only; nothing after it is converted)."""

    def __init__(self, kind, tensor=None, width=1, column=None):
        self.kind, self.tensor, self.width, self.column = kind, tensor, width, column


class Columns:
    """The dataframe's input columns. Each read asks for `double` or `string`; a column's declared type is
    decided once every step has read it (BYTES if read as string; INT64 if only encoders with integer
    categories read it; FP64 otherwise; or what sklearn({ columnTypes }) says) and every read casts from it.

    `tolerant` (for the Python runtime): a step the converter cannot express is skipped instead of failing: it is
    recorded in `skipped`, the columns it reads count as read by it (`any`: FP64 unless declared, or `string` when
    the step is followed by an encoder of strings) and it leaves an `opaque` block that later steps pass along."""

    def __init__(self, names, declared=None, tolerant=False):
        self.names = list(names)
        self.declared = dict(declared or {})
        self.reads = {n: [] for n in self.names}
        self.tolerant = tolerant
        self.skipped = []

    def skip(self, error, blocks, strings=False):
        """The blocks a skipped step leaves (tolerant mode): its source columns are read as it would read them."""
        if not self.tolerant:
            raise error
        if error is not None:
            self.skipped.append(error)
        for b in blocks:
            if b.kind == "source":
                prior = [k for k, _ in self.reads[b.column] if k != "any"]
                self.reads[b.column].append((prior[0] if prior else "string" if strings else "any", False))
        return [Block("opaque")]

    def read(self, g, column, want, integer_hint=False):
        reads = self.reads[column]
        kinds = {k for k, _ in reads if k != "any"} | {want}
        if kinds == {"double", "string"}:
            raise Unsupported(f"column {column!r}", "read both as numbers and as strings by different steps")
        reads.append((want, integer_hint))
        col = g.node("Unsqueeze", [column, g.i64([1])], base="col")
        return col if want == "string" else g.cast(col, TensorProto.DOUBLE)

    def onnx_type(self, column):
        reads = [(k, hint) for k, hint in self.reads[column] if k != "any"]
        if column in self.declared:
            t = ONNX_TYPE[self.declared[column]]
            if reads and any(k == "string" for k, _ in reads) != (t == TensorProto.STRING):
                raise ValueError(f"columnTypes[{column!r}] is {self.declared[column]} but the pipeline reads the column "
                                 f"as {'strings' if t != TensorProto.STRING else 'numbers'}")
            return t
        if any(k == "string" for k, _ in reads):
            return TensorProto.STRING
        if reads and all(hint for _, hint in reads):
            return TensorProto.INT64
        return TensorProto.DOUBLE


def source_blocks(columns):
    return [Block("source", column=c) for c in columns.names]


def opaque(blocks):
    return any(b.kind == "opaque" for b in blocks)


def width(blocks):
    return sum(b.width for b in blocks)


def numeric(g, cols, blocks):
    """The blocks as one double [N, k] matrix."""
    parts = []
    for b in blocks:
        if b.kind == "source":
            parts.append(cols.read(g, b.column, "double"))
        elif b.kind == "string":
            raise Unsupported("string features", "a step that needs numbers receives a column of strings")
        else:
            parts.append(b.tensor)
    if not parts:
        raise Unsupported("empty feature set", "a step receives no columns")
    return g.concat(parts)


def select(g, blocks, indices):
    """The feature columns at `indices` (positions in the concatenation of `blocks`), one block per column
    except that neighbouring columns of one double block stay together."""
    where = []
    for bi, b in enumerate(blocks):
        for off in range(b.width):
            where.append((bi, off))
    out = []
    run = []

    def flush():
        if not run:
            return
        bi = run[0][0]
        b = blocks[bi]
        offs = [o for _, o in run]
        if b.width == len(offs) and offs == list(range(b.width)):
            out.append(b)
        else:
            out.append(Block("double", g.columns(b.tensor, offs), len(offs)))
        run.clear()

    for i in indices:
        bi, off = where[i]
        b = blocks[bi]
        if b.kind != "double":
            flush()
            out.append(b)
            continue
        if run and run[0][0] != bi:
            flush()
        run.append((bi, off))
    flush()
    return out


def split(g, blocks):
    """One block of width 1 per feature column."""
    out = []
    for b in blocks:
        if b.width == 1:
            out.append(b)
        else:
            out.extend(Block("double", g.columns(b.tensor, [j]), 1) for j in range(b.width))
    return out
