"""Reading custody back: a lot with its holder, available mass and custody history.

Works for every lot, registered batches included (``GET /v1/batches/{s}/{b}`` shows
only registered batches; this is how child lots and transform outputs are read).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from ledger.custody.lineage import edge_view, node_view
from ledger.errors import NotFoundError
from ledger.storage.custody import CustodyRepository
from ledger.storage.db import read_session
from ledger.storage.tables import LotEventRow, TransferRow


def custody_view(
    engine: Engine, ns: str, batch_id: str, today: str | None = None
) -> dict[str, Any]:
    """The lot, its pending transfer, its parents and children, and every record that
    touched it (registration, transfers, splits, transforms, accepts, cancels) in order."""
    day = today or datetime.now(UTC).date().isoformat()
    with read_session(engine) as session:
        custody = CustodyRepository(session)
        lot = custody.lot(ns, batch_id)
        if lot is None:
            raise NotFoundError(f"no batch or lot {ns}/{batch_id}", field="batch_id")
        parents = custody.parents_of(lot.id)
        children = custody.children_of(lot.id)
        events = custody.events_of(lot.id)
        transfers = custody.transfers_of(lot.id)
        grades = [grade for _, grade in custody.active_grades([lot.id], day)]
    related = {lot.id: lot, **{row.id: row for _, row in parents + children}}
    view = node_view(lot, grades)
    view["derivation"] = json.loads(lot.derivation) if lot.derivation else None
    return {
        "lot": view,
        "holder_id": lot.holder_id,
        "available_kg": lot.available_kg,
        "pending_transfer": _pending(transfers),
        "parents": [edge_view(edge, related) for edge, _ in parents],
        "children": [edge_view(edge, related) for edge, _ in children],
        "history": [event_view(event) for event in events],
    }


def event_view(event: LotEventRow) -> dict[str, Any]:
    return {
        "record_index": event.record_index,
        "kind": event.kind,
        "role": event.role,
        "mass_kg": event.mass_kg,
        "counterpart": event.counterpart,
        "detail": json.loads(event.detail) if event.detail else None,
    }


def _pending(transfers: list[TransferRow]) -> dict[str, Any] | None:
    for row in transfers:
        if row.status == "pending":
            return {
                "transfer_index": row.record_index,
                "from_id": row.from_id,
                "to_id": row.to_id,
                "mass_kg": row.mass_kg,
            }
    return None
