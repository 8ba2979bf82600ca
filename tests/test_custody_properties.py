"""Conservation of mass over random sequences of transfers, splits and transforms.

Hypothesis drives a state machine that signs random custody statements, as random
participants, for random masses: many are refused (not the holder, more than is
available, a split that does not add up, outputs heavier than inputs). A simple model
predicts which error each one must get, and after every step the ledger must agree with
the model on every lot's holder and available mass, and, from the ledger's own tables:

* every lot's mass = its available mass + what operations took from it (no kilogram is
  used twice, none appears from nowhere);
* all available metal = registered batches + external inputs - transform losses;
* no lot's claim on a registered batch, summed over all lots, exceeds that batch's mass.

SQLite only: each example appends dozens of statements and Hypothesis runs 30 of them.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlmodel import select

from ledger.custody.lineage import lineage
from ledger.errors import ConflictError, ForbiddenError, InvalidError, LedgerError
from ledger.storage.db import read_session
from ledger.storage.tables import LotEdgeRow, LotRow
from tests.conftest import LedgerEnv
from tests.custody_support import (
    BUYER,
    MAKER,
    RECYCLER,
    SMELTER,
    register_batch,
    split,
    transfer,
    transform,
    world,
)

PEOPLE = (SMELTER, RECYCLER, MAKER, BUYER)
names = itertools.count()


@dataclass
class Lot:
    ns: str
    lot_id: str
    holder: str
    mass: int
    available: int


def outcome(call: object, *args: object, **kw: object) -> type | None:
    """The class of the LedgerError the call raised, or None if it was appended."""
    try:
        call(*args, **kw)  # type: ignore[operator]
    except LedgerError as error:
        return type(error)
    return None


class Custody(RuleBasedStateMachine):
    env: LedgerEnv  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.run = f"r{next(names)}"
        self.lots: dict[tuple[str, str], Lot] = {}
        self.roots: dict[tuple[str, str], int] = {}
        self.external = 0
        self.losses = 0
        for smelter, template in ((SMELTER, "YN-2025-0001"), (RECYCLER, "GD-2025-0102")):
            lot_id = self.new_id()
            register_batch(self.env, smelter, lot_id, template=template)
            mass = 24_000 if smelter == SMELTER else 20_500
            self.lots[(smelter, lot_id)] = Lot(smelter, lot_id, smelter, mass, mass)
            self.roots[(smelter, lot_id)] = mass

    def new_id(self) -> str:
        return f"{self.run}-{next(names)}"

    def add(self, ns: str, holder: str, mass: int) -> str:
        lot_id = self.new_id()
        self.lots[(ns, lot_id)] = Lot(ns, lot_id, holder, mass, mass)
        return lot_id

    # -- operations ------------------------------------------------------------------
    @rule(data=st.data())
    def hand_over(self, data: st.DataObject) -> None:
        lot = data.draw(st.sampled_from(list(self.lots.values())))
        signer = data.draw(st.sampled_from((lot.holder, lot.holder, *PEOPLE)))
        to = data.draw(st.sampled_from(PEOPLE))
        partial = data.draw(st.booleans())
        mass = data.draw(st.integers(1, lot.available + 100)) if partial else None
        child = f"{self.run}-c{next(names)}" if partial else None
        if signer != lot.holder:
            expected: type | None = ForbiddenError
        elif to == signer:
            expected = InvalidError
        elif (mass or lot.available) > lot.available or lot.available == 0:
            expected = ConflictError
        else:
            expected = None
        got = outcome(transfer, self.env, signer, lot.ns, lot.lot_id, to, mass, child)
        assert got is expected, (lot, signer, to, mass)
        if expected is None and mass is not None and child is not None:
            lot.available -= mass
            self.lots[(signer, child)] = Lot(signer, child, to, mass, mass)
        elif expected is None:
            lot.holder = to

    @rule(data=st.data())
    def cut(self, data: st.DataObject) -> None:
        lot = data.draw(st.sampled_from(list(self.lots.values())))
        signer = data.draw(st.sampled_from((lot.holder, lot.holder, *PEOPLE)))
        count = data.draw(st.integers(2, 3))
        if lot.available >= count and data.draw(st.booleans()):
            cuts = data.draw(
                st.lists(
                    st.integers(1, lot.available - 1),
                    min_size=count - 1,
                    max_size=count - 1,
                    unique=True,
                )
            )
            bounds = [0, *sorted(cuts), lot.available]
            masses = [high - low for low, high in itertools.pairwise(bounds)]
        else:
            masses = data.draw(st.lists(st.integers(1, 30_000), min_size=count, max_size=count))
        children = {f"{self.run}-s{next(names)}": kg for kg in masses}
        total = sum(masses)
        if signer != lot.holder:
            expected: type | None = ForbiddenError
        elif total > lot.available:
            expected = ConflictError
        elif total < lot.available:
            expected = InvalidError
        else:
            expected = None
        got = outcome(split, self.env, signer, lot.ns, lot.lot_id, **children)
        assert got is expected, (lot, signer, masses)
        if expected is None:
            lot.available = 0
            for child, kg in children.items():
                self.lots[(signer, child)] = Lot(signer, child, signer, kg, kg)

    @rule(data=st.data())
    def remelt(self, data: st.DataObject) -> None:
        holders = [lot.holder for lot in self.lots.values() if lot.available]
        signer = data.draw(st.sampled_from(holders + list(PEOPLE)))
        mine = [lot for lot in self.lots.values() if lot.holder == signer and lot.available]
        others = [lot for lot in self.lots.values() if lot.holder != signer]
        pool = mine + data.draw(st.lists(st.sampled_from(others), max_size=1)) if others else mine
        if not pool:
            return
        chosen = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique_by=id))
        used = [data.draw(st.integers(1, max(1, lot.available) + 50)) for lot in chosen]
        external = data.draw(st.integers(0, 3_000))
        input_kg = sum(used) + external
        output_kg = data.draw(st.integers(1, input_kg + 50))
        shares = data.draw(st.integers(1, 2)) if output_kg > 1 else 1
        outputs = [output_kg // shares] * (shares - 1)
        outputs.append(output_kg - sum(outputs))
        expected: type | None = None
        if output_kg > input_kg:
            expected = InvalidError
        else:
            for lot, kg in zip(chosen, used, strict=True):
                if lot.holder != signer:
                    expected = ForbiddenError
                    break
                if kg > lot.available:
                    expected = ConflictError
                    break
        names_out = [f"{self.run}-t{next(names)}" for _ in outputs]
        scrap = [{"type": "post_consumer_scrap", "mass_kg": external}] if external else None
        got = outcome(
            transform,
            self.env,
            signer,
            [(lot.ns, lot.lot_id, kg) for lot, kg in zip(chosen, used, strict=True)],
            list(zip(names_out, outputs, strict=True)),
            external=scrap,
        )
        assert got is expected, (signer, chosen, used, external, outputs)
        if expected is None:
            for lot, kg in zip(chosen, used, strict=True):
                lot.available -= kg
            for name, kg in zip(names_out, outputs, strict=True):
                self.lots[(signer, name)] = Lot(signer, name, signer, kg, kg)
            self.external += external
            self.losses += input_kg - output_kg

    # -- invariants ------------------------------------------------------------------
    def stored(self) -> tuple[dict[tuple[str, str], LotRow], dict[int, int]]:
        """This run's lots, and per lot id what operations took from it."""
        with read_session(self.env.ledger.engine) as session:
            rows = session.exec(select(LotRow).where(LotRow.lot_id.startswith(self.run))).all()
            ids = [row.id for row in rows]
            edges = session.exec(select(LotEdgeRow).where(LotEdgeRow.parent.in_(ids))).all()
        taken: dict[int, dict[tuple[int, int], int]] = defaultdict(dict)
        for edge in edges:
            # a split's edges are its children; a transform's edge repeats on every output
            key = (edge.record_index, edge.child if edge.operation == "split" else 0)
            taken[edge.parent][key] = edge.mass_kg
        return (
            {(row.ns, row.lot_id): row for row in rows},
            {lot: sum(by_record.values()) for lot, by_record in taken.items()},
        )

    @invariant()
    def the_ledger_agrees_with_the_model_and_conserves_mass(self) -> None:
        rows, taken = self.stored()
        assert set(rows) == set(self.lots)
        for key, lot in self.lots.items():
            row = rows[key]
            assert (row.holder_id, row.available_kg, row.mass_kg) == (
                lot.holder,
                lot.available,
                lot.mass,
            ), key
            assert row.mass_kg == row.available_kg + taken.get(row.id, 0), key
        available = sum(row.available_kg for row in rows.values())
        assert available == sum(self.roots.values()) + self.external - self.losses

    def teardown(self) -> None:
        """No registered batch is claimed for more than it weighs, summed over all lots."""
        claimed: dict[tuple[str, str], int] = defaultdict(int)
        for ns, lot_id in self.lots:
            summary = lineage(self.env.ledger.engine, ns, lot_id)["claim_summary"]
            for root in summary["root_batches"]:
                claimed[(root["smelter_id"], root["batch_id"])] += root["kg"]
        for root, mass in self.roots.items():
            assert claimed[root] <= mass, (root, claimed[root], mass)


@pytest.mark.slow
def test_random_custody_operations_conserve_mass(sqlite_env: LedgerEnv) -> None:
    world(sqlite_env)
    Custody.env = sqlite_env
    run_state_machine_as_test(
        Custody,
        settings=settings(
            max_examples=30,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        ),
    )
