"""Custody statement kinds: who may hand over, cut up and remelt which metal.

- ``custody.policy`` (any participant, about itself): whether transfers to it wait for
  its ``custody.accept``.
- ``custody.transfer`` (the holder): the whole lot, or a stated mass of it as a new
  child lot in the sender's namespace, to a smelter or manufacturer. With the
  recipient's ``require_acceptance`` the lot handed over is pending: neither side can
  use it until the recipient accepts or either side cancels.
- ``custody.accept`` (the named recipient) / ``custody.cancel`` (the sender or the
  recipient): settle a pending transfer. A cancelled lot stays with the sender (a
  partial transfer's child lot remains a lot of its own).
- ``custody.split`` (the holder): child lots whose masses add up to exactly the
  available mass.
- ``custody.transform`` (a smelter or manufacturer holding every lot it consumes):
  consumes stated masses of lots plus declared external inputs and makes output lots
  with a derived footprint and recycled content (``derive.py``).

Mass is conserved by construction: a lot's available mass only goes down, by exactly
the mass that goes into child lots, outputs' inputs, or leaves with a whole transfer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.custody import lots
from ledger.custody.derive import Derivation, InputLot, derive_transform, exact_text
from ledger.custody.payloads import (
    ACCEPT,
    CANCEL,
    POLICY,
    SPLIT,
    TRANSFER,
    TRANSFORM,
    Output,
    SplitPayload,
    TransferPayload,
    TransformPayload,
    parse_policy,
    parse_split,
    parse_transfer,
    parse_transfer_index,
    parse_transform,
)
from ledger.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from ledger.footprint import load_factor_tables
from ledger.kinds import AppendContext, Author, StatementKind, require_role
from ledger.statements import Statement
from ledger.storage.custody import CustodyRepository
from ledger.storage.tables import LotRow, TransferRow

PENDING = "pending"
ACCEPTED = "accepted"
CANCELLED = "cancelled"
DONE = "done"


def _custody(ctx: AppendContext) -> CustodyRepository:
    return CustodyRepository(ctx.repo.session)


# -- policy ---------------------------------------------------------------------------
class SetPolicy(StatementKind):
    name = POLICY

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> bool:
        return parse_policy(statement.payload)

    def apply(
        self, ctx: AppendContext, statement: Statement, author: Author, checked: bool
    ) -> None:
        _custody(ctx).set_policy(author.participant_id, checked, ctx.index)


# -- transfer -------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckedTransfer:
    transfer: TransferPayload
    lot: LotRow
    mass_kg: int
    pending: bool


class Transfer(StatementKind):
    name = TRANSFER

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> CheckedTransfer:
        transfer = parse_transfer(statement.payload)
        custody = _custody(ctx)
        lot = lots.held_lot(custody, transfer.lot, author, "payload")
        recipient = ctx.repo.participant(transfer.recipient_id)
        if recipient is None:
            raise NotFoundError(
                f"no participant {transfer.recipient_id}", field="payload.recipient_id"
            )
        if recipient.role not in lots.HOLDER_ROLES:
            raise InvalidError(
                f"custody goes to a smelter or manufacturer; {recipient.participant_id} is a"
                f" {recipient.role}",
                field="payload.recipient_id",
            )
        if recipient.participant_id == author.participant_id:
            raise InvalidError(
                "a transfer goes to another participant", field="payload.recipient_id"
            )
        if transfer.partial:
            assert transfer.child_batch_id is not None and transfer.mass_kg is not None
            lots.require_new_id(
                custody, author.participant_id, transfer.child_batch_id, "payload.child_batch_id"
            )
            mass = transfer.mass_kg
            lots.require_available(lot, mass, "payload.mass_kg")
        else:
            mass = _whole_mass(lot, transfer)
        policy = custody.policy(recipient.participant_id)
        pending = policy is not None and policy.require_acceptance
        return CheckedTransfer(transfer, lot, mass, pending)

    def apply(
        self, ctx: AppendContext, statement: Statement, author: Author, checked: CheckedTransfer
    ) -> None:
        custody, transfer, index = _custody(ctx), checked.transfer, ctx.index
        to, me = transfer.recipient_id, author.participant_id
        events: list[dict[str, Any]] = []
        if transfer.partial:
            assert transfer.child_batch_id is not None
            parent = checked.lot
            lots.take(parent, checked.mass_kg, "payload.mass_kg")
            holder = me if checked.pending else to
            handed = custody.add_lot(
                lots.child_lot(
                    parent,
                    me,
                    transfer.child_batch_id,
                    holder,
                    checked.mass_kg,
                    lots.TRANSFER,
                    index,
                )
            )
            custody.add_edges([lots.edge(parent, handed, checked.mass_kg, lots.TRANSFER, index)])
            part = {"child": lots.ref_of(handed)}
            events.append(
                lots.event(parent, index, TRANSFER, "transferred_part", checked.mass_kg, to, part)
            )
            origin = {
                "parent": lots.ref_of(parent),
                "to": to,
                "awaiting_acceptance": checked.pending,
            }
            events.append(
                lots.event(handed, index, TRANSFER, "created", checked.mass_kg, me, origin)
            )
        else:
            handed = checked.lot
            if not checked.pending:
                handed.holder_id = to
            moved = {"from": me, "awaiting_acceptance": checked.pending}
            events.append(
                lots.event(handed, index, TRANSFER, "transferred", checked.mass_kg, to, moved)
            )
        if checked.pending:
            handed.pending_index, handed.pending_to = index, to
        custody.save()
        custody.add_transfer(
            TransferRow(
                record_index=index,
                lot=handed.id,
                from_id=me,
                to_id=to,
                mass_kg=checked.mass_kg,
                status=PENDING if checked.pending else DONE,
            )
        )
        custody.add_events(events)


def _whole_mass(lot: LotRow, transfer: TransferPayload) -> int:
    """The mass a whole transfer hands over: all that is available, as stated if stated."""
    ref = f"{lot.ns}/{lot.lot_id}"
    if lot.available_kg == 0:
        raise ConflictError(
            f"lot {ref} has nothing available to transfer", field="payload.batch_id"
        )
    if transfer.mass_kg is not None and transfer.mass_kg != lot.available_kg:
        lots.require_available(lot, transfer.mass_kg, "payload.mass_kg")
        raise InvalidError(
            f"lot {ref} has {lot.available_kg:,} kg available; a transfer of part of it names"
            " the child_batch_id of the lot it creates",
            field="payload.mass_kg",
        )
    return lot.available_kg


# -- accept and cancel ------------------------------------------------------------------
def _pending_transfer(ctx: AppendContext, statement: Statement) -> TransferRow:
    index = parse_transfer_index(statement.kind, statement.payload)
    row = _custody(ctx).transfer(index)
    if row is None:
        raise NotFoundError(
            f"no custody.transfer at record {index}", field="payload.transfer_index"
        )
    if row.status != PENDING:
        settled = "needed no acceptance" if row.status == DONE else f"was {row.status}"
        where = f" at record {row.settled_index}" if row.settled_index is not None else ""
        raise ConflictError(
            f"the transfer at record {index} is not pending: it {settled}{where}",
            field="payload.transfer_index",
        )
    return row


class Accept(StatementKind):
    name = ACCEPT

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> TransferRow:
        row = _pending_transfer(ctx, statement)
        if author.participant_id != row.to_id:
            raise ForbiddenError(
                f"the transfer at record {row.record_index} is addressed to {row.to_id}; only"
                " it may accept",
                field="statement.signer",
            )
        return row

    def apply(
        self, ctx: AppendContext, statement: Statement, author: Author, checked: TransferRow
    ) -> None:
        _settle(ctx, checked, ACCEPTED, "accepted", new_holder=checked.to_id)


class Cancel(StatementKind):
    name = CANCEL

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> TransferRow:
        row = _pending_transfer(ctx, statement)
        if author.participant_id not in (row.from_id, row.to_id):
            raise ForbiddenError(
                f"only the sender {row.from_id} or the recipient {row.to_id} may cancel the"
                f" transfer at record {row.record_index}",
                field="statement.signer",
            )
        return row

    def apply(
        self, ctx: AppendContext, statement: Statement, author: Author, checked: TransferRow
    ) -> None:
        _settle(ctx, checked, CANCELLED, "cancelled", reason=statement.payload["reason"])


def _settle(
    ctx: AppendContext,
    transfer: TransferRow,
    status: str,
    role: str,
    new_holder: str | None = None,
    reason: str | None = None,
) -> None:
    custody = _custody(ctx)
    lot = custody.lot_by_id(transfer.lot)
    assert lot is not None
    if new_holder is not None:
        lot.holder_id = new_holder
    lot.pending_index, lot.pending_to = None, None
    transfer.status, transfer.settled_index = status, ctx.index
    custody.save()
    kind = ACCEPT if status == ACCEPTED else CANCEL
    counterpart = transfer.from_id if status == ACCEPTED else None
    detail: dict[str, Any] = {"transfer_index": transfer.record_index}
    if reason is not None:
        detail["reason"] = reason
    custody.add_events(
        [lots.event(lot, ctx.index, kind, role, transfer.mass_kg, counterpart, detail)]
    )


# -- split ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckedSplit:
    split: SplitPayload
    lot: LotRow


class Split(StatementKind):
    name = SPLIT

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> CheckedSplit:
        split = parse_split(statement.payload)
        custody = _custody(ctx)
        lot = lots.held_lot(custody, split.lot, author, "payload")
        for position, child in enumerate(split.children):
            lots.require_new_id(
                custody,
                author.participant_id,
                child.batch_id,
                f"payload.children[{position}].batch_id",
            )
        total = sum(child.mass_kg for child in split.children)
        lots.require_available(lot, total, "payload.children")
        if total < lot.available_kg:
            raise InvalidError(
                f"children add up to {total:,} kg; a split divides all {lot.available_kg:,} kg"
                f" available of {split.lot} exactly",
                field="payload.children",
            )
        return CheckedSplit(split, lot)

    def apply(
        self, ctx: AppendContext, statement: Statement, author: Author, checked: CheckedSplit
    ) -> None:
        custody, parent, index = _custody(ctx), checked.lot, ctx.index
        me = author.participant_id
        children = checked.split.children
        total = sum(child.mass_kg for child in children)
        lots.take(parent, total, "payload.children")
        made = [
            custody.add_lot(
                lots.child_lot(parent, me, child.batch_id, me, child.mass_kg, lots.SPLIT, index)
            )
            for child in children
        ]
        custody.add_edges([lots.edge(parent, row, row.mass_kg, lots.SPLIT, index) for row in made])
        listed = {"children": [{"batch_id": c.batch_id, "mass_kg": c.mass_kg} for c in children]}
        origin = {"parent": lots.ref_of(parent)}
        custody.add_events(
            [lots.event(parent, index, SPLIT, "split", total, None, listed)]
            + [lots.event(row, index, SPLIT, "created", row.mass_kg, None, origin) for row in made]
        )


# -- transform ------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckedTransform:
    transform: TransformPayload
    inputs: list[LotRow]
    derivation: Derivation


class Transform(StatementKind):
    name = TRANSFORM

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> CheckedTransform:
        require_role(author, *lots.HOLDER_ROLES, action="transforming metal")
        transform = parse_transform(statement.payload)
        custody = _custody(ctx)
        consumed: list[LotRow] = []
        for position, item in enumerate(transform.inputs):
            field = f"payload.inputs[{position}]"
            lot = lots.held_lot(custody, item.lot, author, field)
            lots.require_available(lot, item.mass_kg, f"{field}.mass_kg")
            consumed.append(lot)
        for position, output in enumerate(transform.outputs):
            lots.require_new_id(
                custody,
                author.participant_id,
                output.batch_id,
                f"payload.outputs[{position}].batch_id",
            )
        inputs = [
            InputLot(
                item.lot,
                item.mass_kg,
                lot.footprint_basis,
                Decimal(lot.recycled_pre_share),
                Decimal(lot.recycled_post_share),
                lots.lot_values(lot),
            )
            for item, lot in zip(transform.inputs, consumed, strict=True)
        ]
        year = int(ctx.integrated_at[:4])
        derivation = derive_transform(transform, inputs, load_factor_tables(), year)
        return CheckedTransform(transform, consumed, derivation)

    def apply(
        self, ctx: AppendContext, statement: Statement, author: Author, checked: CheckedTransform
    ) -> None:
        custody, index, me = _custody(ctx), ctx.index, author.participant_id
        transform, derived = checked.transform, checked.derivation
        operation = transform.operation
        pairs = list(zip(transform.inputs, checked.inputs, strict=True))
        for position, (item, lot) in enumerate(pairs):
            lots.take(lot, item.mass_kg, f"payload.inputs[{position}].mass_kg")
        custody.save()
        record = derived.to_dict()
        outputs = [
            custody.add_lot(_output_lot(me, output, index, derived, record))
            for output in transform.outputs
        ]
        custody.add_edges(
            [
                lots.edge(lot, out, item.mass_kg, operation, index)
                for item, lot in pairs
                for out in outputs
            ]
        )
        made = {"operation": operation, "outputs": [lots.ref_of(out) for out in outputs]}
        events = [
            lots.event(lot, index, TRANSFORM, "consumed", item.mass_kg, None, made)
            for item, lot in pairs
        ]
        origin = {"operation": operation, "yield": record["yield"]}
        events += [
            lots.event(out, index, TRANSFORM, "created", out.mass_kg, None, origin)
            for out in outputs
        ]
        custody.add_events(events)


def _output_lot(
    ns: str, output: Output, index: int, derived: Derivation, record: dict[str, Any]
) -> LotRow:
    return LotRow(
        ns=ns,
        lot_id=output.batch_id,
        origin=lots.TRANSFORM,
        created_index=index,
        holder_id=ns,
        mass_kg=output.mass_kg,
        available_kg=output.mass_kg,
        product_form=output.product_form,
        footprint_kg_co2e_per_t=derived.kg_co2e_per_t,
        footprint_basis="derived",
        input_kg=derived.input_kg,
        external_pre_kg=derived.external_kg["pre_consumer_scrap"],
        external_post_kg=derived.external_kg["post_consumer_scrap"],
        external_primary_kg=derived.external_kg["primary_unregistered"],
        recycled_pre_share=exact_text(derived.recycled_pre),
        recycled_post_share=exact_text(derived.recycled_post),
        renewable_share=exact_text(derived.renewable),
        electricity_kwh_per_t=exact_text(derived.electricity_kwh_per_t),
        primary_share=exact_text(derived.primary_share),
        primary_green_share=exact_text(derived.primary_green_share),
        derivation=json.dumps(record),
    )


def custody_kinds() -> list[StatementKind]:
    return [SetPolicy(), Transfer(), Accept(), Cancel(), Split(), Transform()]
