"""Carbon footprint, method 1 (``alu-ledger-footprint/1``): worked examples computed by hand,
factor tables, declared-vs-computed check.

Method 1 computed the footprints of batches registered before method 2 and is kept so that
certificates issued on them keep verifying exactly as they were issued; these tests hold it
to its numbers. Method 2 (market- and location-based electricity, direct boundary,
alloying, upstream metal from the ledger) is tested in ``test_footprint_method2.py``.

Factors used below (schemas/factors/2024.1.json):
  natural gas   NCV 0.038931 GJ/Nm3 x EF 55.61 kg/GJ  = 2.16495291 kg CO2/Nm3
  diesel        NCV 0.042652 GJ/kg  x EF 72.59 kg/GJ  = 3.09610868 kg CO2/kg
  anode         CO2 = NC x (1 - S - A) x 44/12
  PFC CWPB      slope 0.143, C2F6/CF4 0.121; default CF4 0.034, C2F6 0.0034 kg/t
  GWP CF4/C2F6  AR5 6630 / 11100, AR6 7380 / 12400
  limestone 0.405 kg/kg; purchased heat 110 kg/GJ
  grid 2022     CN-NORTH 0.6776, CN-YN 0.1073, CN-SOUTH 0.3869 (CN-GD maps to CN-SOUTH)
  upstream      alumina 1.0 kg/kg, anode production 0.5 kg/kg, purchased primary 16.5 kg/kg
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ledger.batches import parse_registration
from ledger.batches.payload import BatchRegistration
from ledger.errors import InvalidError, MalformedError, NotFoundError
from ledger.footprint import (
    BREAKDOWN_ITEMS,
    FootprintResult,
    available_versions,
    compute_footprint,
    exact_breakdown,
    footprint_check,
    footprint_report,
    footprint_report_from_file,
    load_factor_tables,
)
from ledger.footprint.calculator import METHOD_V1

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scripts" / "demo"

DECLARED = {
    "kg_co2e_per_t": 13000,
    "boundary": "cradle_to_gate",
    "method_standard": "GB/T 44905-2024",
    "gwp_set": "AR5",
    "recycled_content_method": "cut_off",
}


def coal_grid_smelter() -> dict[str, Any]:
    """20 t of remelt ingot from 20 t of own metal, North China grid power only."""
    return {
        "batch_id": "NM-EX-1",
        "smelter_id": "nm-baotou-aluminium",
        "product_form": "remelt_ingot",
        "alloy": "Al99.70",
        "mass_kg": 20000,
        "production_period": {"start": "2022-06-01", "end": "2022-06-01"},
        "site": "Baotou smelter",
        "route": "primary",
        "metal_inputs": {
            "own_electrolysis_kg": 20000,
            "purchased_primary_kg": 0,
            "pre_consumer_scrap_kg": 0,
            "post_consumer_scrap_kg": 0,
        },
        "electricity": [{"type": "grid", "kwh": 280000, "grid_region": "CN-NORTH"}],
        "activity_data": {
            "ac_power_kwh_per_t": 13500,
            "net_anode_consumption_kg_per_t": 420,
            "anode_sulphur_pct": "2",
            "anode_ash_pct": "0.4",
            "anode_effect_minutes_per_cell_day": "0.1",
            "cell_technology": "CWPB",
            "fuels": [{"fuel": "natural_gas", "amount": "20", "unit": "Nm3"}],
            "limestone_kg_per_t": 10,
            "purchased_heat_gj_per_t": "0.5",
            "alumina_kg_per_t": 1930,
        },
        "declared_footprint": dict(DECLARED),
    }


def hydro_gec_smelter() -> dict[str, Any]:
    """10 t cast from 10.1 t of own metal; 130 MWh of GEC-backed hydro + 5 MWh Yunnan grid."""
    return {
        "batch_id": "YN-EX-1",
        "smelter_id": "yn-lancang-aluminium",
        "product_form": "remelt_ingot",
        "alloy": "Al99.70",
        "mass_kg": 10000,
        "production_period": {"start": "2025-03-01", "end": "2025-03-01"},
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
                "certificate": {
                    "scheme": "GEC",
                    "first_id": "11012019061553087" + "202502000100111",
                    "last_id": "11012019061553087" + "202502000113011",
                    "mwh": "130",
                    "vintage": "2025-02",
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
        "declared_footprint": {**DECLARED, "kg_co2e_per_t": 3900, "gwp_set": "AR6"},
    }


def secondary_remelter() -> dict[str, Any]:
    """19.6 t of billet from 20 t: 16 t post-consumer, 2 t pre-consumer scrap, 2 t primary."""
    return {
        "batch_id": "GD-EX-1",
        "smelter_id": "gd-zhaoqing-recycling",
        "product_form": "billet",
        "alloy": "6063",
        "mass_kg": 19600,
        "production_period": {"start": "2025-03-10", "end": "2025-03-11"},
        "site": "Zhaoqing casthouse",
        "route": "secondary",
        "metal_inputs": {
            "own_electrolysis_kg": 0,
            "purchased_primary_kg": 2000,
            "pre_consumer_scrap_kg": 2000,
            "post_consumer_scrap_kg": 16000,
        },
        "electricity": [{"type": "grid", "kwh": 3920, "grid_region": "CN-GD"}],
        "activity_data": {
            "fuels": [
                {"fuel": "natural_gas", "amount": "80", "unit": "Nm3"},
                {"fuel": "diesel", "amount": "1.5", "unit": "kg"},
            ]
        },
        "declared_footprint": {**DECLARED, "kg_co2e_per_t": 1900},
    }


def footprint(payload: dict[str, Any], *, legacy: bool = False) -> FootprintResult:
    """Method 1 (``legacy``: on the payload read as ledgers read it then)."""
    reg = parse_registration(payload, legacy=legacy)
    result = compute_footprint(reg, load_factor_tables("2024.1"), method=METHOD_V1)
    assert result is not None
    return result


# --- worked examples ------------------------------------------------------------------------


def test_worked_example_coal_grid_primary_smelter():
    # own share = 20,000 / 20,000 = 1
    # fuel        20 Nm3 x 2.16495291                       =    43.2990582  ->    43
    # anode       420 x (1 - 0.02 - 0.004) x 44/12 = 409.92 x 44/12
    #                                                       =  1503.04       ->  1503
    # pfc         CF4 = 0.143 x 0.1 = 0.0143; C2F6 = 0.0143 x 0.121 = 0.0017303
    #             0.0143 x 6630 + 0.0017303 x 11100 = 94.809 + 19.20633
    #                                                       =   114.01533    ->   114
    # carbonates  10 x 0.405                                =     4.05       ->     4
    # electricity 280,000 kWh x 0.6776 / 20 t               =  9486.4        ->  9486
    # heat        0.5 GJ x 110                              =    55          ->    55
    # scope 1+2   43.2990582 + 1503.04 + 114.01533 + 4.05 + 9486.4 + 55
    #                                                       = 11205.8043882  -> 11206
    # alumina     1930 x 1.0                                =  1930
    # anodes      420 x 0.5                                 =   210
    # total       11205.8043882 + 1930 + 210                = 13345.8043882  -> 13346
    result = footprint(coal_grid_smelter())
    assert result.breakdown == {
        "fuel_combustion": 43,
        "anode_consumption": 1503,
        "pfc": 114,
        "carbonates": 4,
        "electricity": 9486,
        "purchased_heat": 55,
        "upstream_alumina": 1930,
        "upstream_anode_production": 210,
        "upstream_purchased_primary": 0,
    }
    assert result.scope1_2_kg_co2e_per_t == 11206
    assert result.total_kg_co2e_per_t == 13346
    assert result.factor_table_version == "2024.1"
    assert result.gwp_set == "AR5"
    assert result.assumptions == ()  # 2022 production, every item measured


def test_worked_example_coal_grid_exact_values():
    reg = parse_registration(coal_grid_smelter())
    exact = exact_breakdown(reg, load_factor_tables("2024.1"))
    assert exact["fuel_combustion"] == Decimal("43.2990582")
    assert exact["anode_consumption"] == Decimal("1503.04")
    assert exact["pfc"] == Decimal("114.01533")
    assert exact["electricity"] == Decimal("9486.4")


def test_worked_example_hydro_gec_smelter():
    # own share = 10,100 / 10,000 = 1.01 (the 1 % casting loss is borne by the batch)
    # fuel        10 Nm3 x 2.16495291                        =   21.6495291  ->   22
    # anode       1.01 x 400 x (1 - 0.015 - 0.005) x 44/12 = 1.01 x 392 x 44/12
    #                                                        = 1451.7066667  -> 1452
    # pfc         no anode-effect data: Chinese defaults, AR6
    #             1.01 x (0.034 x 7380 + 0.0034 x 12400) = 1.01 x 293.08
    #                                                        =  296.0108     ->  296
    # electricity 130,000 GEC-backed kWh count 0; 5,000 kWh x 0.1073 / 10 t
    #                                                        =   53.65       ->   54
    # scope 1+2   21.6495291 + 1451.7066667 + 296.0108 + 53.65
    #                                                        = 1823.0169958  -> 1823
    # alumina     1.01 x 1920 x 1.0                          = 1939.2        -> 1939
    # anodes      1.01 x 400 x 0.5                           =  202
    # total       1823.0169958 + 1939.2 + 202                = 3964.2169958  -> 3964
    result = footprint(hydro_gec_smelter())
    assert result.breakdown == {
        "fuel_combustion": 22,
        "anode_consumption": 1452,
        "pfc": 296,
        "carbonates": 0,
        "electricity": 54,
        "purchased_heat": 0,
        "upstream_alumina": 1939,
        "upstream_anode_production": 202,
        "upstream_purchased_primary": 0,
    }
    assert result.scope1_2_kg_co2e_per_t == 1823
    assert result.total_kg_co2e_per_t == 3964
    assert result.gwp_set == "AR6"
    assert "pfc: Chinese default CF4 and C2F6 emissions" in result.assumptions[0]
    assert "CN-YN 2022 used for CN-YN in 2025" in result.assumptions[1]


def test_worked_example_secondary_remelter():
    # no own electrolysis: potroom items are 0 (their defaults are multiplied by 0)
    # fuel        80 Nm3 x 2.16495291 + 1.5 kg x 3.09610868
    #             = 173.1962328 + 4.64416302                =  177.84039582 ->  178
    # electricity 3,920 kWh x 0.3869 (CN-GD -> CN-SOUTH) / 19.6 t
    #             = 1516.648 / 19.6                          =   77.38       ->   77
    # scope 1+2   177.84039582 + 77.38                       =  255.22039582 ->  255
    # primary     2,000 / 19,600 x 1000 x 16.5               = 1683.6734694  -> 1684
    # scrap       cut-off: 0
    # total       255.22039582 + 1683.6734694                = 1938.8938652  -> 1939
    result = footprint(secondary_remelter())
    assert result.breakdown == {
        "fuel_combustion": 178,
        "anode_consumption": 0,
        "pfc": 0,
        "carbonates": 0,
        "electricity": 77,
        "purchased_heat": 0,
        "upstream_alumina": 0,
        "upstream_anode_production": 0,
        "upstream_purchased_primary": 1684,
    }
    assert result.scope1_2_kg_co2e_per_t == 255
    assert result.total_kg_co2e_per_t == 1939
    assert result.recycled_content_method == "cut_off"
    # only the grid mapping is an assumption: potroom defaults weigh nothing here
    assert result.assumptions == (
        "electricity[0]: grid factor 0.3869 kg/kWh of CN-SOUTH 2022 used for CN-GD in 2025",
    )


def test_result_to_dict_is_json_ready():
    data = footprint(coal_grid_smelter()).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert list(data["breakdown"]) == list(BREAKDOWN_ITEMS)
    assert data["total_kg_co2e_per_t"] == 13346
    assert data["factor_table_version"] == "2024.1"


# --- formulas, one at a time ----------------------------------------------------------------


def test_gwp_set_changes_only_pfc():
    ar5 = footprint(coal_grid_smelter())
    p = coal_grid_smelter()
    p["declared_footprint"]["gwp_set"] = "AR4"
    ar4 = footprint(p)
    # AR4: 0.0143 x 7390 + 0.0017303 x 12200 = 105.677 + 21.10966 = 126.78666 -> 127
    assert ar4.breakdown["pfc"] == 127
    assert {k: v for k, v in ar4.breakdown.items() if k != "pfc"} == {
        k: v for k, v in ar5.breakdown.items() if k != "pfc"
    }


def test_vss_slope_coefficients():
    p = coal_grid_smelter()
    p["activity_data"].update(cell_technology="VSS", anode_effect_minutes_per_cell_day="1")
    # CF4 = 0.092 x 1; C2F6 = 0.092 x 0.053 = 0.004876
    # 0.092 x 6630 + 0.004876 x 11100 = 609.96 + 54.1236 = 664.0836 -> 664
    assert footprint(p).breakdown["pfc"] == 664


def test_absent_anode_data_takes_table_defaults():
    p = coal_grid_smelter()
    for name in ("net_anode_consumption_kg_per_t", "anode_sulphur_pct", "anode_ash_pct"):
        del p["activity_data"][name]
    result = footprint(p)
    assert result.breakdown["anode_consumption"] == 1503  # defaults 420, 2 %, 0.4 %
    assert any(
        a.startswith("net_anode_consumption_kg_per_t: default 420") for a in result.assumptions
    )


def test_absent_alumina_takes_the_default():
    p = coal_grid_smelter()
    del p["activity_data"]["alumina_kg_per_t"]
    assert footprint(p).breakdown["upstream_alumina"] == 1950


def test_certificate_backed_grid_power_counts_zero():
    p = coal_grid_smelter()
    p["electricity"][0]["certificate"] = {
        "scheme": "green_power_trade",
        "id": "NM-GPT-2022-06-01",
        "mwh": "70",
        "vintage": "2022-06",
        "total_mwh": "1000",
    }
    # 210,000 uncovered kWh x 0.6776 / 20 t = 7114.8 (method 1 took the contract as proof)
    assert footprint(p, legacy=True).breakdown["electricity"] == 7115


def test_own_generation_factors():
    p = coal_grid_smelter()
    p["electricity"] = [
        {"type": "captive_coal", "kwh": 200000},
        {"type": "hydro", "kwh": 80000},
    ]
    # 200,000 x 0.85 / 20 t = 8500; uncertified hydro own-generation factor 0
    assert footprint(p).breakdown["electricity"] == 8500


def test_grid_factor_year_falls_back_to_the_latest_published():
    tables = load_factor_tables("2024.1")
    assert tables.grid_factor("CN", 2021).kg_co2_per_kwh == Decimal("0.5568")
    assert tables.grid_factor("CN", 2022).kg_co2_per_kwh == Decimal("0.5366")
    assert tables.grid_factor("CN", 2025).year == 2022
    assert tables.grid_factor("CN", 2019).year == 2021  # before the first: the earliest
    alias = tables.grid_factor("CN-XJ", 2022)
    assert (alias.region, alias.kg_co2_per_kwh) == ("CN-NORTHWEST", Decimal("0.5857"))


def test_documented_grid_regions_are_in_the_table():
    tables = load_factor_tables("2024.1")
    expected = {
        "CN": "0.5366",
        "CN-ETS": "0.5703",
        "CN-NORTH": "0.6776",
        "CN-NORTHWEST": "0.5857",
        "CN-EAST": "0.5617",
        "CN-NORTHEAST": "0.5564",
        "CN-CENTRAL": "0.5395",
        "CN-SOUTH": "0.3869",
        "CN-SOUTHWEST": "0.2268",
        "CN-HE": "0.7252",
        "CN-YN": "0.1073",
    }
    for region, value in expected.items():
        assert tables.grid_factor(region, 2022).kg_co2_per_kwh == Decimal(value), region


def test_unknown_grid_region_is_refused_naming_the_field():
    p = coal_grid_smelter()
    p["electricity"][0]["grid_region"] = "CN-ZZ"
    with pytest.raises(InvalidError) as caught:
        compute_footprint(parse_registration(p))
    assert caught.value.field == "payload.electricity[0].grid_region"
    assert "CN-ZZ has no emission factor in factor table 2025.1" in caught.value.detail


def test_no_activity_data_is_not_computable():
    p = coal_grid_smelter()
    del p["activity_data"]
    reg = parse_registration(p)
    assert compute_footprint(reg) is None
    assert footprint_check(13000, None, "cradle_to_gate") == "not_computable"


# --- declared against computed --------------------------------------------------------------


def test_footprint_check_against_the_declared_boundary():
    computed = footprint(coal_grid_smelter())  # total 13346, scope 1+2 11206
    # 10 % below 13,346 is 12,011.4
    assert footprint_check(12012, computed, "cradle_to_gate") == "consistent"
    assert footprint_check(12011, computed, "cradle_to_gate") == "declared_below_computed"
    assert footprint_check(20000, computed, "cradle_to_gate") == "consistent"
    # scope 1+2: 10 % below 11,206 is 10,085.4
    assert footprint_check(10086, computed, "scope1_2") == "consistent"
    assert footprint_check(10085, computed, "scope1_2") == "declared_below_computed"
    assert footprint_check(12011, computed, "cradle_to_gate", Decimal("0.2")) == "consistent"


def test_footprint_check_refuses_an_unknown_boundary():
    with pytest.raises(ValueError):
        footprint_check(1, footprint(coal_grid_smelter()), "gate_to_gate")


def test_remelter_declaration_checked():
    computed = footprint(secondary_remelter())  # total 1939; 90 % = 1745.1
    assert footprint_check(1900, computed, "cradle_to_gate") == "consistent"
    assert footprint_check(1700, computed, "cradle_to_gate") == "declared_below_computed"


# --- factor tables --------------------------------------------------------------------------


def test_factor_tables_are_versioned_and_schema_valid():
    assert "2024.1" in available_versions()
    schema = json.loads((ROOT / "schemas" / "factors" / "factor-table.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    for version in available_versions():
        data = json.loads((ROOT / "schemas" / "factors" / f"{version}.json").read_text())
        Draft202012Validator(schema).validate(data)
        assert data["version"] == version
    assert load_factor_tables().version == available_versions()[-1]


def test_every_factor_has_a_source_and_check_values_are_marked():
    data = load_factor_tables("2024.1").data

    def factors(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict) and "value" in node:
            return [node]
        if isinstance(node, dict):
            return [f for value in node.values() for f in factors(value)]
        return []

    found = factors(data)
    assert len(found) > 40
    for factor in found:
        assert factor["source"]
        assert ("(check)" in factor["source"]) == bool(factor.get("check")), factor


def test_unknown_factor_table_version():
    with pytest.raises(NotFoundError) as caught:
        load_factor_tables("1999.1")
    assert "available: 2024.1" in caught.value.detail


# --- standalone documents (alu-ledger footprint FILE.json) ----------------------------------


def test_report_from_a_payload_file(tmp_path: Path):
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(coal_grid_smelter()))
    report = footprint_report_from_file(path)
    assert report.computed is not None
    # method 2: the 280,000 grid kWh are uncertified, so market-based at the 2022 residual
    # 0.5856: 280,000 x 0.5856 / 20 t = 8198.4 instead of 9486.4 at the North China average
    assert report.computed.total_kg_co2e_per_t == 13346 - 9486 + 8198
    assert report.check == "consistent"  # declared 13,000 >= 12,058 x 0.9
    assert report.to_dict()["computed"]["scope1_2_kg_co2e_per_t"] == 11206 - 9486 + 8198


def test_report_from_a_statement_envelope():
    statement = {"kind": "batch.register", "payload": hydro_gec_smelter(), "signer": "x"}
    report = footprint_report(statement)
    assert (report.batch_id, report.check) == ("YN-EX-1", "consistent")


def test_report_refuses_another_statement_kind():
    with pytest.raises(MalformedError) as caught:
        footprint_report({"kind": "grade.issue", "payload": {"x": 1}})
    assert caught.value.field == "kind"


def test_report_file_with_a_float_names_the_field(tmp_path: Path):
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(coal_grid_smelter()).replace('"mass_kg": 20000', '"mass_kg": 2e4'))
    with pytest.raises(MalformedError) as caught:
        footprint_report_from_file(path)
    assert caught.value.field == "payload.mass_kg"


def test_report_file_problems(tmp_path: Path):
    with pytest.raises(NotFoundError):
        footprint_report_from_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(MalformedError, match="is not valid JSON"):
        footprint_report_from_file(broken)


# --- demo data ------------------------------------------------------------------------------


def demo_batches() -> list[BatchRegistration]:
    return [parse_registration(p) for p in json.loads((DEMO / "batches.json").read_text())]


def test_demo_batches_parse_and_span_the_market():
    participants = json.loads((DEMO / "participants.json").read_text())
    smelters = {p["participant_id"] for p in participants if p["role"] == "smelter"}
    roles = sorted(p["role"] for p in participants)
    assert roles.count("manufacturer") == 2
    assert {"evaluation_centre", "auditor"} <= set(roles)
    rows = []
    checks = set()
    for reg in demo_batches():
        assert reg.smelter_id in smelters
        result = compute_footprint(reg)
        assert result is not None, reg.batch_id
        declared = reg.declared_footprint
        check = footprint_check(declared.kg_co2e_per_t, result, declared.boundary)
        checks.add(check)
        if result.total_kg_co2e_per_t is None:  # an alloy with an element of no confirmed factor
            assert result.not_computable, reg.batch_id
            continue
        assert 1000 <= result.total_kg_co2e_per_t <= 17000, reg.batch_id
        rows.append((result.total_kg_co2e_per_t, reg.batch_id, declared.kg_co2e_per_t, check))
    totals = sorted(row[0] for row in rows)
    print("\ndemo footprint spread, kg CO2e/t (computed, batch, declared, check):")
    for row in sorted(rows):
        print(f"  {row[0]:>6}  {row[1]:<14} {row[2]:>6}  {row[3]}")
    print(f"  min {totals[0]}, max {totals[-1]}")
    assert totals[0] < 2500 and totals[-1] > 12000
    assert checks == {"consistent", "declared_below_computed", "not_computable"}


def test_demo_participants_fit_participant_register():
    for participant in json.loads((DEMO / "participants.json").read_text()):
        assert set(participant) == {"participant_id", "legal_name", "role", "country", "region"}


def test_compute_does_not_change_the_registration():
    reg = parse_registration(coal_grid_smelter())
    before = copy.deepcopy(reg)
    compute_footprint(reg)
    assert reg == before
