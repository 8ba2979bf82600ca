"""What a transform's outputs inherit: footprint (mass-weighted inputs plus process
emissions, with a breakdown), recycled content and renewable share; the worked example of
docs/custody.md, number for number."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import pytest

from ledger.batches.payload import LotValues
from ledger.custody.derive import InputLot, derive_transform
from ledger.custody.payloads import LotRef, parse_transform
from ledger.errors import InvalidError, MalformedError
from ledger.footprint import load_factor_tables
from tests.conftest import LedgerEnv
from tests.custody_support import (
    MAKER,
    RECYCLER,
    SMELTER,
    lot,
    register_batch,
    transfer,
    transform,
    transform_payload,
    world,
)

TABLES = load_factor_tables("2025.1")


def kg(value: Fraction) -> int:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def close(stored: str, expected: Fraction) -> bool:
    """A stored exact share equals the hand-computed fraction to Decimal's 28 digits."""
    return abs(Fraction(stored) - expected) < Fraction(1, 10**20)


def share(value: Fraction) -> str:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return str(exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


def test_the_worked_example_of_docs_custody_md() -> None:
    payload = transform_payload(
        [("yn-hydro", "YN-A", 12_000), ("gd-recycling", "GD-B", 10_000)],
        [("BIL-1", 14_000), ("BIL-2", 14_000)],
        external=[
            {"type": "post_consumer_scrap", "mass_kg": 6_000},
            {"type": "primary_unregistered", "mass_kg": 2_000},
        ],
        process={
            "electricity": [{"type": "grid", "kwh": 9_000, "grid_region": "CN-GD"}],
            "fuels": [{"fuel": "natural_gas", "amount": "2400", "unit": "Nm3"}],
        },
    )
    zero = Decimal(0)
    hydro = LotValues(2_100, Decimal(13_600), Decimal("0.95"), Decimal(1), Decimal("0.95"))
    recycled = LotValues(600, Decimal(200), zero, Decimal("0.0732"), zero)
    lots = [
        InputLot(LotRef("yn-hydro", "YN-A"), 12_000, "computed", zero, zero, hydro),
        InputLot(
            LotRef("gd-recycling", "GD-B"), 10_000, "computed", zero, Decimal("0.9268"), recycled
        ),
    ]

    derived = derive_transform(parse_transform(payload), lots, TABLES, 2025).to_dict()

    footprint = derived["footprint"]
    assert [
        (item["item"], item["kg_co2e"], item["kg_co2e_per_t"]) for item in footprint["breakdown"]
    ] == [
        ("input", 25_200, 900),
        ("input", 6_000, 214),
        ("external", 0, 0),
        ("external", 33_000, 1_179),
        ("electricity", 5_486, 196),
        ("fuel", 5_196, 186),
    ]
    assert footprint["kg_co2e_per_t"] == 2_674
    assert footprint["breakdown"][3]["input_kg_co2e_per_t"] == 16_500
    assert footprint["breakdown"][3]["basis"].startswith("default: factor table 2025.1")
    # process electricity carries no certificate: market-based, the 2023 residual factor
    assert footprint["breakdown"][4]["kg_co2_per_kwh"] == "0.6096"
    # the same by hand, exactly
    total = (
        Fraction(12) * 2_100
        + Fraction(10) * 600
        + Fraction(2) * 16_500
        + 9_000 * Fraction("0.6096")
        + 2_400 * Fraction("0.038931") * Fraction("55.61")
    )
    assert total == Fraction("74882.286984")
    assert kg(total / 28) == 2_674
    assert (derived["input_kg"], derived["output_kg"], derived["yield"]) == (
        30_000,
        28_000,
        "0.9333",
    )
    assert derived["recycled_content"] == {
        "pre_consumer": "0.0000",
        "post_consumer": share((10_000 * Fraction("0.9268") + 6_000) / 30_000),
        "total": "0.5089",
    }
    assert derived["recycled_content"]["post_consumer"] == "0.5089"
    # renewable share weighted by kWh: 12 t x 13,600 kWh/t (95 % certified), 10 t x 200,
    # 2 t of unregistered primary x 13,500 (default, uncertified), 9,000 process kWh
    kwh = 12 * 13_600 + 10 * 200 + 2 * 13_500 + 9_000
    assert kwh == 201_200
    assert derived["renewable_share"] == share(Fraction(12 * 13_600) * Fraction("0.95") / kwh)
    assert derived["renewable_share"] == "0.7706"
    assert derived["electricity_kwh_per_t"] == share(Fraction(kwh, 28))  # per t of output
    # green-power share of the primary metal: 12 t at 0.95, 0.732 t (GD-B) and 2 t at 0
    assert derived["green_power_share_primary"] == share(Fraction("11.4") / Fraction("14.732"))
    assert derived["green_power_share_primary"] == "0.7738"


def test_renewable_share_is_weighted_by_kwh_not_by_mass() -> None:
    """Issue 11: a 50/50 mix of a scrap lot (100 % certified over 200 kWh/t) and a coal-grid
    lot (0 % over 14,000 kWh/t) is 100 / 7,100 = 0.014 certified, not 0.50.

    By hand: 5 t x 200 kWh/t = 1,000 certified kWh; 5 t x 14,000 = 70,000 uncertified;
    1,000 / 71,000 = 0.01408 -> 0.0141 (the mass-weighted answer would be 0.5000)."""
    scrap = LotValues(500, Decimal(200), Decimal(1), Decimal(0), Decimal(0))
    coal = LotValues(16_000, Decimal(14_000), Decimal(0), Decimal(1), Decimal(0))
    payload = transform_payload(
        [("gd", "SCRAP", 5_000), ("nm", "COAL", 5_000)],
        [("MIX", 10_000)],
        process={"electricity": []},
    )
    zero = Decimal(0)
    lots = [
        InputLot(LotRef("gd", "SCRAP"), 5_000, "computed", zero, Decimal(1), scrap),
        InputLot(LotRef("nm", "COAL"), 5_000, "computed", zero, zero, coal),
    ]
    derived = derive_transform(parse_transform(payload), lots, TABLES, 2025).to_dict()
    assert derived["renewable_share"] == "0.0141"
    assert Decimal(derived["renewable_share"]).quantize(Decimal("0.001")) == Decimal("0.014")


def test_outputs_of_a_ledger_transform_derive_from_the_lots_they_consume(env: LedgerEnv) -> None:
    world(env)
    register_batch(env, SMELTER, "B1", certified=True)
    register_batch(env, RECYCLER, "B2", template="GD-2025-0102")
    register_batch(env, SMELTER, "B3", activity_data=None)  # declared footprint only
    for owner, batch in ((SMELTER, "B1"), (RECYCLER, "B2"), (SMELTER, "B3")):
        transfer(env, owner, owner, batch, MAKER)
    inputs = [(SMELTER, "B1", 10_000), (RECYCLER, "B2", 8_000), (SMELTER, "B3", 2_000)]
    transform(
        env,
        MAKER,
        inputs,
        [("P1", 12_000), ("P2", 11_500)],
        external=[
            {"type": "pre_consumer_scrap", "mass_kg": 3_000},
            {"type": "primary_unregistered", "mass_kg": 1_000, "kg_co2e_per_t": 8_000},
        ],
        process={
            "electricity": [
                {"type": "hydro", "kwh": 1_000},
                {"type": "captive_coal", "kwh": 2_000},
            ],
            "direct_emissions_kg_co2e": 150,
        },
    )

    rows = [lot(env, ns, batch) for ns, batch, _ in inputs]
    masses = [mass for _, _, mass in inputs]

    def weighted(values: list) -> Fraction:
        return sum(
            (m * Fraction(value) for m, value in zip(masses, values, strict=True)), Fraction(0)
        )

    total = weighted([row.footprint_kg_co2e_per_t for row in rows]) / 1000
    # 1 t primary, the process electricity market-based (no certificate: hydro at the 2023
    # residual 0.6096, captive coal at the fossil-only 0.8273, the higher), direct
    total += 8_000 + 1_000 * Fraction("0.6096") + 2_000 * Fraction("0.8273") + 150
    # kWh behind the inputs: the lots' own, 1 t of unregistered primary at 13.5 kWh/kg,
    # and the 3,000 process kWh; certified only what the lots' shares certify
    lot_kwh = [
        m * Fraction(r.electricity_kwh_per_t) / 1000 for m, r in zip(masses, rows, strict=True)
    ]
    kwh = sum(lot_kwh) + 1_000 * Fraction("13.5") + 3_000
    certified = sum(k * Fraction(r.renewable_share) for k, r in zip(lot_kwh, rows, strict=True))
    for name in ("P1", "P2"):
        out = lot(env, MAKER, name)
        assert out.footprint_kg_co2e_per_t == kg(total / Fraction(23_500, 1000))
        pre = (weighted([r.recycled_pre_share for r in rows]) + 3_000) / 24_000
        assert close(out.recycled_pre_share, pre)
        assert close(
            out.recycled_post_share, weighted([r.recycled_post_share for r in rows]) / 24_000
        )
        assert close(out.renewable_share, certified / kwh)
        assert close(out.electricity_kwh_per_t, kwh * 1000 / 23_500)
    breakdown = json.loads(lot(env, MAKER, "P1").derivation)["footprint"]["breakdown"]
    assert [item.get("basis") for item in breakdown[:5]] == [
        "computed",
        "computed",
        "declared",
        "default: factor table 2025.1 upstream.scrap_kg_co2e_per_kg",
        "declared",
    ]
    assert [item["item"] for item in breakdown[5:]] == [
        "electricity",
        "electricity",
        "direct_emissions",
    ]
    assert breakdown[5]["kg_co2e"] == 610  # 1,000 uncertified hydro kWh x 0.6096


@pytest.mark.parametrize(
    ("process", "error", "field"),
    [
        ({"electricity": [{"type": "grid", "kwh": 1}]}, InvalidError, "electricity[0].grid_region"),
        (
            {"electricity": [{"type": "grid", "kwh": 1, "grid_region": "XX-NOWHERE"}]},
            InvalidError,
            "electricity[0].grid_region",
        ),
        (
            {"electricity": [], "fuels": [{"fuel": "diesel", "amount": "5", "unit": "Nm3"}]},
            InvalidError,
            "fuels[0].unit",
        ),
        (
            {"electricity": [], "fuels": [{"fuel": "diesel", "amount": 5.5, "unit": "kg"}]},
            MalformedError,
            "fuels[0].amount",
        ),
        (
            {
                "electricity": [
                    {
                        "type": "grid",
                        "kwh": 1,
                        "grid_region": "CN-GD",
                        "certificate": {"scheme": "GEC"},
                    }
                ]
            },
            MalformedError,
            "electricity[0].certificate",
        ),
    ],
)
def test_process_data_the_factor_tables_cannot_price_is_refused(
    sqlite_env: LedgerEnv, process: dict, error: type, field: str
) -> None:
    world(sqlite_env)
    register_batch(sqlite_env, SMELTER, "B1")
    with pytest.raises(error) as caught:
        transform(sqlite_env, SMELTER, [(SMELTER, "B1", 1_000)], [("P", 1_000)], process=process)
    assert caught.value.field == f"statement.payload.process.{field}"
