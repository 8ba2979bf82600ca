"""The offline audit finds any change to stored records, and says where.

The audit trusts only the record bytes and a checkpoint signed by the pinned
log key. These tests tamper with the database directly, the way an attacker
or a broken backup would - rewriting a record's bytes, rewriting them together
with their leaf hash, deleting a record, swapping two records - and check that
the audit (and ``alu-ledger verify``, which exits 1) names the first index
that is wrong. Runs on SQLite and on PostgreSQL, plus once through the
multi-process path.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from sqlalchemy import text
from typer.testing import CliRunner

import ledger.audit
import ledger.storage.repository
from ledger import keys, merkle
from ledger.audit import Auditor, AuditReport
from ledger.checkpoints import Checkpoint, NoteSigner, NoteVerifier, sign_checkpoint
from ledger.cli import app
from tests.conftest import LedgerEnv, attestation

runner = CliRunner()


@pytest.fixture
def ledger_env(env: LedgerEnv) -> LedgerEnv:
    """A ledger with participants, single and bulk appends, a key rotation and a revocation.

    Records: 0 genesis, 1-2 registrations, 3-7 single attests, 8-12 one bulk,
    13 rotation, 14-15 attests with the new key, 16 revocation, 17 attest.
    """
    smelter = env.register("yunnan-hydro", "smelter")
    centre = env.register("beijing-eval", "evaluation_centre")
    for i in range(5):
        env.ledger.append(attestation(smelter, i))
    env.attest(centre, 5)
    rotated = keys.generate()
    env.append(
        "key.rotate",
        {"participant_id": "yunnan-hydro", "new_public_key": keys.public_key_b64(rotated)},
        smelter,
    )
    env.ledger.append(attestation(rotated, 100))
    env.ledger.append(attestation(rotated, 101))
    env.append(
        "key.revoke",
        {"participant_id": "beijing-eval", "key_id": keys.key_id(centre), "reason": "retired"},
        env.operator_key,
    )
    env.ledger.append(attestation(rotated, 102))
    assert env.ledger.tree_size() == 18
    return env


def audit(env: LedgerEnv, **options: Any) -> AuditReport:
    return Auditor(env.ledger.engine, env.ledger.verifier, **options).run()


def run_sql(env: LedgerEnv, sql: str, **params: Any) -> None:
    with env.ledger.engine.begin() as connection:
        connection.execute(text(sql), params)


def stored(env: LedgerEnv, index: int) -> tuple[bytes, bytes]:
    with env.ledger.engine.connect() as connection:
        leaf, digest = connection.execute(
            text("SELECT leaf, leaf_hash FROM records WHERE idx = :i"), {"i": index}
        ).one()
    return bytes(leaf), bytes(digest)


def store(env: LedgerEnv, index: int, leaf: bytes, digest: bytes | None = None) -> None:
    """Overwrite a record's bytes; also its leaf hash when ``digest`` is given."""
    if digest is None:
        run_sql(env, "UPDATE records SET leaf = :leaf WHERE idx = :i", leaf=leaf, i=index)
    else:
        run_sql(
            env,
            "UPDATE records SET leaf = :leaf, leaf_hash = :digest WHERE idx = :i",
            leaf=leaf,
            digest=digest,
            i=index,
        )


def rewrite(env: LedgerEnv, index: int, change: Any, *, rehash: bool) -> None:
    """Apply ``change`` to a record (as JSON) and store it back canonically."""
    record = json.loads(stored(env, index)[0])
    change(record)
    leaf = rfc8785.dumps(record)
    store(env, index, leaf, merkle.leaf_hash(leaf) if rehash else None)


def verify_cli(env: LedgerEnv, *extra: str) -> Any:
    return runner.invoke(
        app,
        [
            "verify",
            "--database",
            env.settings.resolved_database_url(),
            "--data-dir",
            str(env.settings.data_dir),
            *extra,
        ],
    )


def assert_fails_at(env: LedgerEnv, index: int, reason: str) -> None:
    report = audit(env)
    assert not report.ok
    assert report.problem is not None
    assert report.problem.index == index, report.problem
    assert reason in report.problem.reason
    result = verify_cli(env)
    assert result.exit_code == 1, result.output
    assert f"FAILED at index {index}: " in result.output
    assert reason in result.output


# -- a sound ledger ----------------------------------------------------------------


def test_a_sound_ledger_audits_ok(ledger_env: LedgerEnv) -> None:
    report = audit(ledger_env)
    assert report.ok, report.problem
    assert report.records == report.checkpoint_size == 18


def test_a_fresh_ledger_with_only_genesis_audits_ok(env: LedgerEnv) -> None:
    report = audit(env)
    assert report.ok
    assert report.records == 1


def test_the_audit_reports_progress_up_to_the_checkpoint_size(ledger_env: LedgerEnv) -> None:
    seen: list[int] = []
    assert audit(ledger_env, on_progress=seen.append).ok
    assert seen[-1] == 18


def test_verify_exits_0_on_a_sound_ledger(ledger_env: LedgerEnv) -> None:
    result = verify_cli(ledger_env)
    assert result.exit_code == 0, result.output
    assert "ok: 18 records verified against checkpoint 18" in result.output


def test_verify_accepts_the_pinned_log_key(ledger_env: LedgerEnv) -> None:
    result = verify_cli(ledger_env, "--log-key", ledger_env.ledger.verifier_key)
    assert result.exit_code == 0, result.output


# -- tampered records -----------------------------------------------------------------


def test_one_changed_byte_is_found_by_the_leaf_hash(ledger_env: LedgerEnv) -> None:
    leaf, _ = stored(ledger_env, 5)
    assert b"report 2" in leaf
    store(ledger_env, 5, leaf.replace(b"report 2", b"report 3"))
    assert_fails_at(ledger_env, 5, "stored leaf hash does not match the record bytes")


def test_a_changed_statement_with_a_recomputed_leaf_hash_fails_its_signature(
    ledger_env: LedgerEnv,
) -> None:
    leaf, _ = stored(ledger_env, 9)
    changed = leaf.replace(b"report 1", b"report 7")
    assert changed != leaf
    store(ledger_env, 9, changed, merkle.leaf_hash(changed))
    assert_fails_at(ledger_env, 9, "signature does not verify")


def backdate(record: dict[str, Any]) -> None:
    """Change the record's header only: its statement and signature stay valid."""
    record["integrated_at"] = "2000-01-01T00:00:00.000000Z"


def test_a_rewritten_record_header_is_found_by_the_checkpoint_that_covered_it(
    ledger_env: LedgerEnv,
) -> None:
    """Record 6 was appended alone, so the checkpoint at size 7 pins it exactly."""
    rewrite(ledger_env, 6, backdate, rehash=True)
    assert_fails_at(ledger_env, 6, "checkpoint at size 7 has a different root")


def test_a_rewritten_record_header_inside_a_bulk_breaks_the_hash_chain(
    ledger_env: LedgerEnv,
) -> None:
    """Records 8-12 share one checkpoint; record 10's ``prev`` no longer matches record 9."""
    rewrite(ledger_env, 9, backdate, rehash=True)
    assert_fails_at(ledger_env, 10, "prev is not the leaf hash of the previous record")


def test_a_rewritten_last_record_is_found_by_the_signed_checkpoint(ledger_env: LedgerEnv) -> None:
    """No record follows the last one, so only the checkpoint's root can catch it."""
    rewrite(ledger_env, 17, backdate, rehash=True)
    assert_fails_at(ledger_env, 17, "has a different root")


def test_a_record_rewritten_to_a_non_canonical_form_is_found(ledger_env: LedgerEnv) -> None:
    leaf, _ = stored(ledger_env, 4)
    spaced = json.dumps(json.loads(leaf), sort_keys=True).encode()
    store(ledger_env, 4, spaced, merkle.leaf_hash(spaced))
    assert_fails_at(ledger_env, 4, "not canonical")


def test_a_record_claiming_another_signer_is_found(ledger_env: LedgerEnv) -> None:
    """Attributing a record to the operator cannot be hidden by re-hashing it."""
    operator = keys.key_id(ledger_env.operator_key)

    def reattribute(record: dict[str, Any]) -> None:
        record["statement"]["signer"] = operator

    rewrite(ledger_env, 14, reattribute, rehash=True)
    assert_fails_at(ledger_env, 14, "signature does not verify")


def test_a_deleted_record_in_the_middle_is_reported_missing(ledger_env: LedgerEnv) -> None:
    run_sql(ledger_env, "DELETE FROM records WHERE idx = 8")
    assert_fails_at(ledger_env, 8, "record is missing (next stored index is 9)")


def test_a_deleted_last_record_is_reported_missing(ledger_env: LedgerEnv) -> None:
    run_sql(ledger_env, "DELETE FROM records WHERE idx = 17")
    assert_fails_at(ledger_env, 17, "record is missing")


def test_two_swapped_records_are_found_at_the_first_of_them(ledger_env: LedgerEnv) -> None:
    (leaf_a, hash_a), (leaf_b, hash_b) = stored(ledger_env, 10), stored(ledger_env, 12)
    with ledger_env.ledger.engine.begin() as connection:
        for index, leaf, digest in ((10, leaf_b, hash_b), (12, leaf_a, hash_a)):
            connection.execute(
                text("UPDATE records SET leaf = :leaf, leaf_hash = :digest WHERE idx = :i"),
                {"leaf": leaf, "digest": digest, "i": index},
            )
    assert_fails_at(ledger_env, 10, "record bytes say index 12")


def test_a_swapped_leaf_hash_alone_is_found(ledger_env: LedgerEnv) -> None:
    _, hash_a = stored(ledger_env, 3)
    _, hash_b = stored(ledger_env, 4)
    run_sql(ledger_env, "UPDATE records SET leaf_hash = :d WHERE idx = 3", d=hash_b)
    run_sql(ledger_env, "UPDATE records SET leaf_hash = :d WHERE idx = 4", d=hash_a)
    assert_fails_at(ledger_env, 3, "stored leaf hash does not match")


# -- checkpoints ---------------------------------------------------------------------


def test_a_checkpoint_under_another_key_does_not_pass_the_pinned_key(
    ledger_env: LedgerEnv,
) -> None:
    impostor = NoteSigner(ledger_env.ledger.origin, keys.generate())
    report = Auditor(ledger_env.ledger.engine, impostor.verifier()).run()
    assert not report.ok
    assert report.problem is not None
    assert "checkpoint: " in report.problem.reason
    assert "no signature by" in report.problem.reason

    result = verify_cli(ledger_env, "--log-key", impostor.verifier_key())
    assert result.exit_code == 1, result.output
    assert "no signature by" in result.output


def test_a_forged_latest_checkpoint_in_the_database_fails(ledger_env: LedgerEnv) -> None:
    """A checkpoint re-signed with another key (same log name) is not the log's."""
    impostor = NoteSigner(ledger_env.ledger.origin, keys.generate())
    size = ledger_env.ledger.tree_size()
    root = merkle.leaf_hash(b"anything")
    note = sign_checkpoint(Checkpoint(ledger_env.ledger.origin, size, root), impostor)
    run_sql(ledger_env, "UPDATE checkpoints SET note = :n WHERE size = :s", n=note, s=size)
    report = audit(ledger_env)
    assert not report.ok
    assert report.problem is not None
    assert report.problem.index == size - 1
    assert "no signature by" in report.problem.reason


def test_a_stored_checkpoint_root_that_disagrees_with_the_records_is_found(
    ledger_env: LedgerEnv,
) -> None:
    run_sql(
        ledger_env,
        "UPDATE checkpoints SET root = :r WHERE size = 8",
        r=merkle.leaf_hash(b"not the root"),
    )
    report = audit(ledger_env)
    assert not report.ok
    assert report.problem is not None
    assert "checkpoint at size 8 has a different root" in report.problem.reason


def test_a_pinned_verifier_key_string_is_honoured(ledger_env: LedgerEnv) -> None:
    verifier = NoteVerifier.parse(ledger_env.ledger.verifier_key)
    assert Auditor(ledger_env.ledger.engine, verifier).run().ok


# -- the multi-process path -------------------------------------------------------------


def test_the_parallel_audit_finds_tampering_at_the_right_index(
    sqlite_env: LedgerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers check chunks (reading them in pages); links across chunk boundaries are
    checked in the parent."""
    monkeypatch.setattr(ledger.audit, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(ledger.audit, "CHUNK", 64)
    monkeypatch.setattr(ledger.storage.repository, "STREAM_CHUNK", 50)
    smelter = sqlite_env.register("yunnan-hydro", "smelter")
    for start in range(0, 300, 60):
        sqlite_env.ledger.append_many([attestation(smelter, start + i) for i in range(60)])
    assert sqlite_env.ledger.tree_size() == 302

    report = audit(sqlite_env, workers=2)
    assert report.ok, report.problem
    assert report.records == 302

    rewrite(sqlite_env, 127, backdate, rehash=True)  # last record of the second chunk
    report = audit(sqlite_env, workers=2)
    assert report.problem is not None
    assert report.problem.index == 128
    assert "prev is not the leaf hash" in report.problem.reason

    leaf, _ = stored(sqlite_env, 233)
    changed = leaf.replace(b"report 231", b"report 999")
    store(sqlite_env, 233, changed, merkle.leaf_hash(changed))
    run_sql(sqlite_env, "DELETE FROM records WHERE idx = 100")
    report = audit(sqlite_env, workers=2)
    assert report.problem is not None
    assert report.problem.index == 100
    assert "record is missing (next stored index is 101)" in report.problem.reason

    run_sql(sqlite_env, "DELETE FROM records WHERE idx < 200")
    report = audit(sqlite_env, workers=2)
    assert report.problem is not None
    assert report.problem.index == 0

    result = verify_cli(sqlite_env, "--workers", "2")
    assert result.exit_code == 1
    assert "FAILED at index 0" in result.output


def test_the_parallel_audit_reports_a_bad_signature_deep_in_the_log(
    sqlite_env: LedgerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger.audit, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(ledger.audit, "CHUNK", 32)
    monkeypatch.setattr(ledger.storage.repository, "STREAM_CHUNK", 40)
    smelter = sqlite_env.register("yunnan-hydro", "smelter")
    sqlite_env.ledger.append_many([attestation(smelter, i) for i in range(298)])
    leaf, _ = stored(sqlite_env, 233)
    changed = leaf.replace(b"report 231", b"report 999")
    assert changed != leaf
    store(sqlite_env, 233, changed, merkle.leaf_hash(changed))
    report = audit(sqlite_env, workers=2)
    assert report.problem is not None
    assert report.problem.index == 233
    assert report.problem.reason == "signature does not verify"
