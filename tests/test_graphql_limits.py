"""GraphQL's edges (docs/graphql.md, "Cost" and "Errors"): the cost of a query computed
before it executes, a time limit the database enforces, errors that carry codes and a
request id but never internals, 64-bit-safe integers, and execution off the event loop.

Each test talks to a live server (uvicorn on a real socket, in this process); those that
touch storage run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from graphql import GraphQLError, IntValueNode, StringValueNode, parse
from sqlalchemy import event, text

import ledger.certificates.cache as bundle_cache_module
from api import local_server
from api.graphql import graphql_router
from api.graphql.cost import DEFAULT_MAX_COST, operation_cost
from api.graphql.scalars import MAX_LONG, parse_literal, parse_value, serialize
from api.graphql.schema import schema
from api.request_ids import RequestIds, valid_request_id
from ledger.demo import demo_file
from ledger.log import Ledger
from ledger.storage.db import is_timeout, read_session, time_limit
from ledger.tokens import issue_token
from tests.conftest import LedgerEnv
from tests.support import demo_batch, serving
from tests.test_graphql import PAGE, PRODUCT, Api, demo_ledger

#: The module (``api.graphql.schema`` as an attribute is the schema object it makes).
schema_module = importlib.import_module("api.graphql.schema")
BUYER = "foshan-extrusion"
README_PAGE = """query Page($after: String) {
  batches(first: 50, after: $after, filter: {ruleSetId: "cnia-green-low-carbon-aluminium"}) {
    edges { node {
      smelterId batchId massKg productForm
      footprint { declaredKgCo2ePerT computedKgCo2ePerT check }
      renewableShare electricity { source kwh certificateScheme }
      grades { ruleSetId grade expiresOn revoked certificate { gradeIndex } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
LINEAGE = """query($s: String!, $b: String!) { batch(smelterId: $s, batchId: $b) {
  lineage(direction: UP, depth: 5) {
    nodes { smelterId batchId massKg holderId footprintKgCo2ePerT grades { grade ruleSetId } }
    edges { parentSmelterId parentBatchId childSmelterId childBatchId massKg operation recordIndex }
    claimSummary { graded { ruleSetId grade share gradedKg } recycledTotal
                   renewableElectricityShare footprintKgCo2ePerT }
  } } }"""
#: Issue 12's query: 20 aliases of a page of 100 with bundles, deep lineage and custody.
NODE = """smelterId batchId certificates { bundle }
  lineage(depth: 50) { nodes { batchId massKg } edges { massKg } } custodyHistory { kind }"""
ISSUE_12 = (
    "{ "
    + " ".join(f"a{i}: batches(first: 100) {{ edges {{ node {{ {NODE} }} }} }}" for i in range(20))
    + " }"
)
#: Near the default limit: three batches' certificates with their bundles.
EXPENSIVE = """{ batches(first: 3) { edges { node {
  smelterId batchId certificates { gradeIndex bundle } } } } }"""
FORGED_CURSOR = "YmF0Y2g6OTIyMzM3MjAzNjg1NDc3NTgwOA"  # base64 of batch:9223372036854775808
BIG_KWH = 3_176_300_000


def cost(query: str, **variables: Any) -> int:
    return operation_cost(schema._schema, parse(query), None, variables)


def statements_during(ledger: Ledger, run: Callable[[], Any]) -> tuple[int, Any]:
    """How many SQL statements ``run`` made the server execute, and what it returned."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(ledger.engine, "before_cursor_execute", record)
    try:
        result = run()
    finally:
        event.remove(ledger.engine, "before_cursor_execute", record)
    return len(seen), result


def graphql_app(ledger: Ledger, **limits: Any) -> FastAPI:
    """The GraphQL router alone with non-default limits (``create_app`` uses defaults)."""
    app = FastAPI()
    app.add_middleware(RequestIds)
    app.include_router(graphql_router(ledger, **limits), prefix="/graphql")
    return app


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Ledger]]:
    tmp = tmp_path_factory.mktemp("graphql-limits")
    ledger = demo_ledger(f"sqlite:///{tmp / 'ledger.db'}", tmp / "data")
    ids = [p["participant_id"] for p in demo_file("participants.json")]
    tokens = {pid: issue_token(ledger.engine, pid).token for pid in ids}
    with serving(ledger) as url:
        yield Api(url, tokens), ledger
    ledger.engine.dispose()


def reader(env: LedgerEnv, participant_id: str = "buyer", role: str = "manufacturer") -> str:
    """Register a participant and return an API token for it."""
    env.register(participant_id, role)
    return issue_token(env.ledger.engine, participant_id).token


# -- cost, before execution -----------------------------------------------------------------
def test_issue_12_query_is_refused_with_its_cost_before_anything_runs(
    demo: tuple[Api, Ledger],
) -> None:
    api, ledger = demo
    expected = cost(ISSUE_12)
    assert expected > 100 * DEFAULT_MAX_COST
    statements, answer = statements_during(ledger, lambda: api.query(ISSUE_12))
    assert answer["data"] is None
    [error] = answer["errors"]
    assert error["extensions"] == {
        "code": "query_too_costly",
        "cost": expected,
        "limit": DEFAULT_MAX_COST,
    }
    assert f"{expected:,}" in error["message"] and f"{DEFAULT_MAX_COST:,}" in error["message"]
    assert statements == 0, "nothing of a refused query executes, not even the token lookup"


def test_the_cost_follows_variables_defaults_aliases_and_fragments() -> None:
    paged = "query($n: Int!) { batches(first: $n) { edges { node { certificates { bundle } } } } }"
    assert cost(paged, n=1) <= DEFAULT_MAX_COST < cost(paged, n=100)
    per_item = cost(paged, n=2) - cost(paged, n=1)
    assert cost(paged, n=100) - cost(paged, n=1) == 99 * per_item > 99 * 500  # bundles weigh
    defaulted = "{ batches { edges { node { batchId } } } }"
    assert cost(defaulted) == cost("{ batches(first: 50) { edges { node { batchId } } } }")
    over = "{ batches(first: 1000) { edges { node { batchId } } } }"
    assert cost(over) == cost("{ batches(first: 100) { edges { node { batchId } } } }")
    one = "{ a: checkpoint { treeSize } }"
    two = "{ a: checkpoint { treeSize } b: checkpoint { treeSize } }"
    assert cost(two) == 2 * cost(one)
    fragment = "{ batches(first: 7) { edges { node { ...B } } } } fragment B on Batch { batchId }"
    assert cost(fragment) == cost("{ batches(first: 7) { edges { node { batchId } } } }")
    shallow = '{ batch(smelterId: "s", batchId: "b") { lineage(depth: 1) { nodes { batchId } } } }'
    deep = shallow.replace("depth: 1", "depth: 50")
    assert cost(deep) > 5 * cost(shallow)
    assert cost("{ __schema { types { name fields { name } } } }") == 0


def test_the_variables_decide_whether_a_query_runs(demo: tuple[Api, Ledger]) -> None:
    api, _ = demo
    paged = """query($n: Int!) { batches(first: $n) {
        edges { node { certificates { gradeIndex bundle } } } } }"""
    one = api.data(paged, n=1)["batches"]["edges"][0]["node"]
    assert one["certificates"] and all(c["bundle"] for c in one["certificates"])
    refused = api.query(paged, n=100)
    assert refused["errors"][0]["extensions"]["code"] == "query_too_costly"


def test_the_benchmark_queries_are_allowed(demo: tuple[Api, Ledger]) -> None:
    api, _ = demo
    for first in (50, 100):
        assert cost(PAGE, first=first) <= DEFAULT_MAX_COST
        assert api.data(PAGE, first=first)["batches"]["edges"]
    assert cost(README_PAGE) <= DEFAULT_MAX_COST
    assert "batches" in api.data(README_PAGE)
    assert cost(LINEAGE, s="s", b="b") <= DEFAULT_MAX_COST
    lineage = api.data(LINEAGE, s=PRODUCT[0], b=PRODUCT[1])["batch"]["lineage"]
    assert lineage["nodes"] and lineage["claimSummary"]["graded"]


def test_the_limit_is_a_parameter(demo: tuple[Api, Ledger]) -> None:
    _, ledger = demo
    token = issue_token(ledger.engine, BUYER).token
    one = "{ a: checkpoint { treeSize } }"
    two = "{ a: checkpoint { treeSize } b: checkpoint { treeSize } }"
    with local_server.serving(graphql_app(ledger, max_cost=cost(one))) as url:
        api = Api(url, {BUYER: token})
        assert api.data(one)["a"]["treeSize"] > 0
        refused = api.query(two)["errors"][0]
    assert refused["extensions"] == {"code": "query_too_costly", "cost": cost(two), "limit": 12}


def test_graphql_refusals_of_the_query_itself_carry_a_code(demo: tuple[Api, Ledger]) -> None:
    api, _ = demo
    unknown = api.query("{ batches { edges { node { noSuchField } } } }")["errors"][0]
    assert unknown["extensions"] == {"code": "malformed", "field": None}
    syntax = api.query("{ batches { ")["errors"][0]
    assert syntax["extensions"]["code"] == "malformed"


# -- errors carry codes, never internals --------------------------------------------------
def test_an_unexpected_exception_answers_internal_with_the_request_id(
    demo: tuple[Api, Ledger], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    api, _ = demo

    def broken(_ledger: Any) -> Any:
        raise RuntimeError("boom: SELECT secret FROM checkpoints [SQL: ...]")

    monkeypatch.setattr(schema_module, "checkpoint_of", broken)
    headers = {"Authorization": f"Bearer {api.tokens[BUYER]}", "X-Request-Id": "trace-12-ab"}
    with caplog.at_level(logging.ERROR, logger="api.graphql"):
        response = api.http.post(
            "/graphql", json={"query": "{ checkpoint { treeSize } }"}, headers=headers
        )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-12-ab"
    [error] = response.json()["errors"]
    assert error["message"] == "internal error; quote request id trace-12-ab"
    assert error["extensions"] == {"code": "internal", "request_id": "trace-12-ab"}
    assert "boom" not in response.text and "SELECT" not in response.text
    logged = [r for r in caplog.records if "trace-12-ab" in r.getMessage()]
    assert logged and logged[0].exc_info and "boom" in str(logged[0].exc_info[1])


def test_request_ids_are_made_when_missing_or_invalid(demo: tuple[Api, Ledger]) -> None:
    api, _ = demo
    made = api.http.get("/v1/log-key").headers["x-request-id"]
    again = api.http.get("/v1/log-key").headers["x-request-id"]
    assert valid_request_id(made) and valid_request_id(again) and made != again
    for bad in ("has space", "semi;colon", "x" * 65, "ünï"):
        echoed = api.http.get("/v1/log-key", headers={"X-Request-Id": bad.encode()})
        assert echoed.headers["x-request-id"] not in (bad, made)
    uuid = "0b7c4c1e-5d1e-4f5e-9a43-3f0b0d6c7e21"
    echoed = api.http.get("/v1/log-key", headers={"X-Request-Id": uuid})
    assert echoed.headers["x-request-id"] == uuid


def test_a_forged_cursor_is_malformed_after(env: LedgerEnv) -> None:
    token = reader(env)
    with serving(env.ledger) as url:
        api = Api(url, {"buyer": token})
        answer = api.query(
            "query($a: String) { batches(after: $a) { edges { cursor } } }",
            as_="buyer",
            a=FORGED_CURSOR,
        )
    assert answer["data"] is None
    assert answer["errors"][0]["extensions"] == {"code": "malformed", "field": "after"}
    assert "SQL" not in str(answer) and "bigint" not in str(answer)


# -- time limits, enforced by the database ------------------------------------------------
SLOW_SQL = {
    "sqlite": "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n"
    " WHERE x < {rows}) SELECT count(*) FROM n",
    "postgresql": "SELECT count(*) FROM generate_series(1, {rows}), pg_sleep({seconds})",
}


def slow_sql(ledger: Ledger, seconds: float) -> str:
    """A statement that runs about ``seconds`` or longer on this ledger's database."""
    backend = ledger.engine.dialect.name
    return SLOW_SQL[backend].format(rows=int(seconds * 10_000_000), seconds=seconds)


def test_a_request_past_its_time_limit_answers_timeout(
    env: LedgerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = reader(env)
    ledger = env.ledger

    def slow_checkpoint(_ledger: Any) -> Any:
        with read_session(ledger.engine) as session:
            session.execute(text(slow_sql(ledger, 30)))
        raise AssertionError("the statement should have been stopped")

    monkeypatch.setattr(schema_module, "checkpoint_of", slow_checkpoint)
    with local_server.serving(graphql_app(ledger, time_limit_s=0.5)) as url:
        api = Api(url, {"buyer": token})
        started = time.monotonic()
        answer = api.query("{ participants { participantId } checkpoint { treeSize } }", "buyer")
        elapsed = time.monotonic() - started
        monkeypatch.undo()
        # Later requests on the same workers get deadlines of their own.
        for _ in range(3):
            assert api.data("{ checkpoint { treeSize } }", "buyer")["checkpoint"]["treeSize"]
    [error] = answer["errors"]
    assert error["extensions"] == {"code": "timeout", "field": "checkpoint"}
    assert "time limit of 0.5 s" in error["message"]
    assert answer["data"] is None or answer["data"].get("checkpoint") is None
    assert "SQL" not in str(answer) and "interrupted" not in str(answer)
    assert elapsed < 20, "the database stopped the statement, it did not run to its end"


def test_the_time_limit_ends_with_its_block(env: LedgerEnv) -> None:
    engine = env.ledger.engine
    with pytest.raises(Exception) as stopped, time_limit(0.2), read_session(engine) as session:
        session.execute(text(slow_sql(env.ledger, 30)))
    assert is_timeout(stopped.value)
    # The same pooled connection serves statements without a deadline, however long.
    with read_session(engine) as session:
        assert session.execute(text(slow_sql(env.ledger, 0.3))).scalar_one() > 0
        if engine.dialect.name == "postgresql":
            assert session.execute(text("SHOW statement_timeout")).scalar_one() == "0"


# -- 64-bit-safe integers -------------------------------------------------------------------
def test_a_batch_of_3_billion_kwh_reads_back_through_graphql(env: LedgerEnv) -> None:
    key = env.register("big-smelter", "smelter", region="CN-NM")
    payload = demo_batch("NM-2025-0001", smelter_id="big-smelter", batch_id="BIG-1")
    payload["electricity"][0]["kwh"] = BIG_KWH
    payload["mass_kg"] = 225_000_000
    payload["metal_inputs"]["own_electrolysis_kg"] = 227_700_000
    record = env.append("batch.register", payload, key).record
    token = reader(env)
    query = """{ batch(smelterId: "big-smelter", batchId: "BIG-1") {
        massKg electricity { kwh } record { index } }
      batches(first: 5, filter: {smelterId: "big-smelter"}) {
        edges { node { batchId electricity { kwh } } } } }"""
    with serving(env.ledger) as url:
        api = Api(url, {"buyer": token})
        rest = api.http.get("/v1/batches/big-smelter/BIG-1", headers=api_headers(token))
        data = api.data(query, as_="buyer")
    assert rest.status_code == 200
    assert data["batch"]["electricity"] == [{"kwh": BIG_KWH}]
    assert data["batch"]["massKg"] == 225_000_000
    assert data["batch"]["record"]["index"] == record.index
    assert data["batches"]["edges"] == [
        {"node": {"batchId": "BIG-1", "electricity": [{"kwh": BIG_KWH}]}}
    ]


def api_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_long_carries_every_json_safe_integer_and_refuses_the_rest() -> None:
    for value in (0, -1, 2**31, BIG_KWH, MAX_LONG, -MAX_LONG):
        assert serialize(value) == value and parse_value(value) == value
        assert parse_literal(IntValueNode(value=str(value))) == value
    assert parse_value(3.0e9) == 3_000_000_000
    for bad in (MAX_LONG + 1, -MAX_LONG - 1, 2**63, 1.5, True, "12"):
        with pytest.raises(GraphQLError, match="Long cannot represent"):
            serialize(bad)
        with pytest.raises(GraphQLError, match="Long cannot represent"):
            parse_value(bad)
    with pytest.raises(GraphQLError, match="Long cannot represent"):
        parse_literal(IntValueNode(value=str(MAX_LONG + 1)))
    with pytest.raises(GraphQLError, match="Long cannot represent"):
        parse_literal(StringValueNode(value="12"))


def test_a_long_argument_out_of_range_is_refused_by_name(demo: tuple[Api, Ledger]) -> None:
    api, _ = demo
    query = "query($m: Long) { batches(filter: {footprintMax: $m}) { edges { cursor } } }"
    assert api.data(query, m=MAX_LONG)["batches"]["edges"]
    refused = api.query(query, m=MAX_LONG + 1)["errors"][0]
    assert "Long cannot represent" in refused["message"]
    assert refused["extensions"]["code"] == "malformed"


# -- off the event loop -----------------------------------------------------------------
@pytest.fixture
def demo_on(database_url: str, tmp_path: Path) -> Iterator[tuple[Ledger, str]]:
    ledger = demo_ledger(database_url, tmp_path / "data")
    yield ledger, issue_token(ledger.engine, BUYER).token
    ledger.engine.dispose()


def test_an_expensive_query_does_not_hold_up_other_requests(
    demo_on: tuple[Ledger, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the most expensive query the limit allows is still building its bundles,
    ``GET /v1/log-key`` answers. The first bundle waits (up to 10 s) for the probe to be
    answered, so the order is certain: were resolvers on the event loop, the probe could
    only be answered after the query, and the assertion below would fail."""
    ledger, token = demo_on
    assert 0.75 * DEFAULT_MAX_COST < cost(EXPENSIVE) <= DEFAULT_MAX_COST
    building, probed = threading.Event(), threading.Event()
    build_bundle = bundle_cache_module.build_bundle
    waited: list[bool] = []

    def gated(*args: Any) -> Any:
        if not waited:
            building.set()
            waited.append(probed.wait(timeout=10))
        return build_bundle(*args)

    monkeypatch.setattr(bundle_cache_module, "build_bundle", gated)  # what the cache builds with
    finished: dict[str, float] = {}
    answers: dict[str, Any] = {}
    with serving(ledger) as url:

        def expensive() -> None:
            with httpx.Client(base_url=url, headers=api_headers(token), timeout=60) as http:
                answers["query"] = http.post("/graphql", json={"query": EXPENSIVE}).json()
            finished["query"] = time.monotonic()

        worker = threading.Thread(target=expensive)
        worker.start()
        assert building.wait(timeout=30), "the expensive query never reached its bundles"
        with httpx.Client(base_url=url, timeout=60) as http:
            probe = http.get("/v1/log-key")
        finished["probe"] = time.monotonic()
        probed.set()
        worker.join(timeout=60)
    assert probe.status_code == 200 and probe.text.strip()
    assert "errors" not in answers["query"], answers["query"]
    assert sum(len(e["node"]["certificates"]) for e in answers["query"]["data"]["batches"]["edges"])
    assert finished["probe"] < finished["query"]
    assert waited == [True], "the probe was answered while the query was executing"
