"""Grading on the ledger: accreditation, rule-set publication, grades and revocation."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.errors import ConflictError, ForbiddenError, InvalidError
from ledger.grading.reads import get_grade, get_ruleset, grades_of_batch, list_rulesets
from tests.conftest import LedgerEnv
from tests.grading_support import (
    BATCH,
    CENTRE,
    RULESET,
    SMELTER,
    demo_batch,
    grant,
    issue,
    set_up_grading,
    shipped,
)


@pytest.fixture
def graded(env: LedgerEnv) -> LedgerEnv:
    return set_up_grading(env)


def test_publish_and_issue_supported_grade(graded: LedgerEnv) -> None:
    engine = graded.ledger.engine
    stored = get_ruleset(engine, RULESET, "2.0.0")
    assert stored.publisher_id == CENTRE
    assert stored.document == shipped(RULESET)
    assert [item.ruleset_id for item in list_rulesets(engine).items] == [RULESET]

    appended = issue(graded, "tier-2", evaluation_date="2025-03-10")
    grade = get_grade(engine, appended.index)
    assert grade.grade == "tier-2"
    assert grade.issuer_id == CENTRE
    assert grade.revoked is False and grade.expired is False
    assert grade.evaluation_date == "2025-03-10"
    issued_day = grade.issued_at[:10]
    assert grade.expires_on > issued_day
    assert grade.facts["third_party_verified"] is True
    assert grade.facts["activity_data_present"] is True
    # a lower grade is a true claim too
    issue(graded, "tier-3")
    grades = grades_of_batch(engine, SMELTER, BATCH).items
    assert [item.grade for item in grades] == ["tier-2", "tier-3"]


def test_unsupported_grade_is_refused_naming_the_criterion(graded: LedgerEnv) -> None:
    with pytest.raises(InvalidError) as refused:
        issue(graded, "tier-1")
    assert refused.value.field == "statement.payload.grade"
    assert "footprint_below[both]" in refused.value.detail
    with pytest.raises(InvalidError, match="has no grade"):
        issue(graded, "platinum")


def test_unaccredited_centre_may_not_publish_or_grade(graded: LedgerEnv) -> None:
    other = graded.register("centre-b", "evaluation_centre")
    with pytest.raises(ForbiddenError):
        graded.append("ruleset.publish", shipped("common-low-carbon-aluminium"), other)
    with pytest.raises(ForbiddenError):
        issue(graded, "tier-2", key=other)


def test_scope_must_cover_the_rule_set(graded: LedgerEnv) -> None:
    other = graded.register("centre-b", "evaluation_centre")
    grant(graded, "centre-b", rulesets=["common-low-carbon-aluminium"])
    with pytest.raises(ForbiddenError, match="does not cover"):
        issue(graded, "tier-2", key=other)


def test_smelter_may_not_grade_itself(graded: LedgerEnv) -> None:
    with pytest.raises(ForbiddenError):
        issue(graded, "tier-2", key=graded.participant_keys[SMELTER])


def test_only_centres_can_be_accredited(graded: LedgerEnv) -> None:
    with pytest.raises(InvalidError):
        grant(graded, SMELTER)
    with pytest.raises(ForbiddenError):
        payload = {
            "participant_id": CENTRE,
            "scope": {"rulesets": ["*"]},
            "valid_from": "2020-01-01",
            "valid_until": "2099-12-31",
        }
        graded.append("accreditation.grant", payload, graded.participant_keys[CENTRE])


def test_expired_accreditation_is_not_in_force(graded: LedgerEnv) -> None:
    other = graded.register("centre-b", "evaluation_centre")
    payload = {
        "participant_id": "centre-b",
        "scope": {"rulesets": ["*"]},
        "valid_from": "2020-01-01",
        "valid_until": "2020-12-31",
    }
    graded.append("accreditation.grant", payload, graded.operator_key)
    with pytest.raises(ForbiddenError, match="holds none"):
        issue(graded, "tier-2", key=other)


def test_withdrawn_accreditation_stops_grading(graded: LedgerEnv) -> None:
    issue(graded, "tier-2")
    graded.append(
        "accreditation.withdraw",
        {"participant_id": CENTRE, "reason": "audit findings"},
        graded.operator_key,
    )
    with pytest.raises(ForbiddenError):
        issue(graded, "tier-2")
    with pytest.raises(InvalidError):
        graded.append(
            "accreditation.withdraw",
            {"participant_id": CENTRE, "reason": "again"},
            graded.operator_key,
        )


def test_republishing_a_version_conflicts(graded: LedgerEnv) -> None:
    with pytest.raises(ConflictError):
        graded.append("ruleset.publish", shipped(RULESET), graded.participant_keys[CENTRE])
    newer = {**shipped(RULESET), "version": "1.0.1"}
    graded.append("ruleset.publish", newer, graded.participant_keys[CENTRE])


def test_revoke_by_issuer(graded: LedgerEnv) -> None:
    appended = issue(graded, "tier-2")
    graded.register("centre-b", "evaluation_centre")
    revoke = {"grade_record_index": appended.index, "reason": "data error"}
    with pytest.raises(ForbiddenError):
        graded.append("grade.revoke", revoke, graded.participant_keys["centre-b"])
    revoked = graded.append("grade.revoke", revoke, graded.participant_keys[CENTRE])
    grade = get_grade(graded.ledger.engine, appended.index)
    assert grade.revoked is True
    assert grade.revoked_at_index == revoked.index
    assert grade.revoke_reason == "data error"
    with pytest.raises(InvalidError, match="already revoked"):
        graded.append("grade.revoke", revoke, graded.operator_key)


def test_api_preview_and_reads(sqlite_env: LedgerEnv) -> None:
    env = sqlite_env
    env.register(SMELTER, "smelter")
    env.register(CENTRE, "evaluation_centre")
    grant(env)
    env.append("ruleset.publish", shipped(RULESET), env.participant_keys[CENTRE])
    env.append("batch.register", demo_batch(), env.participant_keys[SMELTER])
    client = TestClient(create_app(env.ledger))
    size = env.ledger.tree_size()
    body = {
        "smelter_id": SMELTER,
        "batch_id": BATCH,
        "ruleset_id": RULESET,
        "ruleset_version": "2.0.0",
    }
    response = client.post("/v1/evaluations/preview", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["grade"] == "tier-2"
    tier1 = result["grades"][0]
    assert tier1["grade"] == "tier-1" and tier1["passed"] is False
    assert {"value", "threshold", "passed"} <= set(tier1["criteria"][0])
    assert env.ledger.tree_size() == size  # nothing written

    missing = client.post("/v1/evaluations/preview", json={**body, "ruleset_version": "9.9.9"})
    assert missing.status_code == 404
    assert client.post("/v1/evaluations/preview", json={"batch_id": BATCH}).status_code == 422

    assert client.get("/v1/rulesets").json()["items"][0]["ruleset_id"] == RULESET
    assert client.get(f"/v1/rulesets/{RULESET}/2.0.0").status_code == 200
    assert client.get(f"/v1/rulesets/{RULESET}/9.9.9").status_code == 404
    appended = issue(env, "tier-2")
    grade = client.get(f"/v1/grades/{appended.index}").json()
    assert grade["grade"] == "tier-2" and grade["revoked"] is False
    assert client.get("/v1/grades/0").status_code == 404
    grades = client.get(f"/v1/batches/{SMELTER}/{BATCH}/grades").json()["items"]
    assert [item["record_index"] for item in grades] == [appended.index]
