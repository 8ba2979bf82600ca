"""Custody on the ledger: lots, transfers (whole, partial, pending), splits, transforms,
double spends, unauthorized operations, history, and the revision 0004 backfill.

Every registered batch is a lot held by its smelter. Only a lot's holder may hand it
over, split it or consume it; no kilogram may be used twice; a refusal names the
payload field and leaves no trace. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from alembic import command
from sqlmodel import select

from ledger.batches.reads import get_batch
from ledger.custody.reads import custody_view
from ledger.disclosure.sign import sign_statement
from ledger.errors import ConflictError, ForbiddenError, InvalidError, MalformedError, NotFoundError
from ledger.storage.db import read_session
from ledger.storage.migrate import alembic_config
from ledger.storage.tables import BatchRow, LotRow
from ledger.visibility import operator_viewer
from tests.conftest import LedgerEnv
from tests.custody_support import (
    AUDITOR,
    BUYER,
    MAKER,
    RECYCLER,
    SMELTER,
    available,
    holder,
    lot,
    register_batch,
    split,
    transfer,
    transform,
    world,
)

OPERATOR = operator_viewer("operator")


@pytest.fixture
def w(env: LedgerEnv) -> LedgerEnv:
    """The custody world with one 24,000 kg batch B1 of SMELTER."""
    world(env)
    register_batch(env, SMELTER, "B1")
    return env


def refused(env: LedgerEnv, error: type, field: str, call: Any, *args: Any, **kw: Any) -> str:
    """Run ``call``, expect ``error`` naming ``field``, and check nothing was appended."""
    size = env.ledger.tree_size()
    with pytest.raises(error) as caught:
        call(env, *args, **kw)
    assert caught.value.field == field, caught.value
    assert env.ledger.tree_size() == size
    return caught.value.detail


# -- registered batches are lots ------------------------------------------------------------
def test_a_registered_batch_is_a_lot_held_by_its_smelter_with_all_its_mass(w: LedgerEnv) -> None:
    row = lot(w, SMELTER, "B1")
    batch = get_batch(w.ledger.engine, OPERATOR, SMELTER, "B1")
    assert (row.origin, row.holder_id, row.mass_kg, row.available_kg) == (
        "batch",
        SMELTER,
        24_000,
        24_000,
    )
    assert row.footprint_kg_co2e_per_t == batch["footprint"]["computed"]["total_kg_co2e_per_t"]
    assert row.footprint_basis == "computed"
    assert row.recycled_pre_share == batch["derived"]["recycled_content_pre_consumer"]
    assert row.created_index == batch["record"]["index"]


def test_a_batch_the_ledger_cannot_recompute_carries_its_declared_footprint(
    w: LedgerEnv,
) -> None:
    register_batch(w, SMELTER, "B2", certified=True, activity_data=None)
    row = lot(w, SMELTER, "B2")
    assert (row.footprint_kg_co2e_per_t, row.footprint_basis) == (3800, "declared")
    assert row.renewable_share == "1"  # every kWh behind its metal certified


# -- transfers ---------------------------------------------------------------------------------
def test_a_whole_transfer_moves_the_lot_to_the_recipient(w: LedgerEnv) -> None:
    appended = transfer(w, SMELTER, SMELTER, "B1", MAKER)
    assert holder(w, SMELTER, "B1") == MAKER
    assert available(w, SMELTER, "B1") == 24_000
    history = custody_view(w.ledger.engine, SMELTER, "B1")["history"]
    assert [(h["record_index"], h["role"], h["counterpart"]) for h in history][-1] == (
        appended.index,
        "transferred",
        MAKER,
    )
    # the sender no longer holds it
    refused(
        w, ForbiddenError, "statement.payload.batch_id", transfer, SMELTER, SMELTER, "B1", BUYER
    )


def test_a_partial_transfer_makes_a_child_lot_in_the_senders_namespace(w: LedgerEnv) -> None:
    transfer(w, SMELTER, SMELTER, "B1", MAKER, mass_kg=10_000, child="B1-M")
    child = lot(w, SMELTER, "B1-M")
    assert (child.holder_id, child.mass_kg, child.available_kg, child.origin) == (
        MAKER,
        10_000,
        10_000,
        "transfer",
    )
    parent = lot(w, SMELTER, "B1")
    assert (parent.holder_id, parent.available_kg) == (SMELTER, 14_000)
    assert child.footprint_kg_co2e_per_t == parent.footprint_kg_co2e_per_t
    # the recipient uses it as its own
    transfer(w, MAKER, SMELTER, "B1-M", BUYER)
    assert holder(w, SMELTER, "B1-M") == BUYER


def test_the_same_kilograms_cannot_be_transferred_twice(w: LedgerEnv) -> None:
    transfer(w, SMELTER, SMELTER, "B1", MAKER, mass_kg=15_000, child="B1-a")
    detail = refused(
        w,
        ConflictError,
        "statement.payload.mass_kg",
        transfer,
        SMELTER,
        SMELTER,
        "B1",
        BUYER,
        mass_kg=10_000,
        child="B1-b",
    )
    assert "9,000 kg available" in detail
    transfer(w, SMELTER, SMELTER, "B1", BUYER, mass_kg=9_000, child="B1-b")
    refused(w, ConflictError, "statement.payload.batch_id", transfer, SMELTER, SMELTER, "B1", BUYER)
    assert available(w, SMELTER, "B1") == 0


def test_a_stated_mass_without_a_child_lot_must_be_the_whole_lot(w: LedgerEnv) -> None:
    refused(
        w,
        InvalidError,
        "statement.payload.mass_kg",
        transfer,
        SMELTER,
        SMELTER,
        "B1",
        MAKER,
        mass_kg=1_000,
    )
    refused(
        w,
        ConflictError,
        "statement.payload.mass_kg",
        transfer,
        SMELTER,
        SMELTER,
        "B1",
        MAKER,
        mass_kg=30_000,
    )
    transfer(w, SMELTER, SMELTER, "B1", MAKER, mass_kg=24_000)
    assert holder(w, SMELTER, "B1") == MAKER


def test_a_child_lot_needs_a_mass(w: LedgerEnv) -> None:
    refused(
        w,
        MalformedError,
        "statement.payload.mass_kg",
        transfer,
        SMELTER,
        SMELTER,
        "B1",
        MAKER,
        child="B1-x",
    )


def test_only_the_holder_transfers(w: LedgerEnv) -> None:
    detail = refused(
        w, ForbiddenError, "statement.payload.batch_id", transfer, MAKER, SMELTER, "B1", MAKER
    )
    assert f"held by {SMELTER}" in detail
    refused(w, NotFoundError, "statement.payload.batch_id", transfer, SMELTER, SMELTER, "B9", MAKER)


def test_custody_goes_to_another_registered_smelter_or_manufacturer(w: LedgerEnv) -> None:
    refused(
        w,
        NotFoundError,
        "statement.payload.recipient_id",
        transfer,
        SMELTER,
        SMELTER,
        "B1",
        "nobody",
    )
    refused(
        w, InvalidError, "statement.payload.recipient_id", transfer, SMELTER, SMELTER, "B1", AUDITOR
    )
    refused(
        w, InvalidError, "statement.payload.recipient_id", transfer, SMELTER, SMELTER, "B1", SMELTER
    )
    transfer(w, SMELTER, SMELTER, "B1", RECYCLER)  # a smelter may buy metal too


def test_a_float_mass_is_refused_naming_the_field(w: LedgerEnv) -> None:
    payload = {"ns": SMELTER, "batch_id": "B1", "recipient_id": MAKER, "mass_kg": 10.0}
    with pytest.raises(MalformedError) as caught:
        w.append("custody.transfer", payload, w.participant_keys[SMELTER])
    assert caught.value.field == "statement.payload.mass_kg"


# -- pending transfers -------------------------------------------------------------------------
def policy(env: LedgerEnv, who: str, require: bool) -> None:
    env.append("custody.policy", {"require_acceptance": require}, env.participant_keys[who])


def accept(env: LedgerEnv, who: str, index: int) -> Any:
    return env.append("custody.accept", {"transfer_index": index}, env.participant_keys[who])


def cancel(env: LedgerEnv, who: str, index: int) -> Any:
    payload = {"transfer_index": index, "reason": "changed our mind"}
    return env.append("custody.cancel", payload, env.participant_keys[who])


def test_a_transfer_waits_for_acceptance_when_the_recipient_asks_for_it(w: LedgerEnv) -> None:
    policy(w, MAKER, True)
    sent = transfer(w, SMELTER, SMELTER, "B1", MAKER)
    row = lot(w, SMELTER, "B1")
    assert (row.holder_id, row.pending_to, row.pending_index) == (SMELTER, MAKER, sent.index)
    # neither side can use it meanwhile
    refused(w, ConflictError, "statement.payload.batch_id", transfer, SMELTER, SMELTER, "B1", BUYER)
    refused(
        w, ConflictError, "statement.payload.batch_id", split, SMELTER, SMELTER, "B1", a=1, b=23_999
    )
    refused(w, ForbiddenError, "statement.payload.batch_id", transfer, MAKER, SMELTER, "B1", BUYER)
    # only the named recipient accepts, once
    refused(w, ForbiddenError, "statement.signer", accept, BUYER, sent.index)
    accept(w, MAKER, sent.index)
    row = lot(w, SMELTER, "B1")
    assert (row.holder_id, row.pending_to, row.pending_index) == (MAKER, None, None)
    refused(w, ConflictError, "statement.payload.transfer_index", accept, MAKER, sent.index)
    transfer(w, MAKER, SMELTER, "B1", BUYER)  # now the recipient's own
    roles = [h["role"] for h in custody_view(w.ledger.engine, SMELTER, "B1")["history"]]
    assert roles == ["registered", "transferred", "accepted", "transferred"]


def test_a_pending_partial_transfer_takes_the_mass_from_the_parent_at_once(w: LedgerEnv) -> None:
    policy(w, MAKER, True)
    sent = transfer(w, SMELTER, SMELTER, "B1", MAKER, mass_kg=4_000, child="B1-M")
    assert available(w, SMELTER, "B1") == 20_000
    child = lot(w, SMELTER, "B1-M")
    assert (child.holder_id, child.pending_to) == (SMELTER, MAKER)
    view = custody_view(w.ledger.engine, SMELTER, "B1-M")
    assert view["pending_transfer"] == {
        "transfer_index": sent.index,
        "from_id": SMELTER,
        "to_id": MAKER,
        "mass_kg": 4_000,
    }
    accept(w, MAKER, sent.index)
    assert holder(w, SMELTER, "B1-M") == MAKER


def test_either_side_may_cancel_a_pending_transfer_and_the_lot_stays_with_the_sender(
    w: LedgerEnv,
) -> None:
    policy(w, MAKER, True)
    first = transfer(w, SMELTER, SMELTER, "B1", MAKER)
    refused(w, ForbiddenError, "statement.signer", cancel, BUYER, first.index)
    cancel(w, SMELTER, first.index)  # the sender withdraws
    row = lot(w, SMELTER, "B1")
    assert (row.holder_id, row.pending_to) == (SMELTER, None)
    refused(w, ConflictError, "statement.payload.transfer_index", accept, MAKER, first.index)
    second = transfer(w, SMELTER, SMELTER, "B1", MAKER, mass_kg=1_000, child="B1-M")
    cancel(w, MAKER, second.index)  # the recipient declines
    assert (holder(w, SMELTER, "B1-M"), available(w, SMELTER, "B1")) == (SMELTER, 23_000)
    split(w, SMELTER, SMELTER, "B1", c=3_000, d=20_000)  # usable again


def test_accepting_names_a_transfer_that_exists(w: LedgerEnv) -> None:
    refused(w, NotFoundError, "statement.payload.transfer_index", accept, MAKER, 1)
    done = transfer(w, SMELTER, SMELTER, "B1", MAKER)  # no policy: needs no acceptance
    detail = refused(
        w, ConflictError, "statement.payload.transfer_index", accept, MAKER, done.index
    )
    assert "needed no acceptance" in detail


def test_the_policy_in_force_is_the_latest(w: LedgerEnv) -> None:
    policy(w, MAKER, True)
    policy(w, MAKER, False)
    transfer(w, SMELTER, SMELTER, "B1", MAKER)
    assert holder(w, SMELTER, "B1") == MAKER


# -- splits ------------------------------------------------------------------------------------
def test_a_split_divides_the_available_mass_exactly(w: LedgerEnv) -> None:
    refused(
        w,
        InvalidError,
        "statement.payload.children",
        split,
        SMELTER,
        SMELTER,
        "B1",
        a=10_000,
        b=13_999,
    )
    refused(
        w,
        ConflictError,
        "statement.payload.children",
        split,
        SMELTER,
        SMELTER,
        "B1",
        a=10_000,
        b=14_001,
    )
    refused(
        w, MalformedError, "statement.payload.children", split, SMELTER, SMELTER, "B1", a=24_000
    )
    split(w, SMELTER, SMELTER, "B1", a=10_000, b=14_000)
    assert available(w, SMELTER, "B1") == 0
    assert [lot(w, SMELTER, c).available_kg for c in "ab"] == [10_000, 14_000]
    assert lot(w, SMELTER, "a").origin == "split"


def test_split_after_transfer_and_split_by_a_non_holder_are_refused(w: LedgerEnv) -> None:
    transfer(w, SMELTER, SMELTER, "B1", MAKER, mass_kg=4_000, child="B1-M")
    refused(
        w,
        ConflictError,
        "statement.payload.children",
        split,
        SMELTER,
        SMELTER,
        "B1",
        a=10_000,
        b=14_000,
    )
    refused(
        w,
        ForbiddenError,
        "statement.payload.batch_id",
        split,
        MAKER,
        SMELTER,
        "B1",
        a=10_000,
        b=10_000,
    )
    split(w, MAKER, SMELTER, "B1-M", m1=1_000, m2=3_000)
    assert holder(w, MAKER, "m1") == MAKER  # children live in the splitter's namespace


def test_an_id_is_used_once_per_namespace_batches_and_lots_alike(w: LedgerEnv) -> None:
    register_batch(w, SMELTER, "B2")
    detail = refused(
        w,
        ConflictError,
        "statement.payload.children[1].batch_id",
        split,
        SMELTER,
        SMELTER,
        "B1",
        a=1_000,
        B2=23_000,
    )
    assert "already a batch or lot" in detail
    split(w, SMELTER, SMELTER, "B1", a=1_000, b=23_000)
    refused(w, ConflictError, "statement.payload.batch_id", register_batch, SMELTER, "a")
    refused(
        w,
        MalformedError,
        "statement.payload.children[1].batch_id",
        split,
        SMELTER,
        SMELTER,
        "B2",
        c=1_000,
        **{"c ": 1},
    )


# -- transforms --------------------------------------------------------------------------------
@pytest.fixture
def held(w: LedgerEnv) -> LedgerEnv:
    """MAKER holds B1 (24,000 kg) and B2 (20,500 kg, recycled billet)."""
    register_batch(w, RECYCLER, "B2", template="GD-2025-0102")
    transfer(w, SMELTER, SMELTER, "B1", MAKER)
    transfer(w, RECYCLER, RECYCLER, "B2", MAKER)
    return w


def test_a_transform_consumes_inputs_and_makes_outputs(held: LedgerEnv) -> None:
    appended = transform(
        held,
        MAKER,
        [(SMELTER, "B1", 20_000), (RECYCLER, "B2", 5_000)],
        [("P1", 20_000), ("P2", 3_000)],
        external=[{"type": "post_consumer_scrap", "mass_kg": 1_000}],
    )
    assert available(held, SMELTER, "B1") == 4_000
    assert available(held, RECYCLER, "B2") == 15_500
    out = lot(held, MAKER, "P1")
    assert (out.holder_id, out.mass_kg, out.origin, out.input_kg) == (
        MAKER,
        20_000,
        "transform",
        26_000,
    )
    assert json.loads(out.derivation)["yield"] == "0.8846"  # 23,000 / 26,000
    assert lot(held, MAKER, "P2").footprint_kg_co2e_per_t == out.footprint_kg_co2e_per_t
    roles = [
        (h["record_index"], h["role"], h["mass_kg"])
        for h in custody_view(held.ledger.engine, SMELTER, "B1")["history"]
    ]
    assert roles[-1] == (appended.index, "consumed", 20_000)


def test_a_transform_cannot_use_more_than_is_available_or_use_a_lot_twice(
    held: LedgerEnv,
) -> None:
    refused(
        held,
        ConflictError,
        "statement.payload.inputs[1].mass_kg",
        transform,
        MAKER,
        [(RECYCLER, "B2", 1_000), (SMELTER, "B1", 24_001)],
        [("P1", 1_000)],
    )
    refused(
        held,
        InvalidError,
        "statement.payload.inputs[1]",
        transform,
        MAKER,
        [(SMELTER, "B1", 1_000), (SMELTER, "B1", 1_000)],
        [("P1", 1_000)],
    )
    transform(held, MAKER, [(SMELTER, "B1", 20_000)], [("P1", 19_000)])
    refused(
        held,
        ConflictError,
        "statement.payload.inputs[0].mass_kg",
        transform,
        MAKER,
        [(SMELTER, "B1", 20_000)],
        [("P2", 19_000)],
    )
    transform(held, MAKER, [(SMELTER, "B1", 4_000)], [("P2", 3_900)])
    assert available(held, SMELTER, "B1") == 0


def test_outputs_may_not_weigh_more_than_inputs(held: LedgerEnv) -> None:
    refused(
        held,
        InvalidError,
        "statement.payload.outputs",
        transform,
        MAKER,
        [(SMELTER, "B1", 1_000)],
        [("P1", 900), ("P2", 200)],
        external=[{"type": "pre_consumer_scrap", "mass_kg": 99}],
    )
    transform(
        held,
        MAKER,
        [(SMELTER, "B1", 1_000)],
        [("P1", 900), ("P2", 199)],
        external=[{"type": "pre_consumer_scrap", "mass_kg": 99}],
    )


def test_only_the_holder_transforms_and_only_smelters_and_manufacturers(held: LedgerEnv) -> None:
    register_batch(held, SMELTER, "B3")
    refused(
        held,
        ForbiddenError,
        "statement.payload.inputs[1].batch_id",
        transform,
        MAKER,
        [(SMELTER, "B1", 1_000), (SMELTER, "B3", 1_000)],
        [("P1", 2_000)],
    )
    refused(
        held,
        ForbiddenError,
        "statement.payload.inputs[0].batch_id",
        transform,
        BUYER,
        [(SMELTER, "B1", 1_000)],
        [("P1", 1_000)],
    )
    refused(
        held,
        ForbiddenError,
        "statement.signer",
        transform,
        AUDITOR,
        [(SMELTER, "B1", 1_000)],
        [("P1", 1_000)],
    )
    transform(held, SMELTER, [(SMELTER, "B3", 24_000)], [("B3-remelted", 23_500)])


def test_an_output_id_is_new_in_the_transformers_namespace(held: LedgerEnv) -> None:
    transform(held, MAKER, [(SMELTER, "B1", 1_000)], [("P1", 1_000)])
    refused(
        held,
        ConflictError,
        "statement.payload.outputs[0].batch_id",
        transform,
        MAKER,
        [(SMELTER, "B1", 1_000)],
        [("P1", 1_000)],
    )
    refused(
        held,
        InvalidError,
        "statement.payload.outputs[1].batch_id",
        transform,
        MAKER,
        [(SMELTER, "B1", 2_000)],
        [("P2", 1_000), ("P2", 1_000)],
    )


# -- bulk appends, history ---------------------------------------------------------------------
def test_statements_of_one_bulk_see_each_other_and_a_refusal_stores_nothing(w: LedgerEnv) -> None:
    keys = w.participant_keys
    hand = {"ns": SMELTER, "batch_id": "B1", "recipient_id": MAKER}
    cut = {
        "ns": SMELTER,
        "batch_id": "B1",
        "children": [{"batch_id": "x", "mass_kg": 12_000}, {"batch_id": "y", "mass_kg": 12_000}],
    }
    again = {
        "ns": MAKER,
        "batch_id": "x",
        "recipient_id": BUYER,
        "mass_kg": 12_001,
        "child_batch_id": "x2",
    }
    size = w.ledger.tree_size()
    bulk = [
        sign_statement("custody.transfer", hand, keys[SMELTER]),
        sign_statement("custody.split", cut, keys[MAKER]),
        sign_statement("custody.transfer", again, keys[MAKER]),
    ]
    with pytest.raises(ConflictError) as caught:
        w.ledger.append_many(bulk)
    assert caught.value.field == "statements[2].statement.payload.mass_kg"
    assert w.ledger.tree_size() == size
    assert holder(w, SMELTER, "B1") == SMELTER
    bulk[2] = sign_statement("custody.transfer", {**again, "mass_kg": 12_000}, keys[MAKER])
    w.ledger.append_many(bulk)
    assert holder(w, MAKER, "x2") == BUYER


def test_custody_history_lists_every_record_that_touched_a_lot(w: LedgerEnv) -> None:
    indexes = [transfer(w, SMELTER, SMELTER, "B1", MAKER, mass_kg=4_000, child="B1-M").index]
    indexes.append(split(w, SMELTER, SMELTER, "B1", a=10_000, b=10_000).index)
    indexes.append(transform(w, MAKER, [(SMELTER, "B1-M", 4_000)], [("P", 3_900)]).index)
    view = custody_view(w.ledger.engine, SMELTER, "B1")
    history = [(h["record_index"], h["kind"], h["role"], h["mass_kg"]) for h in view["history"]]
    registered = lot(w, SMELTER, "B1").created_index
    assert history == [
        (registered, "batch.register", "registered", 24_000),
        (indexes[0], "custody.transfer", "transferred_part", 4_000),
        (indexes[1], "custody.split", "split", 20_000),
    ]
    assert [c["child"]["batch_id"] for c in view["children"]] == ["B1-M", "a", "b"]
    child = custody_view(w.ledger.engine, SMELTER, "B1-M")
    assert [(h["record_index"], h["role"]) for h in child["history"]] == [
        (indexes[0], "created"),
        (indexes[2], "consumed"),
    ]
    assert child["parents"][0]["parent"] == {"ns": SMELTER, "batch_id": "B1"}
    with pytest.raises(NotFoundError) as caught:
        custody_view(w.ledger.engine, SMELTER, "nope")
    assert caught.value.field == "batch_id"


# -- revision 0004 -------------------------------------------------------------------------------
def lots_by_ref(env: LedgerEnv) -> dict[tuple[str, str], dict[str, Any]]:
    with read_session(env.ledger.engine) as session:
        rows = session.exec(select(LotRow)).all()
        return {
            (row.ns, row.lot_id): {k: v for k, v in row.model_dump().items() if k != "id"}
            for row in rows
        }


PROVENANCE = ("renewable_share", "electricity_kwh_per_t", "primary_share", "primary_green_share")
"""Lot columns revision 0007 backfills conservatively: they are not 0004's to restore."""


def test_revision_0004_makes_every_existing_batch_a_root_lot(env: LedgerEnv) -> None:
    world(env)
    register_batch(env, SMELTER, "B1", certified=True)
    register_batch(env, RECYCLER, "B2", template="GD-2025-0102")
    register_batch(env, SMELTER, "B3", activity_data=None)
    before = lots_by_ref(env)
    config = alembic_config()
    with env.ledger.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
        command.upgrade(config, "head")
    after = lots_by_ref(env)

    def without_provenance(lots: dict) -> dict:
        return {
            ref: {k: v for k, v in lot.items() if k not in PROVENANCE} for ref, lot in lots.items()
        }

    assert without_provenance(after) == without_provenance(before)
    # 0007 backfills each batch lot's kWh per tonne from its derived values (its own kWh)
    with read_session(env.ledger.engine) as session:
        for row in session.exec(select(BatchRow)).all():
            derived = json.loads(row.derived)["electricity_kwh_per_t"]
            assert after[(row.smelter_id, row.batch_id)]["electricity_kwh_per_t"] == derived
    history = custody_view(env.ledger.engine, SMELTER, "B3")["history"]
    assert [(h["role"], h["mass_kg"]) for h in history] == [("registered", 24_000)]
