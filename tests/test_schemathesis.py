"""Schema-driven fuzzing: schemathesis generates requests from the REST OpenAPI document and
from the GraphQL schema, and no response may be a 5xx.

Bounded so the suite stays fast: a fixed number of examples per operation, derandomized
(the seed is pinned), against a small ledger with records, a batch and a grade to hit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from ledger.tokens import issue_token
from tests.conftest import LedgerEnv, make_env
from tests.support import demo_batch

EXAMPLES = 25
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, str]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    env: LedgerEnv = make_env(f"sqlite:///{tmp / 'ledger.db'}", tmp / "data")
    key = env.register("yn-lancang-aluminium", "smelter")
    env.append("batch.register", demo_batch("YN-2025-0001", "yn-lancang-aluminium"), key)
    token = issue_token(env.ledger.engine, "yn-lancang-aluminium").token
    yield create_app(env.ledger, env.settings), token
    env.ledger.engine.dispose()


def fuzz(schema: Any, call: Any) -> int:
    """Run ``call`` on generated cases of every operation of ``schema``; the cases run."""
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @FUZZ
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            nonlocal ran
            ran += 1
            call(case)

        run()
    return ran


def test_no_rest_request_reaches_a_5xx(fuzzed_app: tuple[FastAPI, str]) -> None:
    app, token = fuzzed_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)

    def call(case: Any) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
        )

    assert fuzz(schema, call) > 100


def test_every_rest_answer_is_documented(fuzzed_app: tuple[FastAPI, str]) -> None:
    """Every status a route answers is one its OpenAPI entry documents, and every body
    matches the documented schema (refusals: ``{error, detail, field}``)."""
    app, token = fuzzed_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = [status_code_conformance, response_schema_conformance]

    def call(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=checks)

    assert fuzz(schema, call) > 100


def test_no_graphql_query_reaches_a_5xx(fuzzed_app: tuple[FastAPI, str]) -> None:
    app, token = fuzzed_app
    # Custom scalars: JSON takes any JSON value (a string here), Long a 53-bit integer.
    schemathesis.graphql.scalar("JSON", st.text(max_size=50).map(nodes.String))
    schemathesis.graphql.scalar("Long", st.integers(-(2**63), 2**63).map(lambda n: nodes.Int(n)))
    schema = schemathesis.graphql.from_asgi("/graphql", app)

    def call(case: Any) -> None:
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        assert response.status_code < 500, response.text
        for error in response.json().get("errors") or []:
            assert (error.get("extensions") or {}).get("code") != "internal", error

    assert fuzz(schema, call) > 50
