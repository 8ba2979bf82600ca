"""Hostile input at the HTTP edge: every refusal a 4xx ``{error, detail, field}``, nothing
stored, nothing allocated without bound. Runs on SQLite and PostgreSQL: both databases must
refuse the same requests (PostgreSQL cannot hold NUL, SQLite could).

The edge (``api/limits.py``) limits bodies before reading them and reads JSON once, with
the strict reader (``ledger/strict_json.py``); record indexes and cursors are bounded
before they meet a column.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger import keys, statements
from ledger.errors import MalformedError
from ledger.strict_json import parse_json
from ledger.tokens import issue_token
from tests.conftest import LedgerEnv
from tests.support import assert_refused, demo_batch

POST_ROUTES = (
    "/v1/statements",
    "/v1/statements/bulk",
    "/v1/evaluations/preview",
    "/v1/certificates/verify",
    "/graphql",
)


@pytest.fixture
def client(env: LedgerEnv) -> Iterator[TestClient]:
    with TestClient(create_app(env.ledger)) as test_client:
        yield test_client


@pytest.fixture
def smelter_key(env: LedgerEnv) -> Any:
    return env.register("yunnan-hydro", "smelter")


@pytest.fixture
def unchanged(env: LedgerEnv) -> Iterator[None]:
    size = env.ledger.tree_size()
    yield
    assert env.ledger.tree_size() == size


def post_raw(client: TestClient, path: str, body: bytes | str) -> Any:
    data = body.encode() if isinstance(body, str) else body
    return client.post(path, content=data, headers={"content-type": "application/json"})


def signed_json(key: Any, payload: dict[str, Any], kind: str = "document.attest") -> str:
    """A signed statement as JSON text (so a test can splice raw escapes into it)."""
    return json.dumps(statements.sign_new(kind, payload, key).to_dict())


# -- JSON: depth, surrogates, duplicate members, NUL -------------------------------------
@pytest.mark.parametrize("path", POST_ROUTES)
def test_json_nested_a_thousand_deep_is_refused_on_every_post_route(
    client: TestClient, path: str, unchanged: None
) -> None:
    body = '{"a":' * 1000 + "1" + "}" * 1000
    refused = assert_refused(post_raw(client, path, body), 422, "malformed", "body")
    assert "deeper than 64" in refused["detail"]


def test_graphql_variables_in_the_query_string_are_read_strictly(client: TestClient) -> None:
    variables = "[" * 1000 + "]" * 1000
    response = client.get(
        "/graphql", params={"query": "{ checkpoint { treeSize } }", "variables": variables}
    )
    assert_refused(response, 422, "malformed", "variables")


@pytest.mark.parametrize("path", POST_ROUTES)
def test_a_lone_surrogate_is_refused_on_every_post_route(
    client: TestClient, path: str, unchanged: None
) -> None:
    body = '{"smelter_id": "\\ud800"}'
    refused = assert_refused(post_raw(client, path, body), 422, "malformed", "body.smelter_id")
    assert "surrogate" in refused["detail"]


def test_a_lone_surrogate_in_a_statement_of_a_registered_key_is_refused(
    smelter_key: Any, client: TestClient, unchanged: None
) -> None:
    key = smelter_key
    body = signed_json(key, {"sha256": "ab" * 32, "media_type": "application/pdf"})
    body = body.replace('"application/pdf"', '"application/pdf\\udfff"')
    assert_refused(
        post_raw(client, "/v1/statements", body),
        422,
        "malformed",
        "body.statement.payload.media_type",
    )


def test_duplicate_member_names_are_refused(client: TestClient, unchanged: None) -> None:
    """A parser that kept the first ``payload`` would see another statement than the one
    kept by a parser that keeps the last: RFC 8785 assumes I-JSON, which forbids this."""
    body = '{"statement": {"payload": {}, "payload": {"a": 1}}, "signature": ""}'
    refused = assert_refused(post_raw(client, "/v1/statements", body), 422, "malformed", "body")
    assert "'payload' appears twice" in refused["detail"]


def test_bytes_that_are_not_utf8_are_refused(client: TestClient, unchanged: None) -> None:
    refused = assert_refused(
        post_raw(client, "/v1/statements", b'{"a": "\xff"}'), 422, "malformed", "body"
    )
    assert "not UTF-8" in refused["detail"]


def test_nul_in_a_signed_text_field_is_refused_on_both_databases(
    smelter_key: Any, client: TestClient, unchanged: None
) -> None:
    key = smelter_key
    body = signed_json(key, {"sha256": "ab" * 32, "media_type": "application/pdf"})
    body = body.replace('"application/pdf"', '"application/\\u0000pdf"')
    refused = post_raw(client, "/v1/statements", body)
    assert_refused(refused, 422, "malformed", "body.statement.payload.media_type")


def test_nul_reaching_the_ledger_by_another_path_is_refused_too(
    env: LedgerEnv, smelter_key: Any, unchanged: None
) -> None:
    """The domain refuses it as well (``check_signable``), whatever the entry point."""
    key = smelter_key
    with pytest.raises(MalformedError) as refused:
        env.append("document.attest", {"sha256": "ab" * 32, "media_type": "a/\x00b"}, key)
    assert refused.value.field == "statement.payload.media_type"


@pytest.mark.parametrize(
    "target",
    [
        "/v1/batches/yn%00/B-1",
        "/v1/batches?smelter=yn%00",
        "/v1/records/1%00",
        "/v1/batches/yn/B-1/lineage?direction=up%00",
    ],
)
def test_nul_in_a_path_or_query_string_is_refused_on_both_databases(
    client: TestClient, target: str
) -> None:
    response = client.get(target)
    assert response.status_code == 422, response.text
    assert response.json()["field"] in ("path", "query")


# -- integers where a path, a cursor or a column meets them --------------------------------
@pytest.mark.parametrize(
    "path",
    ["/v1/records/{n}", "/v1/grades/{n}", "/v1/certificates/{n}", "/v1/proofs/inclusion/{n}"],
)
@pytest.mark.parametrize("n", [2**53, 2**64, -1])
def test_record_indexes_beyond_any_record_are_refused(
    client: TestClient, path: str, n: int
) -> None:
    response = client.get(path.format(n=n))
    assert response.status_code == 422, response.text
    assert response.json()["field"] in ("index", "record_index", "grade_record_index")


def test_tree_sizes_beyond_64_bits_are_refused(client: TestClient) -> None:
    response = client.get("/v1/proofs/consistency", params={"old": 1, "new": 2**63})
    assert_refused(response, 422, "malformed", "new")


@pytest.mark.parametrize("text", ["batch:9223372036854775808", "batch:1_000", "batch: 5", "x:1"])
def test_a_forged_cursor_is_refused(client: TestClient, text: str) -> None:
    cursor = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    response = client.get("/v1/batches", params={"cursor": cursor})
    assert_refused(response, 422, "malformed", "cursor")


# -- ids matched in full -------------------------------------------------------------------
def test_a_participant_id_with_a_trailing_newline_is_refused(
    env: LedgerEnv,
) -> None:
    """``^[a-z0-9-]+$`` with ``re.match`` accepts ``"foshan-extrusion\\n"``: a look-alike."""
    env.register("foshan-extrusion", "manufacturer")
    twin = keys.generate()
    payload = {
        "participant_id": "foshan-extrusion\n",
        "legal_name": "Twin",
        "role": "manufacturer",
        "country": "CN",
        "region": "CN-GD",
        "public_key": keys.public_key_b64(twin),
    }
    size = env.ledger.tree_size()
    with pytest.raises(MalformedError) as refused:
        env.append("participant.register", payload, env.operator_key)
    assert refused.value.field == "statement.payload.participant_id"
    assert env.ledger.tree_size() == size


def test_a_batch_id_with_a_trailing_newline_is_refused(env: LedgerEnv) -> None:
    """The batch schema's id pattern runs with ECMA-262 semantics, where ``$`` is the end."""
    key = env.register("yn-lancang-aluminium", "smelter")
    payload = demo_batch("YN-2025-0001", "yn-lancang-aluminium")
    payload["batch_id"] = "X\n"
    size = env.ledger.tree_size()
    with pytest.raises(MalformedError) as refused:
        env.append("batch.register", payload, key)
    assert refused.value.field == "statement.payload.batch_id"
    assert env.ledger.tree_size() == size


# -- body limits -------------------------------------------------------------------------
def small_limits_client(env: LedgerEnv, **limits: int) -> TestClient:
    settings = env.settings.model_copy(update=limits)
    return TestClient(create_app(env.ledger, settings))


def test_a_body_over_the_limit_is_refused_before_it_is_read(env: LedgerEnv) -> None:
    with small_limits_client(env, max_body_bytes=1000, max_bulk_body_bytes=5000) as client:
        single = post_raw(client, "/v1/statements", '{"a": "' + "x" * 2000 + '"}')
        bulk = post_raw(client, "/v1/statements/bulk", '{"statements": [' + "{}," * 3000 + "{}]}")
        within = post_raw(client, "/v1/statements/bulk", '{"statements": [' + "{}," * 10 + "{}]}")
    refused = assert_refused(single, 413, "too_large", "body")
    assert "1000 bytes (operator setting LEDGER_MAX_BODY_BYTES)" in refused["detail"]
    assert "LEDGER_MAX_BULK_BODY_BYTES" in assert_refused(bulk, 413, "too_large", "body")["detail"]
    assert within.status_code == 422  # within the limit: read, and refused for what it says


def test_a_chunked_body_is_cut_off_at_the_limit(env: LedgerEnv) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(1000):
            sent += 1
            yield b"x" * 1000

    with small_limits_client(env, max_body_bytes=10_000) as client:
        response = client.post("/v1/statements", content=chunks())
    assert_refused(response, 413, "too_large", "body")


def test_certificate_bundles_have_their_own_limit(env: LedgerEnv) -> None:
    body = '{"bundle": "' + "x" * 3000 + '"}'
    with small_limits_client(env, max_body_bytes=1000, max_certificate_body_bytes=10_000) as c:
        verify = post_raw(c, "/v1/certificates/verify", body)
        statement = post_raw(c, "/v1/statements", body)
    assert verify.status_code == 200  # read, verified: an invalid bundle
    assert verify.json()["status"] == "invalid"
    assert statement.status_code == 413


def test_json_is_parsed_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large body is parsed in a worker thread, so it never holds the event loop."""
    import api.limits

    threads: list[str] = []

    def recording(data: bytes, **options: Any) -> Any:
        threads.append(threading.current_thread().name)
        return parse_json(data, **options)

    monkeypatch.setattr(api.limits, "parse_json", recording)
    post_raw(client, "/v1/evaluations/preview", "{}")
    assert threads and threads[0] != threading.main_thread().name
    assert threads[0] != "MainThread"


def test_an_unexpected_fault_answers_500_without_its_text(
    env: LedgerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last resort: a fault of ours is logged under a request id, never shown."""
    import ledger.log

    def broken(self: Any) -> str:
        raise RuntimeError("secret internals: SELECT * FROM keys")

    monkeypatch.setattr(ledger.log.Ledger, "latest_checkpoint", broken)
    with TestClient(create_app(env.ledger), raise_server_exceptions=False) as client:
        response = client.get("/v1/checkpoint")
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "internal"
    assert "SELECT" not in response.text and "secret" not in response.text
    assert response.headers["x-request-id"] in body["detail"]


# -- memory stays flat under oversized bodies ------------------------------------------------
def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def send_oversized(port: int, megabytes: int, chunked: bool) -> bytes:
    """POST ``megabytes`` MB of body to the bulk route; the server's answer's first line."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        framing = (
            b"Transfer-Encoding: chunked\r\n"
            if chunked
            else f"Content-Length: {megabytes * 2**20}\r\n".encode()
        )
        sock.sendall(
            b"POST /v1/statements/bulk HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n" + framing + b"\r\n"
        )
        chunk = b"[" * 2**20
        try:
            for _ in range(megabytes):
                sock.sendall(b"100000\r\n" + chunk + b"\r\n" if chunked else chunk)
        except OSError:
            pass  # the server answered and closed: it stopped reading at the limit
        return sock.recv(4096).split(b"\r\n", 1)[0]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_memory_stays_flat_under_twenty_bodies_of_50_mb(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    cli = [str(Path(sys.executable).parent / "alu-ledger")]
    subprocess.run([*cli, "init", "--data-dir", str(data_dir)], check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [*cli, "serve", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        send_oversized(port, 1, chunked=False)  # warm up
        before = rss_kb(server.pid)
        answers = [send_oversized(port, 50, chunked=n % 2 == 0) for n in range(20)]
        after = rss_kb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert all(b" 413 " in answer for answer in answers), answers
    print(f"server RSS {before} kB before, {after} kB after 20 bodies of 50 MB")
    assert after - before < 50 * 1024, f"RSS grew from {before} kB to {after} kB"


def test_the_graphql_cost_limit_is_an_operator_setting(env: LedgerEnv) -> None:
    token = issue_token(env.ledger.engine, "operator").token
    with small_limits_client(env, graphql_max_cost=5) as client:
        response = client.post(
            "/graphql",
            json={"query": "{ checkpoint { treeSize } ruleSets { rulesetId } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "query_too_costly"
    assert error["extensions"]["limit"] == 5


@pytest.mark.parametrize(
    "query",
    [
        '{ batch(smelterId: "a\\u0000", batchId: "x") { batchId } }',
        '{ batch(smelterId: "\\ud800", batchId: "x") { batchId } }',
    ],
)
def test_graphql_string_literals_with_nul_or_a_lone_surrogate_are_refused_on_both_databases(
    env: LedgerEnv, client: TestClient, query: str
) -> None:
    token = issue_token(env.ledger.engine, "operator").token
    response = client.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "malformed"
