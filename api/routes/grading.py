"""Grading: published rule sets, issued grades, and evaluation previews."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.body_docs import body_doc
from api.deps import BodyDep, LedgerDep, RecordIndex
from api.errors import EVERY_ROUTE, documented
from ledger import payloads
from ledger.batches.registration import footprint_tolerance
from ledger.errors import MalformedError
from ledger.grading.reads import (
    get_grade,
    get_ruleset,
    grades_of_batch,
    list_rulesets,
    preview_evaluation,
)
from ledger.grading.views import (
    EvaluationPreview,
    GradeList,
    GradeView,
    RulesetList,
    RulesetView,
)

router = APIRouter(tags=["grading"], responses=EVERY_ROUTE)

PREVIEW_FIELDS = ("smelter_id", "batch_id", "ruleset_id", "ruleset_version")


class PreviewRequestModel(BaseModel):
    """What to evaluate (the route reads the body itself, refusing any other member)."""

    model_config = ConfigDict(extra="forbid")

    smelter_id: str = Field(max_length=64, examples=["yn-lancang-aluminium"])
    batch_id: str = Field(max_length=64, examples=["YN-2025-0001"])
    ruleset_id: str = Field(max_length=64, examples=["cnia-green-low-carbon-aluminium"])
    ruleset_version: str = Field(max_length=64, examples=["2025.1"])


@router.post(
    "/v1/evaluations/preview",
    openapi_extra=body_doc(PreviewRequestModel),
    summary="Evaluate a batch under a rule set",
    responses=documented(404, 413),
)
def preview(ledger: LedgerDep, body: BodyDep) -> EvaluationPreview:
    """Body `{smelter_id, batch_id, ruleset_id, ruleset_version}`. The best grade the batch
    meets (or null) and every criterion's value, threshold and verdict. Writes nothing."""
    if not isinstance(body, dict):
        raise MalformedError("must be a JSON object", field="body")
    payloads.exact_fields(body, PREVIEW_FIELDS)
    for name in PREVIEW_FIELDS:
        payloads.text(body, name, max_length=64)
    return EvaluationPreview.model_validate(
        preview_evaluation(
            ledger.engine,
            body["smelter_id"],
            body["batch_id"],
            body["ruleset_id"],
            body["ruleset_version"],
            footprint_tolerance(ledger.kinds),
        )
    )


@router.get("/v1/rulesets", summary="Published rule sets, in ledger order")
def read_rulesets(ledger: LedgerDep) -> RulesetList:
    return list_rulesets(ledger.engine)


@router.get(
    "/v1/rulesets/{ruleset_id}/{version}", summary="One rule set version", responses=documented(404)
)
def read_ruleset(ledger: LedgerDep, ruleset_id: str, version: str) -> RulesetView:
    return get_ruleset(ledger.engine, ruleset_id, version)


@router.get(
    "/v1/grades/{record_index}",
    summary="One grade, with revoked/expired status",
    responses=documented(404),
)
def read_grade(ledger: LedgerDep, record_index: RecordIndex) -> GradeView:
    return get_grade(ledger.engine, record_index)


@router.get(
    "/v1/batches/{smelter_id}/{batch_id}/grades",
    summary="Grades of one batch",
    responses=documented(404),
)
def read_batch_grades(ledger: LedgerDep, smelter_id: str, batch_id: str) -> GradeList:
    return grades_of_batch(ledger.engine, smelter_id, batch_id)
