"""The PyTorch sidecar: serves one pyml model over the Unix socket the parent passes as file descriptor 3.

Requests are handled one at a time, in arrival order; each reply carries its request's id. The first request is
``init`` (the model's Python sources, module and class, weights directory, signature); its reply is the readiness
signal. A Python exception in ``predict`` fails that request alone: the reply carries the exception's type and
message, and the loop goes on.
"""
import importlib.abc
import importlib.util
import json
import logging
import os
import socket
import sys
import traceback

from . import DataFrameModel, InitContext, InvalidInput, Signature, TensorModel
from ._frames import frame_of_columns, columns_of_frame
from ._framing import ConnectionClosed, FrameStream, decode_tensors, encode_frame


class SourceFinder(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Imports the model's modules from the sources the init request carries (they live in the image's model
    layer, inside the bundled model code). ``get_source`` lets tracebacks show the lines."""

    def __init__(self, files, origin_dir):
        self.files = files  # relative path ('pkg/mod.py') -> source text
        self.origin_dir = origin_dir

    def _lookup(self, fullname):
        rel = fullname.replace(".", "/")
        if rel + ".py" in self.files:
            return rel + ".py", False
        if rel + "/__init__.py" in self.files:
            return rel + "/__init__.py", True
        if any(f.startswith(rel + "/") for f in self.files):
            return None, True  # namespace-style package: a directory of modules without __init__.py
        return None, None

    def find_spec(self, fullname, path=None, target=None):
        rel, is_pkg = self._lookup(fullname)
        if is_pkg is None:
            return None
        origin = os.path.join(self.origin_dir, rel) if rel else None
        spec = importlib.util.spec_from_loader(fullname, self, origin=origin, is_package=is_pkg)
        if rel:
            spec.has_location = True
        if is_pkg:
            spec.submodule_search_locations = []
        return spec

    def get_source(self, fullname):
        rel, _ = self._lookup(fullname)
        return self.files[rel] if rel else ""

    def get_code(self, fullname):
        rel, _ = self._lookup(fullname)
        source = self.files[rel] if rel else ""
        return compile(source, os.path.join(self.origin_dir, rel or fullname.replace(".", "/")), "exec", dont_inherit=True)

    def exec_module(self, module):
        exec(self.get_code(module.__name__), module.__dict__)

    def create_module(self, spec):
        return None


def _model_class(module, class_name):
    if class_name:
        cls = getattr(module, class_name, None)
        if cls is None:
            raise AttributeError(f"module {module.__name__!r} has no class {class_name!r}")
        return cls
    bases = (TensorModel, DataFrameModel)
    found = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, bases) and v not in bases and v.__module__ == module.__name__]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise TypeError(f"module {module.__name__!r} must define exactly one pyml.TensorModel or pyml.DataFrameModel subclass "
                        f"(found {names}); name one with the plugin's className option")
    return found[0]


def _error_reply(rid, exc):
    kind = "invalid" if isinstance(exc, InvalidInput) else "internal"
    tb = "".join(traceback.format_exception(exc))
    return {"id": rid, "ok": False, "kind": kind, "error": f"{type(exc).__name__}: {exc}", "traceback": tb}


def _send(sock, parts):
    size = sum(len(p) for p in parts)
    sent = sock.sendmsg(parts)
    if sent < size:  # a partial send (full socket buffer): the rest in one piece
        sock.sendall(b"".join(bytes(p) for p in parts)[sent:])


def len_rows(columns):
    return len(next(iter(columns.values()))) if columns else 0


def serve(sock):
    model = None
    signature = None
    stream = FrameStream(sock)
    replies = []  # parts of replies not sent yet: flushed when no further request is already buffered
    while True:
        try:
            header, body = stream.read()
        except ConnectionClosed:
            break
        rid = header.get("id")
        op = header.get("op")
        try:
            if op == "predict":
                if model is None:
                    raise RuntimeError("predict before init")
                inputs = decode_tensors(header, body)
                if header.get("frame"):
                    if not isinstance(model, DataFrameModel):
                        raise TypeError(f"{type(model).__name__} is not a pyml.DataFrameModel, but the config says kind: 'dataframe'")
                    outputs = columns_of_frame(model.predict(frame_of_columns(inputs, signature.inputs)), signature.outputs, len_rows(inputs))
                else:
                    outputs = model.predict(inputs)
                if not isinstance(outputs, dict):
                    raise TypeError(f"predict must return a dict of named arrays, got {type(outputs).__name__}")
                parts = encode_frame({"id": rid, "ok": True}, outputs)
            elif op == "init":
                sys.meta_path.insert(0, SourceFinder(header["files"], header.get("originDir", "/opt/pyml/model")))
                module = importlib.import_module(header["module"])
                model = _model_class(module, header.get("className"))()
                signature = Signature.from_json(header.get("signature", {}))
                ctx = InitContext(header["weightsDir"], signature)
                model.init(ctx)
                info = {"python": sys.version.split()[0], "pid": os.getpid()}
                try:
                    import torch
                    info["torch"] = torch.__version__
                    info["threads"] = torch.get_num_threads()
                except ImportError:
                    pass
                parts = encode_frame({"id": rid, "ok": True, "info": info})
            elif op == "ping":
                parts = encode_frame({"id": rid, "ok": True})
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # the request fails alone; the sidecar keeps serving
            parts = encode_frame(_error_reply(rid, exc))
        replies.extend(parts)
        if not stream.pending() or len(replies) > 512:
            _send(sock, replies)
            replies = []
    if model is not None:
        try:
            model.close()
        except Exception:
            traceback.print_exc()


def main():
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("PYML_PYTHON_LOG_LEVEL", "INFO"),
                        format="python: %(levelname)s %(name)s: %(message)s")
    threads = os.environ.get("PYML_TORCH_THREADS")
    if threads:
        # Set for every image by pyml batch; only a model environment that has torch applies it.
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            torch.set_num_threads(int(threads))
    sock = socket.socket(fileno=int(os.environ.get("PYML_SIDECAR_FD", "3")))
    # stdout belongs to the entrypoint (predict prints JSON there): send the model's prints to stderr.
    sys.stdout = sys.stderr
    try:
        serve(sock)
    finally:
        sock.close()


if __name__ == "__main__":
    main()
