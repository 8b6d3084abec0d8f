#!/usr/bin/env python3
"""pyml batch on Ray Data: the driver that `pyml batch REF --engine ray` runs (python ray_job.py SPEC.json).

The Node side has already checked the query's columns against the image's signature and staged the query's result
as Parquet, with every model input at exactly its tensor's type (the column plan's SQL). Here:

  read_parquet(staged files) -> map_batches(PymlPredictor, a pool of actors) -> write_parquet(temp dir)

Each actor holds one long-running `entrypoint.mjs batch` process of the image, started from the image's unpacked
filesystem (the same command `pyml batch` runs locally): Arrow IPC record batches go in on its stdin, one output
batch per input batch comes back on its stdout. The actor turns the staged list columns into FixedSizeList tensors on
the way in and re-joins the --keep columns on the way out.

Ray restarts an actor whose process died (max_restarts) and re-runs its task (max_task_retries); write tasks write
files under deterministic names, so a retried block replaces its own file rather than adding one. The output goes
to a temporary directory that the Node side publishes only after checking that it holds every staged row.

Prints one JSON line on stdout: {"rows": N, "files": N, "nodes": N, "actors": N, "seconds": {...}}; on failure a
JSON line {"error": "..."} on stderr and exit 1.
"""
import collections
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time

ARROW_TYPES = {
    "BOOL": "bool_", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "FP32": "float32", "FP64": "float64", "BYTES": "string",
}
STDERR_KEEP_LINES = 200


def tensor_type(spec, pa):
    """The Arrow type the entrypoint reads and writes for a tensor: FixedSizeList per per-row dimension."""
    t = getattr(pa, ARROW_TYPES[spec["dtype"]])()
    for d in reversed(spec["shape"][1:]):
        t = pa.list_(pa.field("item", t, nullable=False), d)
    return t


def tensor_column(column, spec, pa):
    """A staged column (Parquet gives a variable-length list for DuckDB's FLOAT[K]) as the tensor's FixedSizeList."""
    if column.null_count:
        raise ValueError("input '%s' has %d NULL rows; tensors cannot hold nulls" % (spec["name"], column.null_count))
    dims = spec["shape"][1:]
    want = tensor_type(spec, pa)
    if column.type == want:
        return column
    flat = column
    for _ in dims:
        flat = flat.flatten()
    leaf = getattr(pa, ARROW_TYPES[spec["dtype"]])()
    if flat.null_count:
        raise NullInput(spec["name"], column)
    if flat.type != leaf:
        # The staged values were cast to the input's type by the column plan already: anything else is a bug.
        raise TypeError("input '%s': staged values are %s, expected %s" % (spec["name"], flat.type, leaf))
    out = flat
    for d in reversed(dims):
        out = pa.FixedSizeListArray.from_arrays(out, d)
    if len(out) != len(column):
        raise ValueError("input '%s': arrays must hold exactly %s values per row" % (spec["name"], dims))
    return out


class NullInput(ValueError):
    """A NULL inside an input's arrays (a NULL in one of the packed columns): tensors cannot hold it."""

    def __init__(self, name, column):
        rows = [i for i, v in enumerate(column.to_pylist()) if v is None or any(x is None for x in _leaves(v))]
        self.rows = rows
        super().__init__("input '%s' has NULL values inside its arrays (%d rows); tensors cannot hold nulls" % (name, len(rows)))


def _leaves(value):
    for v in value:
        if isinstance(v, list):
            yield from _leaves(v)
        else:
            yield v


def entrypoint_command(spec):
    """The command the Node side computed; PYML_ROOTFS on a node names where that node has the image's rootfs."""
    command = spec["entrypoint"]
    here = os.environ.get("PYML_ROOTFS")
    root = spec["rootfs"]
    if not here or here.rstrip("/") == root.rstrip("/"):
        return command["file"], command["args"], command["env"], command["cwd"], root
    moved = lambda s: s.replace(root, here.rstrip("/"))
    return (moved(command["file"]), [moved(a) for a in command["args"]],
            {k: moved(v) for k, v in command["env"].items()}, moved(command["cwd"]), here.rstrip("/"))


class PymlPredictor:
    """A Ray Data actor: one long-running entrypoint process of the image, fed one record batch per call."""

    def __init__(self, spec):
        import pyarrow as pa

        self.pa = pa
        self.spec = spec
        self.inputs = spec["inputs"]
        self.outputs = spec["outputs"]
        self.keep = spec["keep"]
        self.input_schema = pa.schema([pa.field(s["name"], tensor_type(s, pa), nullable=False) for s in self.inputs])
        file, args, env, cwd, root = entrypoint_command(spec)
        manifest = os.path.join(root, "opt/pyml/pyml.json")
        try:
            with open(manifest, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        except OSError as error:
            raise RuntimeError("this node has no image %s at %s (%s); put the unpacked image there (a shared path) or "
                               "set PYML_ROOTFS on the node" % (spec["manifestDigest"], root, error.strerror))
        if digest != spec["pymlJsonSha256"]:
            raise RuntimeError("the image at %s is not %s (its pyml.json differs)" % (root, spec["manifestDigest"]))
        self.proc = subprocess.Popen([file] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=cwd, preexec_fn=_die_with_parent)
        self.stderr = collections.deque(maxlen=STDERR_KEEP_LINES)
        threading.Thread(target=self._drain, daemon=True).start()
        self.writer = None
        self.reader = None
        self.batches = 0

    def _drain(self):
        for line in self.proc.stderr:
            self.stderr.append(line.decode("utf-8", "replace").rstrip("\n"))

    def __call__(self, table):
        pa = self.pa
        if table.num_rows == 0:
            return self._empty(table)
        table = table.combine_chunks()
        try:
            arrays = [tensor_column(table.column(s["column"]).chunk(0), s, pa) for s in self.inputs]
        except NullInput as error:
            row = error.rows[0] if error.rows else 0
            where = ", ".join("%s=%r" % (k, table.column(k)[row].as_py()) for k in self.keep) or "row %d of the batch" % row
            raise RuntimeError("pyml model %s failed on the row with %s: %s" % (self.spec["model"], where, error)) from None
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.input_schema)
        try:
            if self.writer is None:
                self.writer = pa.ipc.new_stream(self.proc.stdin, self.input_schema)
            self.writer.write_batch(batch)
            self.proc.stdin.flush()
            if self.reader is None:
                self.reader = pa.ipc.open_stream(self.proc.stdout)
            out = self.reader.read_next_batch()
        except (OSError, StopIteration, pa.ArrowInvalid) as error:
            raise RuntimeError(self._failure(table, error)) from None
        if out.num_rows != table.num_rows:
            raise RuntimeError("pyml model returned %d rows for %d" % (out.num_rows, table.num_rows))
        self.batches += 1
        columns = [table.column(k) for k in self.keep] + [out.column(out.schema.get_field_index(s["name"])) for s in self.outputs]
        return pa.Table.from_arrays(columns, names=self.keep + [s["name"] for s in self.outputs])

    def _empty(self, table):
        """No rows: the output's columns all the same (the --keep columns, then each output as its tensor type)."""
        pa = self.pa
        columns = [table.column(k) for k in self.keep] + [pa.array([], tensor_type(s, pa)) for s in self.outputs]
        return pa.Table.from_arrays(columns, names=self.keep + [s["name"] for s in self.outputs])

    def _failure(self, table, error):
        """Why the entrypoint stopped: its JSON report of the bad batch, else its exit status and last lines."""
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        time.sleep(0.1)  # the stderr drain catches up
        lines = list(self.stderr)
        reason = None
        for line in reversed(lines):
            try:
                report = json.loads(line)
            except ValueError:
                continue
            if isinstance(report, dict) and "error" in report:
                reason = str(report["error"])
                break
        where = ""
        if self.keep:
            first = {k: table.column(k)[0].as_py() for k in self.keep}
            where = " (a batch of %d rows from %s)" % (table.num_rows, ", ".join("%s=%r" % kv for kv in first.items()))
        status = "exit %s" % code if code is not None and code >= 0 else ("killed by signal %d" % -code if code else "still running")
        return "pyml model %s failed%s: %s [%s; %s]" % (self.spec["model"], where, reason or "\n".join(lines[-5:]) or str(error), status, error.__class__.__name__)

    def __del__(self):
        proc = getattr(self, "proc", None)
        if proc and proc.poll() is None:
            try:
                proc.stdin.close()
            except OSError:
                pass


def _die_with_parent():
    """The entrypoint is SIGKILLed when its actor process dies (Linux PR_SET_PDEATHSIG), not left running."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 9)
    except OSError:
        pass


def count_rows(directory):
    import pyarrow.parquet as pq

    rows = files = 0
    for base, _, names in os.walk(directory):
        for name in names:
            if name.endswith(".parquet"):
                rows += pq.read_metadata(os.path.join(base, name)).num_rows
                files += 1
    return rows, files


def run(spec):
    import ray
    import ray.data

    started = time.monotonic()
    local_dir = None
    if spec.get("address"):
        init_args = {"address": spec["address"]}
    else:
        # A Ray of its own for this run, stopped by ray.shutdown(): its own short temp dir (Ray puts Unix sockets
        # there), no dashboard, a modest object store.
        import tempfile

        local_dir = tempfile.mkdtemp(prefix="pyml-ray-", dir="/tmp")
        init_args = {"num_cpus": spec["localCpus"], "include_dashboard": False, "_temp_dir": local_dir,
                     "object_store_memory": spec.get("objectStoreBytes") or 200 * 1024 * 1024}
    ray.init(logging_level="ERROR", log_to_driver=False, **init_args)
    connected = time.monotonic()
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.execution_options.preserve_order = True
        ctx.execution_options.verbose_progress = False
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        # One actor per node unless told: each holds one model process, which uses the node's cores it is given.
        actors = spec["actors"] or len(nodes)
        staged = sorted(os.path.join(spec["staged"], f) for f in os.listdir(spec["staged"]) if f.endswith(".parquet"))
        if not staged:
            raise RuntimeError("internal: no staged input files in %s" % spec["staged"])
        # One read task (one block) per staged file: Ray would otherwise merge small files into too few tasks. The
        # directory, not the list of files: Ray 2.58 lists a list of paths in threads that race on importing fsspec's
        # HTTP filesystem when aiohttp is absent ("cannot import name 'HTTPFileSystem'").
        ds = ray.data.read_parquet(spec["staged"], override_num_blocks=len(staged))
        ds = ds.map_batches(
            PymlPredictor, fn_constructor_args=(spec,), batch_size=spec["batchRows"], batch_format="pyarrow",
            zero_copy_batch=True, concurrency=actors, num_cpus=spec["cpusPerActor"],
            # A dead actor (or node) is restarted and its batch re-run; a model error is not retried.
            max_restarts=spec["maxRestarts"], max_task_retries=spec["maxRestarts"], scheduling_strategy="SPREAD",
        )
        os.makedirs(os.path.dirname(spec["output"]), exist_ok=True)
        ds.write_parquet(spec["output"], partition_cols=spec["partitionBy"] or None)
        written = time.monotonic()
        os.makedirs(spec["output"], exist_ok=True)  # an empty input writes no file
        rows, files = count_rows(spec["output"])
    finally:
        ray.shutdown()
        if local_dir:
            import shutil

            shutil.rmtree(local_dir, ignore_errors=True)
    print(json.dumps({
        "rows": rows, "files": files, "nodes": len(nodes), "actors": actors,
        "seconds": {"connect": connected - started, "run": written - connected},
    }), flush=True)


def main():
    if len(sys.argv) != 2:
        print("usage: ray_job.py SPEC.json", file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    try:
        import ray.data  # noqa: F401 (here, so that a Python without Ray is reported as that)
        import pyarrow  # noqa: F401
    except ImportError as error:
        print(json.dumps({"error": "%s (%s)" % (error, sys.executable), "type": "RayMissing"}), file=sys.stderr, flush=True)
        return 1
    try:
        run(spec)
    except BaseException as error:  # the traceback for whoever reads the logs, then one JSON line the Node side reads
        import traceback
        traceback.print_exc()
        print(json.dumps({"error": explain(error), "type": error.__class__.__name__}), file=sys.stderr, flush=True)
        return 1
    return 0


def explain(error):
    """The messages of the error and its causes: Ray Data wraps a task's own exception (UserCodeException...)."""
    messages, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = str(error).strip()
        if text and text not in messages:
            messages.append(text)
        error = error.__cause__ or error.__context__
    # Ray's text quotes the raising source line too ("pyml model %s failed ..."): only a filled-in message counts.
    own = [m.group(0) for text in messages for m in OWN_MESSAGE.finditer(text)]
    return own[-1] if own else "\n".join(messages) or "unknown error"


OWN_MESSAGE = re.compile(r"pyml model (?!%s)\S+ failed[^\n]*")


if __name__ == "__main__":
    sys.exit(main())
