"""The HTTP server's own edge, before the app: a request line and headers are bounded.

``alu-ledger serve`` parses requests with h11 (``api.local_server.HTTP_PARSER``), which
answers 400 to a head over 16 KB and keeps serving; httptools, which uvicorn would
otherwise pick when it is installed, accepted a 5 MB header, so a client could make the
server hold as much as it sent. Checked on the command a user runs, with one worker
process and with several (two ways of starting uvicorn)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

OVERSIZED_HEADS = {
    "one 1 MB header": b"X-Big: " + b"a" * 1_000_000 + b"\r\n",
    "50,000 headers": b"".join(b"X-%d: y\r\n" % n for n in range(50_000)),
}


@pytest.fixture(params=[1, 2], ids=["1 worker", "2 workers"], scope="module")
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """``alu-ledger serve`` on a free port; yields the port."""
    cli = Path(sys.executable).parent / "alu-ledger"
    data = tmp_path_factory.mktemp("data")
    subprocess.run([cli, "init", "--data-dir", data], check=True, capture_output=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [cli, "serve", "--data-dir", data, "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--workers", str(request.param)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not log_key_answers(port):
            assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=60)


def log_key_answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v1/log-key", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def first_line_of_answer(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with contextlib.suppress(OSError):  # the server may close before reading it all
            sock.sendall(request)
        return sock.recv(4096).split(b"\r\n", 1)[0]


@pytest.mark.parametrize("head", OVERSIZED_HEADS.values(), ids=OVERSIZED_HEADS.keys())
def test_an_oversized_request_head_is_refused_and_the_server_serves_on(
    served: int, head: bytes
) -> None:
    request = b"GET /v1/log-key HTTP/1.1\r\nHost: ledger\r\n" + head + b"\r\n"
    assert first_line_of_answer(served, request) == b"HTTP/1.1 400 Bad Request"
    assert log_key_answers(served)
