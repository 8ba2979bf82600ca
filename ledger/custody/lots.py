"""Lots inside the append transaction: finding a held lot, taking mass from it, new lots.

``take`` is the one place where available mass is checked and spent. It runs inside the
append transaction, which holds the log-head lock, so two statements racing for the
same kilograms (threads, processes, PostgreSQL or SQLite) are checked one after the
other and the second sees what the first took: no kilogram is spent twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import Row
from sqlmodel import Session

from ledger.batches.payload import LotValues
from ledger.custody.derive import exact_text
from ledger.custody.payloads import LotRef
from ledger.errors import ConflictError, ForbiddenError, NotFoundError
from ledger.kinds import Author
from ledger.storage.batches import BatchRepository
from ledger.storage.custody import CustodyRepository
from ledger.storage.tables import LotRow

#: Origins of a lot: a registered batch, or the operation that created it.
BATCH: Final = "batch"
SPLIT: Final = "split"
TRANSFER: Final = "transfer"
TRANSFORM: Final = "transform"
#: The operation by which a registered batch consumes the lots it names.
REMELT: Final = "remelt"
#: Roles that hold metal: only they may receive custody or transform.
HOLDER_ROLES: Final = ("smelter", "manufacturer")


def root_lot(
    batch: Mapping[str, Any], derived: Mapping[str, Any], metal: LotValues
) -> dict[str, Any]:
    """The lot a registered batch starts as: held by its smelter, all of it available.

    ``batch`` is the batch's column values as they are stored (``batches``), ``derived``
    its derived values (what its ``derived`` column holds): the lot is made from the values
    at hand, not from the stored row. Its footprint is the computed cradle-to-gate total
    (market-based) when the ledger could compute one, else the declared value
    (``declared_scope1_2`` when it covers scope 1 and 2 only); its recycled shares are the
    batch's derived values, and ``metal`` states the electricity behind its metal and the
    provenance of its primary metal. Returns every column of ``LotRow`` but ``id``.
    """
    if batch["computed_kg_co2e_per_t"] is not None:
        footprint, basis = batch["computed_kg_co2e_per_t"], "computed"
    else:
        footprint = batch["declared_kg_co2e_per_t"]
        cradle_to_gate = batch["declared_boundary"] == "cradle_to_gate"
        basis = "declared" if cradle_to_gate else "declared_scope1_2"
    return {
        "ns": batch["smelter_id"],
        "lot_id": batch["batch_id"],
        "origin": BATCH,
        "created_index": batch["record_index"],
        "holder_id": batch["smelter_id"],
        "mass_kg": batch["mass_kg"],
        "available_kg": batch["mass_kg"],
        "pending_index": None,
        "pending_to": None,
        "product_form": batch["product_form"],
        "footprint_kg_co2e_per_t": footprint,
        "footprint_basis": basis,
        "input_kg": batch["mass_kg"],
        "external_pre_kg": 0,
        "external_post_kg": 0,
        "external_primary_kg": 0,
        "recycled_pre_share": derived["recycled_content_pre_consumer"],
        "recycled_post_share": derived["recycled_content_post_consumer"],
        "renewable_share": exact_text(metal.renewable_share),
        "electricity_kwh_per_t": exact_text(metal.electricity_kwh_per_t),
        "primary_share": exact_text(metal.primary_share),
        "primary_green_share": exact_text(metal.primary_green_share),
        "derivation": None,
    }


def add_batch_with_root_lot(
    session: Session,
    batch: Mapping[str, Any],
    derived: Mapping[str, Any],
    metal: LotValues,
    consumed: Sequence[tuple[LotRow, int]] = (),
    *,
    id_checked: bool = False,
) -> None:
    """Called by ``batch.register`` on append: the new batch is stored and becomes a lot,
    and the lots it names as purchased primary metal give up the kilograms it used (as a
    transform).

    ``batch`` (every column of the batch's row) and ``derived`` as for ``root_lot``: the
    batch row, its lot and the lot's first event are written together, from the values at
    hand. ``id_checked``: the caller has already refused an id some lot has
    (``require_new_id``), so it is not asked again.
    """
    custody = CustodyRepository(session)
    ns, lot_id = batch["smelter_id"], batch["batch_id"]
    if not id_checked:
        require_new_id(custody, ns, lot_id, "payload.batch_id")
    index = batch["record_index"]
    for position, (parent, mass_kg) in enumerate(consumed):
        take(parent, mass_kg, f"payload.metal_inputs.purchased_primary_batches[{position}]")
    custody.save()
    registered = _event_row(None, index, "registered", batch["mass_kg"], None)
    lot = BatchRepository(session).insert_with_root_lot(
        batch, root_lot(batch, derived, metal), registered, lot_id_needed=bool(consumed)
    )
    if not consumed:
        return
    assert lot is not None
    made = {"operation": REMELT, "outputs": [{"ns": ns, "batch_id": lot_id}]}
    custody.add_edges(
        [
            {
                "parent": parent.id,
                "child": lot,
                "mass_kg": mass,
                "operation": REMELT,
                "record_index": index,
            }
            for parent, mass in consumed
        ]
    )
    custody.add_events(
        [_event_row(parent.id, index, "consumed", mass, made) for parent, mass in consumed]
    )


def _event_row(
    lot: int | None, index: int, role: str, mass_kg: int, detail: dict[str, Any] | None
) -> dict[str, Any]:
    """``event`` for a lot known by its id: what ``batch.register`` did to it."""
    return {
        "lot": lot,
        "record_index": index,
        "kind": "batch.register",
        "role": role,
        "mass_kg": mass_kg,
        "counterpart": None,
        "detail": json.dumps(detail) if detail else None,
    }


def lot_values(lot: LotRow | Row[Any]) -> LotValues:
    """What the ledger states about a lot, for a batch or transform that uses its metal."""
    return LotValues(
        kg_co2e_per_t=lot.footprint_kg_co2e_per_t,
        electricity_kwh_per_t=Decimal(lot.electricity_kwh_per_t),
        renewable_share=Decimal(lot.renewable_share),
        primary_share=Decimal(lot.primary_share),
        primary_green_share=Decimal(lot.primary_green_share),
    )


def held_lot(custody: CustodyRepository, ref: LotRef, author: Author, field: str) -> LotRow:
    """The lot ``ref`` if the signer holds it and it is not in a pending transfer.

    ``field`` is the payload object naming the lot; errors name its ``batch_id``.
    """
    lot = custody.lot(ref.ns, ref.batch_id)
    where = f"{field}.batch_id"
    if lot is None:
        raise NotFoundError(f"no lot {ref} on the ledger", field=where)
    if lot.holder_id != author.participant_id:
        raise ForbiddenError(
            f"lot {ref} is held by {lot.holder_id}; only its holder may use it",
            field=where,
        )
    if lot.pending_index is not None:
        raise ConflictError(
            f"lot {ref} is in a transfer to {lot.pending_to} awaiting acceptance (record"
            f" {lot.pending_index}); accept or cancel that first",
            field=where,
        )
    return lot


def take(lot: LotRow, mass_kg: int, field: str) -> None:
    """Spend ``mass_kg`` of the lot's available mass, or refuse: nothing is spent twice."""
    require_available(lot, mass_kg, field)
    lot.available_kg -= mass_kg


def require_available(lot: LotRow, mass_kg: int, field: str) -> None:
    """Refuse unless ``mass_kg`` of the lot is available (409: it was spent already)."""
    if mass_kg > lot.available_kg:
        raise ConflictError(
            f"lot {lot.ns}/{lot.lot_id} has {lot.available_kg:,} kg available;"
            f" {mass_kg:,} kg cannot be used",
            field=field,
        )


def require_new_id(custody: CustodyRepository, ns: str, lot_id: str, field: str) -> None:
    if custody.lot_exists(ns, lot_id):
        raise taken_id_error(ns, lot_id, field)


def taken_id_error(ns: str, lot_id: str, field: str) -> ConflictError:
    """The refusal of a new lot (or batch) whose id a lot already has."""
    return ConflictError(f"{ns}/{lot_id} is already a batch or lot; choose another id", field=field)


def child_lot(
    parent: LotRow, ns: str, lot_id: str, holder_id: str, mass_kg: int, origin: str, index: int
) -> LotRow:
    """A lot cut from ``parent`` (split, partial transfer): same metal, same values."""
    return LotRow(
        ns=ns,
        lot_id=lot_id,
        origin=origin,
        created_index=index,
        holder_id=holder_id,
        mass_kg=mass_kg,
        available_kg=mass_kg,
        product_form=parent.product_form,
        footprint_kg_co2e_per_t=parent.footprint_kg_co2e_per_t,
        footprint_basis=parent.footprint_basis,
        input_kg=mass_kg,
        recycled_pre_share=parent.recycled_pre_share,
        recycled_post_share=parent.recycled_post_share,
        renewable_share=parent.renewable_share,
        electricity_kwh_per_t=parent.electricity_kwh_per_t,
        primary_share=parent.primary_share,
        primary_green_share=parent.primary_green_share,
        derivation=json.dumps({"from": ref_of(parent)}),
    )


def event(
    lot: LotRow,
    index: int,
    kind: str,
    role: str,
    mass_kg: int | None = None,
    counterpart: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``lot_events`` row: record ``index`` touched ``lot`` in ``role``."""
    return {
        "lot": lot.id,
        "record_index": index,
        "kind": kind,
        "role": role,
        "mass_kg": mass_kg,
        "counterpart": counterpart,
        "detail": json.dumps(detail) if detail else None,
    }


def edge(parent: LotRow, child: LotRow, mass_kg: int, operation: str, index: int) -> dict[str, Any]:
    return {
        "parent": parent.id,
        "child": child.id,
        "mass_kg": mass_kg,
        "operation": operation,
        "record_index": index,
    }


def ref_of(lot: LotRow | Row[Any]) -> dict[str, str]:
    return {"ns": lot.ns, "batch_id": lot.lot_id}


def shares_of(lot: LotRow | Row[Any]) -> tuple[Decimal, Decimal, Decimal]:
    """(pre-consumer, post-consumer, certificate-backed renewable) shares, exact."""
    return (
        Decimal(lot.recycled_pre_share),
        Decimal(lot.recycled_post_share),
        Decimal(lot.renewable_share),
    )
