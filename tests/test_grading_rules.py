"""Grading rule sets and the evaluation engine.

Three angles: the shipped rule sets must parse and give the grades a reader of
their sources expects for three realistic batches (a hydro smelter, a coal-grid
smelter, a scrap remelter); every kind of bad rule-set document must be refused
with the field that is wrong; and each criterion semantic (strict vs inclusive,
declared / computed / both, boundary handling, all vs any) is pinned on a small
hand-made rule set so that a change in meaning cannot slip through.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ledger.errors import InvalidError, MalformedError
from ledger.grading import (
    BatchFacts,
    RuleSet,
    evaluate,
    expires_at,
    load_shipped_rulesets,
    parse_ruleset,
    supports,
    unsupported_reason,
)
from ledger.grading.schema import ruleset_schema

ALL_FORMS = ["liquid", "remelt_ingot", "alloy_ingot", "billet", "slab", "wire_rod", "other"]
ALL_ROUTES = ["primary", "secondary", "mixed"]

# --- batches -------------------------------------------------------------------------

YUNNAN_HYDRO = BatchFacts(
    product_form="remelt_ingot",
    route="primary",
    declared_kg_co2e_per_t=3400,
    declared_boundary="cradle_to_gate",
    computed_total_kg_co2e_per_t=3450,
    computed_scope1_2_kg_co2e_per_t=1900,
    renewable_share_certified=Decimal("0.95"),
    recycled_pre=Decimal("0"),
    recycled_post=Decimal("0"),
    recycled_total=Decimal("0"),
    third_party_verified=True,
    footprint_check="consistent",
    activity_data_present=True,
)

COAL_GRID = BatchFacts(
    product_form="remelt_ingot",
    route="primary",
    declared_kg_co2e_per_t=15800,
    declared_boundary="cradle_to_gate",
    computed_total_kg_co2e_per_t=16100,
    computed_scope1_2_kg_co2e_per_t=13200,
    renewable_share_certified=Decimal("0"),
    recycled_pre=Decimal("0"),
    recycled_post=Decimal("0"),
    recycled_total=Decimal("0"),
    third_party_verified=False,
    footprint_check="consistent",
    activity_data_present=True,
)

SCRAP_REMELTER = BatchFacts(
    product_form="billet",
    route="secondary",
    declared_kg_co2e_per_t=900,
    declared_boundary="cradle_to_gate",
    computed_total_kg_co2e_per_t=880,
    computed_scope1_2_kg_co2e_per_t=420,
    renewable_share_certified=Decimal("0.30"),
    recycled_pre=Decimal("0.05"),
    recycled_post=Decimal("0.80"),
    recycled_total=Decimal("0.85"),
    third_party_verified=True,
    footprint_check="consistent",
    activity_data_present=True,
)


def method2(base: BatchFacts, **facts: Any) -> BatchFacts:
    """The facts footprint method 2 adds (provenance of the metal, location-based and direct
    footprints, what they were computed with)."""
    return dataclasses.replace(
        base,
        method="alu-ledger-footprint/2",
        factor_table_version="2025.1",
        gwp_set="AR5",
        ledger_lots=(),
        **facts,
    )


YUNNAN_HYDRO = method2(
    YUNNAN_HYDRO,
    own_electrolysis_share=Decimal("1"),
    green_power_share_primary=Decimal("0.95"),
    electricity_kwh_per_t=13500,
    certificate_time_matching="same_year",
    location_total_kg_co2e_per_t=3500,
    location_scope1_2_kg_co2e_per_t=1950,
    direct_kg_co2e_per_t=1700,
)
COAL_GRID = method2(
    COAL_GRID,
    own_electrolysis_share=Decimal("1"),
    green_power_share_primary=Decimal("0"),
    electricity_kwh_per_t=14000,
    certificate_time_matching="none",
    location_total_kg_co2e_per_t=17000,
    location_scope1_2_kg_co2e_per_t=14100,
    direct_kg_co2e_per_t=1700,
)
SCRAP_REMELTER = method2(
    SCRAP_REMELTER,
    own_electrolysis_share=Decimal("0"),
    green_power_share_primary=Decimal("0"),
    electricity_kwh_per_t=200,
    certificate_time_matching="same_month",
    location_total_kg_co2e_per_t=870,
    location_scope1_2_kg_co2e_per_t=410,
    direct_kg_co2e_per_t=180,
)

BATCHES = {"yunnan_hydro": YUNNAN_HYDRO, "coal_grid": COAL_GRID, "scrap_remelter": SCRAP_REMELTER}

# (applicable, grade) for every shipped rule set and every batch above.
EXPECTED: dict[str, dict[str, tuple[bool, str | None]]] = {
    "yunnan_hydro": {
        "common-low-carbon-aluminium": (True, "low-carbon-aluminium"),
        "fmc-near-zero-primary": (True, None),  # 3,400 and 3,450 are not below 3,000
        "asi-2017-smelter": (True, "smelter-scope1-2-below-8t"),  # computed Scope 1+2 1,900
        "example-green-power-aluminium": (True, "green-power-aluminium"),
        "example-green-low-carbon-aluminium": (True, "tier-2"),  # tier-1 needs < 3,000
    },
    "coal_grid": {
        "common-low-carbon-aluminium": (True, None),
        "fmc-near-zero-primary": (True, None),
        "asi-2017-smelter": (True, None),  # computed Scope 1+2 13,200 is not below 8,000
        "example-green-power-aluminium": (True, None),
        "example-green-low-carbon-aluminium": (True, None),
    },
    "scrap_remelter": {
        "common-low-carbon-aluminium": (True, "low-carbon-aluminium"),
        "fmc-near-zero-primary": (False, None),  # primary only: scrap excluded
        "asi-2017-smelter": (False, None),  # smelters only
        "example-green-power-aluminium": (False, None),  # electrolytic metal only
        "example-green-low-carbon-aluminium": (True, "tier-1"),  # 0.85 recycled content
    },
}


def shipped() -> dict[str, dict[str, Any]]:
    return {payload["ruleset_id"]: payload for payload in load_shipped_rulesets()}


def shipped_ruleset(ruleset_id: str) -> RuleSet:
    return parse_ruleset(shipped()[ruleset_id])


def facts(base: BatchFacts = YUNNAN_HYDRO, **changes: Any) -> BatchFacts:
    return dataclasses.replace(base, **changes)


def make_ruleset(
    *grades: tuple[str, dict[str, Any]],
    boundary: str = "cradle_to_gate",
    routes: list[str] | None = None,
    forms: list[str] | None = None,
) -> RuleSet:
    return parse_ruleset(
        {
            "ruleset_id": "test-rules",
            "version": "0.1.0",
            "title": "Test rule set",
            "source": {"standard": "tests", "note": "made up for tests"},
            "illustrative": True,
            "applies_to": {"product_forms": forms or ALL_FORMS, "routes": routes or ALL_ROUTES},
            "footprint_boundary": boundary,
            "grades": [{"grade": name, "criteria": criteria} for name, criteria in grades],
            "validity_days": 365,
        }
    )


def below(kg: int, basis: str = "declared", **extra: Any) -> dict[str, Any]:
    return {"footprint_below": {"kg_co2e_per_t": kg, "basis": basis, **extra}}


def renewable(share: str) -> dict[str, Any]:
    return {"certified_renewable_share_at_least": {"share": share}}


def recycled(share: str, basis: str) -> dict[str, Any]:
    return {"recycled_content_at_least": {"share": share, "basis": basis}}


def rows(ruleset: RuleSet, batch: BatchFacts, grade_index: int = 0) -> dict[str, Any]:
    """The rows of one grade, by path."""
    result = evaluate(ruleset, batch).grades[grade_index]
    return {row.path: row for row in result.criteria}


# --- the schema and the shipped rule sets --------------------------------------------


def test_schema_is_valid_2020_12_and_closed_everywhere() -> None:
    schema = ruleset_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$id"].startswith("urn:alu-ledger:schemas:ruleset:")

    def closed(node: Any, where: str, conditional: bool = False) -> None:
        """Objects with properties refuse others, except in if/then (they add to one)."""
        if isinstance(node, dict):
            if "properties" in node and not conditional:
                assert node.get("additionalProperties") is False, where
            for key, value in node.items():
                closed(value, f"{where}/{key}", conditional or key in ("if", "then"))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                closed(value, f"{where}/{index}", conditional)

    closed(schema, "#")


def test_every_shipped_ruleset_parses_and_round_trips() -> None:
    payloads = load_shipped_rulesets()
    assert len(payloads) == 5
    for payload in payloads:
        ruleset = parse_ruleset(payload)
        assert ruleset.to_dict() == payload
        assert Draft202012Validator(ruleset_schema()).is_valid(payload)


def test_shipped_rulesets_cite_their_sources() -> None:
    for payload in load_shipped_rulesets():
        source = payload["source"]
        assert source["standard"] and source["note"]
        if payload["illustrative"]:
            assert "ILLUSTRATIVE" in source["note"]
        else:
            assert source["url"].startswith("https://")


def test_cnia_rule_sets_are_illustrative_and_market_ones_are_not() -> None:
    flags = {rid: payload["illustrative"] for rid, payload in shipped().items()}
    assert flags == {
        "common-low-carbon-aluminium": False,
        "fmc-near-zero-primary": False,
        "asi-2017-smelter": False,
        "example-green-power-aluminium": True,
        "example-green-low-carbon-aluminium": True,
    }


def test_expectations_cover_every_shipped_ruleset() -> None:
    for expected in EXPECTED.values():
        assert set(expected) == set(shipped())


@pytest.mark.parametrize(
    ("batch", "ruleset_id"),
    [(batch, rid) for batch, per_set in EXPECTED.items() for rid in per_set],
)
def test_shipped_ruleset_grades(batch: str, ruleset_id: str) -> None:
    evaluation = evaluate(shipped_ruleset(ruleset_id), BATCHES[batch])
    assert (evaluation.applicable, evaluation.grade) == EXPECTED[batch][ruleset_id]
    assert (evaluation.reason is None) == evaluation.applicable
    assert [g.grade for g in evaluation.grades] == list(shipped_ruleset(ruleset_id).grade_names)


def test_fmc_reports_both_footprints_for_the_hydro_smelter() -> None:
    result = evaluate(shipped_ruleset("fmc-near-zero-primary"), YUNNAN_HYDRO)
    (row,) = result.grades[0].criteria
    assert row.criterion == "footprint_below[both]"
    assert row.path == "grades[0].criteria"
    assert row.value == "declared 3400, computed 3450"
    assert row.threshold == "< 3000"
    assert row.passed is False


def test_fmc_is_not_applicable_to_a_secondary_remelter() -> None:
    result = evaluate(shipped_ruleset("fmc-near-zero-primary"), SCRAP_REMELTER)
    assert result.applicable is False
    assert result.reason is not None and "route secondary" in result.reason
    # the rows are still given: the remelter's metal would meet the threshold
    assert result.grades[0].passed is True


def test_asi_fails_the_coal_grid_smelter_on_its_computed_scope1_2() -> None:
    result = evaluate(shipped_ruleset("asi-2017-smelter"), COAL_GRID)
    _all, own, row = result.grades[0].criteria
    assert (own.criterion, own.value, own.passed) == ("own_electrolysis_share_at_least", "1", True)
    assert (row.criterion, row.value, row.threshold, row.passed) == (
        "footprint_below[computed]",
        "13200",
        "< 8000",
        False,
    )


def test_tiered_rule_set_reports_every_criterion_of_every_grade() -> None:
    result = evaluate(shipped_ruleset("example-green-low-carbon-aluminium"), YUNNAN_HYDRO)
    assert [(g.grade, g.passed) for g in result.grades] == [
        ("tier-1", False),
        ("tier-2", True),
        ("tier-3", True),
    ]
    tier1 = {row.path: row for row in result.grades[0].criteria}
    assert len(tier1) == 8  # all, footprint, any, renewable, recycled, three flags
    assert tier1["grades[0].criteria"].value == "4 of 5 passed"
    assert tier1["grades[0].criteria.all[1]"].threshold == "at least 1 of 2"
    assert tier1["grades[0].criteria.all[1].any[0]"].value == "0.95"
    assert tier1["grades[0].criteria.all[1].any[0]"].threshold == ">= 0.90"
    assert tier1["grades[0].criteria.all[1].any[1]"].criterion == "recycled_content_at_least[total]"


def test_evaluation_to_dict_is_json_without_floats() -> None:
    result = evaluate(shipped_ruleset("example-green-low-carbon-aluminium"), SCRAP_REMELTER)
    data = result.to_dict()
    assert data["grade"] == "tier-1" and data["ruleset_version"] == "2.0.0"
    assert data["illustrative"] is True
    text = json.dumps(data)
    assert json.loads(text, parse_float=lambda s: pytest.fail(f"float {s}")) == data
    row = data["grades"][0]["criteria"][0]
    assert set(row) == {"criterion", "path", "value", "threshold", "passed"}


# --- rule-set refusals ----------------------------------------------------------------


def refused(mutate: Any, error: type[Exception] = MalformedError) -> Any:
    payload = copy.deepcopy(shipped()["example-green-low-carbon-aluminium"])
    mutate(payload)
    with pytest.raises(error) as caught:
        parse_ruleset(payload)
    assert type(caught.value) is error
    return caught.value


def test_unknown_field_is_named() -> None:
    err = refused(lambda p: p.update(colour="green"))
    assert err.field == "payload.colour"
    assert "unknown field" in err.detail


def test_unknown_nested_field_is_named() -> None:
    err = refused(lambda p: p["grades"][2]["criteria"]["all"][0]["footprint_below"].update(x=1))
    assert err.field == "payload.grades[2].criteria.all[0].footprint_below.x"


def test_missing_grades_is_named() -> None:
    err = refused(lambda p: p.pop("grades"))
    assert (err.field, err.detail) == ("payload.grades", "required field is missing")


def test_empty_grades_is_refused() -> None:
    err = refused(lambda p: p.update(grades=[]))
    assert (err.field, err.detail) == ("payload.grades", "must list at least one grade")


def test_duplicate_grade_name_breaks_a_rule() -> None:
    err = refused(lambda p: p["grades"][2].update(grade="tier-1"), InvalidError)
    assert err.field == "payload.grades[2].grade"
    assert "already used by grades[0]" in err.detail


def test_share_above_one_is_named() -> None:
    def mutate(payload: dict[str, Any]) -> None:
        payload["grades"][1]["criteria"]["all"][1]["any"][1]["recycled_content_at_least"][
            "share"
        ] = "1.5"

    err = refused(mutate)
    assert err.field == "payload.grades[1].criteria.all[1].any[1].recycled_content_at_least.share"
    assert 'between "0" and "1"' in err.detail


@pytest.mark.parametrize("value", [3000.0, 3000.5])
def test_float_threshold_is_named(value: float) -> None:
    err = refused(
        lambda p: p["grades"][0]["criteria"]["all"][0]["footprint_below"].update(
            kg_co2e_per_t=value
        )
    )
    assert err.field == "payload.grades[0].criteria.all[0].footprint_below.kg_co2e_per_t"
    assert "floating-point" in err.detail


def test_float_share_is_named() -> None:
    err = refused(
        lambda p: p["grades"][0]["criteria"]["all"][1]["any"][0][
            "green_power_share_of_primary_at_least"
        ].update(share=0.9)
    )
    assert err.field.endswith("any[0].green_power_share_of_primary_at_least.share")


def test_threshold_in_tonnes_is_refused() -> None:
    err = refused(
        lambda p: p["grades"][0]["criteria"]["all"][0]["footprint_below"].update(kg_co2e_per_t=3)
    )
    assert err.field == "payload.grades[0].criteria.all[0].footprint_below.kg_co2e_per_t"
    assert "4000" in err.detail


def test_unknown_criterion_is_named() -> None:
    err = refused(lambda p: p["grades"][0]["criteria"]["all"].append({"footprint_under": {}}))
    assert err.field == "payload.grades[0].criteria.all[5].footprint_under"
    assert "is not a criterion" in err.detail


def test_two_criteria_in_one_node_are_refused() -> None:
    err = refused(lambda p: p["grades"][0].update(criteria={**below(3000), **renewable("0.9")}))
    assert err.field == "payload.grades[0].criteria"
    assert "exactly one criterion" in err.detail


def test_empty_combination_is_refused() -> None:
    err = refused(lambda p: p["grades"][0].update(criteria={"any": []}))
    assert err.field == "payload.grades[0].criteria.any"


def test_deep_nesting_is_refused() -> None:
    node: dict[str, Any] = {"activity_data_present": True}
    for _ in range(5):
        node = {"all": [node]}
    err = refused(lambda p: p["grades"][0].update(criteria=node))
    assert err.field == "payload.grades[0].criteria.all[0].all[0].all[0].all[0].all"


def test_validity_period_must_be_positive() -> None:
    err = refused(lambda p: p.update(validity_days=0))
    assert (err.field, err.detail) == ("payload.validity_days", "must be a positive number of days")


def test_illustrative_rule_set_needs_a_note() -> None:
    err = refused(lambda p: p["source"].pop("note"), InvalidError)
    assert err.field == "payload.source.note"


def test_bad_enum_and_version_are_named() -> None:
    assert refused(lambda p: p["applies_to"].update(routes=["tertiary"])).field == (
        "payload.applies_to.routes[0]"
    )
    assert refused(lambda p: p.update(version="1.0")).field == "payload.version"
    assert refused(lambda p: p.update(footprint_boundary="gate")).field == (
        "payload.footprint_boundary"
    )


def test_payload_must_be_an_object() -> None:
    with pytest.raises(MalformedError) as caught:
        parse_ruleset([])  # type: ignore[arg-type]
    assert caught.value.field == "payload"


# --- criteria semantics -----------------------------------------------------------------


def test_strict_below_and_inclusive_threshold() -> None:
    at_limit = facts(declared_kg_co2e_per_t=4000)
    strict = make_ruleset(("g", below(4000)))
    inclusive = make_ruleset(("g", below(4000, inclusive=True)))
    assert evaluate(strict, at_limit).grade is None
    assert evaluate(inclusive, at_limit).grade == "g"
    assert rows(strict, at_limit)["grades[0].criteria"].threshold == "< 4000"
    assert rows(inclusive, at_limit)["grades[0].criteria"].threshold == "<= 4000"
    assert evaluate(inclusive, facts(declared_kg_co2e_per_t=4001)).grade is None


def test_both_basis_needs_declared_and_computed_below() -> None:
    ruleset = make_ruleset(("g", below(3500, "both")))
    assert evaluate(ruleset, facts(computed_total_kg_co2e_per_t=3499)).grade == "g"
    assert evaluate(ruleset, facts(computed_total_kg_co2e_per_t=3600)).grade is None
    assert evaluate(ruleset, facts(declared_kg_co2e_per_t=3600)).grade is None
    missing = facts(computed_total_kg_co2e_per_t=None)
    row = rows(ruleset, missing)["grades[0].criteria"]
    assert (row.value, row.passed) == ("declared 3400, computed not computable", False)


def test_computed_basis_without_computation_fails() -> None:
    ruleset = make_ruleset(("g", below(4000, "computed")))
    row = rows(ruleset, facts(computed_total_kg_co2e_per_t=None))["grades[0].criteria"]
    assert (row.value, row.passed) == ("not computable", False)


def test_declared_in_another_boundary_is_not_compared() -> None:
    scope_declared = facts(declared_boundary="scope1_2", declared_kg_co2e_per_t=1900)
    declared_only = make_ruleset(("g", below(4000, "declared")))
    computed_only = make_ruleset(("g", below(4000, "computed")))
    result = evaluate(declared_only, scope_declared)
    assert result.applicable is True  # a computed cradle-to-gate value exists
    row = result.grades[0].criteria[0]
    assert (row.value, row.passed) == ("n/a (declared boundary scope1_2)", False)
    assert evaluate(computed_only, scope_declared).grade == "g"


def test_boundary_mismatch_without_computation_is_not_applicable() -> None:
    batch = facts(declared_boundary="scope1_2", computed_total_kg_co2e_per_t=None)
    result = evaluate(shipped_ruleset("common-low-carbon-aluminium"), batch)
    assert (result.applicable, result.grade) == (False, None)
    assert result.reason is not None
    assert "declared scope1_2" in result.reason and "cradle_to_gate" in result.reason


def test_scope1_2_rule_set_uses_the_declared_value_when_boundaries_match() -> None:
    ruleset = make_ruleset(("g", below(8000, "declared")), boundary="scope1_2")
    batch = facts(declared_boundary="scope1_2", declared_kg_co2e_per_t=7999)
    assert evaluate(ruleset, batch).grade == "g"
    asi = shipped_ruleset("asi-2017-smelter")
    no_scope = facts(computed_scope1_2_kg_co2e_per_t=None)
    assert evaluate(asi, no_scope).applicable is False


def test_boundary_does_not_matter_without_footprint_criteria() -> None:
    batch = facts(declared_boundary="scope1_2", computed_total_kg_co2e_per_t=None)
    result = evaluate(shipped_ruleset("example-green-power-aluminium"), batch)
    assert (result.applicable, result.grade) == (True, "green-power-aluminium")


def test_all_needs_every_criterion_and_any_needs_one() -> None:
    two = [renewable("0.99"), recycled("0.50", "post")]
    both_fail = facts(renewable_share_certified=Decimal("0.95"))
    one_passes = facts(renewable_share_certified=Decimal("0.99"))
    all_of = make_ruleset(("g", {"all": two}))
    any_of = make_ruleset(("g", {"any": two}))
    assert evaluate(all_of, one_passes).grade is None
    assert evaluate(any_of, one_passes).grade == "g"
    assert evaluate(any_of, both_fail).grade is None
    row = rows(any_of, one_passes)["grades[0].criteria"]
    assert (row.criterion, row.value, row.threshold) == ("any", "1 of 2 passed", "at least 1 of 2")


def test_recycled_bases_are_kept_apart() -> None:
    batch = SCRAP_REMELTER
    for basis, expected in (("pre", False), ("post", True), ("total", True)):
        ruleset = make_ruleset(("g", recycled("0.80", basis)))
        assert (evaluate(ruleset, batch).grade == "g") is expected, basis


def test_flag_criteria() -> None:
    ruleset = make_ruleset(
        (
            "g",
            {
                "all": [
                    {"third_party_verified": True},
                    {"footprint_check_consistent": True},
                    {"activity_data_present": True},
                ]
            },
        )
    )
    assert evaluate(ruleset, YUNNAN_HYDRO).grade == "g"
    flagged = facts(footprint_check="declared_below_computed")
    row = rows(ruleset, flagged)["grades[0].criteria.all[1]"]
    assert (row.value, row.threshold, row.passed) == (
        "declared_below_computed",
        "consistent",
        False,
    )
    row = rows(ruleset, facts(third_party_verified=False))["grades[0].criteria.all[0]"]
    assert (row.value, row.threshold, row.passed) == ("false", "true", False)


def test_grades_are_checked_best_first() -> None:
    ruleset = make_ruleset(("gold", below(2000)), ("silver", below(4000)), ("bronze", below(6000)))
    assert evaluate(ruleset, facts(declared_kg_co2e_per_t=1500)).grade == "gold"
    assert evaluate(ruleset, facts(declared_kg_co2e_per_t=3000)).grade == "silver"
    assert evaluate(ruleset, facts(declared_kg_co2e_per_t=9000)).grade is None


def test_product_form_not_covered() -> None:
    ruleset = make_ruleset(("g", below(4000)), forms=["remelt_ingot"])
    result = evaluate(ruleset, facts(product_form="billet"))
    assert (result.applicable, result.grade) == (False, None)
    assert result.reason is not None and "product form billet" in result.reason


# --- supports, expiry, facts -------------------------------------------------------------


def test_supports_the_grade_met_and_lower_ones() -> None:
    ruleset = shipped_ruleset("example-green-low-carbon-aluminium")
    assert supports(ruleset, YUNNAN_HYDRO, "tier-2") is True
    assert supports(ruleset, YUNNAN_HYDRO, "tier-3") is True
    assert supports(ruleset, YUNNAN_HYDRO, "tier-1") is False
    assert supports(ruleset, YUNNAN_HYDRO, "tier-0") is False
    assert supports(ruleset, COAL_GRID, "tier-3") is False
    fmc = shipped_ruleset("fmc-near-zero-primary")
    assert supports(fmc, SCRAP_REMELTER, "near-zero-primary-aluminium") is False


def test_unsupported_reason_names_only_the_decisive_failures() -> None:
    ruleset = shipped_ruleset("example-green-low-carbon-aluminium")
    reason = unsupported_reason(ruleset, YUNNAN_HYDRO, "tier-1")
    assert reason == (
        "the batch does not meet grade 'tier-1' of rule set example-green-low-carbon-aluminium "
        "2.0.0: footprint_below[both] is declared 3400, computed 3450, needs < 3000"
    )
    assert unsupported_reason(ruleset, YUNNAN_HYDRO, "tier-2") is None
    unknown = unsupported_reason(ruleset, YUNNAN_HYDRO, "gold")
    assert unknown is not None and "no grade 'gold'" in unknown
    coal = unsupported_reason(ruleset, COAL_GRID, "tier-3")
    assert coal is not None
    assert "green_power_share_of_primary_at_least is 0, needs >= 0.50" in coal
    assert "recycled_content_at_least[total] is 0, needs >= 0.20" in coal


def test_expires_at_adds_the_validity_period() -> None:
    ruleset = shipped_ruleset("common-low-carbon-aluminium")
    assert ruleset.validity_days == 365
    assert expires_at(date(2025, 1, 1), ruleset) == date(2026, 1, 1)
    assert expires_at(date(2024, 1, 1), ruleset) == date(2024, 12, 31)  # leap year
    assert expires_at(datetime(2025, 3, 1, 23, 59), ruleset) == date(2026, 3, 1)


def test_facts_round_trip_with_decimal_strings() -> None:
    data = SCRAP_REMELTER.to_dict()
    assert data["recycled_post"] == "0.80"
    assert data["computed_total_kg_co2e_per_t"] == 880
    json.dumps(data)
    assert BatchFacts.from_dict(data) == SCRAP_REMELTER


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"recycled_post": 0.8}, "facts.recycled_post"),
        ({"recycled_post": "1.2"}, "facts.recycled_post"),
        ({"route": "tertiary"}, "facts.route"),
        ({"declared_boundary": "gate"}, "facts.declared_boundary"),
        ({"declared_kg_co2e_per_t": 900.0}, "facts.declared_kg_co2e_per_t"),
        ({"footprint_check": "fine"}, "facts.footprint_check"),
        ({"third_party_verified": 1}, "facts.third_party_verified"),
        ({"colour": "green"}, "facts.colour"),
    ],
)
def test_facts_from_dict_refuses_bad_values(change: dict[str, Any], field: str) -> None:
    with pytest.raises(MalformedError) as caught:
        BatchFacts.from_dict({**SCRAP_REMELTER.to_dict(), **change})
    assert caught.value.field == field
