"""The REST API: what a client sends, what it gets back, and how refusals look.

Every successful append answers with the record, its leaf hash, an inclusion
proof and a signed checkpoint, so the client can verify the receipt with the
pinned log key alone. Every refusal is JSON ``{error, detail, field}`` with one
status code per error class (422 malformed, 401 bad signature, 403 forbidden,
404 not found, 409 conflict), names the offending field, and stores nothing.
Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import rfc8785
from fastapi.testclient import TestClient

from api.app import create_app
from ledger import keys, merkle, statements
from ledger.checkpoints import Checkpoint, NoteVerifier, open_checkpoint
from ledger.disclosure.sign import sign_statement
from tests.conftest import LedgerEnv, attestation
from tests.support import assert_refused


@pytest.fixture
def client(env: LedgerEnv) -> Iterator[TestClient]:
    with TestClient(create_app(env.ledger)) as test_client:
        yield test_client


def pinned_verifier(client: TestClient) -> NoteVerifier:
    return NoteVerifier.parse(client.get("/v1/log-key").text)


def leaf_hash_of(record: dict[str, Any]) -> bytes:
    """RFC 9162 leaf hash of a record as a client recomputes it from JSON."""
    return hashlib.sha256(b"\x00" + rfc8785.dumps(record)).digest()


def register_payload(participant_id: str, key: Any, role: str = "smelter") -> dict[str, Any]:
    return {
        "participant_id": participant_id,
        "legal_name": f"{participant_id} Co., Ltd.",
        "role": role,
        "country": "CN",
        "region": "CN-YN",
        "public_key": keys.public_key_b64(key),
    }


def post(client: TestClient, signed: statements.SignedStatement) -> Any:
    return client.post("/v1/statements", json=signed.to_dict())


def signed_with_payload(key: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """A statement signed over ``payload`` exactly as given (floats included)."""
    statement = statements.make_statement("document.attest", payload, key)
    signature = key.sign(rfc8785.dumps(statement.to_dict()))
    return {"statement": statement.to_dict(), "signature": base64.b64encode(signature).decode()}


@pytest.fixture
def smelter(env: LedgerEnv) -> Any:
    return env.register("yunnan-hydro", "smelter")


@pytest.fixture
def unchanged(env: LedgerEnv) -> Iterator[None]:
    """Asserts, after the test, that nothing was stored meanwhile."""
    size = env.ledger.tree_size()
    note = env.ledger.latest_checkpoint()
    yield
    assert env.ledger.tree_size() == size
    assert env.ledger.latest_checkpoint() == note


# -- appending ----------------------------------------------------------------


def test_posting_a_statement_returns_a_receipt_that_verifies(
    client: TestClient, env: LedgerEnv, smelter: Any
) -> None:
    signed = attestation(smelter)
    response = post(client, signed)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"record", "leaf_hash", "inclusion_proof", "checkpoint"}

    record = body["record"]
    assert record["statement"] == signed.statement.to_dict()
    assert record["signature"] == base64.b64encode(signed.signature).decode()
    assert body["leaf_hash"] == leaf_hash_of(record).hex()

    checkpoint = open_checkpoint(body["checkpoint"], pinned_verifier(client))
    proof = body["inclusion_proof"]
    assert proof["index"] == record["index"] == 2
    assert proof["tree_size"] == checkpoint.size == 3
    merkle.verify_inclusion(
        leaf_hash_of(record),
        record["index"],
        checkpoint.size,
        [bytes.fromhex(h) for h in proof["hashes"]],
        checkpoint.root,
    )
    assert env.ledger.tree_size() == 3


def test_a_posted_record_is_chained_to_the_one_before(client: TestClient, smelter: Any) -> None:
    first = post(client, attestation(smelter, 1)).json()
    second = post(client, attestation(smelter, 2)).json()
    assert second["record"]["prev"] == first["leaf_hash"]
    assert second["record"]["index"] == first["record"]["index"] + 1


def test_bulk_post_appends_all_statements_under_one_checkpoint(
    client: TestClient, env: LedgerEnv, smelter: Any
) -> None:
    signed = [attestation(smelter, i) for i in range(5)]
    response = client.post(
        "/v1/statements/bulk", json={"statements": [s.to_dict() for s in signed]}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["tree_size"] == env.ledger.tree_size() == 7
    checkpoint = open_checkpoint(body["checkpoint"], pinned_verifier(client))
    assert checkpoint.size == 7
    assert [item["record"]["index"] for item in body["records"]] == [2, 3, 4, 5, 6]
    for item, sent in zip(body["records"], signed, strict=True):
        assert item["record"]["statement"] == sent.statement.to_dict()
        assert item["leaf_hash"] == leaf_hash_of(item["record"]).hex()
        proof = client.get(
            f"/v1/proofs/inclusion/{item['record']['index']}", params={"tree_size": 7}
        ).json()
        merkle.verify_inclusion(
            bytes.fromhex(item["leaf_hash"]),
            item["record"]["index"],
            7,
            [bytes.fromhex(h) for h in proof["hashes"]],
            checkpoint.root,
        )


# -- reading ------------------------------------------------------------------


def test_a_record_is_served_with_its_leaf_hash(client: TestClient, env: LedgerEnv) -> None:
    response = client.get("/v1/records/0")
    assert response.status_code == 200
    body = response.json()
    assert body["record"]["index"] == 0
    assert body["record"]["statement"]["kind"] == "ledger.genesis"
    assert body["leaf_hash"] == leaf_hash_of(body["record"]).hex()
    assert rfc8785.dumps(body["record"]) == env.ledger.record(0).leaf


@pytest.mark.parametrize("index", ["1", "999"])
def test_an_unknown_record_is_404_with_a_json_body(
    client: TestClient, index: str, unchanged: None
) -> None:
    response = client.get(f"/v1/records/{index}")
    body = assert_refused(response, 404, "not_found", "index")
    assert f"no record with index {index}" in body["detail"]


@pytest.mark.parametrize("index", ["two", "-1", str(2**53), str(2**63), "9" * 40])
def test_a_record_index_that_is_no_record_index_is_422(
    client: TestClient, index: str, unchanged: None
) -> None:
    """Negative, beyond any record (2^53) or beyond a 64-bit column: refused before a query."""
    response = client.get(f"/v1/records/{index}")
    assert response.status_code == 422
    assert response.json()["field"] == "index"


def test_an_unknown_route_is_404_with_a_json_body(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_the_checkpoint_is_a_signed_note_in_plain_text(client: TestClient, env: LedgerEnv) -> None:
    response = client.get("/v1/checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    checkpoint = open_checkpoint(response.text, pinned_verifier(client), origin=env.ledger.origin)
    assert checkpoint == Checkpoint(
        env.ledger.origin, 1, merkle.leaf_hash(env.ledger.record(0).leaf)
    )


def test_the_log_key_is_the_plain_text_verifier_key(client: TestClient, env: LedgerEnv) -> None:
    response = client.get("/v1/log-key")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == env.ledger.verifier_key
    assert pinned_verifier(client).name == env.ledger.origin


def test_an_inclusion_proof_for_an_older_tree_size_verifies(
    client: TestClient, env: LedgerEnv, smelter: Any
) -> None:
    old_note = post(client, attestation(smelter, 1)).json()["checkpoint"]
    env.attest(smelter, 6)
    old = open_checkpoint(old_note, pinned_verifier(client))
    record = client.get("/v1/records/1").json()
    response = client.get("/v1/proofs/inclusion/1", params={"tree_size": old.size})
    assert response.status_code == 200
    proof = response.json()
    assert proof["index"] == 1
    assert proof["tree_size"] == old.size == 3
    merkle.verify_inclusion(
        bytes.fromhex(record["leaf_hash"]),
        1,
        old.size,
        [bytes.fromhex(h) for h in proof["hashes"]],
        old.root,
    )


def test_an_inclusion_proof_defaults_to_the_latest_tree(
    client: TestClient, env: LedgerEnv, smelter: Any
) -> None:
    env.attest(smelter, 4)
    latest = open_checkpoint(client.get("/v1/checkpoint").text, pinned_verifier(client))
    proof = client.get("/v1/proofs/inclusion/3").json()
    assert proof["tree_size"] == latest.size == 6
    leaf = bytes.fromhex(client.get("/v1/records/3").json()["leaf_hash"])
    hashes = [bytes.fromhex(h) for h in proof["hashes"]]
    merkle.verify_inclusion(leaf, 3, latest.size, hashes, latest.root)


def test_a_consistency_proof_links_two_checkpoints(
    client: TestClient, env: LedgerEnv, smelter: Any
) -> None:
    verifier = pinned_verifier(client)
    old = open_checkpoint(client.get("/v1/checkpoint").text, verifier)
    env.attest(smelter, 9)
    new = open_checkpoint(client.get("/v1/checkpoint").text, verifier)
    response = client.get("/v1/proofs/consistency", params={"old": old.size, "new": new.size})
    assert response.status_code == 200
    body = response.json()
    assert (body["old"], body["new"]) == (old.size, new.size) == (2, 11)
    hashes = [bytes.fromhex(h) for h in body["hashes"]]
    merkle.verify_consistency(old.size, new.size, hashes, old.root, new.root)


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/v1/proofs/inclusion/0", {"tree_size": 99}, 404, "tree_size"),
        ("/v1/proofs/inclusion/5", {}, 404, "index"),
        ("/v1/proofs/inclusion/0", {"tree_size": 0}, 422, "tree_size"),
        ("/v1/proofs/consistency", {"old": 2, "new": 1}, 422, "old"),
        ("/v1/proofs/consistency", {"old": 1, "new": 99}, 404, "tree_size"),
        ("/v1/proofs/consistency", {"old": 0, "new": 2}, 422, "old"),
        ("/v1/proofs/consistency", {"new": 2}, 422, "old"),
    ],
)
def test_impossible_proof_requests_are_refused_naming_the_parameter(
    client: TestClient,
    smelter: Any,
    path: str,
    params: dict[str, int],
    status: int,
    field: str,
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field


# -- refusals -------------------------------------------------------------------


def test_a_float_in_the_payload_is_422_naming_its_path(
    client: TestClient, smelter: Any, unchanged: None
) -> None:
    body = signed_with_payload(
        smelter, {"sha256": "0" * 64, "media_type": "a/b", "parts": [{"mass": 1}, {"mass": 2.5}]}
    )
    response = client.post("/v1/statements", json=body)
    detail = assert_refused(response, 422, "malformed", "statement.payload.parts[1].mass")
    assert "floats are not allowed" in detail["detail"]


def test_an_integer_beyond_the_i_json_range_is_422(
    client: TestClient, smelter: Any, unchanged: None
) -> None:
    body = signed_with_payload(smelter, {"sha256": "0" * 64, "media_type": "a/b"})
    body["statement"]["payload"]["count"] = 2**53
    response = client.post("/v1/statements", json=body)
    assert_refused(response, 422, "malformed", "statement.payload.count")


@pytest.mark.parametrize("raw", [b"{not json", b"", b'{"statement": NaN}', b"[1, 2"])
def test_a_body_that_is_not_json_is_422(client: TestClient, raw: bytes, unchanged: None) -> None:
    response = client.post(
        "/v1/statements", content=raw, headers={"content-type": "application/json"}
    )
    assert_refused(response, 422, "malformed", "body")


def test_a_body_that_is_not_an_object_is_422(client: TestClient, unchanged: None) -> None:
    response = client.post("/v1/statements", json=["statement"])
    assert_refused(response, 422, "malformed", "body")


@pytest.mark.parametrize("name", ["kind", "payload", "signer", "nonce", "signed_at"])
def test_a_missing_statement_field_is_422_naming_it(
    client: TestClient, smelter: Any, name: str, unchanged: None
) -> None:
    body = attestation(smelter).to_dict()
    del body["statement"][name]
    response = client.post("/v1/statements", json=body)
    assert_refused(response, 422, "malformed", f"statement.{name}")


def test_a_missing_signature_is_422(client: TestClient, smelter: Any, unchanged: None) -> None:
    body = attestation(smelter).to_dict()
    del body["signature"]
    assert_refused(client.post("/v1/statements", json=body), 422, "malformed", "signature")


def test_a_payload_the_kind_refuses_is_422_naming_the_payload_field(
    client: TestClient, smelter: Any, unchanged: None
) -> None:
    signed = sign_statement("document.attest", {"sha256": "xyz", "media_type": "a/b"}, smelter)
    assert_refused(post(client, signed), 422, "malformed", "statement.payload.sha256")


def test_an_unknown_kind_is_422(client: TestClient, smelter: Any, unchanged: None) -> None:
    signed = sign_statement("batch.teleport", {}, smelter)
    body = assert_refused(post(client, signed), 422, "malformed", "statement.kind")
    assert "known kinds" in body["detail"]


def test_a_bad_signature_is_401(client: TestClient, smelter: Any, unchanged: None) -> None:
    signed = attestation(smelter)
    forged = statements.SignedStatement(signed.statement, smelter.sign(b"something else"))
    assert_refused(post(client, forged), 401, "bad_signature", "signature")


def test_a_tampered_statement_no_longer_matches_its_signature(
    client: TestClient, smelter: Any, unchanged: None
) -> None:
    body = attestation(smelter).to_dict()
    body["statement"]["payload"]["title"] = "a different report"
    assert_refused(client.post("/v1/statements", json=body), 401, "bad_signature", "signature")


def test_an_unknown_signer_is_403(client: TestClient, unchanged: None) -> None:
    response = post(client, attestation(keys.generate()))
    body = assert_refused(response, 403, "forbidden", "statement.signer")
    assert "not registered" in body["detail"]


def test_only_the_operator_may_register_participants(
    client: TestClient, smelter: Any, unchanged: None
) -> None:
    signed = sign_statement(
        "participant.register", register_payload("sock-puppet", keys.generate()), smelter
    )
    body = assert_refused(post(client, signed), 403, "forbidden", "statement.signer")
    assert "operator" in body["detail"]


def test_the_operator_registers_participants_over_the_api(
    client: TestClient, env: LedgerEnv
) -> None:
    newcomer = keys.generate()
    signed = sign_statement(
        "participant.register", register_payload("baotou-grid", newcomer), env.operator_key
    )
    assert post(client, signed).status_code == 201
    assert post(client, attestation(newcomer)).status_code == 201


def test_a_replayed_statement_is_409(client: TestClient, env: LedgerEnv, smelter: Any) -> None:
    signed = attestation(smelter)
    assert post(client, signed).status_code == 201
    size = env.ledger.tree_size()
    body = assert_refused(post(client, signed), 409, "conflict", "statement.nonce")
    assert "replay" in body["detail"]
    assert env.ledger.tree_size() == size


# -- bulk refusals: all or nothing ---------------------------------------------------


def bulk(client: TestClient, items: list[Any]) -> Any:
    return client.post("/v1/statements/bulk", json={"statements": items})


def test_a_float_in_one_bulk_item_refuses_the_whole_bulk(
    client: TestClient, smelter: Any, unchanged: None
) -> None:
    items = [attestation(smelter, i).to_dict() for i in range(3)]
    items.insert(
        2, signed_with_payload(smelter, {"sha256": "0" * 64, "media_type": "a/b", "x": 0.1})
    )
    assert_refused(bulk(client, items), 422, "malformed", "statements[2].statement.payload.x")


def test_a_payload_refused_by_its_kind_names_its_bulk_position(
    client: TestClient, smelter: Any, unchanged: None
) -> None:
    bad = sign_statement("document.attest", {"sha256": "nothex", "media_type": "a/b"}, smelter)
    items = [attestation(smelter, 0).to_dict(), bad.to_dict(), attestation(smelter, 1).to_dict()]
    assert_refused(bulk(client, items), 422, "malformed", "statements[1].statement.payload.sha256")


def test_a_bulk_of_one_still_names_the_bulk_position(
    client: TestClient, smelter: Any, unchanged: None
) -> None:
    bad = sign_statement("document.attest", {"sha256": "nothex", "media_type": "a/b"}, smelter)
    assert_refused(
        bulk(client, [bad.to_dict()]), 422, "malformed", "statements[0].statement.payload.sha256"
    )


def test_a_bad_signature_in_a_bulk_names_the_items_signature(
    client: TestClient, smelter: Any, unchanged: None
) -> None:
    good = attestation(smelter, 0)
    signed = attestation(smelter, 1)
    forged = statements.SignedStatement(signed.statement, smelter.sign(b"other"))
    response = bulk(client, [good.to_dict(), forged.to_dict()])
    assert_refused(response, 401, "bad_signature", "statements[1].signature")


def test_an_unknown_signer_in_a_bulk_is_403(
    client: TestClient, smelter: Any, unchanged: None
) -> None:
    items = [attestation(smelter).to_dict(), attestation(keys.generate()).to_dict()]
    assert_refused(bulk(client, items), 403, "forbidden", "statements[1].statement.signer")


def test_a_nonce_repeated_within_a_bulk_is_409(
    client: TestClient, smelter: Any, unchanged: None
) -> None:
    signed = attestation(smelter)
    response = bulk(client, [signed.to_dict(), signed.to_dict()])
    assert_refused(response, 409, "conflict", "statements[1].statement.nonce")


def test_a_bulk_replaying_a_recorded_statement_is_409(
    client: TestClient, env: LedgerEnv, smelter: Any
) -> None:
    recorded = attestation(smelter, 0)
    env.ledger.append(recorded)
    size = env.ledger.tree_size()
    response = bulk(client, [attestation(smelter, 1).to_dict(), recorded.to_dict()])
    assert_refused(response, 409, "conflict", "statements[1].statement.nonce")
    assert env.ledger.tree_size() == size


def test_a_bulk_with_a_missing_field_names_the_item(
    client: TestClient, smelter: Any, unchanged: None
) -> None:
    items = [attestation(smelter, i).to_dict() for i in range(2)]
    del items[1]["statement"]["signed_at"]
    assert_refused(bulk(client, items), 422, "malformed", "statements[1].statement.signed_at")


@pytest.mark.parametrize("body", [{}, {"statements": "all"}, [], {"statements": []}])
def test_a_bulk_without_statements_is_422(client: TestClient, body: Any, unchanged: None) -> None:
    response = client.post("/v1/statements/bulk", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "statements"


def test_a_bulk_larger_than_the_limit_is_422(
    client: TestClient, env: LedgerEnv, smelter: Any, unchanged: None
) -> None:
    env.ledger.max_bulk = 2
    items = [attestation(smelter, i).to_dict() for i in range(3)]
    body = assert_refused(bulk(client, items), 422, "malformed", "statements")
    assert "at most 2" in body["detail"]


# -- documentation ------------------------------------------------------------------


def test_the_openapi_document_describes_the_endpoints(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["info"]["title"] == "alu-ledger"
    for path in (
        "/v1/statements",
        "/v1/statements/bulk",
        "/v1/records/{index}",
        "/v1/checkpoint",
        "/v1/log-key",
        "/v1/proofs/inclusion/{index}",
        "/v1/proofs/consistency",
    ):
        assert path in spec["paths"], path
    request = spec["paths"]["/v1/statements"]["post"]["requestBody"]
    schema = json.dumps(request["content"]["application/json"]["schema"])
    assert "signature" in schema


def test_the_interactive_docs_are_served(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "openapi.json" in response.text
