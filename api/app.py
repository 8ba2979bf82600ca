"""The ASGI application: ``uvicorn api.app:app`` or ``alu-ledger serve``."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors, pages
from api.deps import Writer
from api.graphql import graphql_router
from api.limits import InputLimits, Limits
from api.request_ids import RequestIds
from api.routes import batches, certificates, custody, grading, log
from ledger import __version__
from ledger.batched_reads import BatchedReads
from ledger.bootstrap import open_ledger
from ledger.certificates.cache import attach_bundle_cache, bundle_cache
from ledger.certificates.revocation_reads import RevocationReads
from ledger.log import Ledger
from ledger.settings import Settings

DESCRIPTION = """
Traceability ledger for green low-carbon aluminium. Every record is a participant's
signed statement, hash-chained to the one before and covered by an RFC 9162 Merkle
tree; `GET /v1/checkpoint` returns the signed tree head to verify proofs against.
"""

#: Most inclusion proofs whose nodes one read takes (``Ledger.inclusion_proofs``).
PROOFS_PER_READ = 64


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.writer.close()  # appends still queued finish first
    app.state.revocations.close()
    app.state.proof_reads.close()
    bundle_cache(app.state.ledger).close()  # and the bundle rebuilds under way


def create_app(ledger: Ledger | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the app around an open ledger (opened from settings when not given)."""
    app = FastAPI(
        title="alu-ledger",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by api/pages.py with the app's own assets
        redoc_url=None,
    )
    settings = settings or Settings()
    app.state.ledger = ledger or open_ledger(settings)
    attach_bundle_cache(app.state.ledger, settings.certificate_cache_seconds)
    app.state.revocations = RevocationReads(app.state.ledger.engine)
    app.state.proof_reads = BatchedReads(
        app.state.ledger.inclusion_proofs, name="proof-reads", max_batch=PROOFS_PER_READ
    )
    app.state.writer = Writer(
        app.state.ledger,
        max_wait_s=settings.group_commit_wait_ms / 1000,
        max_statements=settings.group_commit_max_statements,
    )
    errors.install(app)
    pages.install(app)
    app.add_middleware(InputLimits, limits=Limits.from_settings(settings))
    app.add_middleware(RequestIds)  # outermost: every answer names its request
    app.include_router(log.router)
    app.include_router(batches.router)
    app.include_router(grading.router)
    app.include_router(certificates.router)
    app.include_router(custody.router)
    anonymous = settings.graphql_anonymous_certificates
    app.include_router(
        graphql_router(
            app.state.ledger,
            anonymous_certificates=anonymous,
            max_cost=settings.graphql_max_cost,
            time_limit_s=settings.graphql_time_limit_seconds,
        ),
        prefix="/graphql",
    )
    return app


def app() -> FastAPI:
    """Factory for ``uvicorn --factory api.app:app``."""
    return create_app()


def frozen_app() -> FastAPI:
    """The app for ``alu-ledger serve``: everything built so far lives as long as the
    server, so it is kept out of the collector's full passes (their pauses would show in
    request latency, p99)."""
    application = create_app()
    gc.freeze()
    return application
