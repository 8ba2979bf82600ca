"""The append pipeline: who may append what, and what the log promises back."""

from __future__ import annotations

import itertools

import pytest

from ledger import keys, merkle, statements
from ledger.checkpoints import open_checkpoint
from ledger.disclosure.sign import sign_statement
from ledger.errors import ConflictError, ForbiddenError, MalformedError, SignatureError
from tests.conftest import LedgerEnv, attestation


def test_genesis_record_names_the_log_and_its_operator(env: LedgerEnv) -> None:
    genesis = env.ledger.record(0).to_dict()
    assert genesis["index"] == 0
    assert genesis["prev"] == "0" * 64
    assert genesis["statement"]["kind"] == "ledger.genesis"
    assert genesis["statement"]["payload"]["log_verifier_key"] == env.ledger.verifier_key
    assert genesis["statement"]["signer"] == keys.key_id(env.operator_key)


def test_every_append_returns_a_checkpoint_that_covers_it(env: LedgerEnv) -> None:
    smelter = env.register("yunnan-hydro", "smelter")
    appended = env.attest(smelter)[0]
    checkpoint = open_checkpoint(appended.checkpoint, env.ledger.verifier)
    assert checkpoint.size == appended.index + 1 == 3
    proof = env.ledger.inclusion_proof(appended.index, checkpoint.size)
    merkle.verify_inclusion(
        appended.record.leaf_hash, appended.index, checkpoint.size, proof.hashes, checkpoint.root
    )


def test_records_are_hash_chained(env: LedgerEnv) -> None:
    smelter = env.register("yunnan-hydro", "smelter")
    env.attest(smelter, 3)
    for index in range(1, env.ledger.tree_size()):
        previous = env.ledger.record(index - 1)
        assert env.ledger.record(index).to_dict()["prev"] == previous.leaf_hash.hex()


def test_successive_checkpoints_are_consistent(env: LedgerEnv) -> None:
    smelter = env.register("yunnan-hydro", "smelter")
    notes = [env.attest(smelter, n)[-1].checkpoint for n in (1, 4, 2)]
    cps = [open_checkpoint(note, env.ledger.verifier) for note in notes]
    for old, new in itertools.pairwise(cps):
        proof = env.ledger.consistency_proof(old.size, new.size)
        merkle.verify_consistency(old.size, new.size, proof.hashes, old.root, new.root)


def test_bulk_append_is_one_transaction_under_one_checkpoint(env: LedgerEnv) -> None:
    smelter = env.register("yunnan-hydro", "smelter")
    appended = env.attest(smelter, 50)
    assert [a.index for a in appended] == list(range(2, 52))
    assert {a.checkpoint for a in appended} == {appended[-1].checkpoint}


def test_a_bad_statement_in_a_bulk_stores_nothing(env: LedgerEnv) -> None:
    smelter = env.register("yunnan-hydro", "smelter")
    good = [attestation(smelter, i) for i in range(3)]
    bad = sign_statement("document.attest", {"sha256": "nothex", "media_type": "x/y"}, smelter)
    size = env.ledger.tree_size()
    with pytest.raises(MalformedError) as refused:
        env.ledger.append_many([*good, bad])
    assert refused.value.field == "statements[3].statement.payload.sha256"
    assert env.ledger.tree_size() == size


def test_replayed_statement_is_refused(env: LedgerEnv) -> None:
    smelter = env.register("yunnan-hydro", "smelter")
    signed = attestation(smelter)
    env.ledger.append(signed)
    with pytest.raises(ConflictError, match="replay"):
        env.ledger.append(signed)


def test_unknown_key_is_refused(env: LedgerEnv) -> None:
    with pytest.raises(ForbiddenError, match="not registered") as refused:
        env.ledger.append(attestation(keys.generate()))
    assert refused.value.field == "statement.signer"


def test_bad_signature_is_refused(env: LedgerEnv) -> None:
    smelter = env.register("yunnan-hydro", "smelter")
    signed = attestation(smelter)
    forged = statements.SignedStatement(signed.statement, keys.generate().sign(b"other"))
    with pytest.raises(SignatureError):
        env.ledger.append(forged)


def test_only_the_operator_registers_participants(env: LedgerEnv) -> None:
    smelter = env.register("yunnan-hydro", "smelter")
    payload = {
        "participant_id": "sock-puppet",
        "legal_name": "Sock Puppet Ltd",
        "role": "evaluation_centre",
        "country": "CN",
        "region": "CN-BJ",
        "public_key": keys.public_key_b64(keys.generate()),
    }
    with pytest.raises(ForbiddenError, match="operator"):
        env.append("participant.register", payload, smelter)


def test_a_participant_cannot_manage_another_participants_keys(env: LedgerEnv) -> None:
    env.register("yunnan-hydro", "smelter")
    other = env.register("baotou-grid", "smelter")
    payload = {
        "participant_id": "yunnan-hydro",
        "new_public_key": keys.public_key_b64(keys.generate()),
    }
    with pytest.raises(ForbiddenError, match="only yunnan-hydro or the operator"):
        env.append("key.rotate", payload, other)


def test_rotated_key_stops_signing_and_new_key_starts(env: LedgerEnv) -> None:
    old = env.register("yunnan-hydro", "smelter")
    new = keys.generate()
    env.append(
        "key.rotate",
        {"participant_id": "yunnan-hydro", "new_public_key": keys.public_key_b64(new)},
        old,
    )
    with pytest.raises(ForbiddenError, match="rotated"):
        env.ledger.append(attestation(old, 1))
    assert env.ledger.append(attestation(new, 2)).index == env.ledger.tree_size() - 1


def test_revoked_key_is_refused(env: LedgerEnv) -> None:
    smelter = env.register("yunnan-hydro", "smelter")
    payload = {
        "participant_id": "yunnan-hydro",
        "key_id": keys.key_id(smelter),
        "reason": "key file leaked",
    }
    env.append("key.revoke", payload, env.operator_key)
    with pytest.raises(ForbiddenError, match="revoked: key file leaked"):
        env.ledger.append(attestation(smelter))


def test_duplicate_participant_is_a_conflict(env: LedgerEnv) -> None:
    env.register("yunnan-hydro", "smelter")
    with pytest.raises(ConflictError, match="already registered"):
        env.register("yunnan-hydro", "smelter")


def test_genesis_cannot_be_appended_twice(env: LedgerEnv) -> None:
    payload = env.ledger.record(0).statement["payload"]
    with pytest.raises(ConflictError, match="already has a genesis"):
        env.append("ledger.genesis", payload, env.operator_key)


def test_statement_signed_in_the_future_is_refused(env: LedgerEnv) -> None:
    smelter = env.register("yunnan-hydro", "smelter")
    statement = statements.make_statement(
        "document.attest",
        {"sha256": "a" * 64, "media_type": "application/pdf"},
        smelter,
        signed_at="2999-01-01T00:00:00Z",
    )
    with pytest.raises(MalformedError, match="future"):
        env.ledger.append(statements.sign(statement, smelter))


def test_unknown_kind_names_the_known_ones(env: LedgerEnv) -> None:
    with pytest.raises(MalformedError, match="known kinds") as refused:
        env.append("batch.teleport", {}, env.operator_key)
    assert refused.value.field == "statement.kind"
