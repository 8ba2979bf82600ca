"""Evaluate a batch's facts against a rule set: which grade, and why.

Every criterion of every grade is evaluated and reported, not only the first
failure: an evaluation centre shows a smelter what it missed, and an auditor
re-running the evaluation offline must see the same rows the centre saw. The
engine is pure: the same rule set and facts always give the same result, which
is what lets the ledger re-check a ``grade.issue`` when it is appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ledger.grading.facts import BatchFacts
from ledger.grading.rulesets import (
    MARKET_BASED,
    TIME_MATCHING_ORDER,
    CertifiedRenewableShareAtLeast,
    Combination,
    Criterion,
    ElectricityAtMost,
    Flag,
    FootprintBelow,
    OneOf,
    RecycledContentAtLeast,
    RuleSet,
    ShareAtLeast,
    TimeMatching,
)


@dataclass(frozen=True)
class CriterionResult:
    """One row: a criterion (leaf or all/any) with the value it saw and what it needed."""

    criterion: str
    path: str
    value: str
    threshold: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "path": self.path,
            "value": self.value,
            "threshold": self.threshold,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class GradeResult:
    """Whether one grade's criteria pass, with every row, parents before children."""

    grade: str
    label: str | None
    passed: bool
    criteria: tuple[CriterionResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "grade": self.grade,
            "label": self.label,
            "passed": self.passed,
            "criteria": [row.to_dict() for row in self.criteria],
        }


@dataclass(frozen=True)
class Evaluation:
    """The outcome of grading one batch under one rule set version.

    ``grade`` is the first (best) grade whose criteria pass, and None when none
    passes or the rule set is not applicable. The per-grade rows are given even
    when not applicable, so a reader sees what the metal would have met.
    """

    ruleset_id: str
    ruleset_version: str
    illustrative: bool
    applicable: bool
    reason: str | None
    grade: str | None
    grades: tuple[GradeResult, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, strings and integers only, so it may be signed or stored."""
        return {
            "ruleset_id": self.ruleset_id,
            "ruleset_version": self.ruleset_version,
            "illustrative": self.illustrative,
            "applicable": self.applicable,
            "reason": self.reason,
            "grade": self.grade,
            "grades": [result.to_dict() for result in self.grades],
        }


@dataclass(frozen=True)
class _Outcome:
    """A criterion's row plus its children's outcomes, kept to explain failures."""

    row: CriterionResult
    children: tuple[_Outcome, ...] = ()


def evaluate(ruleset: RuleSet, facts: BatchFacts) -> Evaluation:
    """Grade ``facts`` under ``ruleset``: applicability, best grade, every criterion."""
    reason = not_applicable_reason(ruleset, facts)
    results = tuple(
        _grade_result(grade.name, grade.label, _judge(grade.criteria, ruleset, facts))
        for grade in ruleset.grades
    )
    best = None if reason else next((r.grade for r in results if r.passed), None)
    return Evaluation(
        ruleset_id=ruleset.ruleset_id,
        ruleset_version=ruleset.version,
        illustrative=ruleset.illustrative,
        applicable=reason is None,
        reason=reason,
        grade=best,
        grades=results,
    )


def supports(ruleset: RuleSet, facts: BatchFacts, grade: str) -> bool:
    """Whether the batch meets ``grade``'s criteria (and the rule set applies to it).

    A batch that meets a better grade still supports a lower one: the lower
    claim is true. An unknown grade name is not supported.
    """
    return unsupported_reason(ruleset, facts, grade) is None


def unsupported_reason(ruleset: RuleSet, facts: BatchFacts, grade: str) -> str | None:
    """None when ``supports`` holds, else one sentence a refusal can carry as its detail."""
    target = ruleset.grade(grade)
    if target is None:
        return f"rule set {_name(ruleset)} has no grade '{grade}'; its grades are " + ", ".join(
            ruleset.grade_names
        )
    reason = not_applicable_reason(ruleset, facts)
    if reason is not None:
        return reason
    outcome = _judge(target.criteria, ruleset, facts)
    if outcome.row.passed:
        return None
    missed = "; ".join(
        f"{row.criterion} is {row.value}, needs {row.threshold}" for row in _failures(outcome)
    )
    return f"the batch does not meet grade '{grade}' of rule set {_name(ruleset)}: {missed}"


def not_applicable_reason(ruleset: RuleSet, facts: BatchFacts) -> str | None:
    """Why the rule set cannot grade this batch at all, or None when it can.

    The boundary test only matters to rule sets that compare footprints: a
    threshold in one boundary says nothing about a footprint in another.
    """
    covered = ruleset.applies_to
    if facts.product_form not in covered.product_forms:
        return (
            f"product form {facts.product_form} is not covered by rule set {_name(ruleset)}, "
            f"which grades {', '.join(covered.product_forms)}"
        )
    if facts.route not in covered.routes:
        return (
            f"route {facts.route} is not covered by rule set {_name(ruleset)}, "
            f"which grades {', '.join(covered.routes)}"
        )
    boundary = ruleset.footprint_boundary
    if (
        ruleset.uses_footprint
        and facts.declared_boundary != boundary
        and facts.computed_for(boundary) is None
    ):
        return (
            f"the footprint is declared {facts.declared_boundary} but rule set {_name(ruleset)} "
            f"states its thresholds {boundary}, and no computed {boundary} footprint exists"
        )
    return None


def expires_at(issued_at: date, ruleset: RuleSet) -> date:
    """First day a grade issued on ``issued_at`` is no longer valid."""
    day = issued_at.date() if isinstance(issued_at, datetime) else issued_at
    return day + timedelta(days=ruleset.validity_days)


def _name(ruleset: RuleSet) -> str:
    return f"{ruleset.ruleset_id} {ruleset.version}"


def _grade_result(name: str, label: str | None, outcome: _Outcome) -> GradeResult:
    return GradeResult(name, label, outcome.row.passed, tuple(_rows(outcome)))


def _rows(outcome: _Outcome) -> list[CriterionResult]:
    rows = [outcome.row]
    for child in outcome.children:
        rows.extend(_rows(child))
    return rows


def _failures(outcome: _Outcome) -> list[CriterionResult]:
    """The failed leaves that made a failed criterion fail (for all and any alike)."""
    if not outcome.children:
        return [outcome.row]
    failed = [child for child in outcome.children if not child.row.passed]
    return [row for child in failed for row in _failures(child)]


def _judge(criterion: Criterion, ruleset: RuleSet, facts: BatchFacts) -> _Outcome:
    if isinstance(criterion, Combination):
        return _judge_combination(criterion, ruleset, facts)
    if isinstance(criterion, FootprintBelow):
        return _Outcome(_judge_footprint(criterion, ruleset, facts))
    if isinstance(criterion, CertifiedRenewableShareAtLeast):
        return _Outcome(_at_least(criterion, facts.renewable_share_certified))
    if isinstance(criterion, RecycledContentAtLeast):
        return _Outcome(_at_least(criterion, _recycled(facts, criterion.basis)))
    if isinstance(criterion, ShareAtLeast):
        return _Outcome(_share_fact_at_least(criterion, facts))
    if isinstance(criterion, ElectricityAtMost):
        return _Outcome(_electricity_at_most(criterion, facts))
    if isinstance(criterion, TimeMatching):
        return _Outcome(_time_matching(criterion, facts))
    if isinstance(criterion, OneOf):
        value = getattr(facts, criterion.fact)
        allowed = ", ".join(criterion.allowed)
        row = CriterionResult(
            criterion.name, criterion.path, value, f"one of {allowed}", value in criterion.allowed
        )
        return _Outcome(row)
    return _Outcome(_judge_flag(criterion, facts))


NOT_STATED = "not stated (facts from before method alu-ledger-footprint/2)"


def _share_fact_at_least(criterion: ShareAtLeast, facts: BatchFacts) -> CriterionResult:
    fact = {
        "own_electrolysis_share_at_least": facts.own_electrolysis_share,
        "green_power_share_of_primary_at_least": facts.green_power_share_primary,
    }[criterion.name]
    threshold = f">= {criterion.share}"
    if fact is None:
        return CriterionResult(criterion.name, criterion.path, NOT_STATED, threshold, False)
    return CriterionResult(
        criterion.name, criterion.path, str(fact), threshold, fact >= criterion.share
    )


def _electricity_at_most(criterion: ElectricityAtMost, facts: BatchFacts) -> CriterionResult:
    value = facts.electricity_kwh_per_t
    threshold = f"<= {criterion.kwh_per_t} kWh/t"
    passed = value is not None and value <= criterion.kwh_per_t
    shown = NOT_STATED if value is None else str(value)
    return CriterionResult(criterion.name, criterion.path, shown, threshold, passed)


def _time_matching(criterion: TimeMatching, facts: BatchFacts) -> CriterionResult:
    value = facts.certificate_time_matching
    threshold = f"{criterion.at_least} or closer"
    if value is None:
        return CriterionResult(criterion.name, criterion.path, NOT_STATED, threshold, False)
    order = TIME_MATCHING_ORDER
    passed = value != "none" and order.index(value) <= order.index(criterion.at_least)
    return CriterionResult(criterion.name, criterion.path, value, threshold, passed)


def _judge_combination(criterion: Combination, ruleset: RuleSet, facts: BatchFacts) -> _Outcome:
    """Every child is judged, even after the result is known, so every row is reported."""
    children = tuple(_judge(child, ruleset, facts) for child in criterion.criteria)
    count, passed = len(children), sum(child.row.passed for child in children)
    if criterion.mode == "all":
        threshold, ok = f"all of {count}", passed == count
    else:
        threshold, ok = f"at least 1 of {count}", passed >= 1
    row = CriterionResult(
        criterion.mode, criterion.path, f"{passed} of {count} passed", threshold, ok
    )
    return _Outcome(row, children)


def _judge_footprint(
    criterion: FootprintBelow, ruleset: RuleSet, facts: BatchFacts
) -> CriterionResult:
    """Compare only footprints stated in the rule set's boundary; anything else fails."""
    readings = {
        "declared": _declared_reading(ruleset, facts),
        "computed": _computed_reading(ruleset, facts, criterion.method),
    }
    bases = ("declared", "computed") if criterion.basis == "both" else (criterion.basis,)
    passed = all(_below(readings[basis], criterion) for basis in bases)
    if len(bases) == 1:
        value = str(readings[bases[0]])
    else:
        value = ", ".join(f"{basis} {readings[basis]}" for basis in bases)
    return CriterionResult(criterion.name, criterion.path, value, criterion.threshold_text, passed)


def _declared_reading(ruleset: RuleSet, facts: BatchFacts) -> int | str:
    """The declared value, or why it cannot be compared (declared in another boundary)."""
    if facts.declared_boundary != ruleset.footprint_boundary:
        return f"n/a (declared boundary {facts.declared_boundary})"
    return facts.declared_kg_co2e_per_t


def _computed_reading(ruleset: RuleSet, facts: BatchFacts, method: str) -> int | str:
    if method == MARKET_BASED:
        computed = facts.computed_for(ruleset.footprint_boundary)
    elif facts.method is None:
        return NOT_STATED
    elif method == "direct":
        computed = facts.direct_kg_co2e_per_t
    elif ruleset.footprint_boundary == "cradle_to_gate":
        computed = facts.location_total_kg_co2e_per_t
    else:
        computed = facts.location_scope1_2_kg_co2e_per_t
    return "not computable" if computed is None else computed


def _below(reading: int | str, criterion: FootprintBelow) -> bool:
    if isinstance(reading, str):
        return False
    limit = criterion.kg_co2e_per_t
    return reading <= limit if criterion.inclusive else reading < limit


def _recycled(facts: BatchFacts, basis: str) -> Decimal:
    shares = {"pre": facts.recycled_pre, "post": facts.recycled_post, "total": facts.recycled_total}
    return shares[basis]


def _at_least(
    criterion: CertifiedRenewableShareAtLeast | RecycledContentAtLeast, value: Decimal
) -> CriterionResult:
    """Shares compare as exact decimals: "0.90" needs 0.9 or more, no rounding."""
    share = criterion.share
    return CriterionResult(
        criterion.name, criterion.path, str(value), f">= {share}", value >= share
    )


def _judge_flag(criterion: Flag, facts: BatchFacts) -> CriterionResult:
    if criterion.name == "footprint_check_consistent":
        check = facts.footprint_check
        return CriterionResult(
            criterion.name, criterion.path, check, "consistent", check == "consistent"
        )
    flags = {
        "third_party_verified": facts.third_party_verified,
        "activity_data_present": facts.activity_data_present,
    }
    held = flags[criterion.name]
    return CriterionResult(criterion.name, criterion.path, _yes_no(held), "true", held)


def _yes_no(value: bool) -> str:
    return "true" if value else "false"
