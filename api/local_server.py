"""Listening sockets for ``alu-ledger serve``, and an ASGI app served from a thread on a free
127.0.0.1 port (for tests and benchmarks).

The socket names ``IPPROTO_TCP``: asyncio sets TCP_NODELAY on accepted connections only
when the listening socket's ``proto`` says TCP, as it does for the one ``alu-ledger serve``
opens. With proto 0 a response written in two parts waits for the client's delayed ACK
(about 40 ms on Linux), which would be timed as the server's latency.

With several worker processes the workers share one listening socket, held by the
supervisor, and each accepts only while it holds no more connections than the least loaded
(``api/connection_balance.py``): clients that keep connections open send their work where
their connections fell.
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
#: uvicorn's HTTP/1.1 parser. h11, not httptools: h11 answers 400 to a request whose line
#: and headers pass ``h11_max_incomplete_event_size`` (16 KB), where httptools buffers
#: headers of any size (a 5 MB header was answered 200): an allocation a client could grow
#: at will (tests/test_http_edge.py).
HTTP_PARSER = "h11"


def tcp_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket that names ``IPPROTO_TCP``, so asyncio sets TCP_NODELAY on the
    connections it accepts (module docstring)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def uvicorn_config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration wherever the app is served: the h11 parser (above), and
    uvloop as the event loop (a dependency, which uvicorn picks up)."""
    return uvicorn.Config(app, http=HTTP_PARSER, **options)


def serve_workers(
    app_factory: str, host: str, port: int, workers: int, accept_grace_s: float
) -> None:
    """``uvicorn`` with ``workers`` processes, each building its app from the factory and
    accepting on one shared socket while it holds no more connections than the others
    (module docstring). uvicorn's supervisor restarts a worker that dies; connections
    wait in the socket's queue meanwhile, for the other workers."""
    from uvicorn.supervisors import Multiprocess

    from api.connection_balance import BalancedListener, ConnectionTable

    config = uvicorn_config(
        app_factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="api.connection_balance:BalancedLoop",
    )
    sock = tcp_socket(host, port)
    sock.listen(config.backlog)
    listener = BalancedListener(sock, ConnectionTable(workers), accept_grace_s)
    Multiprocess(config, sockets=[listener]).run()  # type: ignore[list-item]


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
