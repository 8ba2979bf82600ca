"""batch.register payload: one test per validation rule (field path and reason), derived values."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ledger.batches import derive, parse_registration
from ledger.batches.payload import load_batch_rules
from ledger.errors import InvalidError, LedgerError, MalformedError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "batch" / "batch.register.schema.json"
GEC_PROJECT = "11012019061553087"


def gec(tail: str) -> str:
    return GEC_PROJECT + tail


def base() -> dict[str, Any]:
    """A valid primary batch: 24.24 t of own metal cast into 24 t, hydro with a GEC range."""
    return {
        "batch_id": "YN-2025-0001",
        "smelter_id": "yn-lancang-aluminium",
        "product_form": "remelt_ingot",
        "alloy": "Al99.70",
        "mass_kg": 24000,
        "production_period": {"start": "2025-03-03", "end": "2025-03-04"},
        "site": "Wenshan smelter",
        "potline": "PL1",
        "route": "primary",
        "metal_inputs": {
            "own_electrolysis_kg": 24240,
            "purchased_primary_kg": 0,
            "pre_consumer_scrap_kg": 0,
            "post_consumer_scrap_kg": 0,
        },
        "electricity": [
            {
                "type": "hydro",
                "kwh": 300000,
                "certificate": {
                    "scheme": "GEC",
                    "first_id": gec("202502000010111"),
                    "last_id": gec("202502000040011"),
                    "mwh": "300",
                    "vintage": "2025-02",
                },
            },
            {"type": "grid", "kwh": 25000, "grid_region": "CN-YN"},
        ],
        "activity_data": {
            "ac_power_kwh_per_t": 13100,
            "net_anode_consumption_kg_per_t": 410,
            "anode_sulphur_pct": "1.8",
            "anode_ash_pct": "0.35",
            "anode_effect_minutes_per_cell_day": "0.02",
            "cell_technology": "CWPB",
            "fuels": [{"fuel": "natural_gas", "amount": "18.5", "unit": "Nm3"}],
            "alumina_kg_per_t": 1925,
        },
        "declared_footprint": {
            "kg_co2e_per_t": 3800,
            "boundary": "cradle_to_gate",
            "method_standard": "GB/T 44905-2024",
            "gwp_set": "AR5",
            "recycled_content_method": "cut_off",
            "verification": {"verifier": "BJCV (demo)", "report_reference": "BJCV-2025-0412"},
        },
        "evidence": [{"sha256": "ab" * 32, "media_type": "application/pdf"}],
    }


def refused(change: Callable[[dict[str, Any]], object]) -> LedgerError:
    """Apply ``change`` to a fresh valid payload and return the error parsing raises."""
    payload = base()
    change(payload)
    with pytest.raises(LedgerError) as caught:
        parse_registration(payload)
    return caught.value


def cert(p: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return p["electricity"][index]["certificate"]


def set_ppa(p: dict[str, Any], **extra: str) -> None:
    """Replace the GEC range of source 0 by a PPA claim."""
    p["electricity"][0]["certificate"] = {
        "scheme": "PPA",
        "id": "YN-HYDRO-PPA-2025-01",
        "mwh": "300",
        "vintage": "2025",
        "total_mwh": "1000",
        **extra,
    }


# --- the valid payload ------------------------------------------------------------------------


def test_valid_payload_parses_into_dataclasses():
    reg = parse_registration(base())
    assert reg.batch_id == "YN-2025-0001"
    assert reg.mass_kg == 24000
    assert reg.production_period.end.isoformat() == "2025-03-04"
    assert reg.metal_inputs.total_kg == 24240
    gec_cert = reg.electricity[0].certificate
    assert gec_cert is not None
    assert gec_cert.serials is not None
    assert gec_cert.serials.count == 300
    assert gec_cert.claimed_kwh == 300_000
    assert reg.activity_data is not None
    assert reg.activity_data.anode_sulphur_pct == Decimal("1.8")
    assert reg.declared_footprint.verification is not None


def test_optional_parts_may_be_left_out():
    p = base()
    for name in ("potline", "activity_data", "evidence"):
        del p[name]
    del p["declared_footprint"]["verification"]
    reg = parse_registration(p)
    assert reg.activity_data is None
    assert reg.evidence == ()
    assert reg.potline is None


def test_schema_file_is_valid_2020_12_and_closed_everywhere():
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$id"]

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            conditional = where.rsplit("/", 1)[-1] in ("if", "then")
            if "properties" in node and not conditional:
                assert node.get("additionalProperties") is False, f"{where} is not closed"
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(schema, "#")


def test_rules_are_data_with_sources():
    rules = load_batch_rules()
    assert rules.casting_loss_tolerance == Decimal("0.05")
    assert rules.min_electrolysis_ac_kwh_per_t == Decimal(11000)


# --- malformed shapes ---------------------------------------------------------------------------


def test_payload_must_be_an_object():
    with pytest.raises(MalformedError) as caught:
        parse_registration([1, 2])  # type: ignore[arg-type]
    assert caught.value.field == "payload"


def test_float_is_refused_naming_the_field():
    err = refused(lambda p: p.update(mass_kg=24000.0))
    assert isinstance(err, MalformedError)
    assert err.field == "payload.mass_kg"
    assert "floating-point" in err.detail


def test_nested_float_is_refused_naming_the_field():
    err = refused(lambda p: p["electricity"][1].update(kwh=25000.5))
    assert isinstance(err, MalformedError)
    assert err.field == "payload.electricity[1].kwh"


def test_decimal_from_a_float_literal_is_refused():
    err = refused(lambda p: p["activity_data"].update(anode_ash_pct=Decimal("0.35")))
    assert isinstance(err, MalformedError)
    assert err.field == "payload.activity_data.anode_ash_pct"


def test_missing_field():
    err = refused(lambda p: p.pop("mass_kg"))
    assert isinstance(err, MalformedError)
    assert err.field == "payload.mass_kg"
    assert "required" in err.detail


def test_missing_nested_field():
    err = refused(lambda p: p["metal_inputs"].pop("post_consumer_scrap_kg"))
    assert err.field == "payload.metal_inputs.post_consumer_scrap_kg"
    assert "required" in err.detail


def test_unknown_field_is_refused():
    err = refused(lambda p: p.update(colour="silver"))
    assert isinstance(err, MalformedError)
    assert err.field == "payload.colour"
    assert err.detail == "colour is not a known field here; unknown fields are refused"


def test_unknown_nested_field_is_refused():
    err = refused(lambda p: cert(p).update(issuer="NEA"))
    assert err.field == "payload.electricity[0].certificate.issuer"
    assert "not a known field" in err.detail


def test_wrong_type():
    err = refused(lambda p: p.update(mass_kg="24000"))
    assert isinstance(err, MalformedError)
    assert err.field == "payload.mass_kg"
    assert "must be an integer" in err.detail


def test_decimal_field_given_as_number():
    err = refused(lambda p: cert(p).update(mwh=300))
    assert err.field == "payload.electricity[0].certificate.mwh"
    assert "decimal string" in err.detail


def test_enum():
    err = refused(lambda p: p.update(product_form="coil"))
    assert err.field == "payload.product_form"
    assert "must be one of" in err.detail
    assert "'coil'" in err.detail


def test_batch_id_pattern():
    err = refused(lambda p: p.update(batch_id="-bad id"))
    assert err.field == "payload.batch_id"
    assert "letter or digit" in err.detail


def test_smelter_id_must_be_a_participant_id():
    err = refused(lambda p: p.update(smelter_id="YN_Lancang"))
    assert err.field == "payload.smelter_id"
    assert "participant id" in err.detail


def test_date_must_be_a_calendar_date():
    err = refused(lambda p: p["production_period"].update(end="2025-02-30"))
    assert err.field == "payload.production_period.end"
    assert "YYYY-MM-DD" in err.detail


def test_decimal_string_format():
    err = refused(lambda p: p["activity_data"].update(anode_effect_minutes_per_cell_day="-0.1"))
    assert err.field == "payload.activity_data.anode_effect_minutes_per_cell_day"
    assert "decimal string" in err.detail


def test_percentage_above_100():
    err = refused(lambda p: p["activity_data"].update(anode_sulphur_pct="120"))
    assert err.field == "payload.activity_data.anode_sulphur_pct"
    assert "percentage" in err.detail


def test_gec_code_must_have_32_digits():
    err = refused(lambda p: cert(p).update(first_id=gec("20250200000010")))  # 31 digits
    assert isinstance(err, MalformedError)
    assert err.field == "payload.electricity[0].certificate.first_id"
    assert "32-digit GEC code" in err.detail


def test_gec_code_must_be_digits():
    err = refused(lambda p: cert(p).update(last_id=gec("20250200000040X")))
    assert err.field == "payload.electricity[0].certificate.last_id"
    assert "32-digit GEC code" in err.detail


def test_certificate_names_id_or_range_not_both():
    err = refused(lambda p: cert(p).update(id=gec("202502000010111")))
    assert isinstance(err, MalformedError)
    assert err.field == "payload.electricity[0].certificate"
    assert "either one certificate by 'id' or a serial range" in err.detail


def test_certificate_names_something():
    err = refused(lambda p: [cert(p).pop("first_id"), cert(p).pop("last_id")])
    assert err.field == "payload.electricity[0].certificate"
    assert "either one certificate" in err.detail


def test_range_needs_both_ends():
    err = refused(lambda p: cert(p).pop("last_id"))
    assert err.field == "payload.electricity[0].certificate.last_id"
    assert "needs both first_id and last_id" in err.detail


def test_ppa_needs_total_mwh():
    def change(p: dict[str, Any]) -> None:
        set_ppa(p)
        del cert(p)["total_mwh"]

    err = refused(change)
    assert isinstance(err, MalformedError)
    assert err.field == "payload.electricity[0].certificate.total_mwh"
    assert "face value" in err.detail


def test_ppa_cannot_be_a_serial_range():
    def change(p: dict[str, Any]) -> None:
        set_ppa(p)
        del cert(p)["id"]
        cert(p).update(first_id="PPA-1", last_id="PPA-9")

    err = refused(change)
    assert err.field == "payload.electricity[0].certificate.id"
    assert "serial ranges are for GEC and I-REC" in err.detail


def test_natural_gas_is_measured_in_nm3():
    err = refused(lambda p: p["activity_data"]["fuels"][0].update(unit="kg"))
    assert err.field == "payload.activity_data.fuels[0].unit"
    assert "'Nm3' for natural_gas" in err.detail


def test_anode_effect_minutes_need_cell_technology():
    err = refused(lambda p: p["activity_data"].pop("cell_technology"))
    assert err.field == "payload.activity_data.cell_technology"
    assert "PFC slope" in err.detail


def test_evidence_hash_is_lowercase_hex():
    err = refused(lambda p: p["evidence"][0].update(sha256="AB" * 32))
    assert err.field == "payload.evidence[0].sha256"
    assert "SHA-256" in err.detail


# --- broken domain rules ---------------------------------------------------------------------


def test_mass_must_be_positive():
    err = refused(lambda p: p.update(mass_kg=0))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.mass_kg"
    assert "greater than 0" in err.detail


def test_energy_must_not_be_negative():
    err = refused(lambda p: p["electricity"][1].update(kwh=-5))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.electricity[1].kwh"
    assert "at least 0" in err.detail


def test_mass_input_must_not_be_negative():
    err = refused(lambda p: p["metal_inputs"].update(pre_consumer_scrap_kg=-1))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.metal_inputs.pre_consumer_scrap_kg"


def test_production_period_runs_forward():
    err = refused(lambda p: p["production_period"].update(start="2025-03-05"))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.production_period.end"
    assert "before start 2025-03-05" in err.detail


def test_batch_cannot_outweigh_its_inputs():
    err = refused(lambda p: p["metal_inputs"].update(own_electrolysis_kg=23999))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.metal_inputs"
    assert "23,999 kg, less than the batch mass of 24,000 kg" in err.detail


def test_casting_loss_within_tolerance():
    # 24,000 / 0.95 = 25,263.2: 25,264 kg of inputs loses more than 5 %.
    err = refused(lambda p: p["metal_inputs"].update(own_electrolysis_kg=25264))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.metal_inputs"
    assert "exceeds the tolerance of 5 %" in err.detail


def test_casting_loss_at_the_tolerance_is_accepted():
    p = base()
    p["metal_inputs"]["own_electrolysis_kg"] = 25263  # 24,000 >= 25,263 x 0.95 = 23,999.85
    p["electricity"][1]["kwh"] = 40000
    assert parse_registration(p).metal_inputs.total_kg == 25263


def mixed_with_purchased(p: dict[str, Any], *refs: dict[str, Any]) -> None:
    p["metal_inputs"].update(own_electrolysis_kg=20240, purchased_primary_kg=4000)
    p["metal_inputs"]["purchased_primary_batches"] = list(refs)


def test_named_purchased_batches_within_purchased_primary():
    def change(p: dict[str, Any]) -> None:
        mixed_with_purchased(
            p,
            {"smelter_id": "nm-baotou-aluminium", "batch_id": "NM-1", "mass_kg": 3000},
            {"smelter_id": "nm-baotou-aluminium", "batch_id": "NM-2", "mass_kg": 1001},
        )

    err = refused(change)
    assert isinstance(err, InvalidError)
    assert err.field == "payload.metal_inputs.purchased_primary_batches"
    assert "4,001 kg, more than the purchased_primary_kg of 4,000 kg" in err.detail


def test_named_purchased_batches_listed_once():
    ref = {"smelter_id": "nm-baotou-aluminium", "batch_id": "NM-1", "mass_kg": 1000}
    err = refused(lambda p: mixed_with_purchased(p, ref, dict(ref)))
    assert err.field == "payload.metal_inputs.purchased_primary_batches[1]"
    assert "a second time" in err.detail


def test_batch_cannot_name_itself_as_input():
    ref = {"smelter_id": "yn-lancang-aluminium", "batch_id": "YN-2025-0001", "mass_kg": 1000}
    err = refused(lambda p: mixed_with_purchased(p, ref))
    assert err.field == "payload.metal_inputs.purchased_primary_batches[0]"
    assert "names this batch itself" in err.detail


def remelt(p: dict[str, Any], route: str, **inputs: int) -> None:
    """Turn the base into a small remelt batch with the given inputs."""
    p["route"] = route
    p["metal_inputs"] = {
        "own_electrolysis_kg": 0,
        "purchased_primary_kg": 0,
        "pre_consumer_scrap_kg": 0,
        "post_consumer_scrap_kg": 0,
        **inputs,
    }
    p["mass_kg"] = 20000
    p["electricity"] = [{"type": "grid", "kwh": 3000, "grid_region": "CN-GD"}]
    p["activity_data"] = {"fuels": [{"fuel": "natural_gas", "amount": "80", "unit": "Nm3"}]}


def test_primary_route_needs_primary_metal():
    err = refused(lambda p: remelt(p, "primary", post_consumer_scrap_kg=20000))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.route"
    assert "'primary' needs primary metal" in err.detail


def test_secondary_route_needs_scrap():
    err = refused(lambda p: p.update(route="secondary"))
    assert err.field == "payload.route"
    assert "'secondary' needs scrap" in err.detail


def test_mixed_route_needs_both():
    err = refused(lambda p: remelt(p, "mixed", post_consumer_scrap_kg=20000))
    assert err.field == "payload.route"
    assert "both primary metal and scrap" in err.detail


def test_electrolysis_below_physical_minimum_from_ac_power():
    err = refused(lambda p: p["activity_data"].update(ac_power_kwh_per_t=10500))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.activity_data.ac_power_kwh_per_t"
    assert "physically impossible" in err.detail
    assert "11,000" in err.detail


def test_electrolysis_below_physical_minimum_from_total_electricity():
    def change(p: dict[str, Any]) -> None:
        del p["activity_data"]
        p["electricity"][1]["kwh"] = 0
        p["electricity"][0]["kwh"] = 260000  # 260,000 / 24.24 t = 10,726 kWh/t
        cert(p).update(last_id=gec("202502000036011"), mwh="260")

    err = refused(change)
    assert isinstance(err, InvalidError)
    assert err.field == "payload.electricity"
    assert "10,726 kWh/t, physically impossible" in err.detail


def test_electricity_covers_the_stated_electrolysis_power():
    # 13,500 kWh/t x 24.24 t = 327,240 kWh > 325,000 kWh listed.
    err = refused(lambda p: p["activity_data"].update(ac_power_kwh_per_t=13500))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.electricity"
    assert "less than the 327,240 kWh electrolysis alone needs" in err.detail


def test_grid_source_needs_grid_region():
    err = refused(lambda p: p["electricity"][1].pop("grid_region"))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.electricity[1].grid_region"
    assert "required for a grid source" in err.detail


def test_cannot_claim_more_mwh_than_the_source_consumed():
    def change(p: dict[str, Any]) -> None:
        set_ppa(p, mwh="300.001")

    err = refused(change)
    assert isinstance(err, InvalidError)
    assert err.field == "payload.electricity[0].certificate.mwh"
    assert "more than the 300,000 kWh this source consumed" in err.detail


def test_cannot_claim_more_than_the_face_value():
    err = refused(lambda p: set_ppa(p, total_mwh="250"))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.electricity[0].certificate.mwh"
    assert "more than the certificate's total_mwh of 250" in err.detail


def test_claim_must_be_positive():
    err = refused(lambda p: set_ppa(p, mwh="0"))
    assert err.field == "payload.electricity[0].certificate.mwh"
    assert "greater than 0" in err.detail


def test_certificate_cannot_back_fossil_power():
    def change(p: dict[str, Any]) -> None:
        p["electricity"][0]["type"] = "captive_coal"

    err = refused(change)
    assert isinstance(err, InvalidError)
    assert err.field == "payload.electricity[0].certificate"
    assert "cannot back a captive_coal source" in err.detail


def test_gec_range_within_one_project():
    err = refused(lambda p: cert(p).update(last_id="11012019061553088" + "202502000040011"))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.electricity[0].certificate.last_id"
    assert "differs from first_id" in err.detail and "in its project" in err.detail


def test_gec_range_runs_low_to_high():
    err = refused(lambda p: cert(p).update(last_id=gec("202502000010011")))
    assert err.field == "payload.electricity[0].certificate.last_id"
    assert "comes before first_id" in err.detail


def test_gec_claim_equals_number_of_codes():
    err = refused(lambda p: cert(p).update(mwh="299"))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.electricity[0].certificate.mwh"
    assert "does not match the 300 GEC certificate(s)" in err.detail


def test_single_gec_code_is_one_mwh():
    def change(p: dict[str, Any]) -> None:
        p["electricity"][0]["certificate"] = {
            "scheme": "GEC",
            "id": gec("202502000010111"),
            "mwh": "2",
            "vintage": "2025-02",
        }

    err = refused(change)
    assert err.field == "payload.electricity[0].certificate.mwh"
    assert "does not match the 1 GEC certificate(s)" in err.detail


def test_gec_total_is_implied_by_the_codes():
    err = refused(lambda p: cert(p).update(total_mwh="500"))
    assert err.field == "payload.electricity[0].certificate.total_mwh"
    assert "does not match the 300 certificate(s)" in err.detail


def test_irec_range_shares_prefix_and_width():
    def change(p: dict[str, Any]) -> None:
        p["electricity"][0]["certificate"] = {
            "scheme": "I-REC",
            "first_id": "IREC-CN-2025-0001",
            "last_id": "IREC-CN-2025-00300",
            "mwh": "300",
            "vintage": "2025-02",
        }

    err = refused(change)
    assert err.field == "payload.electricity[0].certificate.last_id"
    assert "prefix and serial length" in err.detail


def test_range_serials_fit_64_bits():
    def change(p: dict[str, Any]) -> None:
        p["electricity"][0]["certificate"] = {
            "scheme": "I-REC",
            "first_id": "IREC-" + "1" * 19,
            "last_id": "IREC-" + "1" * 18 + "2",
            "mwh": "2",
            "vintage": "2025-02",
        }

    err = refused(change)
    assert err.field == "payload.electricity[0].certificate.last_id"
    assert "at most 18 digits" in err.detail


def test_vintage_not_after_production():
    def later(p: dict[str, Any]) -> None:
        cert(p).update(
            first_id=gec("202504000010111"), last_id=gec("202504000040011"), vintage="2025-04"
        )

    err = refused(later)
    assert isinstance(err, InvalidError)
    assert err.field == "payload.electricity[0].certificate.vintage"
    assert "produced in 2025-04, after the production period, which ends 2025-03-04" in err.detail


def test_the_vintage_is_read_from_the_gec_code():
    """A GEC whose code says 2025-02 cannot be declared of 2019-01 (issue 11)."""
    err = refused(lambda p: cert(p).update(vintage="2019-01"))
    assert err.field == "payload.electricity[0].certificate.vintage"
    assert "contradicts the certificate code, which states production in 2025-02" in err.detail
    undeclared = base()
    cert(undeclared).pop("vintage")
    months = parse_registration(undeclared).electricity[0].certificate.production_months
    assert months == ("2025-02",)


def test_a_gec_older_than_24_months_before_production_is_refused():
    def old(p: dict[str, Any]) -> None:
        cert(p).update(first_id=gec("202302000010111"), last_id=gec("202302000040011"))
        cert(p).pop("vintage")

    err = refused(old)
    assert err.field == "payload.electricity[0].certificate.vintage"
    assert "more than 24 months before the production period starts" in err.detail
    # 2023-03 is exactly 24 months before 2025-03: still valid
    edge = base()
    cert(edge).update(first_id=gec("202303000010111"), last_id=gec("202303000040011"))
    cert(edge).pop("vintage")
    assert parse_registration(edge).electricity[0].certified_kwh == 300_000


def test_a_gec_range_shares_every_field_but_the_sequence():
    err = refused(lambda p: cert(p).update(last_id=gec("202502000040012")))
    assert err.field == "payload.electricity[0].certificate.last_id"
    assert "in its trade_class" in err.detail
    err = refused(lambda p: cert(p).update(last_id=gec("202503000040011")))
    assert "in its production_month" in err.detail


def test_anode_must_contain_carbon():
    err = refused(lambda p: p["activity_data"].update(anode_sulphur_pct="60", anode_ash_pct="40"))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.activity_data.anode_ash_pct"
    assert "no carbon" in err.detail


def test_evidence_listed_once():
    err = refused(lambda p: p["evidence"].append(dict(p["evidence"][0])))
    assert isinstance(err, InvalidError)
    assert err.field == "payload.evidence[1].sha256"
    assert "list each document once" in err.detail


# --- derived values ----------------------------------------------------------------------------


def test_derived_values_of_the_hydro_batch():
    derived = derive(parse_registration(base())).to_dict()
    assert derived == {
        "metal_input_kg": 24240,
        "recycled_content_pre_consumer": "0.0000",
        "recycled_content_post_consumer": "0.0000",
        "recycled_content_total": "0.0000",
        "electricity_total_kwh": 325000,
        # 325,000 kWh / 24 t = 13,541.666...
        "electricity_kwh_per_t": "13541.6667",
        # 300,000 certificate-backed kWh of 325,000
        "renewable_kwh_certified": 300000,
        "renewable_share": "0.9231",
        "renewable_kwh_uncertified": 0,
        "renewable_share_uncertified": "0.0000",
        # all metal from own electrolysis, whose electricity is 92.31 % certified
        "own_electrolysis_share": "1.0000",
        "green_power_share_primary": "0.9231",
        # certificates of 2025-02 for metal of 2025-03
        "certificate_time_matching": "same_year",
    }


def test_uncertified_hydro_is_reported_apart():
    p = base()
    del p["electricity"][0]["certificate"]
    derived = derive(parse_registration(p))
    assert derived.renewable_kwh_certified == 0
    assert derived.renewable_share == 0
    assert derived.renewable_kwh_uncertified == 300000
    assert derived.to_dict()["renewable_share_uncertified"] == "0.9231"


def test_partial_certificate_counts_only_what_it_backs():
    p = base()
    set_ppa(p, mwh="120.5", total_mwh="300")
    cert(p)["gec_serials"] = [
        {"first_id": gec("202502000010111"), "last_id": gec("202502000040011")}
    ]
    derived = derive(parse_registration(p))
    assert derived.renewable_kwh_certified == 120500
    # the 179,500 hydro kWh the PPA does not cover are renewable but uncertified
    assert derived.renewable_kwh_uncertified == 179500
    assert derived.to_dict()["renewable_share"] == "0.3708"  # 120,500 / 325,000 = 0.37077


def test_a_contract_without_the_gecs_it_carried_certifies_nothing():
    """NDRC/MoF/NEA 2023 No. 1044: the GEC is the sole proof of renewable attributes."""
    p = base()
    set_ppa(p, mwh="300")
    derived = derive(parse_registration(p))
    assert derived.renewable_kwh_certified == 0
    assert derived.renewable_kwh_uncertified == 300_000


def test_recycled_content_shares_of_total_input():
    p = base()
    remelt(p, "secondary", purchased_primary_kg=2000, pre_consumer_scrap_kg=2000)
    p["metal_inputs"]["post_consumer_scrap_kg"] = 16000
    p["mass_kg"] = 19600
    derived = derive(parse_registration(p)).to_dict()
    assert derived["recycled_content_pre_consumer"] == "0.1000"
    assert derived["recycled_content_post_consumer"] == "0.8000"
    assert derived["recycled_content_total"] == "0.9000"
    assert derived["electricity_kwh_per_t"] == "153.0612"  # 3,000 kWh / 19.6 t


def test_batch_without_electricity_has_no_share():
    p = base()
    remelt(p, "secondary", post_consumer_scrap_kg=20000)
    p["electricity"] = []
    derived = derive(parse_registration(p)).to_dict()
    assert derived["electricity_total_kwh"] == 0
    assert derived["renewable_share"] is None
    assert derived["renewable_share_uncertified"] is None


def test_parse_does_not_change_its_input():
    p = base()
    before = copy.deepcopy(p)
    parse_registration(p)
    assert p == before


def test_the_documented_example_parses():
    text = (ROOT / "docs" / "batches.md").read_text()
    example = text.split("```json\n", 1)[1].split("```", 1)[0]
    derived = derive(parse_registration(json.loads(example)))
    assert derived.to_dict()["renewable_share"] == "0.9231"
