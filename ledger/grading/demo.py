"""Demo grading: an accredited centre, the shipped rule sets, and grades on demo batches.

The data lives in ``scripts/demo/grading.json``; every grade is re-evaluated by the
ledger on append like any other. Loading is idempotent.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.batches.registration import footprint_tolerance
from ledger.disclosure.sign import sign_statement
from ledger.grading.kinds import GRANT, ISSUE, PUBLISH, REVOKE
from ledger.grading.reads import facts_of_batch
from ledger.grading.shipped import load_shipped_rulesets
from ledger.log import Ledger
from ledger.storage.db import read_session
from ledger.storage.grading import GradingRepository
from ledger.storage.tables import GradeRow


def load_grading_demo(
    ledger: Ledger,
    demo: dict[str, Any],
    operator_key: Ed25519PrivateKey,
    centre_key: Ed25519PrivateKey,
) -> list[str]:
    """Accredit the demo centre, publish the shipped rule sets, issue and revoke grades."""
    lines = _accredit(ledger, demo, operator_key)
    lines += _publish(ledger, centre_key)
    lines += _issue(ledger, demo["grades"], centre_key)
    lines += _revoke(ledger, demo["revocations"], centre_key)
    return lines


def _accredit(ledger: Ledger, demo: dict[str, Any], operator_key: Ed25519PrivateKey) -> list[str]:
    with read_session(ledger.engine) as session:
        if GradingRepository(session).accreditations_of(demo["centre"]):
            return []
    ledger.append(sign_statement(GRANT, demo["accreditation"], operator_key))
    return [f"accredited evaluation centre {demo['centre']}"]


def _publish(ledger: Ledger, centre_key: Ed25519PrivateKey) -> list[str]:
    with read_session(ledger.engine) as session:
        grading = GradingRepository(session)
        todo = [
            doc
            for doc in load_shipped_rulesets()
            if grading.ruleset(doc["ruleset_id"], doc["version"]) is None
        ]
    if todo:
        ledger.append_many([sign_statement(PUBLISH, doc, centre_key) for doc in todo])
    return [f"published rule set {doc['ruleset_id']} {doc['version']}" for doc in todo]


def _issue(
    ledger: Ledger, grades: list[dict[str, Any]], centre_key: Ed25519PrivateKey
) -> list[str]:
    versions = {doc["ruleset_id"]: doc["version"] for doc in load_shipped_rulesets()}
    todo = [g for g in grades if _find(ledger, g) is None]
    signed = [
        sign_statement(
            ISSUE,
            {
                **g,
                "ruleset_version": versions[g["ruleset_id"]],
                "facts": facts_of_batch(
                    ledger.engine,
                    g["smelter_id"],
                    g["batch_id"],
                    g["ruleset_id"],
                    versions[g["ruleset_id"]],
                    footprint_tolerance(ledger.kinds),
                ),
            },
            centre_key,
        )
        for g in todo
    ]
    appended = ledger.append_many(signed) if signed else []
    return [
        f"issued grade {g['grade']} ({g['ruleset_id']}) to {g['smelter_id']}/{g['batch_id']}: "
        f"certificate at /v1/certificates/{record.index}"
        for g, record in zip(todo, appended, strict=True)
    ]


def _revoke(
    ledger: Ledger, revocations: list[dict[str, Any]], centre_key: Ed25519PrivateKey
) -> list[str]:
    lines = []
    for revocation in revocations:
        grade = _find(ledger, revocation)
        if grade is None or grade.revoked_index is not None:
            continue
        payload = {"grade_record_index": grade.record_index, "reason": revocation["reason"]}
        ledger.append(sign_statement(REVOKE, payload, centre_key))
        lines.append(f"revoked grade at record {grade.record_index}: {revocation['reason']}")
    return lines


def _find(ledger: Ledger, wanted: dict[str, Any]) -> GradeRow | None:
    """The demo grade of this batch under this rule set, if it was issued already."""
    with read_session(ledger.engine) as session:
        rows = GradingRepository(session).grades_of(wanted["smelter_id"], wanted["batch_id"])
    return next((row for row in rows if row.ruleset_id == wanted["ruleset_id"]), None)
