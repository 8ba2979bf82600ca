"""Reading batches back: one batch, or a filtered page with an opaque cursor."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sqlalchemy import Engine

from ledger.batches.registration import batch_view
from ledger.errors import MalformedError, NotFoundError
from ledger.storage.batches import BatchFilter, BatchRepository
from ledger.storage.db import read_session
from ledger.storage.repository import Repository

MAX_PAGE = 200


def get_batch(engine: Engine, smelter_id: str, batch_id: str) -> dict[str, Any]:
    with read_session(engine) as session:
        row = BatchRepository(session).get(smelter_id, batch_id)
        if row is None:
            raise NotFoundError(f"no batch {smelter_id}/{batch_id}", field="batch_id")
        record = Repository(session).record(row.record_index)
    return batch_view(row, record.to_dict(), record.leaf_hash.hex())


def list_batches(
    engine: Engine, where: BatchFilter, cursor: str | None = None, limit: int = 50
) -> dict[str, Any]:
    if not 1 <= limit <= MAX_PAGE:
        raise MalformedError(f"must be between 1 and {MAX_PAGE}", field="limit")
    with read_session(engine) as session:
        rows = BatchRepository(session).page(where, decode_cursor(cursor), limit + 1)
        page, more = rows[:limit], len(rows) > limit
        records = Repository(session).records(row.record_index for row in page)
    items = [
        batch_view(
            row, records[row.record_index].to_dict(), records[row.record_index].leaf_hash.hex()
        )
        for row in page
    ]
    return {"items": items, "next_cursor": encode_cursor(page[-1].record_index) if more else None}


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
