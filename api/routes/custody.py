"""Custody: where a lot came from, where it went, and who holds it now."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import LedgerDep
from api.errors import EVERY_ROUTE, documented
from ledger.custody.lineage import DEFAULT_DEPTH, lineage
from ledger.custody.reads import custody_view
from ledger.custody.views import Custody, Lineage

router = APIRouter(prefix="/v1/batches", tags=["custody"], responses=EVERY_ROUTE)


@router.get(
    "/{ns}/{batch_id}/lineage",
    response_model=Lineage,
    summary="Lineage graph and claim summary of a lot",
    responses=documented(404),
)
def read_lineage(
    ledger: LedgerDep,
    ns: str,
    batch_id: str,
    direction: str = Query(default="up", description="up: what it is made of; down: where it went"),
    depth: int = Query(default=DEFAULT_DEPTH, description="levels shown, 1 to 50"),
) -> JSONResponse:
    """Nodes (lots with mass, holder, grades in force, footprint) and edges (mass,
    operation, record index, share of the child's metal) up to ``depth`` levels; for
    ``up`` also the claim summary over the whole ancestry: shares of graded metal per rule
    set and grade, recycled content, certificate-backed renewable electricity, smelters
    of origin and the derived footprint."""
    # Plain JSON types already: skip FastAPI's validation and re-encoding walk over
    # thousands of nodes. ``Lineage`` documents the answer; tests/test_custody_api.py and
    # the schemathesis conformance check hold the answers to it.
    return JSONResponse(lineage(ledger.engine, ns, batch_id, direction, depth))


@router.get(
    "/{ns}/{batch_id}/custody",
    summary="Holder, available mass and custody history",
    responses=documented(404),
)
def read_custody(ledger: LedgerDep, ns: str, batch_id: str) -> Custody:
    """Any lot (registered batch, child lot or transform output): its current holder,
    available mass, pending transfer, parents, children and every record that touched
    it, with record indexes."""
    return Custody.model_validate(custody_view(ledger.engine, ns, batch_id))
