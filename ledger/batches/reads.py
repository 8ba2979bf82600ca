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
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from ledger.disclosure.format import Disclosure
from ledger.disclosure.reveal import disclose
from ledger.errors import MalformedError, NotFoundError
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


def encode_cursor(record_index: int) -> str:
    return base64.urlsafe_b64encode(f"batch:{record_index}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The record index after which the page starts (-1: from the beginning)."""
    if not cursor:
        return -1
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "batch":
            raise ValueError(prefix)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise MalformedError("not a cursor this API returned", field="cursor") from exc
