"""The Python client over real HTTP: it trusts nothing but the pinned log key.

A ``LedgerClient`` submits signed statements to a real server (uvicorn on a free
local port) and returns a ``Receipt`` only after checking the checkpoint's
signature against the pinned key, the record's leaf hash, that the record holds
exactly the statement sent, the inclusion proof, and that every checkpoint it
sees is consistent with the last one. A server that lies - a wrong key, a
tampered record, a forked history - makes the client raise ``ProofError``;
a server that refuses raises the matching ``LedgerError`` subclass.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785

from ledger import keys, merkle, statements
from ledger.checkpoints import NoteSigner
from ledger.client import LedgerClient, Receipt
from ledger.disclosure.reveal import disclose
from ledger.errors import (
    ConflictError,
    ForbiddenError,
    MalformedError,
    NotFoundError,
    ProofError,
    SignatureError,
)
from ledger.tokens import issue_token
from tests.conftest import LedgerEnv, attestation, make_env
from tests.support import SMELTER, demo_batch, serving

Mutator = Callable[[httpx.Request, Any], Any]


class Relay(httpx.BaseTransport):
    """Forwards every request to a real server, optionally rewriting JSON answers.

    ``target`` picks the server (so a test can switch the client to another log
    mid-way); ``mutate(request, body)`` may return a changed body for a response.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.mutate: Mutator | None = None
        self.upstream = httpx.Client(timeout=30)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = httpx.URL(self.target).join(request.url.raw_path.decode())
        answer = self.upstream.request(
            request.method,
            url,
            content=request.read(),
            headers={"content-type": "application/json"},
        )
        content = answer.content
        is_json = answer.headers.get("content-type", "").startswith("application/json")
        if self.mutate is not None and is_json and answer.status_code < 400:
            content = json.dumps(self.mutate(request, answer.json())).encode()
        elif self.mutate is not None and not is_json:
            content = self.mutate(request, answer.text).encode()
        return httpx.Response(
            answer.status_code,
            content=content,
            headers={"content-type": answer.headers.get("content-type", "")},
        )

    def close(self) -> None:
        self.upstream.close()


def relayed_client(base_url: str, log_key: str, key: Any) -> tuple[LedgerClient, Relay]:
    relay = Relay(base_url)
    http = httpx.Client(base_url="http://ledger.invalid", transport=relay)
    return LedgerClient(base_url, log_key, key=key, http=http), relay


@pytest.fixture
def smelter(sqlite_env: LedgerEnv) -> Any:
    return sqlite_env.register("yunnan-hydro", "smelter")


@pytest.fixture
def base_url(sqlite_env: LedgerEnv) -> Iterator[str]:
    with serving(sqlite_env.ledger) as url:
        yield url


@pytest.fixture
def client(sqlite_env: LedgerEnv, base_url: str, smelter: Any) -> Iterator[LedgerClient]:
    with LedgerClient(base_url, sqlite_env.ledger.verifier_key, key=smelter) as ledger_client:
        yield ledger_client


def document(i: int) -> dict[str, Any]:
    return {"sha256": f"{i:064x}", "media_type": "application/pdf", "title": f"report {i}"}


# -- honest server --------------------------------------------------------------


def test_submit_returns_a_verified_receipt(client: LedgerClient, sqlite_env: LedgerEnv) -> None:
    receipt = client.submit("document.attest", document(1))
    assert isinstance(receipt, Receipt)
    assert receipt.index == 2
    assert receipt.checkpoint.size == 3
    assert receipt.record["statement"]["payload"] == document(1)
    assert receipt.leaf_hash == sqlite_env.ledger.record(2).leaf_hash
    assert receipt.note == sqlite_env.ledger.latest_checkpoint()
    assert client.latest == receipt.checkpoint


def test_submit_many_returns_one_verified_receipt_per_statement(
    client: LedgerClient, sqlite_env: LedgerEnv, smelter: Any
) -> None:
    signed = [attestation(smelter, i) for i in range(6)]
    receipts = client.submit_many(signed)
    assert [r.index for r in receipts] == [2, 3, 4, 5, 6, 7]
    assert {r.checkpoint.size for r in receipts} == {8}
    for receipt, sent in zip(receipts, signed, strict=True):
        assert receipt.record["statement"] == sent.statement.to_dict()
        assert receipt.leaf_hash == sqlite_env.ledger.record(receipt.index).leaf_hash


def test_record_fetches_and_proves_an_existing_record(
    client: LedgerClient, sqlite_env: LedgerEnv
) -> None:
    client.submit("document.attest", document(1))
    client.submit("document.attest", document(2))
    receipt = client.record(1)
    assert receipt.record["statement"]["kind"] == "participant.register"
    assert receipt.leaf_hash == sqlite_env.ledger.record(1).leaf_hash
    assert receipt.checkpoint.size == 4


def test_the_client_follows_the_log_forward_through_consistent_checkpoints(
    client: LedgerClient, sqlite_env: LedgerEnv, smelter: Any
) -> None:
    sizes = []
    for i in range(3):
        client.submit("document.attest", document(i))
        sizes.append(client.latest.size)
        sqlite_env.attest(smelter, 5)  # others append meanwhile
        sqlite_env.ledger.append(attestation(smelter, 100 + i))
    assert sizes == [3, 10, 17]
    assert client.checkpoint().size == sqlite_env.ledger.tree_size() == 23
    assert client.latest.size == 23


def test_an_older_checkpoint_does_not_move_the_client_back(
    client: LedgerClient, sqlite_env: LedgerEnv, smelter: Any
) -> None:
    old = client.submit("document.attest", document(1))
    sqlite_env.attest(smelter, 4)
    newest = client.checkpoint()
    assert client.record(old.index).index == old.index
    assert client.latest == newest


def test_submitting_without_a_key_is_a_usage_error(sqlite_env: LedgerEnv, base_url: str) -> None:
    with (
        LedgerClient(base_url, sqlite_env.ledger.verifier_key) as keyless,
        pytest.raises(ValueError, match="no signing key"),
    ):
        keyless.submit("document.attest", document(1))


# -- refusals --------------------------------------------------------------------


def test_a_replay_raises_conflict_error(client: LedgerClient, smelter: Any) -> None:
    signed = attestation(smelter)
    client.submit_signed(signed)
    with pytest.raises(ConflictError, match="replay") as refused:
        client.submit_signed(signed)
    assert refused.value.status_code == 409  # type: ignore[attr-defined]


def test_an_unknown_signer_raises_forbidden_error(client: LedgerClient) -> None:
    with pytest.raises(ForbiddenError, match="not registered"):
        client.submit("document.attest", document(1), key=keys.generate())


def test_a_bad_signature_raises_signature_error(client: LedgerClient, smelter: Any) -> None:
    signed = attestation(smelter)
    with pytest.raises(SignatureError):
        client.submit_signed(statements.SignedStatement(signed.statement, smelter.sign(b"x")))


def test_a_payload_the_server_refuses_raises_malformed_error(client: LedgerClient) -> None:
    with pytest.raises(MalformedError, match=r"statement\.payload\.sha256"):
        client.submit("document.attest", {"sha256": "nothex", "media_type": "a/b"})


def test_a_float_is_refused_before_anything_is_sent(
    client: LedgerClient, sqlite_env: LedgerEnv
) -> None:
    size = sqlite_env.ledger.tree_size()
    with pytest.raises(MalformedError, match=r"statement\.payload\.mass"):
        client.submit("document.attest", {**document(1), "mass": 1.5})
    assert sqlite_env.ledger.tree_size() == size


def test_a_missing_record_raises_not_found_error(client: LedgerClient) -> None:
    with pytest.raises(NotFoundError):
        client.record(99)


def test_a_refused_bulk_raises_and_stores_nothing(
    client: LedgerClient, sqlite_env: LedgerEnv, smelter: Any
) -> None:
    size = sqlite_env.ledger.tree_size()
    signed = [attestation(smelter, 0), attestation(keys.generate(), 1)]
    with pytest.raises(ForbiddenError, match=r"statements\[1\]"):
        client.submit_many(signed)
    assert sqlite_env.ledger.tree_size() == size


# -- lying servers ------------------------------------------------------------------


def test_pinning_another_key_with_the_same_name_rejects_every_receipt(
    sqlite_env: LedgerEnv, base_url: str, smelter: Any
) -> None:
    impostor = NoteSigner(sqlite_env.ledger.origin, keys.generate()).verifier_key()
    size = sqlite_env.ledger.tree_size()
    with (
        LedgerClient(base_url, impostor, key=smelter) as misled,
        pytest.raises(ProofError, match="no signature by"),
    ):
        misled.submit("document.attest", document(1))
    assert sqlite_env.ledger.tree_size() == size + 1  # the server did append it
    with LedgerClient(base_url, impostor) as misled, pytest.raises(ProofError):
        misled.checkpoint()


def test_pinning_a_key_of_another_log_name_is_refused(
    sqlite_env: LedgerEnv, base_url: str, smelter: Any
) -> None:
    other = NoteSigner("other.example/log", keys.generate()).verifier_key()
    with LedgerClient(base_url, other, key=smelter) as misled, pytest.raises(ProofError):
        misled.submit("document.attest", document(1))


def tamper_statement(request: httpx.Request, body: Any) -> Any:
    if request.url.path == "/v1/statements":
        body["record"]["statement"]["payload"]["title"] = "not what was sent"
    return body


def tamper_and_rehash(request: httpx.Request, body: Any) -> Any:
    """Change the statement and recompute the leaf hash so it matches the bytes."""
    body = tamper_statement(request, body)
    if request.url.path == "/v1/statements":
        leaf = merkle.leaf_hash(rfc8785.dumps(body["record"]))
        body["leaf_hash"] = leaf.hex()
    return body


def rewrite_integrated_at(request: httpx.Request, body: Any) -> Any:
    """Same statement, other record bytes and a matching leaf hash: only the proof can tell."""
    if request.url.path == "/v1/statements":
        body["record"]["integrated_at"] = "2000-01-01T00:00:00.000000Z"
        leaf = merkle.leaf_hash(rfc8785.dumps(body["record"]))
        body["leaf_hash"] = leaf.hex()
    return body


def swap_proof(request: httpx.Request, body: Any) -> Any:
    if request.url.path == "/v1/statements":
        body["inclusion_proof"]["hashes"][0] = "00" * 32
    return body


def shift_proof_index(request: httpx.Request, body: Any) -> Any:
    if request.url.path == "/v1/statements":
        body["inclusion_proof"]["index"] -= 1
    return body


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (tamper_statement, "leaf hash does not match"),
        (tamper_and_rehash, "different statement"),
        (rewrite_integrated_at, "inclusion proof does not lead to the root"),
        (swap_proof, "inclusion proof does not lead to the root"),
        (shift_proof_index, "not for this record"),
    ],
)
def test_a_tampered_submit_answer_raises_proof_error(
    sqlite_env: LedgerEnv, base_url: str, smelter: Any, mutate: Mutator, message: str
) -> None:
    ledger_client, relay = relayed_client(base_url, sqlite_env.ledger.verifier_key, smelter)
    with ledger_client:
        assert ledger_client.submit("document.attest", document(1)).index == 2  # honest first
        relay.mutate = mutate
        with pytest.raises(ProofError, match=message):
            ledger_client.submit("document.attest", document(2))


def test_a_tampered_record_read_raises_proof_error(
    sqlite_env: LedgerEnv, base_url: str, smelter: Any
) -> None:
    def tamper_record(request: httpx.Request, body: Any) -> Any:
        if request.url.path == "/v1/records/1":
            body["record"]["statement"]["payload"]["role"] = "auditor"
        return body

    ledger_client, relay = relayed_client(base_url, sqlite_env.ledger.verifier_key, smelter)
    relay.mutate = tamper_record
    with ledger_client, pytest.raises(ProofError, match="leaf hash"):
        ledger_client.record(1)


def test_a_forged_checkpoint_raises_proof_error(
    sqlite_env: LedgerEnv, base_url: str, smelter: Any
) -> None:
    def bump_size(request: httpx.Request, body: Any) -> Any:
        if request.url.path == "/v1/checkpoint":
            origin, size, rest = body.split("\n", 2)
            return f"{origin}\n{int(size) + 1}\n{rest}"
        return body

    ledger_client, relay = relayed_client(base_url, sqlite_env.ledger.verifier_key, smelter)
    relay.mutate = bump_size
    with ledger_client, pytest.raises(ProofError, match="signature does not verify"):
        ledger_client.checkpoint()


def test_a_forked_log_signed_with_the_same_key_is_detected(
    sqlite_env: LedgerEnv, base_url: str, smelter: Any, tmp_path: Path
) -> None:
    """A second history under the same log key cannot pass as an extension of the first."""
    fork_dir = tmp_path / "fork"
    fork_dir.mkdir()
    shutil.copy(sqlite_env.settings.resolved_log_key_path(), fork_dir / "log-key.pem")
    fork = make_env(f"sqlite:///{tmp_path / 'fork.db'}", fork_dir)
    fork_smelter = fork.register("yunnan-hydro", "smelter")
    fork.attest(fork_smelter, 3)
    assert fork.ledger.verifier_key == sqlite_env.ledger.verifier_key

    ledger_client, relay = relayed_client(base_url, sqlite_env.ledger.verifier_key, smelter)
    with ledger_client, serving(fork.ledger) as fork_url:
        seen = ledger_client.checkpoint()
        assert seen.size == 2
        relay.target = fork_url  # the server now answers from the forked history
        with pytest.raises(ProofError, match="consistency proof"):
            ledger_client.checkpoint()
        assert ledger_client.latest == seen
        sqlite_env.attest(smelter, 3)  # both logs now have 5 records
        relay.target = base_url
        assert ledger_client.checkpoint().size == 5
        relay.target = fork_url
        with pytest.raises(ProofError, match="log forked"):
            ledger_client.checkpoint()
    fork.ledger.engine.dispose()


def test_a_server_answering_with_another_record_is_caught(
    sqlite_env: LedgerEnv, base_url: str, smelter: Any
) -> None:
    """Record 0 is genuine and provably included, but it is not the record asked for."""
    genuine = httpx.get(f"{base_url}/v1/records/0").json()

    def other_record(request: httpx.Request, body: Any) -> Any:
        return genuine if request.url.path == "/v1/records/1" else body

    ledger_client, relay = relayed_client(base_url, sqlite_env.ledger.verifier_key, smelter)
    relay.mutate = other_record
    with ledger_client, pytest.raises(ProofError, match="asked for record 1, got record 0"):
        ledger_client.record(1)


def test_a_bulk_answer_missing_a_record_is_caught(
    sqlite_env: LedgerEnv, base_url: str, smelter: Any
) -> None:
    def drop_last(request: httpx.Request, body: Any) -> Any:
        if request.url.path == "/v1/statements/bulk":
            body["records"].pop()
        return body

    ledger_client, relay = relayed_client(base_url, sqlite_env.ledger.verifier_key, smelter)
    relay.mutate = drop_last
    with ledger_client, pytest.raises(ProofError, match="sent 3 statements, got 2 records"):
        ledger_client.submit_many([attestation(smelter, i) for i in range(3)])


def test_a_batch_goes_out_committed_and_its_disclosures_come_back_to_a_token_holder(
    client: LedgerClient, sqlite_env: LedgerEnv, base_url: str, smelter: Any
) -> None:
    payload = demo_batch("YN-2025-0001")
    receipt = client.submit("batch.register", payload)
    signed = receipt.record["statement"]["payload"]
    assert set(signed["activity_data"]) == {"_sd"}
    assert "Casting record" not in json.dumps(signed)

    token = issue_token(sqlite_env.ledger.engine, SMELTER).token
    vkey = sqlite_env.ledger.verifier_key
    with LedgerClient(base_url, vkey, token=token) as owner:
        disclosures = owner.disclosures(receipt.index)
    assert disclose(signed, disclosures) == payload
    with LedgerClient(base_url, vkey) as anonymous, pytest.raises(ForbiddenError):
        anonymous.disclosures(receipt.index)
