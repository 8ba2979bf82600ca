"""Request-scoped access to the one ``Ledger`` an app serves."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import anyio
from fastapi import Depends, Path, Query, Request

from ledger.batched_reads import BatchedReads
from ledger.canonical import SAFE_INTEGER
from ledger.certificates.revocation_reads import RevocationReads
from ledger.group_commit import GroupCommitter
from ledger.log import Ledger, Proof
from ledger.strict_json import parse_json
from ledger.tokens import Viewer, viewer_from_authorization


# Dependencies that only look something up are ``async``: FastAPI runs a plain ``def``
# dependency in a worker thread, a hand-off and a wake-up per request for an attribute.
async def get_ledger(request: Request) -> Ledger:
    return ledger_of(request)


def ledger_of(request: Request) -> Ledger:
    """The app's ledger, for a hot route that takes the ``Request`` instead of
    ``LedgerDep`` (resolving a dependency costs about as much as a cached proof)."""
    ledger: Ledger = request.app.state.ledger
    return ledger


def proof_reads_of(request: Request) -> BatchedReads[tuple[int, int | None], Proof]:
    """The app's one reader of inclusion proofs that need the database: the proofs of
    every request waiting read in one query (``Ledger.inclusion_proofs``)."""
    reads: BatchedReads[tuple[int, int | None], Proof] = request.app.state.proof_reads
    return reads


LedgerDep = Annotated[Ledger, Depends(get_ledger)]


def get_viewer(request: Request) -> Viewer:
    """Who reads: the participant of a bearer token (the same tokens as GraphQL), or
    anonymous without one. A token that does not authenticate is refused (401)."""
    ledger: Ledger = request.app.state.ledger
    return viewer_from_authorization(ledger.engine, request.headers.get("authorization"))


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


async def json_body(request: Request) -> Any:
    """The JSON body, as the edge read it (``api/limits.py``: strict, bounded, off the
    event loop); read here only when the app runs without that middleware."""
    parsed = getattr(request.state, "json_body", _MISSING)
    if parsed is not _MISSING:
        return parsed
    raw = await request.body()
    return await anyio.to_thread.run_sync(lambda: parse_json(raw))


_MISSING = object()


BodyDep = Annotated[Any, Depends(json_body)]


class Writer:
    """The app's one ``GroupCommitter``, started on the first append (an app that only
    reads never starts a writer thread) and closed when the app shuts down."""

    def __init__(self, ledger: Ledger, *, max_wait_s: float, max_statements: int) -> None:
        self._ledger = ledger
        self._options = {"max_wait_s": max_wait_s, "max_statements": max_statements}
        self._committer: GroupCommitter | None = None
        self._lock = threading.Lock()

    def get(self) -> GroupCommitter:
        with self._lock:
            if self._committer is None:
                self._committer = GroupCommitter(self._ledger, **self._options)
            return self._committer

    def close(self) -> None:
        with self._lock:
            if self._committer is not None:
                self._committer.close()
                self._committer = None


async def get_committer(request: Request) -> GroupCommitter:
    return committer_of(request)


def committer_of(request: Request) -> GroupCommitter:
    """The app's writer, for a hot route that takes the ``Request`` (``ledger_of``)."""
    writer: Writer = request.app.state.writer
    return writer.get()


CommitterDep = Annotated[GroupCommitter, Depends(get_committer)]


async def get_revocations(request: Request) -> RevocationReads:
    """The app's one reader of grades' statuses (``RevocationReads``)."""
    revocations: RevocationReads = request.app.state.revocations
    return revocations


RevocationsDep = Annotated[RevocationReads, Depends(get_revocations)]

RecordIndex = Annotated[
    int, Path(ge=0, le=SAFE_INTEGER, description="A record index (0 is the genesis record)")
]
"""A record index in a path: bounded, so no integer reaches a column it cannot fit."""
TreeSize = Annotated[int, Query(ge=1, le=SAFE_INTEGER)]
MaybeTreeSize = Annotated[int | None, Query(ge=1, le=SAFE_INTEGER)]
