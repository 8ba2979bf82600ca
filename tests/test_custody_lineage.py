"""Lineage on a hand-built graph: exact nodes and edges up and down, the share of the
product's metal from every root and external input (computed here by hand with
fractions), the claim summary, graded claims that never exceed the graded metal that
went in, and grades that stop counting when revoked.

The graph (S = SMELTER, R = RECYCLER, M = MAKER)::

    S/A 24,000 (graded) --transfer 12,000--> S/A1 --+
    R/B 20,500 (whole transfer to M) ---------------+-- remelt 8,000 of B,
    S/C 24,000 --split--> M/C1 10,000 --------------+   12,000 of A1, 10,000 of C1,
                      \\-> M/C2 14,000                   + 5,000 post-consumer scrap
                                                         = 35,000 in --> M/X 30,000, M/Y 4,000
    M/X 30,000 + 2,000 unregistered primary --extrude--> M/P 28,000
    M/P --transfer 10,000--> M/PB (held by BUYER)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import pytest

from ledger.custody.lineage import lineage
from ledger.errors import MalformedError, NotFoundError
from tests.conftest import LedgerEnv
from tests.custody_support import (
    BUYER,
    CENTRE,
    MAKER,
    RECYCLER,
    SMELTER,
    grade,
    lot,
    register_batch,
    split,
    transfer,
    transform,
    world,
)

RULESET = "common-low-carbon-aluminium"
GRADE = "low-carbon-aluminium"
KEY = (RULESET, GRADE)


@dataclass
class Graph:
    env: LedgerEnv
    index: dict[str, int]


def build(env: LedgerEnv) -> Graph:
    world(env)
    index = {}
    register_batch(env, SMELTER, "A", certified=True)
    register_batch(env, RECYCLER, "B", template="GD-2025-0102")
    register_batch(env, SMELTER, "C", template="YN-2025-0002")
    index["grade"] = grade(env, SMELTER, "A", RULESET, GRADE).index
    index["A1"] = transfer(env, SMELTER, SMELTER, "A", MAKER, mass_kg=12_000, child="A1").index
    transfer(env, RECYCLER, RECYCLER, "B", MAKER)
    transfer(env, SMELTER, SMELTER, "C", MAKER)
    index["split"] = split(env, MAKER, SMELTER, "C", C1=10_000, C2=14_000).index
    index["remelt"] = transform(
        env,
        MAKER,
        [(SMELTER, "A1", 12_000), (RECYCLER, "B", 8_000), (MAKER, "C1", 10_000)],
        [("X", 30_000), ("Y", 4_000)],
        external=[{"type": "post_consumer_scrap", "mass_kg": 5_000}],
    ).index
    index["extrude"] = transform(
        env,
        MAKER,
        [(MAKER, "X", 30_000)],
        [("P", 28_000)],
        external=[{"type": "primary_unregistered", "mass_kg": 2_000}],
        operation="extrude",
        product_form="profile",
    ).index
    index["PB"] = transfer(env, MAKER, MAKER, "P", BUYER, mass_kg=10_000, child="PB").index
    return Graph(env, index)


@pytest.fixture
def graph(env: LedgerEnv) -> Graph:
    return build(env)


def four(value: Fraction) -> str:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return str(exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


def kg_down(value: Fraction) -> int:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return int(exact.to_integral_value(rounding=ROUND_DOWN))


def refs(items: list[dict]) -> set[str]:
    return {f"{item['ns']}/{item['batch_id']}" for item in items}


def edge_set(edges: list[dict]) -> set[tuple]:
    return {
        (
            f"{e['parent']['ns']}/{e['parent']['batch_id']}",
            f"{e['child']['ns']}/{e['child']['batch_id']}",
            e["mass_kg"],
            e["operation"],
            e["record_index"],
        )
        for e in edges
    }


def test_lineage_up_has_exactly_the_ancestors_and_their_edges(graph: Graph) -> None:
    up = lineage(graph.env.ledger.engine, MAKER, "PB")
    i = graph.index
    assert refs(up["nodes"]) == {
        "maker/PB",
        "maker/P",
        "maker/X",
        "yn-smelter/A1",
        "gd-recycler/B",
        "maker/C1",
        "yn-smelter/A",
        "yn-smelter/C",
    }
    depths = {f"{n['ns']}/{n['batch_id']}": n["depth"] for n in up["nodes"]}
    assert depths == {
        "maker/PB": 0,
        "maker/P": 1,
        "maker/X": 2,
        "yn-smelter/A1": 3,
        "gd-recycler/B": 3,
        "maker/C1": 3,
        "yn-smelter/A": 4,
        "yn-smelter/C": 4,
    }
    assert edge_set(up["edges"]) == {
        ("maker/P", "maker/PB", 10_000, "transfer", i["PB"]),
        ("maker/X", "maker/P", 30_000, "extrude", i["extrude"]),
        ("yn-smelter/A1", "maker/X", 12_000, "remelt", i["remelt"]),
        ("gd-recycler/B", "maker/X", 8_000, "remelt", i["remelt"]),
        ("maker/C1", "maker/X", 10_000, "remelt", i["remelt"]),
        ("yn-smelter/A", "yn-smelter/A1", 12_000, "transfer", i["A1"]),
        ("yn-smelter/C", "maker/C1", 10_000, "split", i["split"]),
    }
    fractions = {
        (e["parent"]["batch_id"], e["child"]["batch_id"]): e["fraction"] for e in up["edges"]
    }
    assert fractions[("X", "P")] == four(Fraction(30_000, 32_000)) == "0.9375"
    assert fractions[("A1", "X")] == four(Fraction(12_000, 35_000)) == "0.3429"
    assert fractions[("C", "C1")] == "1.0000"
    nodes = {n["batch_id"]: n for n in up["nodes"]}
    assert (nodes["PB"]["holder_id"], nodes["PB"]["mass_kg"], nodes["P"]["available_kg"]) == (
        BUYER,
        10_000,
        18_000,
    )
    assert nodes["X"]["available_kg"] == 0 and nodes["A"]["available_kg"] == 12_000
    assert [g["grade"] for g in nodes["A"]["grades"]] == [GRADE]
    assert nodes["B"]["grades"] == [] and nodes["P"]["grades"] == []
    assert nodes["P"]["product_form"] == "profile"
    assert up["truncated"] is False


def test_the_claim_summary_follows_the_metal_by_hand(graph: Graph) -> None:
    env = graph.env
    summary = lineage(env.ledger.engine, MAKER, "PB")["claim_summary"]
    # shares of PB's metal, multiplied along the paths
    from_x = Fraction(30_000, 32_000)
    a = from_x * Fraction(12_000, 35_000)
    b = from_x * Fraction(8_000, 35_000)
    c = from_x * Fraction(10_000, 35_000)
    scrap = from_x * Fraction(5_000, 35_000)
    primary = Fraction(2_000, 32_000)
    assert (a, b, c, scrap, primary) == tuple(
        Fraction(n, 112) for n in (36, 24, 30, 15, 7)
    )  # and they add up to 1
    assert summary["metal"] == {
        "registered_batches": four(a + b + c),
        "pre_consumer_scrap": "0.0000",
        "post_consumer_scrap": four(scrap),
        "primary_unregistered": "0.0625",
    }
    assert summary["graded"] == [
        {
            "ruleset_id": RULESET,
            "ruleset_version": "2.0.0",
            "grade": GRADE,
            "share": four(a),
            "graded_kg": kg_down(a * 10_000),
        }
    ]
    assert summary["graded"][0]["graded_kg"] == 3_214
    root = {
        name: lot(env, ns, name) for ns, name in ((SMELTER, "A"), (RECYCLER, "B"), (SMELTER, "C"))
    }
    pre = c * Fraction(root["C"].recycled_pre_share)
    post = b * Fraction(root["B"].recycled_post_share) + scrap
    assert summary["recycled_content"] == {
        "pre_consumer": four(pre),
        "post_consumer": four(post),
        "total": four(pre + post),
    }
    # certified electricity weighted by kWh: each root's metal brings the kWh behind it, the
    # unregistered primary metal 13.5 kWh/kg (the table's default, uncertified)
    shares = {"A": a, "B": b, "C": c}
    behind = {n: shares[n] * Fraction(root[n].electricity_kwh_per_t) for n in shares}
    kwh = sum(behind.values()) + primary * 13_500
    certified = sum(behind[n] * Fraction(root[n].renewable_share) for n in shares)
    assert summary["renewable_electricity_share"] == four(certified / kwh)
    assert summary["renewable_electricity_share"] != four(a * Fraction(root["A"].renewable_share))
    assert summary["smelters"] == [
        {"smelter_id": SMELTER, "share": four(a + c), "kg": kg_down((a + c) * 10_000)},
        {"smelter_id": RECYCLER, "share": four(b), "kg": kg_down(b * 10_000)},
    ]
    assert [(r["batch_id"], r["share"]) for r in summary["root_batches"]] == [
        ("A", four(a)),
        ("C", four(c)),
        ("B", four(b)),
    ]
    assert summary["footprint"] == {
        "kg_co2e_per_t": lot(env, MAKER, "PB").footprint_kg_co2e_per_t,
        "basis": "derived",
    }
    # the stored recycled content of the product agrees with the walk
    product = lot(env, MAKER, "PB")
    assert four(Fraction(product.recycled_post_share)) == four(post)


def test_no_lot_claims_more_graded_metal_than_went_in(graph: Graph) -> None:
    engine = graph.env.ledger.engine

    def graded_kg(ns: str, batch_id: str) -> int:
        claims = lineage(engine, ns, batch_id)["claim_summary"]["graded"]
        return sum(c["graded_kg"] for c in claims if (c["ruleset_id"], c["grade"]) == KEY)

    # the remelt consumed 12,000 graded kg (A1); its outputs claim no more
    x_share, y_share = Fraction(12_000, 35_000), Fraction(12_000, 35_000)
    assert graded_kg(MAKER, "Y") == kg_down(y_share * 4_000) == 1_371
    assert graded_kg(MAKER, "X") == 0  # consumed whole by the extrusion: it claims nothing now
    assert kg_down(x_share * 30_000) + 1_371 <= 12_000
    # every lot that still holds metal, together, claims at most the graded batch's mass
    holding = [(SMELTER, "A"), (MAKER, "Y"), (MAKER, "P"), (MAKER, "PB"), (SMELTER, "A1")]
    assert sum(graded_kg(ns, lot_id) for ns, lot_id in holding) <= 24_000
    assert graded_kg(SMELTER, "A") == 12_000  # what the smelter kept
    assert graded_kg(MAKER, "P") + graded_kg(MAKER, "PB") <= kg_down(x_share * 30_000)


def test_a_revoked_grade_stops_counting_downstream(graph: Graph) -> None:
    env = graph.env
    payload = {"grade_record_index": graph.index["grade"], "reason": "data error"}
    env.append("grade.revoke", payload, env.participant_keys[CENTRE])
    up = lineage(env.ledger.engine, MAKER, "PB")
    assert up["claim_summary"]["graded"] == []
    assert {n["batch_id"]: n["grades"] for n in up["nodes"]}["A"] == []
    # an expired grade does not count either
    assert (
        lineage(env.ledger.engine, MAKER, "PB", today="2099-01-01")["claim_summary"]["graded"] == []
    )


def test_depth_limits_what_is_shown_never_what_is_counted(graph: Graph) -> None:
    engine = graph.env.ledger.engine
    full = lineage(engine, MAKER, "PB")
    short = lineage(engine, MAKER, "PB", depth=2)
    assert refs(short["nodes"]) == {"maker/PB", "maker/P", "maker/X"}
    assert {(e["parent"]["batch_id"], e["child"]["batch_id"]) for e in short["edges"]} == {
        ("P", "PB"),
        ("X", "P"),
    }
    assert short["truncated"] is True
    assert short["claim_summary"] == full["claim_summary"]


def test_lineage_down_follows_the_metal_to_the_products(graph: Graph) -> None:
    engine = graph.env.ledger.engine
    down = lineage(engine, SMELTER, "A", direction="down")
    assert refs(down["nodes"]) == {
        "yn-smelter/A",
        "yn-smelter/A1",
        "maker/X",
        "maker/Y",
        "maker/P",
        "maker/PB",
    }
    assert {
        (e["parent"]["batch_id"], e["child"]["batch_id"], e["operation"]) for e in down["edges"]
    } == {
        ("A", "A1", "transfer"),
        ("A1", "X", "remelt"),
        ("A1", "Y", "remelt"),
        ("X", "P", "extrude"),
        ("P", "PB", "transfer"),
    }
    assert "claim_summary" not in down
    one = lineage(engine, SMELTER, "A", direction="down", depth=1)
    assert refs(one["nodes"]) == {"yn-smelter/A", "yn-smelter/A1"}
    assert len(one["edges"]) == 1
    # C went through its split children; C2 was never used
    split_down = lineage(engine, SMELTER, "C", direction="down")
    assert refs(split_down["nodes"]) == {
        "yn-smelter/C",
        "maker/C1",
        "maker/C2",
        "maker/X",
        "maker/Y",
        "maker/P",
        "maker/PB",
    }


@pytest.mark.parametrize(
    ("direction", "depth", "field"),
    [
        ("sideways", 10, "direction"),
        ("up", 0, "depth"),
        ("up", 51, "depth"),
        ("down", True, "depth"),
    ],
)
def test_lineage_parameters_are_checked_by_name(
    sqlite_env: LedgerEnv, direction: str, depth: int, field: str
) -> None:
    world(sqlite_env)
    register_batch(sqlite_env, SMELTER, "A")
    with pytest.raises(MalformedError) as caught:
        lineage(sqlite_env.ledger.engine, SMELTER, "A", direction, depth)
    assert caught.value.field == field
    with pytest.raises(NotFoundError) as missing:
        lineage(sqlite_env.ledger.engine, SMELTER, "nope")
    assert missing.value.field == "batch_id"
