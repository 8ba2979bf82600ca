"""Green claims rest on proof (issue 11): the six wrong results the accounting used to
certify, each now refused or failed naming why, and the worked examples of
docs/footprint.md recomputed by hand.

Factors (schemas/factors/2025.1.json): residual (national average excluding market-traded
non-fossil power) 0.5856 kg/kWh for 2022, 0.6096 for 2023; national average 0.5366 (2022);
Yunnan 0.1073 (2022); fossil-only 0.8325 (2022); purchased primary 16.5 kg CO2e/kg;
electrolysis behind unregistered primary metal 13.5 kWh/kg.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.batches.payload import parse_registration
from ledger.batches.reads import get_batch, recompute_footprint
from ledger.errors import InvalidError
from ledger.footprint import compute_footprint
from ledger.grading import load_shipped_rulesets
from ledger.grading.reads import preview_evaluation
from ledger.tokens import issue_token
from ledger.visibility import operator_viewer
from tests.conftest import LedgerEnv
from tests.grading_support import grant

OPERATOR = operator_viewer("operator")
YN_PROJECT = "11012019061553087"
CENTRE = "green-eval"
SMELTER = "yn-smelter"
CASTHOUSE = "gd-casthouse"
DECLARED = {
    "kg_co2e_per_t": 4200,
    "boundary": "cradle_to_gate",
    "method_standard": "GB/T 44905-2024",
    "gwp_set": "AR6",
    "recycled_content_method": "cut_off",
}
METER = "5e" * 32


def gec(month: str, sequence: int) -> str:
    return f"{YN_PROJECT}{month}{sequence:07d}11"


def yunnan_2022() -> dict[str, Any]:
    """The worked example of docs/footprint.md: 10 t cast from 10.1 t of own metal in
    March 2022; 130 MWh of metered direct-line hydro backed by GECs of 2022-02, and 5 MWh
    of Yunnan grid power."""
    return {
        "batch_id": "YN-EX-2022",
        "smelter_id": SMELTER,
        "product_form": "remelt_ingot",
        "alloy": "Al99.70",
        "mass_kg": 10000,
        "production_period": {"start": "2022-03-01", "end": "2022-03-01"},
        "site": "Wenshan smelter",
        "route": "primary",
        "metal_inputs": {
            "own_electrolysis_kg": 10100,
            "purchased_primary_kg": 0,
            "pre_consumer_scrap_kg": 0,
            "post_consumer_scrap_kg": 0,
        },
        "electricity": [
            {
                "type": "hydro",
                "kwh": 130000,
                "metering_evidence": METER,
                "certificate": {
                    "scheme": "GEC",
                    "first_id": gec("202202", 1001),
                    "last_id": gec("202202", 1130),
                    "mwh": "130",
                },
            },
            {"type": "grid", "kwh": 5000, "grid_region": "CN-YN"},
        ],
        "activity_data": {
            "ac_power_kwh_per_t": 13000,
            "net_anode_consumption_kg_per_t": 400,
            "anode_sulphur_pct": "1.5",
            "anode_ash_pct": "0.5",
            "fuels": [{"fuel": "natural_gas", "amount": "10", "unit": "Nm3"}],
            "alumina_kg_per_t": 1920,
        },
        "declared_footprint": dict(DECLARED),
        "evidence": [{"sha256": METER, "media_type": "application/pdf"}],
    }


def footprint(payload: dict[str, Any]) -> Any:
    result = compute_footprint(parse_registration(payload))
    assert result is not None
    return result


# -- worked examples, market- and location-based -------------------------------------------
def test_worked_example_market_based_yunnan_hydro_with_gec() -> None:
    """Market-based (what grading uses): the 130 GEC-backed MWh at 0, the 5 MWh of grid
    power, uncertified, at the 2022 residual factor 0.5856 (not the Yunnan average 0.1073,
    which already holds the green attributes sold as GECs).

    own share    10,100 / 10,000 = 1.01
    fuel         10 Nm3 x 0.038931 x 55.61                       =   21.6495291
    anode        1.01 x 400 x (1 - 0.015 - 0.005) x 44/12        = 1451.7066667
    PFC          1.01 x (0.034 x 7380 + 0.0034 x 12400) (AR6)    =  296.0108
    direct       21.6495291 + 1451.7066667 + 296.0108            = 1769.3669958 -> 1769
    electricity  5,000 kWh x 0.5856 / 10 t                       =  292.8        ->  293
    scope 1+2    1769.3669958 + 292.8                            = 2062.1669958 -> 2062
    alumina      1.01 x 1920 x 1.0                               = 1939.2
    anodes       1.01 x 400 x 0.5                                =  202
    total        2062.1669958 + 1939.2 + 202                     = 4203.3669958 -> 4203
    (method 1 had 3,964: the grid kWh at 0.1073.)
    """
    result = footprint(yunnan_2022())
    assert result.breakdown["electricity_market_based"] == 293
    assert result.direct_kg_co2e_per_t == 1769
    assert result.scope1_2_kg_co2e_per_t == 2062
    assert result.total_kg_co2e_per_t == 4203
    assert "market-based residual factor: 0.5856 kg/kWh (residual_mix 2022)" in result.assumptions


def test_worked_example_location_based_yunnan_hydro_with_gec() -> None:
    """Location-based: grid kWh at the provincial factor (Yunnan 2022, 0.1073), the metered
    direct-line hydro at its own factor 0; certificates play no part.

    electricity  5,000 kWh x 0.1073 / 10 t                       =   53.65       ->   54
    scope 1+2    1769.3669958 + 53.65                            = 1823.0169958 -> 1823
    total        1823.0169958 + 1939.2 + 202                     = 3964.2169958 -> 3964
    Without the metering evidence the 130 MWh of hydro count at the 2022 national average:
    130,000 x 0.5366 / 10 = 6975.8; total 3964.2169958 + 6975.8 = 10940.0169958 -> 10940.
    """
    result = footprint(yunnan_2022())
    assert result.breakdown["electricity_location_based"] == 54
    assert result.location_based_scope1_2_kg_co2e_per_t == 1823
    assert result.location_based_total_kg_co2e_per_t == 3964
    unmetered = yunnan_2022()
    del unmetered["electricity"][0]["metering_evidence"]
    assert footprint(unmetered).location_based_total_kg_co2e_per_t == 10940


def test_hydro_without_certificate_or_evidence_counts_at_the_residual() -> None:
    """Wrong result 2 and 3: 130 MWh declared hydro with no certificate counted 0, and
    uncertified kWh were charged at the grid average. Market-based, every uncertified kWh
    counts at the residual, whatever its label: declared hydro or Yunnan grid, the same.

    electricity  135,000 kWh x 0.5856 / 10 t                      = 7905.6
    total        4203.3669958 - 292.8 + 7905.6                    = 11816.1669958 -> 11816
    """
    bare = yunnan_2022()
    del bare["electricity"][0]["certificate"]
    del bare["electricity"][0]["metering_evidence"]
    as_grid = copy.deepcopy(bare)
    as_grid["electricity"][0] = {"type": "grid", "kwh": 130000, "grid_region": "CN-YN"}
    assert footprint(bare).total_kg_co2e_per_t == 11816
    assert footprint(as_grid).total_kg_co2e_per_t == 11816


def test_captive_coal_counts_at_least_its_fossil_factor() -> None:
    """Own coal power is Scope 1 in both methods: location-based at the fossil-only factor
    0.8325 (2022); market-based at the higher of it and the residual."""
    payload = yunnan_2022()
    payload["electricity"] = [{"type": "captive_coal", "kwh": 135000}]
    result = footprint(payload)
    expected = round(Decimal(135000) * Decimal("0.8325") / 10)
    assert result.breakdown["electricity_market_based"] == expected
    assert result.breakdown["electricity_location_based"] == expected


def test_an_alloy_without_its_additions_has_no_cradle_to_gate_footprint() -> None:
    """6063 without alloying_additions: not computable cradle-to-gate, rather than silently
    understated; the Scope 1+2 and direct footprints stay."""
    alloy = yunnan_2022()
    alloy.update(alloy="6063", product_form="billet")
    result = footprint(alloy)
    assert result.total_kg_co2e_per_t is None
    assert result.location_based_total_kg_co2e_per_t is None
    assert result.scope1_2_kg_co2e_per_t == 2062
    assert "alloy 6063 (billet) states no alloying_additions" in result.not_computable[0]
    # with them: 6.5 kg Mg x 42 + 4.5 kg Si x 11.3 = 273 + 50.85 = 323.85 kg/t more
    alloy["activity_data"]["alloying_additions"] = [
        {"element": "Mg", "kg_per_t": "6.5"},
        {"element": "Si", "kg_per_t": "4.5"},
    ]
    alloy["metal_inputs"]["own_electrolysis_kg"] = 10_000
    added = footprint(alloy)
    assert added.breakdown["upstream_alloying"] == 324
    # an element whose factor is unconfirmed (Mn) keeps it not computable, and says why
    alloy["activity_data"]["alloying_additions"].append({"element": "Mn", "kg_per_t": "1"})
    blocked = footprint(alloy)
    assert blocked.total_kg_co2e_per_t is None
    assert "Mn has no confirmed factor" in blocked.not_computable[0]


# -- on the ledger -----------------------------------------------------------------------
@pytest.fixture
def graded(sqlite_env: LedgerEnv) -> LedgerEnv:
    env = sqlite_env
    env.register(SMELTER, "smelter", country="CN", region="CN-YN")
    env.register(CASTHOUSE, "smelter", country="CN", region="CN-GD")
    env.register(CENTRE, "evaluation_centre")
    grant(env, CENTRE)
    for document in load_shipped_rulesets():
        env.append("ruleset.publish", document, env.participant_keys[CENTRE])
    return env


def preview(env: LedgerEnv, smelter: str, batch: str, ruleset_id: str) -> dict[str, Any]:
    return preview_evaluation(env.ledger.engine, smelter, batch, ruleset_id, "2.0.0")


def failed(result: dict[str, Any], grade: str) -> dict[str, str]:
    """The failed leaves of one grade: criterion -> its value."""
    rows = next(g for g in result["grades"] if g["grade"] == grade)["criteria"]
    return {
        r["criterion"]: r["value"]
        for r in rows
        if not r["passed"] and r["criterion"] not in ("all", "any")
    }


def casthouse_batch(batch_id: str, named: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """19.8 t of remelt ingot from 20 t of bought primary metal, with 4 MWh of GEC-backed
    casting power and 25 Nm3 of natural gas per tonne."""
    return {
        "batch_id": batch_id,
        "smelter_id": CASTHOUSE,
        "product_form": "remelt_ingot",
        "alloy": "Al99.70",
        "mass_kg": 19800,
        "production_period": {"start": "2025-03-20", "end": "2025-03-21"},
        "site": "Foshan casthouse",
        "route": "primary",
        "metal_inputs": {
            "own_electrolysis_kg": 0,
            "purchased_primary_kg": 20000,
            "pre_consumer_scrap_kg": 0,
            "post_consumer_scrap_kg": 0,
            **({"purchased_primary_batches": named} if named else {}),
        },
        "electricity": [
            {
                "type": "grid",
                "kwh": 4000,
                "grid_region": "CN-GD",
                "certificate": {
                    "scheme": "GEC",
                    "first_id": f"13044019120600091202503{1:07d}11",
                    "last_id": f"13044019120600091202503{4:07d}11",
                    "mwh": "4",
                },
            }
        ],
        "activity_data": {"fuels": [{"fuel": "natural_gas", "amount": "25", "unit": "Nm3"}]},
        "declared_footprint": {**DECLARED, "kg_co2e_per_t": 17000},
    }


def test_a_casthouse_does_not_earn_a_smelters_grade(graded: LedgerEnv) -> None:
    """Wrong result 1: a casthouse remelting 20 t of bought primary metal of unknown origin
    with 4 MWh of GEC-covered casting power previewed green-power aluminium and the ASI
    smelter grade, though its metal carries about 16.8 t CO2e/t.

    upstream    20,000 kg x 16.5 / 19.8 t                        = 16666.67
    gas         25 Nm3 x 0.038931 x 55.61                        =    54.12
    electricity 4,000 certified kWh                              =     0
    total                                                        = 16720.79 -> 16721
    """
    graded.append("batch.register", casthouse_batch("CH-1"), graded.participant_keys[CASTHOUSE])
    batch = get_batch(graded.ledger.engine, OPERATOR, CASTHOUSE, "CH-1")
    assert batch["footprint"]["computed"]["total_kg_co2e_per_t"] == 16721
    assert batch["derived"]["renewable_share"] == "1.0000"  # its own casting power is green

    green = preview(graded, CASTHOUSE, "CH-1", "example-green-power-aluminium")
    assert green["grade"] is None
    assert failed(green, "green-power-aluminium") == {
        "green_power_share_of_primary_at_least": "0.0000"
    }
    asi = preview(graded, CASTHOUSE, "CH-1", "asi-2017-smelter")
    assert asi["grade"] is None
    assert failed(asi, "smelter-scope1-2-below-8t") == {"own_electrolysis_share_at_least": "0.0000"}


def test_a_gec_whose_code_says_another_month_is_refused_on_the_ledger(graded: LedgerEnv) -> None:
    """Wrong result 4: a GEC of 2025-02 accepted with vintage 2019-01."""
    payload = casthouse_batch("CH-2")
    payload["electricity"][0]["certificate"]["vintage"] = "2019-01"
    size = graded.ledger.tree_size()
    with pytest.raises(InvalidError) as refused:
        graded.append("batch.register", payload, graded.participant_keys[CASTHOUSE])
    assert refused.value.field == "statement.payload.electricity[0].certificate.vintage"
    assert "the certificate code, which states production in 2025-03" in refused.value.detail
    assert graded.ledger.tree_size() == size


def yunnan_2025(batch_id: str = "YN-1") -> dict[str, Any]:
    """The Yunnan example cast in March 2025, every kWh GEC-backed: the lot the casthouse
    buys (24 t)."""
    payload = yunnan_2022()
    payload.update(batch_id=batch_id, mass_kg=24000)
    payload["production_period"] = {"start": "2025-03-01", "end": "2025-03-01"}
    payload["metal_inputs"]["own_electrolysis_kg"] = 24240
    payload["electricity"] = [
        {
            "type": "hydro",
            "kwh": 320000,
            "metering_evidence": METER,
            "certificate": {
                "scheme": "GEC",
                "first_id": gec("202502", 1),
                "last_id": gec("202502", 320),
                "mwh": "320",
            },
        }
    ]
    payload["declared_footprint"] = {**DECLARED, "kg_co2e_per_t": 3700}
    return payload


def test_a_casthouse_remelting_a_graded_yunnan_lot_bought_through_custody(
    graded: LedgerEnv,
) -> None:
    """Wrong result 6: purchased primary metal naming ledger batches still counted 16.5
    t/t. Now the casthouse buys 20 t of a graded Yunnan lot through custody and names it:
    the kilograms leave the lot, and the metal carries the lot's market-based footprint F
    and green-power share.

    upstream    20,000 kg x F / 19.8 t = F x 1.0101...
    gas         25 Nm3 x 0.038931 x 55.61                        = 54.12
    total       20 x F / 19.8 + 54.12
    green-power share of primary: 20 t at the lot's share 1 / 20 t = 1
    """
    smelter, casthouse = graded.participant_keys[SMELTER], graded.participant_keys[CASTHOUSE]
    graded.append("batch.register", yunnan_2025(), smelter)
    lot_footprint = get_batch(graded.ledger.engine, OPERATOR, SMELTER, "YN-1")["footprint"]
    f = lot_footprint["computed"]["total_kg_co2e_per_t"]
    facts = preview(graded, SMELTER, "YN-1", "example-green-power-aluminium")
    assert facts["grade"] == "green-power-aluminium"
    grade = {
        "smelter_id": SMELTER,
        "batch_id": "YN-1",
        "ruleset_id": "example-green-power-aluminium",
        "ruleset_version": "2.0.0",
        "grade": "green-power-aluminium",
        "facts": facts["facts"],
    }
    graded.append("grade.issue", grade, graded.participant_keys[CENTRE])
    sale = {
        "ns": SMELTER,
        "batch_id": "YN-1",
        "recipient_id": CASTHOUSE,
        "mass_kg": 20000,
        "child_batch_id": "YN-1-CH",
    }
    graded.append("custody.transfer", sale, smelter)
    named = [{"smelter_id": SMELTER, "batch_id": "YN-1-CH", "mass_kg": 20000}]
    graded.append("batch.register", casthouse_batch("CH-3", named), casthouse)

    batch = get_batch(graded.ledger.engine, OPERATOR, CASTHOUSE, "CH-3")
    computed = batch["footprint"]["computed"]
    expected = Decimal(20 * f) / Decimal("19.8") + Decimal(25) * Decimal("0.038931") * Decimal(
        "55.61"
    )
    assert computed["total_kg_co2e_per_t"] == round(expected)
    assert computed["total_kg_co2e_per_t"] < 5_000  # not the 16.7 t of unknown metal
    assert batch["derived"]["green_power_share_primary"] == "1.0000"
    assert batch["derived"]["ledger_lots"][0]["kg_co2e_per_t"] == f
    green = preview(graded, CASTHOUSE, "CH-3", "example-green-power-aluminium")
    assert failed(green, "green-power-aluminium") == {}
    # the lot's kilograms are spent: it cannot be named a second time
    with pytest.raises(Exception, match="0 kg available"):
        graded.append("batch.register", casthouse_batch("CH-4", named), casthouse)


def test_a_serial_claimed_in_a_range_and_inside_a_contract_conflicts(graded: LedgerEnv) -> None:
    """One claim book keyed by serial: a green power trade claims the GECs it carried, so
    the same serials claimed directly by another batch conflict, naming both holders."""
    smelter = graded.participant_keys[SMELTER]
    graded.append("batch.register", yunnan_2025("YN-A"), smelter)
    trade = yunnan_2025("YN-B")
    trade["electricity"][0]["certificate"] = {
        "scheme": "green_power_trade",
        "id": "YN-GPT-2025-03-1",
        "mwh": "320",
        "total_mwh": "400",
        "vintage": "2025-02",
        "gec_serials": [{"first_id": gec("202502", 301), "last_id": gec("202502", 700)}],
    }
    with pytest.raises(Exception) as refused:
        graded.append("batch.register", trade, smelter)
    assert refused.value.field == "statement.payload.electricity[0].certificate.gec_serials[0]"
    assert f"by batch {SMELTER}/YN-A" in refused.value.detail
    assert "through contract green_power_trade:YN-GPT-2025-03-1" in refused.value.detail


# -- recomputing a recorded batch is an explicit preview ------------------------------------
def test_recomputing_a_recorded_batch_under_another_method_is_a_preview(graded: LedgerEnv) -> None:
    """The Yunnan example recorded with method 2 (4,203) previews at 3,964 under method 1
    and factor table 2024.1; what was recorded does not change, and readers who may not open
    the batch's activity data get 403 (totals under chosen factors would disclose it)."""
    graded.append("batch.register", yunnan_2022(), graded.participant_keys[SMELTER])
    before = get_batch(graded.ledger.engine, OPERATOR, SMELTER, "YN-EX-2022")

    current = recompute_footprint(graded.ledger.engine, OPERATOR, SMELTER, "YN-EX-2022")
    old = recompute_footprint(
        graded.ledger.engine, OPERATOR, SMELTER, "YN-EX-2022", method="alu-ledger-footprint/1"
    )

    assert current["recorded"]["computed"] == before["footprint"]["computed"]
    assert current["preview"]["computed"] == before["footprint"]["computed"]
    assert old["preview"]["computed"]["total_kg_co2e_per_t"] == 3964
    assert old["preview"]["computed"]["factor_table_version"] == "2024.1"
    assert get_batch(graded.ledger.engine, OPERATOR, SMELTER, "YN-EX-2022") == before
    with TestClient(create_app(graded.ledger)) as client:
        path = f"/v1/batches/{SMELTER}/YN-EX-2022/footprint"
        anonymous = client.get(path, params={"method": "alu-ledger-footprint/1"})
        unknown = client.get(path, params={"factor_table_version": "1999.1"})
    assert anonymous.status_code == 403
    assert anonymous.json()["field"] == "batch_id"
    assert unknown.status_code in (403, 404)


def test_a_recompute_the_method_cannot_read_names_why(graded: LedgerEnv) -> None:
    """A factor table without a residual factor cannot compute method 2: refused, naming
    the table, not a 5xx."""
    graded.append("batch.register", yunnan_2022(), graded.participant_keys[SMELTER])
    with pytest.raises(InvalidError) as refused:
        recompute_footprint(
            graded.ledger.engine, OPERATOR, SMELTER, "YN-EX-2022", factor_table_version="2024.1"
        )
    assert refused.value.field == "factor_table_version"
    assert "cannot be computed with alu-ledger-footprint/2, factor table 2024.1" in str(
        refused.value
    )


def test_graphql_shows_both_methods_the_direct_boundary_and_the_metal_provenance(
    graded: LedgerEnv,
) -> None:
    graded.append("batch.register", yunnan_2022(), graded.participant_keys[SMELTER])
    query = """{ batch(smelterId: "yn-smelter", batchId: "YN-EX-2022") {
        ownElectrolysisShare greenPowerShareOfPrimary certificateTimeMatching
        footprint { computedKgCo2ePerT locationBasedKgCo2ePerT directKgCo2ePerT
                    method factorTableVersion notComputable } } }"""
    smelter = {"Authorization": f"Bearer {issue_token(graded.ledger.engine, SMELTER).token}"}
    with TestClient(create_app(graded.ledger)) as client:
        answer = client.post("/graphql", json={"query": query}, headers=smelter).json()
    assert "errors" not in answer, answer
    batch = answer["data"]["batch"]
    assert batch["footprint"] == {
        "computedKgCo2ePerT": 4203,
        "locationBasedKgCo2ePerT": 3964,
        "directKgCo2ePerT": 1769,
        "method": "alu-ledger-footprint/2",
        "factorTableVersion": "2025.1",
        "notComputable": [],
    }
    # 10,100 kg own metal; 130 of its 135 MWh certified: 0.9630
    assert batch["ownElectrolysisShare"] == "1.0000"
    assert batch["greenPowerShareOfPrimary"] == "0.9630"
    assert batch["certificateTimeMatching"] == "same_year"  # GECs of 2022-02 for March 2022
