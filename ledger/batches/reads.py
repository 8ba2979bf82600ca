"""Reading batches back, through the read policy: one batch, or a filtered page.

What a reader gets depends on who reads (``ledger/visibility.py``): the batch's smelter,
the operator, auditors, accredited centres and grantees get the opened payload and the
computed footprint's breakdown; everyone else the payload as signed (confidential
members as digests) and the footprint totals only.
"""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from ledger.batches.derived import stated_lot_values
from ledger.batches.payload import parse_registration
from ledger.canonical import SAFE_INTEGER
from ledger.disclosure.format import Disclosure
from ledger.disclosure.reveal import disclose
from ledger.errors import (
    ForbiddenError,
    InvalidError,
    LedgerError,
    MalformedError,
    NotFoundError,
)
from ledger.footprint import compute_footprint, footprint_check, load_factor_tables
from ledger.footprint.calculator import CURRENT_METHOD, DEFAULT_TOLERANCE, METHOD_V1, V1_TABLE
from ledger.records import Record
from ledger.storage.batches import BatchFilter, BatchRepository
from ledger.storage.db import read_session
from ledger.storage.disclosures import DisclosureRepository
from ledger.storage.repository import Repository
from ledger.storage.tables import BatchRow
from ledger.tokens import Viewer
from ledger.visibility import Access, access_for

MAX_PAGE = 200
#: Parts of a computed footprint from which activity data could be recovered.
CONFIDENTIAL_FOOTPRINT_PARTS = ("breakdown", "assumptions")


def get_batch(engine: Engine, viewer: Viewer, smelter_id: str, batch_id: str) -> dict[str, Any]:
    with read_session(engine) as session:
        row = BatchRepository(session).get(smelter_id, batch_id)
        if row is None:
            raise NotFoundError(f"no batch {smelter_id}/{batch_id}", field="batch_id")
        return _views(session, access_for(session, viewer), [row])[0]


def list_batches(
    engine: Engine, viewer: Viewer, where: BatchFilter, cursor: str | None = None, limit: int = 50
) -> dict[str, Any]:
    if not 1 <= limit <= MAX_PAGE:
        raise MalformedError(f"must be between 1 and {MAX_PAGE}", field="limit")
    with read_session(engine) as session:
        rows = BatchRepository(session).page(where, decode_cursor(cursor), limit + 1)
        page, more = rows[:limit], len(rows) > limit
        items = _views(session, access_for(session, viewer), page)
    return {"items": items, "next_cursor": encode_cursor(page[-1].record_index) if more else None}


def _views(session: Session, access: Access, rows: list[BatchRow]) -> list[dict[str, Any]]:
    """Views of ``rows`` in three queries whatever their number: records, disclosures."""
    records = Repository(session).records(row.record_index for row in rows)
    visible = [
        row.record_index for row in rows if access.sees_disclosures(row.smelter_id, row.batch_id)
    ]
    opened = DisclosureRepository(session).of_records(visible)
    return [
        batch_view(
            row,
            records[row.record_index],
            opened.get(row.record_index, []) if row.record_index in set(visible) else None,
        )
        for row in rows
    ]


def batch_view(
    row: BatchRow, record: Record, disclosures: list[Disclosure] | None
) -> dict[str, Any]:
    """A batch as one reader sees it; ``disclosures`` None: the reader may not open it."""
    payload = record.statement["payload"]
    computed = json.loads(row.footprint) if row.footprint else None
    if disclosures is not None:
        payload = disclose(payload, disclosures)
    elif computed is not None:
        computed = {k: v for k, v in computed.items() if k not in CONFIDENTIAL_FOOTPRINT_PARTS}
    return {
        "smelter_id": row.smelter_id,
        "batch_id": row.batch_id,
        "batch": payload,
        "disclosed": disclosures is not None,
        "derived": json.loads(row.derived),
        "footprint": {
            "declared_kg_co2e_per_t": row.declared_kg_co2e_per_t,
            "declared_boundary": row.declared_boundary,
            "computed": computed,
            "check": row.footprint_check,
        },
        "region": row.region,
        "record": {
            "index": row.record_index,
            "leaf_hash": record.leaf_hash.hex(),
            "integrated_at": row.registered_at,
        },
    }


def recompute_footprint(
    engine: Engine,
    viewer: Viewer,
    smelter_id: str,
    batch_id: str,
    *,
    method: str = CURRENT_METHOD,
    factor_table_version: str | None = None,
    gwp_set: str | None = None,
    tolerance: Decimal = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """A stored batch's footprint recomputed with another method, factor table or GWP set,
    beside the one recorded: an explicit preview that writes nothing, so a batch registered
    before method 2 is never re-judged by it.

    Only readers who may open the batch get it (403 for the rest): totals under factors of
    the reader's choosing would let anyone solve for the confidential activity data. Lots
    the batch named count with what the ledger stated about them at registration.
    """
    with read_session(engine) as session:
        row = BatchRepository(session).get(smelter_id, batch_id)
        if row is None:
            raise NotFoundError(f"no batch {smelter_id}/{batch_id}", field="batch_id")
        access = access_for(session, viewer)
        if not access.sees_disclosures(smelter_id, batch_id):
            raise ForbiddenError(
                f"recomputing a footprint reads the batch's confidential activity data; open to"
                f" {access.describe}",
                field="batch_id",
            )
        record = Repository(session).record(row.record_index)
        opened = DisclosureRepository(session).of_records([row.record_index])
    assert record is not None, "a batch row always has its record"
    derived = json.loads(row.derived)
    default_table = V1_TABLE if method == METHOD_V1 else None
    tables = load_factor_tables(factor_table_version or default_table)
    plain = disclose(record.statement["payload"], opened.get(row.record_index, []))
    lots = stated_lot_values(derived.get("ledger_lots", []))
    try:
        # read as it was registered: before method 2 the payload had another shape
        reg = parse_registration(plain, legacy="method" not in derived)
        computed = compute_footprint(reg, tables, method=method, gwp_set=gwp_set, lots=lots)
    except LedgerError as exc:  # the stored batch is fine; the method cannot read it
        raise InvalidError(
            f"batch {smelter_id}/{batch_id} cannot be computed with {method}, factor table"
            f" {tables.version}: {exc.detail}",
            field=exc.field,
        ) from None
    declared = reg.declared_footprint
    return {
        "smelter_id": smelter_id,
        "batch_id": batch_id,
        "recorded": {
            "computed": json.loads(row.footprint) if row.footprint else None,
            "check": row.footprint_check,
        },
        "preview": {
            "computed": computed.to_dict() if computed else None,
            "check": footprint_check(
                declared.kg_co2e_per_t, computed, declared.boundary, tolerance
            ),
        },
    }


def encode_cursor(record_index: int) -> str:
    return base64.urlsafe_b64encode(f"batch:{record_index}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The record index after which the page starts (-1: from the beginning)."""
    if not cursor:
        return -1
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "batch" or not (number.isascii() and number.isdigit()):
            raise ValueError(text)
        index = int(number)
        if index > SAFE_INTEGER:  # no record index is this large; no column can hold it
            raise ValueError(number)
        return index
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise MalformedError("not a cursor this API returned", field="cursor") from exc
