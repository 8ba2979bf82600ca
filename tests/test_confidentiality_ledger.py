"""Confidential values on the ledger: commitments in, disclosures beside, access by grant.

Each refusal of a statement's disclosures names the field and stores nothing (no record,
no disclosure), on SQLite and PostgreSQL; grades must state the ledger's facts; a
smelter grants and revokes access; the audit names a stored disclosure that was edited;
a ledger written before commitments still verifies and serves its plaintext records.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from api.app import create_app
from ledger.audit import Auditor
from ledger.batches.certificates import certificate_claims
from ledger.batches.derived import derive
from ledger.batches.payload import LotValues, parse_registration
from ledger.batches.reads import get_batch, recompute_footprint
from ledger.batches.registration import CheckedBatch, RegisterBatch
from ledger.bootstrap import open_ledger
from ledger.catalog import default_kinds
from ledger.certificates import verify_bundle
from ledger.disclosure.format import member
from ledger.disclosure.shapes import Shape
from ledger.disclosure.sign import sign_statement
from ledger.errors import ConflictError, ForbiddenError, InvalidError, LedgerError, NotFoundError
from ledger.footprint import compute_footprint, footprint_check, load_factor_tables
from ledger.footprint.calculator import METHOD_V1
from ledger.grading.kinds import IssueGrade
from ledger.kinds import KindRegistry
from ledger.log import Ledger
from ledger.statements import SignedStatement, sign
from ledger.storage.db import read_session
from ledger.storage.tables import DisclosureRow
from ledger.tokens import Viewer
from ledger.visibility import operator_viewer
from tests.conftest import LedgerEnv
from tests.grading_support import BATCH, CENTRE, SMELTER, demo_batch, issue, set_up_grading, shipped

OPERATOR = operator_viewer("operator")


def stored_disclosures(env: LedgerEnv) -> int:
    """How many disclosures the ledger stores, over all records."""
    with read_session(env.ledger.engine) as session:
        texts = session.execute(select(DisclosureRow.disclosures)).scalars()
        return sum(len(json.loads(text)) for text in texts)


def refused(env: LedgerEnv, signed: SignedStatement) -> LedgerError:
    """Append ``signed``, expect a refusal, and check that nothing was stored."""
    size, kept = env.ledger.tree_size(), stored_disclosures(env)
    with pytest.raises(LedgerError) as caught:
        env.ledger.append(signed)
    assert env.ledger.tree_size() == size
    assert stored_disclosures(env) == kept
    return caught.value


@pytest.fixture
def smelter(env: LedgerEnv) -> Any:
    return env.register(SMELTER, "smelter")


@pytest.fixture
def committed(smelter: Any) -> SignedStatement:
    return sign_statement("batch.register", demo_batch(), smelter)


def without(signed: SignedStatement, position: int) -> SignedStatement:
    kept = tuple(d for i, d in enumerate(signed.disclosures) if i != position)
    return SignedStatement(signed.statement, signed.signature, kept)


def position_of(signed: SignedStatement, name: str) -> int:
    return next(i for i, d in enumerate(signed.disclosures) if d.name == name)


def test_a_committed_batch_is_recorded_with_digests_and_its_disclosures_apart(
    env: LedgerEnv, committed: SignedStatement
) -> None:
    appended = env.ledger.append(committed)
    leaf = appended.record.leaf.decode()
    assert "ac_power_kwh_per_t" not in leaf and "Casting record" not in leaf
    assert stored_disclosures(env) == len([d for d in committed.disclosures if not d.decoy])
    batch = get_batch(env.ledger.engine, OPERATOR, SMELTER, BATCH)
    assert batch["batch"] == demo_batch() and batch["disclosed"] is True


def test_a_withheld_disclosure_is_refused_naming_its_digest(
    env: LedgerEnv, committed: SignedStatement
) -> None:
    position = position_of(committed, "ac_power_kwh_per_t")
    error = refused(env, without(committed, position))
    assert isinstance(error, InvalidError)
    assert error.field.startswith("statement.payload.activity_data._sd[")
    assert committed.disclosures[position].digest in error.detail


def test_an_extra_disclosure_is_refused_naming_it(
    env: LedgerEnv, committed: SignedStatement
) -> None:
    extra = SignedStatement(
        committed.statement,
        committed.signature,
        (*committed.disclosures, member("alumina_kg_per_t", 1_900)),
    )
    error = refused(env, extra)
    assert error.field == f"disclosures[{len(committed.disclosures)}]"
    assert "does not hash to any digest" in error.detail


def test_a_duplicate_disclosure_is_refused_naming_it(
    env: LedgerEnv, committed: SignedStatement
) -> None:
    twice = SignedStatement(
        committed.statement, committed.signature, (*committed.disclosures, committed.disclosures[2])
    )
    error = refused(env, twice)
    assert error.field == f"disclosures[{len(committed.disclosures)}]"
    assert "repeats disclosures[2]" in error.detail


def test_a_disclosure_with_one_character_changed_is_refused(
    env: LedgerEnv, committed: SignedStatement
) -> None:
    position = position_of(committed, "ac_power_kwh_per_t")
    original = committed.disclosures[position]
    altered = list(committed.disclosures)
    altered[position] = member(original.name, original.value + 1, original.salt)
    error = refused(env, SignedStatement(committed.statement, committed.signature, tuple(altered)))
    # The original digest lost its disclosure: that is reported first, by its digest.
    assert error.field.startswith("statement.payload.activity_data._sd[")
    assert original.digest in error.detail


def test_plaintext_confidential_values_are_refused(env: LedgerEnv, smelter: Any) -> None:
    plaintext = sign(
        statement_of("batch.register", demo_batch(), smelter), smelter
    )  # signed as is: no commitments
    error = refused(env, plaintext)
    assert isinstance(error, InvalidError)
    assert error.field == "statement.payload.activity_data.ac_power_kwh_per_t"


def test_a_public_member_behind_a_digest_is_refused(env: LedgerEnv, smelter: Any) -> None:
    signed = sign_statement("batch.register", demo_batch(), smelter)
    hidden = member("site", "Wenshan smelter")
    payload = {k: v for k, v in signed.statement.payload.items() if k != "site"}
    payload["_sd"] = [hidden.digest]
    statement = statement_of("batch.register", payload, smelter)
    error = refused(
        env,
        SignedStatement(
            statement, smelter.sign(statement.canonical()), (*signed.disclosures, hidden)
        ),
    )
    assert error.field == "statement.payload.site"


def test_bulk_refusals_name_the_statement_and_store_nothing(
    env: LedgerEnv, committed: SignedStatement, smelter: Any
) -> None:
    other = sign_statement("batch.register", demo_batch("YN-2025-0002"), smelter)
    size, kept = env.ledger.tree_size(), stored_disclosures(env)
    with pytest.raises(InvalidError) as caught:
        env.ledger.append_many([committed, without(other, 0)])
    assert caught.value.field.startswith("statements[1].")
    assert env.ledger.tree_size() == size and stored_disclosures(env) == kept


def test_http_refusal_is_a_422_naming_the_disclosure(
    sqlite_env: LedgerEnv,
) -> None:
    key = sqlite_env.register(SMELTER, "smelter")
    signed = sign_statement("batch.register", demo_batch(), key)
    body = signed.to_dict()
    body["disclosures"].append(member("alumina_kg_per_t", 1).to_json())
    with TestClient(create_app(sqlite_env.ledger)) as client:
        response = client.post("/v1/statements", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == f"disclosures[{len(signed.disclosures)}]"
        accepted = client.post("/v1/statements", json=signed.to_dict())
        assert accepted.status_code == 201, accepted.text


def statement_of(kind: str, payload: dict[str, Any], key: Any) -> Any:
    from ledger.statements import make_statement

    return make_statement(kind, payload, key)


# -- grades state the ledger's facts ---------------------------------------------------
def test_a_grade_whose_facts_differ_from_the_ledgers_is_refused_naming_the_fact(
    env: LedgerEnv,
) -> None:
    set_up_grading(env)
    honest = issue(env, "tier-2")
    with read_session(env.ledger.engine) as session:
        facts = json.loads(
            session.execute(
                text(f"select facts from grades where record_index = {honest.index}")
            ).scalar_one()
        )
    flattering = {
        **facts,
        "computed_total_kg_co2e_per_t": facts["computed_total_kg_co2e_per_t"] - 500,
    }
    with pytest.raises(InvalidError) as caught:
        issue(env, "tier-2", facts=flattering)
    assert caught.value.field == "statement.payload.facts.computed_total_kg_co2e_per_t"
    with pytest.raises(LedgerError) as missing:
        issue(env, "tier-2", facts={k: v for k, v in facts.items() if k != "route"})
    assert missing.value.field == "statement.payload.facts.route"


# -- grants ------------------------------------------------------------------------------
def test_a_smelter_grants_and_revokes_access_to_its_batches(env: LedgerEnv) -> None:
    set_up_grading(env)
    buyer = "buyer-co"
    env.register(buyer, "manufacturer")
    viewer = Viewer(buyer, "manufacturer")
    key = env.participant_keys[SMELTER]

    def sees() -> bool:
        return get_batch(env.ledger.engine, viewer, SMELTER, BATCH)["disclosed"]

    assert not sees()
    granted = env.append("disclosure.grant", {"grantee_id": buyer, "batch_id": BATCH}, key)
    assert sees()
    with pytest.raises(ConflictError):
        env.append("disclosure.grant", {"grantee_id": buyer, "batch_id": BATCH}, key)
    with pytest.raises(ForbiddenError):  # only the smelter that granted
        env.append("disclosure.revoke", {"grant_index": granted.index}, env.operator_key)
    env.append("disclosure.revoke", {"grant_index": granted.index}, key)
    assert not sees()
    with pytest.raises(ConflictError):
        env.append("disclosure.revoke", {"grant_index": granted.index}, key)
    env.append("disclosure.grant", {"grantee_id": buyer}, key)  # all its batches
    assert sees()


def test_grants_are_refused_unless_a_smelter_names_a_participant_and_its_own_batch(
    env: LedgerEnv,
) -> None:
    set_up_grading(env)
    key = env.participant_keys[SMELTER]
    with pytest.raises(NotFoundError) as caught:
        env.append("disclosure.grant", {"grantee_id": "nobody"}, key)
    assert caught.value.field == "statement.payload.grantee_id"
    with pytest.raises(NotFoundError) as caught:
        env.append("disclosure.grant", {"grantee_id": CENTRE, "batch_id": "NOPE"}, key)
    assert caught.value.field == "statement.payload.batch_id"
    with pytest.raises(ForbiddenError):
        env.append("disclosure.grant", {"grantee_id": SMELTER}, env.participant_keys[CENTRE])


def test_an_accreditation_counts_only_while_in_force(env: LedgerEnv) -> None:
    set_up_grading(env)
    centre = Viewer(CENTRE, "evaluation_centre")
    assert get_batch(env.ledger.engine, centre, SMELTER, BATCH)["disclosed"]
    env.append(
        "accreditation.withdraw", {"participant_id": CENTRE, "reason": "lapsed"}, env.operator_key
    )
    assert not get_batch(env.ledger.engine, centre, SMELTER, BATCH)["disclosed"]


# -- audit --------------------------------------------------------------------------------
def test_the_audit_names_an_edited_disclosure(env: LedgerEnv, committed: SignedStatement) -> None:
    index = env.ledger.append(committed).index
    verifier = env.ledger.verifier
    assert Auditor(env.ledger.engine, verifier, workers=1).run().ok
    kept = [d for d in committed.disclosures if not d.decoy]
    position = next(i for i, d in enumerate(kept) if d.name == "ac_power_kwh_per_t")
    kept[position] = member("ac_power_kwh_per_t", 12_000, kept[position].salt)
    forged = "[" + ",".join(d.canonical.decode() for d in kept) + "]"
    with env.ledger.engine.begin() as connection:
        connection.execute(
            text("update disclosures set disclosures = :d where record_index = :i"),
            {"d": forged, "i": index},
        )

    report = Auditor(env.ledger.engine, verifier, workers=1).run()

    assert report.problem is not None and report.problem.index == index
    assert report.problem.reason.startswith(
        f"disclosure {position} (member ac_power_kwh_per_t) opens no digest the record signed"
    )


# -- older ledgers ----------------------------------------------------------------------
class PlaintextBatch(RegisterBatch):
    """``batch.register`` as it was before commitments and footprint method 2: confidential
    members in the record, GEC codes split 17 + 15, method 1 with factor table 2024.1."""

    def visibility(self) -> Shape | None:
        return None

    def check(self, ctx: Any, statement: Any, author: Any) -> CheckedBatch:
        reg = parse_registration(statement.payload, legacy=True)
        derived = derive(reg, legacy=True)
        computed = compute_footprint(reg, load_factor_tables("2024.1"), method=METHOD_V1)
        declared = reg.declared_footprint
        check = footprint_check(declared.kg_co2e_per_t, computed, declared.boundary)
        inputs = reg.metal_inputs
        metal = LotValues(
            0,
            derived.electricity_kwh_per_t,
            derived.renewable_share or Decimal(0),
            Decimal(inputs.primary_kg) / inputs.total_kg,
            Decimal(0),
        )
        claims = certificate_claims(reg)
        return CheckedBatch(reg, derived, computed, check, claims, {}, metal, "2024.1")


class FactlessGrade(IssueGrade):
    """``grade.issue`` as it was before grades stated their facts (the ledger worked them
    out itself)."""

    def check(self, ctx: Any, statement: Any, author: Any) -> Any:
        payload = {**statement.payload, "facts": facts_now(ctx, statement.payload)}
        return super().check(
            ctx, type(statement)(**{**statement.to_dict(), "payload": payload}), author
        )


def facts_now(ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
    from ledger.grading.facts_from_batch import batch_facts
    from ledger.storage.batches import BatchRepository

    row = BatchRepository(ctx.repo.session).get(payload["smelter_id"], payload["batch_id"])
    return batch_facts(row, ctx.repo.record(row.record_index).statement["payload"]).to_dict()


def old_ruleset() -> dict[str, Any]:
    """The low-carbon rule set as it was published then: version 1.0.0, no pinned
    evaluation, the declared footprint only."""
    document = copy.deepcopy(shipped("common-low-carbon-aluminium"))
    document["version"] = "1.0.0"
    document.pop("evaluation")
    document["grades"][0]["criteria"]["all"][0]["footprint_below"]["basis"] = "declared"
    return document


def old_payload() -> dict[str, Any]:
    """The demo batch as smelters wrote it before commitments (and before metering
    evidence was added to the demo)."""
    payload = demo_batch()
    for source in payload["electricity"]:
        source.pop("metering_evidence", None)
    payload["evidence"] = payload["evidence"][:2]
    # GEC codes as the ledger read them then: 17 project digits, a 15-digit serial
    hydro, grid = (source["certificate"] for source in payload["electricity"])
    hydro.update(first_id=f"{PROJECT}202502000000101", last_id=f"{PROJECT}202502000000400")
    grid.update(first_id=f"{PROJECT}202502000002001", last_id=f"{PROJECT}202502000002025")
    return payload


PROJECT = "11012019061553087"


def legacy_ledger(env: LedgerEnv) -> Ledger:
    current = default_kinds()
    kinds = [current.get(name) for name in current.names()]
    replaced = {"batch.register": PlaintextBatch(), "grade.issue": FactlessGrade()}
    registry = KindRegistry([replaced.get(kind.name, kind) for kind in kinds])
    return Ledger(
        env.ledger.engine,
        env.ledger.signer,
        registry,
        operator_id="operator",
        max_clock_skew=timedelta(minutes=5),
    )


def test_a_ledger_written_before_commitments_still_verifies_and_serves_its_records(
    env: LedgerEnv,
) -> None:
    old = legacy_ledger(env)
    smelter_key = env.register(SMELTER, "smelter")
    env.register(CENTRE, "evaluation_centre")
    from tests.grading_support import grant

    grant(env)
    env.append("ruleset.publish", old_ruleset(), env.participant_keys[CENTRE])
    batch_index = old.append(
        sign(statement_of("batch.register", old_payload(), smelter_key), smelter_key)
    ).index
    grade = old.append(
        sign(
            statement_of(
                "grade.issue",
                {
                    "smelter_id": SMELTER,
                    "batch_id": BATCH,
                    "ruleset_id": "common-low-carbon-aluminium",
                    "ruleset_version": "1.0.0",
                    "grade": "low-carbon-aluminium",
                },
                env.participant_keys[CENTRE],
            ),
            env.participant_keys[CENTRE],
        )
    )
    # Today's ledger opens it, audits it and serves the plaintext record as it is.
    current = open_ledger(env.settings)
    assert Auditor(current.engine, current.verifier, workers=1).run().ok
    anonymous = get_batch(current.engine, Viewer.anonymous(), SMELTER, BATCH)
    assert anonymous["batch"]["activity_data"] == old_payload()["activity_data"]
    assert current.record(batch_index).statement["payload"] == old_payload()
    with TestClient(create_app(current)) as client:
        bundle = client.get(f"/v1/certificates/{grade.index}").json()
    verdict = verify_bundle(bundle, current.verifier_key)
    assert verdict.status == "valid", verdict.reasons
    # Its footprint recomputed with the method it was registered under is what was recorded.
    again = recompute_footprint(current.engine, OPERATOR, SMELTER, BATCH, method=METHOD_V1)
    assert again["preview"] == again["recorded"]
    current.engine.dispose()
