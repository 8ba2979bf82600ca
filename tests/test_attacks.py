"""Attacks on the ledger, and the defence that stops each one.

Each test below plays an attacker with more power than an ordinary participant has:

1. someone who reaches an empty ledger first and tries to start it under the
   operator's name without the operator's private key;
2. an insider holding the database *and* the log signing key, who writes a record
   signed with a stolen key after that key was revoked or rotated out, and re-signs
   the checkpoint so that every Merkle root and proof still agrees;
3. a seller who swaps the batch inside a certificate bundle for another genuine batch
   of the same smelter, one with the same public values, graded at the same checkpoint
   and carried with its real inclusion proof.

Each test fails if its defence is removed: the append pipeline's signature check on
genesis (``ledger/log.py``, ``Ledger._authenticate``) and the genesis key-id check
(``ledger/participants.py``, ``Genesis.check``); the audit's key-validity check
(``ledger/audit.py``, ``_key_problem``); the bundle verifier's grade-to-batch match
(``ledger/certificates/verify.py``, ``_check_grade_inputs``). Storage tests run on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, MetaData

from ledger import keys, merkle
from ledger.catalog import default_kinds
from ledger.certificates import build_bundle, verify_bundle
from ledger.checkpoints import Checkpoint, NoteSigner, open_checkpoint, sign_checkpoint
from ledger.errors import ForbiddenError, NotFoundError, SignatureError
from ledger.kind_names import GENESIS
from ledger.log import Ledger
from ledger.records import leaf_bytes
from ledger.statements import SignedStatement, make_statement, sign, utc_now
from ledger.storage.db import make_engine, write_session
from ledger.storage.migrate import migrate
from ledger.storage.repository import Head, Repository
from tests.conftest import LedgerEnv, attestation
from tests.grading_support import CENTRE, RULESET, SMELTER, grant, issue, shipped
from tests.support import demo_batch, uncertified
from tests.test_audit import audit, verify_cli

ORIGIN = "alu-ledger.test/log"


# -- helpers ---------------------------------------------------------------------------
def stored_state(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the database, to show that nothing changed."""
    tables = MetaData()
    tables.reflect(engine)
    with engine.connect() as connection:
        return {
            table.name: sorted(
                (
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in connection.execute(table.select())
                ),
                key=repr,
            )
            for table in tables.sorted_tables
        }


def empty_ledger(database_url: str) -> Ledger:
    """A migrated database with no genesis yet: what ``alu-ledger init`` starts from."""
    engine = make_engine(database_url)
    migrate(engine)
    signer = NoteSigner(ORIGIN, keys.generate())
    return Ledger(engine, signer, default_kinds(), operator_id="operator")


@pytest.fixture
def empty(database_url: str) -> Iterator[Ledger]:
    ledger = empty_ledger(database_url)
    yield ledger
    ledger.engine.dispose()


def genesis_payload(ledger: Ledger, operator: Ed25519PrivateKey) -> dict[str, Any]:
    """The genesis payload ``alu-ledger init`` writes, naming ``operator``'s public key."""
    return {
        "origin": ledger.origin,
        "log_verifier_key": ledger.verifier_key,
        "operator": {
            "participant_id": "operator",
            "legal_name": "Ledger Operator",
            "country": "CN",
            "region": "CN-BJ",
            "public_key": keys.public_key_b64(operator),
        },
    }


def assert_still_empty(ledger: Ledger, before: dict[str, list[tuple[Any, ...]]]) -> None:
    assert stored_state(ledger.engine) == before
    assert ledger.tree_size() == 0
    with pytest.raises(NotFoundError, match="no checkpoint"):
        ledger.latest_checkpoint()


# -- 1. a forged genesis -----------------------------------------------------------------
def test_a_genesis_naming_the_operator_key_but_signed_by_another_key_is_refused(
    empty: Ledger,
) -> None:
    """Genesis carries the operator's public key in its own payload, since no key is
    registered yet. An impostor copies the real operator's public key into the payload
    and the operator's key id into ``signer``, then signs with a key of their own. The
    ledger verifies the signature against the key the genesis names, so it refuses the
    statement with a signature error, and the ledger stays exactly as it was: no record,
    no checkpoint, no log head, no operator. The real operator can still start it."""
    operator, impostor = keys.generate(), keys.generate()
    statement = make_statement(GENESIS, genesis_payload(empty, operator), operator)
    assert statement.signer == keys.key_id(operator)
    forged = SignedStatement(statement, impostor.sign(statement.canonical()))
    before = stored_state(empty.engine)

    with pytest.raises(SignatureError):
        empty.append(forged)

    assert_still_empty(empty, before)
    assert empty.append(sign(statement, operator)).index == 0


def test_a_genesis_whose_signer_is_not_the_key_it_names_is_refused(empty: Ledger) -> None:
    """The other way round: the impostor names their own public key as the operator's
    (so the signature verifies) but puts the real operator's key id in ``signer``, so
    that the record would claim to be the operator's. The genesis must be signed by the
    very key it names; the ledger refuses it and stays empty."""
    operator, impostor = keys.generate(), keys.generate()
    own = make_statement(GENESIS, genesis_payload(empty, impostor), impostor)
    claimed = replace(own, signer=keys.key_id(operator))
    forged = SignedStatement(claimed, impostor.sign(claimed.canonical()))
    before = stored_state(empty.engine)

    with pytest.raises(ForbiddenError, match="signed by the operator key it names"):
        empty.append(forged)

    assert_still_empty(empty, before)


# -- 2. a record signed by an ended key, forged with the log key ------------------------------
def forge_append(env: LedgerEnv, signed: SignedStatement) -> int:
    """Write ``signed`` as the next record the way the append pipeline would (hash chain,
    Merkle nodes, log head, a checkpoint signed with the log key) but with none of its
    checks: what an insider with the database and the log key can do. Returns the index."""
    ledger = env.ledger
    with write_session(ledger.engine) as session:
        repo = Repository(session)
        head = repo.lock_head()
        assert head is not None
        frontier = merkle.Frontier.load(head.size, repo)
        at = utc_now()
        statement = signed.statement
        leaf = leaf_bytes(
            head.size, head.last_leaf_hash.hex(), at, signed.signature, statement.canonical()
        )
        digest = merkle.leaf_hash(leaf)
        nodes = frontier.append(digest)
        repo.insert_records(
            [
                {
                    "idx": head.size,
                    "leaf": leaf,
                    "leaf_hash": digest,
                    "kind": statement.kind,
                    "signer": statement.signer,
                    "nonce": statement.nonce,
                    "integrated_at": at,
                }
            ]
        )
        repo.insert_nodes(nodes)
        new_head = Head(frontier.size, frontier.root(), digest)
        note = sign_checkpoint(
            Checkpoint(ledger.origin, new_head.size, new_head.root), ledger.signer
        )
        repo.insert_checkpoint(new_head.size, new_head.root, note, at)
        repo.save_head(new_head)
    return head.size


def end_key(env: LedgerEnv, how: str, key: Ed25519PrivateKey) -> tuple[int, str]:
    """Revoke ``key`` (by the operator) or rotate it out (by its owner); return the
    index of the record that ended it and the word the ledger uses for it."""
    if how == "revoked":
        payload = {"participant_id": SMELTER, "key_id": keys.key_id(key), "reason": "leaked"}
        return env.append("key.revoke", payload, env.operator_key).index, "revoked: leaked"
    payload = {"participant_id": SMELTER, "new_public_key": keys.public_key_b64(keys.generate())}
    return env.append("key.rotate", payload, key).index, "rotated"


@pytest.mark.parametrize("how", ["revoked", "rotated"])
def test_the_audit_names_a_record_signed_by_a_key_ended_before_it(env: LedgerEnv, how: str) -> None:
    """A smelter's key leaks and is revoked (or rotated out). The ledger now refuses that
    key, so an insider holding the database and the log key writes the thief's record
    straight into the tables and re-signs the checkpoint. Everything a client checks
    agrees: the checkpoint verifies under the log key, the record's inclusion proof
    leads to its root, the record's signature verifies with the key it names. Only the
    key's history shows the forgery, and the audit names it: the forged record's index,
    the key, and the record that had ended the key - not a vague root mismatch."""
    stolen = env.register(SMELTER, "smelter")
    env.attest(stolen, 2)
    ended_at, reason = end_key(env, how, stolen)
    with pytest.raises(ForbiddenError, match=reason):
        env.ledger.append(attestation(stolen, 7))  # the ledger itself refuses the key
    assert audit(env).ok

    forged = forge_append(env, attestation(stolen, 7))

    checkpoint = open_checkpoint(env.ledger.latest_checkpoint(), env.ledger.verifier)
    assert checkpoint.size == forged + 1
    proof = env.ledger.inclusion_proof(forged, checkpoint.size)
    merkle.verify_inclusion(
        env.ledger.record(forged).leaf_hash, forged, checkpoint.size, proof.hashes, checkpoint.root
    )
    report = audit(env)
    assert not report.ok and report.problem is not None
    assert report.problem.index == forged
    assert f"signer key had been ended at record {ended_at}" in report.problem.reason
    assert keys.key_id(stolen) in report.problem.reason
    assert "root" not in report.problem.reason

    result = verify_cli(env)
    assert result.exit_code == 1, result.output
    assert f"FAILED at index {forged}: " in result.output
    assert f"ended at record {ended_at}" in result.output


# -- 3. a certificate bundle carrying another batch ---------------------------------------------
TWIN = "GD-2025-0102"


@pytest.fixture
def twins(env: LedgerEnv) -> LedgerEnv:
    """One smelter's two batches with the same public values (one demo recycled batch
    under two ids), both graded tier-2 by an accredited centre."""
    smelter = env.register(SMELTER, "smelter")
    centre = env.register(CENTRE, "evaluation_centre")
    grant(env)
    env.append("ruleset.publish", shipped(RULESET), centre)
    for batch_id in (TWIN, f"{TWIN}-B"):
        env.append("batch.register", uncertified(demo_batch(TWIN, SMELTER, batch_id)), smelter)
    return env


def test_a_bundle_whose_batch_is_swapped_for_another_batch_of_the_smelter_is_invalid(
    twins: LedgerEnv,
) -> None:
    """The grade names its batch by smelter and batch id; the bundle carries the batch's
    registration record. A seller holding the certificate of batch A swaps in the record
    of batch B: a genuine record of the same smelter, signed by the same key, graded too,
    with its real inclusion proof in the same checkpoint, and with exactly the same
    public values, so the grade's signed facts agree with it and re-evaluating the rule
    set still supports the grade. Offline verification must still say ``invalid``, and
    say why: the grade record grades batch A, but the bundle's batch record (named by
    its index) registers batch B."""
    grade_a = issue(twins, "tier-2", batch_id=TWIN).index
    grade_b = issue(twins, "tier-2", batch_id=f"{TWIN}-B").index
    bundle, other = build_bundle(twins.ledger, grade_a), build_bundle(twins.ledger, grade_b)
    vkey = twins.ledger.verifier_key
    assert bundle["checkpoint"] == other["checkpoint"]
    assert verify_bundle(bundle, vkey).status == "valid"
    assert verify_bundle(other, vkey).status == "valid"
    batch_a = bundle["records"]["batch"]["record"]["index"]
    batch_b = other["records"]["batch"]["record"]["index"]
    assert batch_a != batch_b

    bundle["records"]["batch"] = other["records"]["batch"]
    verdict = verify_bundle(bundle, vkey)

    assert verdict.status == "invalid"
    reason = verdict.reasons[0]
    assert "records.batch is not the batch the grade names" in reason
    assert f"grade record {grade_a} grades batch {SMELTER}/{TWIN}," in reason
    assert f"records.batch is record {batch_b}" in reason
    assert f"batch {SMELTER}/{TWIN}-B" in reason
