"""``alu-ledger serve --workers N``: the workers share one listening socket and each takes
an equal share of the connections (``api/connection_balance.py``); a worker that dies, or
stops, leaves no connection unanswered.

Which process answered shows in the ``x-request-id`` header: a process's ids share its
random prefix (``api.request_ids.new_request_id``).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.test_group_commit import free_port

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="reads the sockets' holders from Linux's /proc"
)


@dataclass
class Served:
    url: str
    server: subprocess.Popen[bytes]
    log: Path


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Served]:
    """Two workers with the default accept grace (2 ms)."""
    with serving_two_workers(tmp_path, grace_ms=None) as served:
        yield served


@pytest.fixture
def two_patient_workers(tmp_path: Path) -> Iterator[Served]:
    """Two workers that leave a connection to the least loaded for 200 ms, so that a test
    machine busy with other tests still sees the exact split, not the grace's doing."""
    with serving_two_workers(tmp_path, grace_ms=200) as served:
        yield served


@contextmanager
def serving_two_workers(tmp_path: Path, grace_ms: int | None) -> Iterator[Served]:
    cli = Path(sys.executable).parent / "alu-ledger"
    data = tmp_path / "data"
    subprocess.run([cli, "init", "--data-dir", data], check=True, capture_output=True)
    port = free_port()
    log = tmp_path / "serve.log"
    env = dict(os.environ)
    if grace_ms is not None:
        env["LEDGER_ACCEPT_GRACE_MS"] = str(grace_ms)
    with log.open("wb") as output:
        server = subprocess.Popen(
            [cli, "serve", "--data-dir", data, "--port", str(port), "--workers", "2"],
            stdout=output,
            stderr=output,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        started(log, workers=2)
        answering(url, deadline_s=60)
        yield Served(url, server, log)
    finally:
        server.terminate()
        server.wait(timeout=60)


def started(log: Path, workers: int) -> None:
    """Wait until uvicorn logged the startup of ``workers`` worker processes."""
    deadline = time.monotonic() + 60
    while log.read_text().count("Application startup complete") < workers:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def answering(url: str, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            httpx.get(f"{url}/v1/log-key", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def answering_processes(url: str, connections: int = 32) -> list[str]:
    """The request-id prefix of each answer on ``connections`` connections opened at once
    and held open until every one has answered: all are connected (the kernel completes
    the handshakes) before the first request, as a client pool opens them, so workers
    sharing one socket would take them in one burst."""
    host, port = url.removeprefix("http://").split(":")
    pool = [http.client.HTTPConnection(host, int(port), timeout=10) for _ in range(connections)]
    try:
        for connection in pool:
            connection.connect()
        prefixes = []
        for connection in pool:
            connection.request("GET", "/v1/log-key")
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
            prefixes.append(answer.headers["x-request-id"].rsplit("-", 1)[0])
        return prefixes
    finally:
        for connection in pool:
            connection.close()
        time.sleep(0.2)  # the workers count the closes before another pool connects


def worker_pids(server: subprocess.Popen[bytes]) -> list[int]:
    """The server's worker processes (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in _cmdline(int(pid))]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:  # exited meanwhile
        return b""


def listening_sockets(served: Served) -> dict[int, set[int]]:
    """Each listening socket on the server's port (by inode), with the processes of the
    server that hold it open."""
    port = int(served.url.rsplit(":", 1)[1])
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:  # 0A: LISTEN
            inodes.add(int(fields[9]))
    holders: dict[int, set[int]] = {inode: set() for inode in inodes}
    for pid in [served.server.pid, *worker_pids(served.server)]:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd) if fd.is_symlink() else ""
            if target.startswith("socket:[") and int(target[8:-1]) in holders:
                holders[int(target[8:-1])].add(pid)
    return holders


def held_by(served: Served) -> list[list[int]]:
    """For each listening socket, the sorted pids holding it; sorted."""
    return sorted(sorted(pids) for pids in listening_sockets(served).values())


def test_the_workers_share_one_socket_and_take_equal_shares_of_the_connections(
    two_patient_workers: Served,
) -> None:
    served = two_patient_workers
    workers = worker_pids(served.server)
    # One socket, held by the supervisor (connections queue on it while a worker restarts)
    # and by both workers.
    assert held_by(served) == [sorted([served.server.pid, *workers])]
    # 32 connections opened at once, as a client pool opens them: 16 and 16, where the
    # kernel's spreading lands them 16 and 16 one time in seven.
    assert sorted(Counter(answering_processes(served.url)).values()) == [16, 16]


def test_a_stopped_worker_holds_no_connection_hostage(two_workers: Served) -> None:
    with stopped_worker(two_workers):
        # The running worker takes every connection once it has waited the grace (2 ms).
        started_at = time.monotonic()
        assert len(set(answering_processes(two_workers.url, connections=8))) == 1
        assert time.monotonic() - started_at < 1


def test_the_grace_is_the_setting(two_patient_workers: Served) -> None:
    with stopped_worker(two_patient_workers):
        # Each connection past the running worker's fair share waits LEDGER_ACCEPT_GRACE_MS
        # (200 ms here) for the stopped one: at least three of the five.
        started_at = time.monotonic()
        assert len(set(answering_processes(two_patient_workers.url, connections=5))) == 1
        assert time.monotonic() - started_at >= 0.55


@contextmanager
def stopped_worker(served: Served) -> Iterator[None]:
    stopped = worker_pids(served.server)[0]
    os.kill(stopped, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(stopped, signal.SIGCONT)


def test_a_worker_that_dies_is_replaced_and_no_connection_waits_for_it(
    two_patient_workers: Served,
) -> None:
    served = two_patient_workers
    url, server = served.url, served.server
    before = set(answering_processes(url))
    victim = worker_pids(server)[0]
    # The supervisor is stopped while the survivor is timed alone: it can neither reap
    # the dead worker (which stays a zombie, still found by ``kill``) nor start a
    # replacement, whose slot the survivor would rightly defer to for the grace.
    os.kill(server.pid, signal.SIGSTOP)
    try:
        os.kill(victim, signal.SIGKILL)
        time.sleep(0.2)
        # The socket outlives the worker: every new connection is answered meanwhile, by
        # the survivor, which frees the dead worker's slot rather than wait the grace
        # each time.
        started_at = time.monotonic()
        assert len(set(answering_processes(url))) == 1
        assert time.monotonic() - started_at < 3  # 31 graces of 200 ms would take 6 s
    finally:
        os.kill(server.pid, signal.SIGCONT)
    deadline = time.monotonic() + 60
    while len(worker_pids(server)) < 2 or victim in worker_pids(server):
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.2)
    started(served.log, workers=3)  # the two first, then the replacement
    assert held_by(served) == [sorted([server.pid, *worker_pids(server)])]
    # A new worker's first requests are slow (imports, the first database connection),
    # and a connection it is slow to accept goes to the other worker after the grace.
    answering_processes(url)
    after = Counter(answering_processes(url))
    # The replacement takes the dead worker's place in the table and its equal share.
    assert sorted(after.values()) == [16, 16] and len(set(after) - before) == 1
