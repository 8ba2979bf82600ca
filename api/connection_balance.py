"""Exact connection balancing for ``alu-ledger serve --workers N``.

Clients that keep their connections open (a submitters' pool, an ERP's keep-alive
client) send every request down the connection they were given, so how connections fall
over the worker processes is how the work falls. Each process runs one event loop and
one writer under one GIL, so it can use one core at most: 16 connections split 10 and 6
over two workers leave the process with 10 the bottleneck while the other idles
(measured: 16 PostgreSQL submitters appended 2,390/s split 8 and 8, 2,040/s split 10 and
6, on the same server within a minute). The kernel's ``SO_REUSEPORT`` spreading hashes
each connection to a socket at random, and workers sharing one socket take connections in
bursts (the first awake accepts every one waiting).

So the workers share one listening socket, held by the supervisor, and a table in shared
memory of how many connections each worker holds. A worker accepts a connection only
while it holds no more than the least loaded worker (as Envoy's ``exact_balance``
connection balancer does for its threads); otherwise it steps aside for a quarter of the
grace and looks again. A connection is never left waiting on a worker that is busy, stuck
or gone: once it has waited the grace (``LEDGER_ACCEPT_GRACE_MS``, 2 ms), any worker takes
it. The grace is short because clients that open a connection per request pay for it on
every request; long-lived connections are mostly opened while the workers are idle, and a
pool opened at once is still split exactly.

What it costs clients that open a connection per request (``GET /v1/log-key`` with
``Connection: close``, ``wrk``, 2 workers, Intel 2-core VM), against the kernel's
``SO_REUSEPORT`` spreading it replaced: 1 client 1,800 against 2,220 requests/s, 16 clients
3,990 against 4,300/s (2,270/s with a 10 ms grace), 64 clients 3,910 against 4,630/s.
Both workers wake for each connection and the accept runs in Python. Keep-alive clients,
and a reverse proxy's pooled connections (README, "In front of it"), pay nothing per
request.

The hook is the event loop: uvicorn creates its server with ``loop.create_server(...,
sock=listener)`` in each worker, and ``BalancedLoop`` (uvicorn's ``--loop`` may name an
event loop class) answers that for a ``BalancedListener`` with an accept loop of its own,
handing each accepted socket to uvicorn's protocol through the public
``loop.connect_accepted_socket``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import multiprocessing
import os
import select
import socket
import time
from collections.abc import Callable
from multiprocessing.sharedctypes import SynchronizedArray
from pathlib import Path
from typing import Any

import uvloop

log = logging.getLogger("uvicorn.error")

#: Pause after an accept that failed for want of resources (descriptors, memory), as
#: asyncio's own accept loop does, instead of spinning on the readable socket.
RESOURCE_PAUSE_S = 1.0
_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class ConnectionTable:
    """Connections held by each worker, in shared memory: a slot per worker, each a
    (pid, open connections) pair; pid 0 marks a free slot. Slots outnumber workers twice,
    so a replacement finds one free while the worker it replaces still holds its own."""

    def __init__(self, workers: int) -> None:
        self._slots: SynchronizedArray[int] = multiprocessing.get_context("spawn").Array(
            "q", 4 * workers
        )

    def claim(self) -> int | None:
        """A slot for this process: a free one, or one whose process is gone."""
        pid = os.getpid()
        with self._slots.get_lock():
            for slot in range(len(self._slots) // 2):
                holder = self._slots[2 * slot]
                if holder == 0 or not _alive(holder):
                    self._slots[2 * slot], self._slots[2 * slot + 1] = pid, 0
                    return slot
        return None

    def release(self, slot: int) -> None:
        with self._slots.get_lock():
            self._slots[2 * slot], self._slots[2 * slot + 1] = 0, 0

    def opened(self, slot: int) -> None:
        self._count(slot, +1)

    def closed(self, slot: int) -> None:
        self._count(slot, -1)

    def _count(self, slot: int, change: int) -> None:
        """Only while the slot is still this process's: a worker shutting down releases
        its slot before its last connections close, and a replacement may hold it since."""
        with self._slots.get_lock():
            if self._slots[2 * slot] == os.getpid():
                self._slots[2 * slot + 1] += change

    def least_loaded(self, slot: int) -> bool:
        """Whether ``slot`` holds no more connections than any other claimed slot whose
        worker is alive. Read without the lock: a stale count only delays a connection by
        a recheck. A slot left by a worker that died (reaped or not, its replacement not
        yet started) is freed here, so the survivors need not wait out the grace for it."""
        values = self._slots[:]
        mine = values[2 * slot + 1]
        fewer = [
            other
            for other in range(len(values) // 2)
            if values[2 * other] and values[2 * other + 1] < mine
        ]
        for other in fewer:
            if _alive(values[2 * other]):
                return False
            self._free_if_held_by(other, values[2 * other])
        return True

    def _free_if_held_by(self, slot: int, pid: int) -> None:
        with self._slots.get_lock():
            if self._slots[2 * slot] == pid:
                self._slots[2 * slot], self._slots[2 * slot + 1] = 0, 0

    def held(self) -> dict[int, int]:
        """Open connections by worker pid."""
        values = self._slots[:]
        return {values[i]: values[i + 1] for i in range(0, len(values), 2) if values[i]}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: the pid was reused
        return False
    return not _exited(pid)


def _exited(pid: int) -> bool:
    """Whether ``pid`` has exited and awaits its parent (a zombie, which ``kill`` still
    finds). uvicorn's supervisor reaps a dead worker only when it next looks, and a
    stopped supervisor never does: until then the survivors would wait out the grace on
    every connection for a worker that cannot accept. Read from Linux's /proc; elsewhere
    a worker counts as alive until it is reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    state = stat.rsplit(b")", 1)[-1].split()[:1]  # after the command name, which may hold ")"
    return state in ([b"Z"], [b"X"])


class BalancedListener:
    """A listening socket shared by the workers, with their connection table. Handed to
    uvicorn in place of the socket (pickled into each worker with both)."""

    def __init__(self, sock: socket.socket, table: ConnectionTable, grace_s: float) -> None:
        self.sock = sock
        self.table = table
        #: How long a connection may wait for the least loaded worker before any worker
        #: takes it (that worker's loop is busy, or it died and its replacement starts).
        self.grace_s = grace_s

    def __reduce__(self) -> tuple[Any, tuple[socket.socket, ConnectionTable, float]]:
        return BalancedListener, (self.sock, self.table, self.grace_s)

    def close(self) -> None:
        """uvicorn closes the sockets it was given at shutdown: this worker's copy."""
        self.sock.close()


class BalancedAccept:
    """This worker's accept loop on a ``BalancedListener`` (the server object uvicorn
    keeps: it calls ``close`` and ``wait_closed`` at shutdown)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listener: BalancedListener,
        protocol_factory: Callable[[], asyncio.Protocol],
    ) -> None:
        self._loop = loop
        self._sock = listener.sock
        self._table = listener.table
        self._protocol_factory = protocol_factory
        self._grace_s = listener.grace_s
        self._slot = self._table.claim()
        self._waiting_since: float | None = None
        self._recheck: asyncio.TimerHandle | None = None
        self._closed = False
        self._pending = select.poll()  # whether a connection still waits, when stepping aside
        self._pending.register(self._sock.fileno(), select.POLLIN)
        self._sock.setblocking(False)
        loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        if not self._may_accept():
            self._step_aside(self._grace_s / 4)
            return
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):  # taken, or gone
            self._waiting_since = None
            return
        except OSError as error:
            if error.errno not in _RESOURCE_ERRNOS:
                raise
            log.error("accepting a connection failed, pausing: %s", error)
            self._step_aside(RESOURCE_PAUSE_S)
            return
        self._waiting_since = None
        self._serve(conn)

    def _may_accept(self) -> bool:
        if self._slot is None or self._table.least_loaded(self._slot):
            return True
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        return now - self._waiting_since >= self._grace_s

    def _step_aside(self, seconds: float) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._recheck = self._loop.call_later(seconds, self._listen_again)

    def _listen_again(self) -> None:
        self._recheck = None
        if self._closed:
            return
        if not self._pending.poll(0):  # taken meanwhile: the next one starts a new wait
            self._waiting_since = None
        self._loop.add_reader(self._sock.fileno(), self._readable)

    def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        # A response written in two parts must not wait for the client's delayed ACK.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        slot = self._slot
        if slot is not None:
            self._table.opened(slot)
        task = self._loop.create_task(
            self._loop.connect_accepted_socket(self._counted_protocol, conn)
        )
        task.add_done_callback(self._handed_over)

    def _counted_protocol(self) -> asyncio.Protocol:
        """uvicorn's protocol, counted out of the table when its connection is lost."""
        protocol = self._protocol_factory()
        slot, lost = self._slot, protocol.connection_lost

        def connection_lost(exc: Exception | None) -> None:
            if slot is not None:
                self._table.closed(slot)
            lost(exc)

        protocol.connection_lost = connection_lost  # type: ignore[method-assign]
        return protocol

    def _handed_over(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        # The connection failed before its protocol started: it never counts as held.
        if self._slot is not None:
            self._table.closed(self._slot)
        log.warning("an accepted connection failed to start: %s", task.exception())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._recheck is not None:
            self._recheck.cancel()
        else:
            self._loop.remove_reader(self._sock.fileno())
        if self._slot is not None:
            self._table.release(self._slot)

    async def wait_closed(self) -> None:
        return None


class BalancedLoop(uvloop.Loop):  # type: ignore[misc]
    """uvloop, serving a ``BalancedListener`` with a ``BalancedAccept``; any other
    socket as uvloop does."""

    async def create_server(  # type: ignore[override]
        self, protocol_factory: Callable[[], asyncio.Protocol], *args: Any, **options: Any
    ) -> Any:
        sock = options.get("sock")
        if isinstance(sock, BalancedListener):
            return BalancedAccept(self, sock, protocol_factory)
        return await super().create_server(protocol_factory, *args, **options)
