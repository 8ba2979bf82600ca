"""Certificates: a grade's self-contained, offline-verifiable bundle, and a verifier."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.body_docs import body_doc
from api.deps import BodyDep, LedgerDep, RecordIndex, RevocationsDep
from api.errors import EVERY_ROUTE, documented
from ledger.batches.registration import footprint_tolerance
from ledger.certificates import FORMAT, GradeSummary, verify_bundle
from ledger.certificates.cache import bundle_cache, cached_bundle


class BundleModel(BaseModel):
    """A certificate bundle as ``GET /v1/certificates/{grade_record_index}`` returns it (the
    verifier reads it itself and names the first member it finds wrong)."""

    model_config = ConfigDict(extra="allow")

    format: str = Field(examples=[FORMAT])
    grade_index: int
    checkpoint: str = Field(description="C2SP signed note the records are proven into")
    status: str = Field(description="the log's signed status note for the grade")
    records: dict[str, Any] = Field(description="by role: record, leaf hash, inclusion proof")


class VerdictModel(BaseModel):
    status: str = Field(description="valid, revoked, expired or invalid")
    valid: bool
    reasons: list[str]
    tree_size: int | None
    grade: GradeSummary | None


router = APIRouter(prefix="/v1/certificates", tags=["certificates"], responses=EVERY_ROUTE)


@router.get(
    "/{grade_record_index}",
    summary="A grade's certificate bundle",
    response_model=BundleModel,  # documents the answer (served as cached bytes)
    responses=documented(404),
)
async def read_certificate(
    ledger: LedgerDep, revocations: RevocationsDep, grade_record_index: RecordIndex
) -> Response:
    """The grade, batch, rule-set, accreditation and signer-key records, each with its
    inclusion proof, a signed checkpoint, and the log's signed status note (revoked or not
    as of that checkpoint). Verify it offline with
    `alu-ledger certificate verify FILE --log-key VKEY` or `ledger.certificates.verify_bundle`.

    The checkpoint is the latest or, from the cache, an older one (a bundle is rebuilt
    once it is `LEDGER_CERTIFICATE_CACHE_SECONDS` old; an older consistent checkpoint
    proves the same); a revocation shows at once."""
    # Async: the grade's status comes from the app's one revocation reader and a cached
    # bundle is answered on the event loop, so no request holds a worker thread; only a
    # bundle to build (none cached, or the status changed) goes to one.
    revoked = await revocations.revocation(grade_record_index)
    bundle = bundle_cache(ledger).cached(ledger, grade_record_index, revoked)
    if bundle is None:
        bundle = await run_in_threadpool(cached_bundle, ledger, grade_record_index)
    return Response(bundle.json, media_type="application/json")


@router.post(
    "/verify",
    response_model=VerdictModel,
    openapi_extra=body_doc(BundleModel),
    summary="Verify a certificate bundle against this log's key",
    responses=documented(413),
)
def verify_certificate(
    ledger: LedgerDep,
    body: BodyDep,
    today: Annotated[date | None, Query(description="Judge expiry on this day")] = None,
) -> dict[str, Any]:
    """The same verdict as the CLI: `status` (valid, revoked, expired, invalid) and reasons.
    Convenient, but it trusts this server; verify offline to trust only the log key."""
    tolerance = footprint_tolerance(ledger.kinds)
    verdict = verify_bundle(body, ledger.verifier_key, today=today, footprint_tolerance=tolerance)
    return verdict.to_dict()
