"""Grading fixtures shared by test modules: an accredited centre, a rule set, a batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledger.errors import NotFoundError
from ledger.grading import load_shipped_rulesets
from ledger.grading.reads import facts_of_batch
from tests.conftest import LedgerEnv

DEMO_BATCHES = Path(__file__).resolve().parents[1] / "scripts" / "demo" / "batches.json"
SMELTER = "yn-smelter"
CENTRE = "centre-a"
RULESET = "example-green-low-carbon-aluminium"
VERSION = "2.0.0"
BATCH = "YN-2025-0001"


def shipped(ruleset_id: str) -> dict[str, Any]:
    return next(doc for doc in load_shipped_rulesets() if doc["ruleset_id"] == ruleset_id)


def demo_batch(batch_id: str = BATCH) -> dict[str, Any]:
    batches = json.loads(DEMO_BATCHES.read_text(encoding="utf-8"))
    payload = next(batch for batch in batches if batch["batch_id"] == batch_id)
    return {**payload, "smelter_id": SMELTER}


def grant(env: LedgerEnv, participant_id: str = CENTRE, **scope: Any) -> None:
    payload = {
        "participant_id": participant_id,
        "scope": {"rulesets": ["*"], **scope},
        "valid_from": "2020-01-01",
        "valid_until": "2099-12-31",
    }
    env.append("accreditation.grant", payload, env.operator_key)


def issue(env: LedgerEnv, grade: str, key: Any = None, **extra: Any) -> Any:
    """Issue ``grade``, stating the ledger's own facts of the batch unless ``facts`` is given."""
    payload = {
        "smelter_id": SMELTER,
        "batch_id": BATCH,
        "ruleset_id": RULESET,
        "ruleset_version": VERSION,
        "grade": grade,
        **extra,
    }
    if "facts" not in payload:
        payload["facts"] = ledger_facts(env, payload)
    return env.append("grade.issue", payload, key or env.participant_keys[CENTRE])


def ledger_facts(env: LedgerEnv, grade: dict[str, Any]) -> dict[str, Any]:
    """The facts the rule set of a ``grade.issue`` payload grades its batch on (``{}`` when
    the ledger knows no such batch or rule set)."""
    try:
        return facts_of_batch(
            env.ledger.engine,
            grade["smelter_id"],
            grade["batch_id"],
            grade["ruleset_id"],
            grade["ruleset_version"],
        )
    except NotFoundError:
        return {}


def set_up_grading(env: LedgerEnv) -> LedgerEnv:
    """A smelter with one demo batch, an accredited centre, and the rule set published."""
    env.register(SMELTER, "smelter")
    env.register(CENTRE, "evaluation_centre")
    grant(env)
    env.append("ruleset.publish", shipped(RULESET), env.participant_keys[CENTRE])
    env.append("batch.register", demo_batch(), env.participant_keys[SMELTER])
    return env
