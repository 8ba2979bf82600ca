"""The HTTP server's own edge, before the app: a request line and headers are bounded.

uvicorn parses requests with h11 (``api.local_server.HTTP_PARSER``), which answers 400 to a
head over 16 KB and keeps serving; httptools, which uvicorn would otherwise pick when it is
installed, accepted a 5 MB header, so a client could make the server hold as much as it
sent."""

from __future__ import annotations

import contextlib
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import LedgerEnv
from tests.support import serving


def first_line_of_answer(url: str, request: bytes) -> bytes:
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        with contextlib.suppress(OSError):  # the server may close before reading it all
            sock.sendall(request)
        return sock.recv(4096).split(b"\r\n", 1)[0]


@pytest.mark.parametrize(
    "head",
    [
        b"X-Big: " + b"a" * 1_000_000 + b"\r\n",
        b"".join(b"X-%d: y\r\n" % n for n in range(50_000)),
    ],
    ids=["one 1 MB header", "50,000 headers"],
)
def test_an_oversized_request_head_is_refused_and_the_server_serves_on(
    env: LedgerEnv, head: bytes
) -> None:
    with serving(env.ledger) as url:
        request = b"GET /v1/log-key HTTP/1.1\r\nHost: ledger\r\n" + head + b"\r\n"
        assert first_line_of_answer(url, request) == b"HTTP/1.1 400 Bad Request"
        assert httpx.get(f"{url}/v1/log-key").status_code == 200
