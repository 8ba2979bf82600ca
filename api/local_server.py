"""Serve an ASGI app on a free 127.0.0.1 port from a thread: for tests and benchmarks.

The socket names ``IPPROTO_TCP``: asyncio sets TCP_NODELAY on accepted connections only
when the listening socket's ``proto`` says TCP, as it does for the one ``alu-ledger serve``
opens. With proto 0 a response written in two parts waits for the client's delayed ACK
(about 40 ms on Linux), which would be timed as the server's latency.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

START_TIMEOUT_S = 30


def tcp_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket that names ``IPPROTO_TCP``, so asyncio sets TCP_NODELAY on the
    connections it accepts (module docstring)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def serve_workers(app_factory: str, host: str, port: int, workers: int) -> None:
    """``uvicorn`` with ``workers`` processes sharing one listening socket (ours, so that
    responses are not held by delayed ACKs); each process builds its app from the factory."""
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(app_factory, factory=True, host=host, port=port, workers=workers)
    sock = tcp_socket(host, port)
    sock.set_inheritable(True)
    Multiprocess(config, sockets=[sock]).run()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn until the block ends; yield its base URL."""
    sock = tcp_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server thread died while starting")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)
        sock.close()
