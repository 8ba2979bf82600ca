"""Certificates: a grade's self-contained, offline-verifiable bundle, and a verifier."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.deps import BodyDep, LedgerDep, RecordIndex
from ledger.batches.registration import footprint_tolerance
from ledger.certificates import verify_bundle
from ledger.certificates.cache import cached_bundle

router = APIRouter(prefix="/v1/certificates", tags=["certificates"])


@router.get(
    "/{grade_record_index}",
    summary="A grade's certificate bundle",
    response_model=dict[str, Any],
)
def read_certificate(ledger: LedgerDep, grade_record_index: RecordIndex) -> Response:
    """The grade, batch, rule-set, accreditation and signer-key records, each with its
    inclusion proof, a signed checkpoint, and the log's signed status note (revoked or not
    as of that checkpoint). Verify it offline with
    `alu-ledger certificate verify FILE --log-key VKEY` or `ledger.certificates.verify_bundle`.

    The checkpoint is the latest, or one at most `LEDGER_CERTIFICATE_CACHE_SECONDS` older
    (the bundle is cached; an older consistent checkpoint proves the same); a revocation
    shows at once."""
    bundle = cached_bundle(ledger, grade_record_index)
    return Response(bundle.json, media_type="application/json")


@router.post("/verify", summary="Verify a certificate bundle against this log's key")
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
