"""Starts fastapi_server:app under uvicorn as `uvicorn --workers N fastapi_server:app` would, on a socket it binds
itself to 127.0.0.1:0 (printing {"port": N} first): with 2 or more workers this process is uvicorn's supervisor
and imports nothing of the app (no onnxruntime, numpy or FastAPI), as with the uvicorn command.

    python fastapi_launch.py MODEL.onnx WORKERS
"""
import json
import os
import socket
import sys

import uvicorn


def main() -> None:
    os.environ["PEER_MODEL"] = os.path.abspath(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    sock.set_inheritable(True)
    print(json.dumps({"port": sock.getsockname()[1], "pid": os.getpid()}), flush=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    config = uvicorn.Config("fastapi_server:app", workers=workers, log_level="warning", access_log=False)
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()


# The guard matters: uvicorn's workers are multiprocessing "spawn" children, which import this file again.
if __name__ == "__main__":
    main()
