"""What the ledger answers about rule sets and grades: typed read models.

The REST API returns these as its response models (so the OpenAPI document describes
exactly what is sent), and any other reader gets the same types rather than loose dicts.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ledger.grading.evaluate import GradeResult


class RulesetView(BaseModel):
    ruleset_id: str
    version: str
    publisher_id: str
    record_index: int
    published_at: str
    document: dict[str, Any] = Field(description="the signed ruleset.publish payload")


class RulesetList(BaseModel):
    items: list[RulesetView]


class GradeView(BaseModel):
    """A grade with its status; ``expired`` is judged against the day asked (UTC)."""

    record_index: int
    smelter_id: str
    batch_id: str
    ruleset_id: str
    ruleset_version: str
    grade: str
    issuer_id: str
    issued_at: str
    expires_on: str
    evaluation_date: str | None
    facts: dict[str, Any] = Field(description="the facts the grade was issued on, as signed")
    expired: bool
    revoked: bool
    revoked_at_index: int | None
    revoke_reason: str | None


class GradeList(BaseModel):
    items: list[GradeView]


class EvaluationPreview(BaseModel):
    """A batch evaluated under a rule set version: the best grade it meets (or null) and
    every criterion's value, threshold and verdict, on the facts it was evaluated on."""

    smelter_id: str
    batch_id: str
    ruleset_id: str
    ruleset_version: str
    illustrative: bool
    applicable: bool
    reason: str | None
    grade: str | None
    grades: list[GradeResult] = Field(description="per grade, every criterion's row")
    facts: dict[str, Any]
