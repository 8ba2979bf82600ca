"""Grading rule sets: the payload of ``ruleset.publish``, parsed into frozen values.

Green low-carbon aluminium grades (T/CNIA 0245-2024) have no public numeric
thresholds, so the ledger hard-codes none: an evaluation centre signs a rule
set and the ledger grades batches against exactly that document. Parsing is
strict because a rule set is signed once and read for years: the JSON Schema
checks the shape, then code checks what a schema cannot say (grade names
unique, criteria nesting depth) and repeats the value ranges so that a value
object can never hold a threshold the schema would refuse.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from ledger.errors import InvalidError, MalformedError
from ledger.footprint.factors import available_versions
from ledger.grading.schema import check_ruleset_shape

FOOTPRINT_THRESHOLD_MIN = 10
FOOTPRINT_THRESHOLD_MAX = 50_000
VALIDITY_DAYS_MAX = 3660
MAX_CRITERIA_DEPTH = 4
FLAG_CRITERIA = ("third_party_verified", "footprint_check_consistent", "activity_data_present")


MARKET_BASED = "market_based"
FOOTPRINT_METHODS = (MARKET_BASED, "location_based", "direct")
TIME_MATCHING_ORDER = ("same_month", "same_year", "within_validity", "none")


@dataclass(frozen=True)
class FootprintBelow:
    """Footprint (in the rule set's boundary; ``direct`` in its own) below a threshold, kg
    CO2e per tonne; ``method`` says which electricity accounting (or none) it counts."""

    kg_co2e_per_t: int
    basis: str  # declared | computed | both
    inclusive: bool
    path: str
    method: str = MARKET_BASED

    @property
    def name(self) -> str:
        if self.method == MARKET_BASED:
            return f"footprint_below[{self.basis}]"
        return f"footprint_below[{self.method}]"

    @property
    def threshold_text(self) -> str:
        return f"{'<=' if self.inclusive else '<'} {self.kg_co2e_per_t}"

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kg_co2e_per_t": self.kg_co2e_per_t, "basis": self.basis}
        if self.inclusive:
            body["inclusive"] = True
        if self.method != MARKET_BASED:
            body["method"] = self.method
        return {"footprint_below": body}


@dataclass(frozen=True)
class ShareAtLeast:
    """A share fact of the batch at least ``share``: ``own_electrolysis_share_at_least``
    or ``green_power_share_of_primary_at_least``."""

    name: str
    share: Decimal
    path: str

    def to_dict(self) -> dict[str, Any]:
        return {self.name: {"share": str(self.share)}}


@dataclass(frozen=True)
class ElectricityAtMost:
    """Electricity per tonne of batch at most ``kwh_per_t``."""

    kwh_per_t: int
    path: str

    name: ClassVar[str] = "electricity_at_most"

    def to_dict(self) -> dict[str, Any]:
        return {self.name: {"kwh_per_t": self.kwh_per_t}}


@dataclass(frozen=True)
class TimeMatching:
    """Certified electricity produced at least as close to the batch as ``at_least``."""

    at_least: str
    path: str

    name: ClassVar[str] = "certificate_time_matching"

    def to_dict(self) -> dict[str, Any]:
        return {self.name: {"at_least": self.at_least}}


@dataclass(frozen=True)
class OneOf:
    """The batch's ``route`` or ``product_form`` is one of ``allowed``: a grade's own
    condition (``route_in``, ``product_form_in``)."""

    name: str
    allowed: tuple[str, ...]
    path: str

    @property
    def fact(self) -> str:
        return "route" if self.name == "route_in" else "product_form"

    def to_dict(self) -> dict[str, Any]:
        return {self.name: list(self.allowed)}


@dataclass(frozen=True)
class Evaluation:
    """What a rule set evaluates with: footprint method, GWP set, factor table."""

    method: str
    gwp_set: str
    factor_table_version: str

    def to_dict(self) -> dict[str, str]:
        return {
            "method": self.method,
            "gwp_set": self.gwp_set,
            "factor_table_version": self.factor_table_version,
        }


@dataclass(frozen=True)
class CertifiedRenewableShareAtLeast:
    """Certificate-backed renewable share of the batch's electricity at least ``share``."""

    share: Decimal
    path: str

    name: ClassVar[str] = "certified_renewable_share_at_least"

    def to_dict(self) -> dict[str, Any]:
        return {self.name: {"share": str(self.share)}}


@dataclass(frozen=True)
class RecycledContentAtLeast:
    """Recycled content (pre, post or total, ISO 14021) at least ``share``."""

    share: Decimal
    basis: str  # pre | post | total
    path: str

    @property
    def name(self) -> str:
        return f"recycled_content_at_least[{self.basis}]"

    def to_dict(self) -> dict[str, Any]:
        return {"recycled_content_at_least": {"share": str(self.share), "basis": self.basis}}


@dataclass(frozen=True)
class Flag:
    """A yes/no fact that must hold: one of ``FLAG_CRITERIA``."""

    name: str
    path: str

    def to_dict(self) -> dict[str, Any]:
        return {self.name: True}


@dataclass(frozen=True)
class Combination:
    """``all`` (every criterion passes) or ``any`` (at least one passes)."""

    mode: str  # all | any
    criteria: tuple[Criterion, ...]
    path: str

    @property
    def name(self) -> str:
        return self.mode

    def to_dict(self) -> dict[str, Any]:
        return {self.mode: [criterion.to_dict() for criterion in self.criteria]}


Criterion = (
    Combination
    | FootprintBelow
    | CertifiedRenewableShareAtLeast
    | RecycledContentAtLeast
    | ShareAtLeast
    | ElectricityAtMost
    | TimeMatching
    | OneOf
    | Flag
)
SHARE_CRITERIA = ("own_electrolysis_share_at_least", "green_power_share_of_primary_at_least")


@dataclass(frozen=True)
class Source:
    """Where the thresholds come from; shown with every evaluation."""

    standard: str
    clause: str | None = None
    url: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, str]:
        items = {"standard": self.standard, "clause": self.clause, "url": self.url}
        items["note"] = self.note
        return {key: value for key, value in items.items() if value is not None}


@dataclass(frozen=True)
class AppliesTo:
    """Which batches a rule set grades; others are not applicable."""

    product_forms: tuple[str, ...]
    routes: tuple[str, ...]


@dataclass(frozen=True)
class Grade:
    """One grade and the criteria tree a batch must pass to receive it."""

    name: str
    label: str | None
    criteria: Criterion

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"grade": self.name}
        if self.label is not None:
            out["label"] = self.label
        out["criteria"] = self.criteria.to_dict()
        return out


@dataclass(frozen=True)
class RuleSet:
    """A parsed, valid rule set; grades are ordered best first."""

    ruleset_id: str
    version: str
    title: str
    source: Source
    illustrative: bool
    applies_to: AppliesTo
    footprint_boundary: str
    grades: tuple[Grade, ...]
    validity_days: int
    evaluation: Evaluation | None = None

    @property
    def grade_names(self) -> tuple[str, ...]:
        return tuple(grade.name for grade in self.grades)

    def grade(self, name: str) -> Grade | None:
        return next((grade for grade in self.grades if grade.name == name), None)

    @property
    def uses_footprint(self) -> bool:
        """Whether any grade compares a footprint, so the boundary matters at all."""
        return any(
            isinstance(leaf, FootprintBelow)
            for grade in self.grades
            for leaf in iter_criteria(grade.criteria)
        )

    def to_dict(self) -> dict[str, Any]:
        """The normalised payload (``inclusive`` written only when true)."""
        return {
            "ruleset_id": self.ruleset_id,
            "version": self.version,
            "title": self.title,
            "source": self.source.to_dict(),
            "illustrative": self.illustrative,
            "applies_to": {
                "product_forms": list(self.applies_to.product_forms),
                "routes": list(self.applies_to.routes),
            },
            "footprint_boundary": self.footprint_boundary,
            "grades": [grade.to_dict() for grade in self.grades],
            "validity_days": self.validity_days,
            **({"evaluation": self.evaluation.to_dict()} if self.evaluation else {}),
        }


def iter_criteria(criterion: Criterion) -> Iterator[Criterion]:
    """The criterion and everything below it, parents first."""
    yield criterion
    if isinstance(criterion, Combination):
        for child in criterion.criteria:
            yield from iter_criteria(child)


def parse_ruleset(payload: dict[str, Any]) -> RuleSet:
    """Check a ``ruleset.publish`` payload and return its value object.

    Raises ``MalformedError`` for shape problems and ``InvalidError`` for broken
    rules, each naming the field as ``payload.<path>``.
    """
    check_ruleset_shape(payload)
    source = payload["source"]
    _check_illustrative_note(payload["illustrative"], source)
    return RuleSet(
        ruleset_id=payload["ruleset_id"],
        version=payload["version"],
        title=payload["title"],
        source=Source(
            standard=source["standard"],
            clause=source.get("clause"),
            url=source.get("url"),
            note=source.get("note"),
        ),
        illustrative=payload["illustrative"],
        applies_to=AppliesTo(
            product_forms=tuple(payload["applies_to"]["product_forms"]),
            routes=tuple(payload["applies_to"]["routes"]),
        ),
        footprint_boundary=payload["footprint_boundary"],
        grades=_parse_grades(payload["grades"]),
        validity_days=_validity_days(payload["validity_days"]),
        evaluation=_evaluation(payload.get("evaluation")),
    )


def _evaluation(body: dict[str, Any] | None) -> Evaluation | None:
    """The pinned evaluation parameters; the factor table must exist."""
    if body is None:
        return None
    versions = available_versions()
    if body["factor_table_version"] not in versions:
        raise InvalidError(
            f"factor table {body['factor_table_version']} does not exist; available:"
            f" {', '.join(versions)}",
            field="payload.evaluation.factor_table_version",
        )
    return Evaluation(body["method"], body["gwp_set"], body["factor_table_version"])


def _check_illustrative_note(illustrative: bool, source: dict[str, Any]) -> None:
    """A reader must learn which thresholds are made up before relying on a grade."""
    if illustrative and not source.get("note"):
        raise InvalidError(
            "an illustrative rule set must say in source.note which thresholds no public "
            "source gives",
            field="payload.source.note",
        )


def _validity_days(value: int) -> int:
    if not 1 <= value <= VALIDITY_DAYS_MAX:
        raise MalformedError(
            f"must be a positive number of days, at most {VALIDITY_DAYS_MAX}",
            field="payload.validity_days",
        )
    return value


def _parse_grades(items: list[dict[str, Any]]) -> tuple[Grade, ...]:
    """Grades in order; names unique because ``grade.issue`` refers to a grade by name."""
    if not items:
        raise MalformedError("must list at least one grade", field="payload.grades")
    seen: dict[str, int] = {}
    grades = []
    for index, item in enumerate(items):
        name = item["grade"]
        if name in seen:
            raise InvalidError(
                f"grade name '{name}' is already used by grades[{seen[name]}]; grade names "
                "must be unique because a grade.issue names the grade it awards",
                field=f"payload.grades[{index}].grade",
            )
        seen[name] = index
        path = f"grades[{index}].criteria"
        grades.append(Grade(name, item.get("label"), _parse_criterion(item["criteria"], path, 0)))
    return tuple(grades)


def _parse_criterion(node: dict[str, Any], path: str, depth: int) -> Criterion:
    """One node of a criteria tree; the schema guarantees exactly one key."""
    ((key, body),) = node.items()
    here = f"{path}.{key}"
    if key in ("all", "any"):
        return _parse_combination(key, body, path, here, depth)
    if key == "footprint_below":
        return FootprintBelow(
            kg_co2e_per_t=_footprint_threshold(body["kg_co2e_per_t"], f"{here}.kg_co2e_per_t"),
            basis=body["basis"],
            inclusive=body.get("inclusive", False),
            path=path,
            method=body.get("method", MARKET_BASED),
        )
    if key in SHARE_CRITERIA:
        return ShareAtLeast(key, _share(body["share"], f"{here}.share"), path)
    if key == ElectricityAtMost.name:
        return ElectricityAtMost(body["kwh_per_t"], path)
    if key == TimeMatching.name:
        return TimeMatching(body["at_least"], path)
    if key in ("route_in", "product_form_in"):
        return OneOf(key, tuple(body), path)
    if key == "certified_renewable_share_at_least":
        return CertifiedRenewableShareAtLeast(_share(body["share"], f"{here}.share"), path)
    if key == "recycled_content_at_least":
        return RecycledContentAtLeast(_share(body["share"], f"{here}.share"), body["basis"], path)
    if key in FLAG_CRITERIA:
        return Flag(key, path)
    raise MalformedError("is not a criterion", field=f"payload.{here}")


def _parse_combination(
    mode: str, items: list[dict[str, Any]], path: str, here: str, depth: int
) -> Combination:
    """Nesting is capped so that results stay readable and evaluation stays cheap."""
    if depth >= MAX_CRITERIA_DEPTH:
        raise MalformedError(
            f"criteria may nest all/any at most {MAX_CRITERIA_DEPTH} levels deep",
            field=f"payload.{here}",
        )
    if not items:
        raise MalformedError("must combine at least one criterion", field=f"payload.{here}")
    children = tuple(
        _parse_criterion(item, f"{here}[{index}]", depth + 1) for index, item in enumerate(items)
    )
    return Combination(mode, children, path)


def _footprint_threshold(value: int, path: str) -> int:
    if not FOOTPRINT_THRESHOLD_MIN <= value <= FOOTPRINT_THRESHOLD_MAX:
        raise MalformedError(
            f"must be from {FOOTPRINT_THRESHOLD_MIN} to {FOOTPRINT_THRESHOLD_MAX} kg CO2e per "
            "tonne; write 4.0 t as 4000",
            field=f"payload.{path}",
        )
    return value


def _share(text: str, path: str) -> Decimal:
    share = Decimal(text)
    if not 0 <= share <= 1:
        raise MalformedError(
            'must be a share between "0" and "1" written as a decimal string such as "0.75"',
            field=f"payload.{path}",
        )
    return share
