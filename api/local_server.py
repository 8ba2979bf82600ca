"""Listening sockets for ``alu-ledger serve``, and an ASGI app served from a thread on a free
127.0.0.1 port (for tests and benchmarks).

The socket names ``IPPROTO_TCP``: asyncio sets TCP_NODELAY on accepted connections only
when the listening socket's ``proto`` says TCP, as it does for the one ``alu-ledger serve``
opens. With proto 0 a response written in two parts waits for the client's delayed ACK
(about 40 ms on Linux), which would be timed as the server's latency.

With several worker processes on Linux each worker listens on a socket of its own, all
bound to the port with ``SO_REUSEPORT``, and the kernel spreads new connections evenly
over them. Workers sharing one socket take connections in bursts (the first one awake
accepts every connection waiting), so a client pool that connects at once lands on one
process and leaves the others idle.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

START_TIMEOUT_S = 30
#: uvicorn's HTTP/1.1 parser. h11, not httptools: h11 answers 400 to a request whose line
#: and headers pass ``h11_max_incomplete_event_size`` (16 KB), where httptools buffers
#: headers of any size (a 5 MB header was answered 200): an allocation a client could grow
#: at will (tests/test_http_edge.py).
HTTP_PARSER = "h11"


#: Whether each worker gets its own listening socket (module docstring): Linux spreads
#: connections over ``SO_REUSEPORT`` sockets; elsewhere the option means other things.
PER_WORKER_SOCKETS = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def tcp_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound TCP socket that names ``IPPROTO_TCP``, so asyncio sets TCP_NODELAY on the
    connections it accepts (module docstring)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def uvicorn_config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration wherever the app is served: the h11 parser (above), and
    uvloop as the event loop (a dependency, which uvicorn picks up)."""
    return uvicorn.Config(app, http=HTTP_PARSER, **options)


class _WorkerSocket(list[socket.socket]):
    """The socket list uvicorn hands each worker process: pickled into the new process as
    the address, where it becomes a fresh ``SO_REUSEPORT`` socket on it. A worker's
    socket thus lives and dies with the worker (a restarted worker binds a new one), and
    no socket in the group is left without a process accepting on it."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.address = (host, port)

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return _worker_socket, self.address


def _worker_socket(host: str, port: int) -> list[socket.socket]:
    return [tcp_socket(host, port, reuse_port=True)]


def serve_workers(app_factory: str, host: str, port: int, workers: int) -> None:
    """``uvicorn`` with ``workers`` processes, each building its app from the factory and
    listening on our sockets (TCP_NODELAY; one per worker where the kernel balances them,
    module docstring). uvicorn's supervisor restarts a worker that dies."""
    from uvicorn.supervisors import Multiprocess

    config = uvicorn_config(app_factory, factory=True, host=host, port=port, workers=workers)
    if PER_WORKER_SOCKETS:
        # Bound, never listening: holds the port (an error here if it is taken) and lets
        # only the workers' sockets join the group that receives connections.
        reserved = tcp_socket(host, port, reuse_port=True)
        port = reserved.getsockname()[1]
        with reserved:
            Multiprocess(config, sockets=_WorkerSocket(host, port)).run()
        return
    sock = tcp_socket(host, port)
    sock.set_inheritable(True)
    Multiprocess(config, sockets=[sock]).run()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn until the block ends; yield its base URL."""
    sock = tcp_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, log_level="warning", lifespan="off"))
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
