"""Reading rule sets and grades back, and previewing an evaluation without writing."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from ledger.errors import NotFoundError
from ledger.footprint.calculator import DEFAULT_TOLERANCE
from ledger.grading.evaluate import evaluate
from ledger.grading.kinds import stored_ruleset
from ledger.grading.ruleset_facts import ruleset_facts
from ledger.grading.views import GradeList, GradeView, RulesetList, RulesetView
from ledger.storage.batches import BatchRepository
from ledger.storage.db import read_session
from ledger.storage.grading import GradingRepository
from ledger.storage.tables import GradeRow, RulesetRow


def ruleset_view(row: RulesetRow) -> RulesetView:
    """The stored rule set as read: its columns, the signed document parsed."""
    return RulesetView.model_validate({**row.model_dump(), "document": json.loads(row.document)})


def grade_view(row: GradeRow, today: date | None = None) -> GradeView:
    """A grade with its status: ``expired`` is judged against ``today`` (UTC)."""
    day = (today or datetime.now(UTC).date()).isoformat()
    status = {
        "facts": json.loads(row.facts),
        "expired": day >= row.expires_on,
        "revoked": row.revoked_index is not None,
        "revoked_at_index": row.revoked_index,
    }
    return GradeView.model_validate({**row.model_dump(), **status})


def list_rulesets(engine: Engine) -> RulesetList:
    with read_session(engine) as session:
        rows = GradingRepository(session).rulesets()
    return RulesetList(items=[ruleset_view(row) for row in rows])


def get_ruleset(engine: Engine, ruleset_id: str, version: str) -> RulesetView:
    with read_session(engine) as session:
        row = GradingRepository(session).ruleset(ruleset_id, version)
    if row is None:
        raise NotFoundError(f"no rule set {ruleset_id} {version}", field="version")
    return ruleset_view(row)


def get_grade(engine: Engine, record_index: int) -> GradeView:
    with read_session(engine) as session:
        row = GradingRepository(session).grade(record_index)
    if row is None:
        raise NotFoundError(f"no grade at record {record_index}", field="record_index")
    return grade_view(row)


def grades_of_batch(engine: Engine, smelter_id: str, batch_id: str) -> GradeList:
    with read_session(engine) as session:
        if not BatchRepository(session).exists(smelter_id, batch_id):
            raise NotFoundError(f"no batch {smelter_id}/{batch_id}", field="batch_id")
        rows = GradingRepository(session).grades_of(smelter_id, batch_id)
    return GradeList(items=[grade_view(row) for row in rows])


def facts_of_batch(
    engine: Engine,
    smelter_id: str,
    batch_id: str,
    ruleset_id: str,
    version: str,
    tolerance: Decimal = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """The facts a rule set grades a batch on, as a ``grade.issue`` must state them."""
    preview = preview_evaluation(engine, smelter_id, batch_id, ruleset_id, version, tolerance)
    facts: dict[str, Any] = preview["facts"]
    return facts


def preview_evaluation(
    engine: Engine,
    smelter_id: str,
    batch_id: str,
    ruleset_id: str,
    version: str,
    tolerance: Decimal = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """What ``evaluate`` says for a batch under a published rule set, on the facts the rule
    set grades with (recomputed under its pins); writes nothing."""
    with read_session(engine) as session:
        batch = BatchRepository(session).get(smelter_id, batch_id)
        if batch is None:
            raise NotFoundError(f"no batch {smelter_id}/{batch_id}", field="batch_id")
        row = GradingRepository(session).ruleset(ruleset_id, version)
        if row is None:
            raise NotFoundError(f"no rule set {ruleset_id} {version}", field="ruleset_version")
        ruleset = stored_ruleset(row)
        facts = ruleset_facts(session, batch, ruleset, tolerance)
    result = evaluate(ruleset, facts).to_dict()
    result["smelter_id"], result["batch_id"] = smelter_id, batch_id
    result["facts"] = facts.to_dict()
    return result
