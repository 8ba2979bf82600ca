"""Batches: read back what smelters registered, with derived values and footprints."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query

from api.deps import LedgerDep, ViewerDep
from api.errors import EVERY_ROUTE, documented
from ledger.batches.reads import MAX_PAGE, get_batch, list_batches, recompute_footprint
from ledger.batches.registration import footprint_tolerance
from ledger.batches.views import BatchPage, BatchView, FootprintPreview
from ledger.footprint.calculator import CURRENT_METHOD
from ledger.storage.batches import BatchFilter

router = APIRouter(prefix="/v1/batches", tags=["batches"], responses=EVERY_ROUTE)


@router.get("/{smelter_id}/{batch_id}", summary="One batch", responses=documented(401, 404))
def read_batch(ledger: LedgerDep, viewer: ViewerDep, smelter_id: str, batch_id: str) -> BatchView:
    """The payload, derived values (recycled content, renewable share, electricity
    intensity), declared and computed footprint with its check, and the record index and
    leaf hash to prove it with. Confidential values (activity data, evidence descriptions,
    the computed footprint's breakdown) are opened only for readers the read policy allows
    (`disclosed: true`; send `Authorization: Bearer <token>`); everyone else reads their
    digests, as signed."""
    return BatchView.model_validate(get_batch(ledger.engine, viewer, smelter_id, batch_id))


@router.get(
    "/{smelter_id}/{batch_id}/footprint",
    summary="Recompute a batch's footprint",
    responses=documented(401, 403, 404),
)
def preview_batch_footprint(
    ledger: LedgerDep,
    viewer: ViewerDep,
    smelter_id: str,
    batch_id: str,
    method: str = Query(default=CURRENT_METHOD, max_length=64),
    factor_table_version: str | None = Query(default=None, max_length=32),
    gwp_set: str | None = Query(default=None, max_length=16),
) -> FootprintPreview:
    """The batch's footprint recomputed with a method, factor table and GWP set of your
    choice (default: the current method, the newest table, the declared GWP set), beside the
    footprint recorded at registration. A preview: nothing is written, nothing recorded is
    re-judged. It reads the batch's confidential activity data, so only readers who may open
    the batch get it (`403` for the rest)."""
    return FootprintPreview.model_validate(
        recompute_footprint(
            ledger.engine,
            viewer,
            smelter_id,
            batch_id,
            method=method,
            factor_table_version=factor_table_version,
            gwp_set=gwp_set,
            tolerance=footprint_tolerance(ledger.kinds),
        )
    )


@router.get("", summary="Batches, filtered, in ledger order", responses=documented(401))
def read_batches(
    ledger: LedgerDep,
    viewer: ViewerDep,
    smelter: str | None = None,
    product_form: str | None = None,
    period_from: dt.date | None = Query(default=None, description="production ended on/after"),
    period_to: dt.date | None = Query(default=None, description="production started on/before"),
    cursor: str | None = Query(default=None, description="next_cursor of the previous page"),
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
) -> BatchPage:
    where = BatchFilter(
        smelter_id=smelter,
        product_form=product_form,
        period_from=period_from.isoformat() if period_from else None,
        period_to=period_to.isoformat() if period_to else None,
    )
    return BatchPage.model_validate(list_batches(ledger.engine, viewer, where, cursor, limit))
