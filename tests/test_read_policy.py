"""Every read path, as every kind of reader: confidential values reach only those allowed.

The paths are not listed by hand: every GET route of the application (its OpenAPI
document, generated from the route table, and the undocumented pages) and every field of
the GraphQL schema (to a fixed depth) is walked, so a route or field added later is
covered without editing this test. A path parameter this test has no value for fails the
test rather than skipping the route.

The batch read has distinctive confidential values (an evidence description, a fuel
amount) and a computed footprint breakdown; the test asserts who sees them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLType,
    Undefined,
)

from api.app import create_app
from api.graphql.schema import schema as strawberry_schema
from ledger.bootstrap import init_ledger
from ledger.demo import demo_file, load_demo
from ledger.disclosure.sign import sign_statement
from ledger.grading.reads import preview_evaluation
from ledger.grading.shipped import load_shipped_rulesets
from ledger.keys import read_private_key
from ledger.settings import Settings
from ledger.tokens import issue_token
from tests.support import serving

OWNER = "yn-lancang-aluminium"
BATCH = "SECRET-1"
DESCRIPTION = "evidence-marker-5be1e0"
FUEL_AMOUNT = "27.314159"
BREAKDOWN = '"anode_consumption"'
MARKERS = (DESCRIPTION, FUEL_AMOUNT, BREAKDOWN)

#: Who reads, and whether the read policy lets them see the batch's confidential values.
READERS = {
    None: False,  # anonymous
    "foshan-extrusion": False,  # a buyer
    "nm-baotou-aluminium": False,  # another smelter
    "xj-zhundong-aluminium": False,  # a smelter whose grant was revoked
    OWNER: True,  # the batch's smelter
    "bj-carbon-verify": True,  # an auditor
    "green-eval-centre": True,  # an evaluation centre accredited today
    "cq-auto-parts": True,  # granted access by the smelter (disclosure.grant)
}


@dataclass
class World:
    url: str
    tokens: dict[str, str]
    params: dict[str, str]
    bundle: dict[str, Any]


def secret_batch() -> dict[str, Any]:
    """A copy of a demo batch with distinctive confidential values and its own serials."""
    payload = copy.deepcopy(
        next(b for b in demo_file("batches.json") if b["batch_id"] == "YN-2025-0001")
    )
    payload["batch_id"] = BATCH
    certificate = payload["electricity"][0]["certificate"]
    for end in ("first_id", "last_id"):
        certificate[end] = certificate[end][:23] + "5" + certificate[end][24:]
    payload["electricity"][1].pop("certificate", None)  # its grid GECs are the demo's
    payload["activity_data"]["fuels"][0]["amount"] = FUEL_AMOUNT
    payload["evidence"][1]["description"] = DESCRIPTION
    return payload


def append(ledger: Any, kind: str, payload: dict[str, Any], key: Any) -> int:
    return ledger.append(sign_statement(kind, payload, key)).index


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("policy")
    settings = Settings(data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'l.db'}")
    ledger = init_ledger(settings).ledger
    load_demo(ledger, settings, tmp / "keys")
    key = {
        p["participant_id"]: read_private_key(tmp / "keys" / f"{p['participant_id']}.pem")
        for p in demo_file("participants.json")
    }
    batch_index = append(ledger, "batch.register", secret_batch(), key[OWNER])
    grade_index = _issue_a_grade(ledger, key["green-eval-centre"])
    append(
        ledger, "disclosure.grant", {"grantee_id": "cq-auto-parts", "batch_id": BATCH}, key[OWNER]
    )
    revoked = append(
        ledger, "disclosure.grant", {"grantee_id": "xj-zhundong-aluminium"}, key[OWNER]
    )
    append(ledger, "disclosure.revoke", {"grant_index": revoked}, key[OWNER])
    append(
        ledger,
        "custody.transfer",
        {
            "ns": OWNER,
            "batch_id": BATCH,
            "recipient_id": "foshan-extrusion",
            "mass_kg": 4000,
            "child_batch_id": "SECRET-1-A",
        },
        key[OWNER],
    )
    tokens = {pid: issue_token(ledger.engine, pid).token for pid in READERS if pid}
    ruleset = load_shipped_rulesets()[0]
    params = {
        "smelter_id": OWNER,
        "ns": OWNER,
        "batch_id": BATCH,
        "index": str(batch_index),
        "record_index": str(grade_index),
        "grade_record_index": str(grade_index),
        "ruleset_id": ruleset["ruleset_id"],
        "version": ruleset["version"],
    }
    with serving(ledger) as url:
        bundle = httpx.get(f"{url}/v1/certificates/{grade_index}").json()
        yield World(url, tokens, params, bundle)
    ledger.engine.dispose()


def _issue_a_grade(ledger: Any, centre_key: Any) -> int:
    """The first grade of a shipped rule set the batch meets, issued on the ledger's facts."""
    for ruleset in load_shipped_rulesets():
        result = preview_evaluation(
            ledger.engine, OWNER, BATCH, ruleset["ruleset_id"], ruleset["version"]
        )
        if result["grade"]:
            payload = {
                "smelter_id": OWNER,
                "batch_id": BATCH,
                "ruleset_id": ruleset["ruleset_id"],
                "ruleset_version": ruleset["version"],
                "grade": result["grade"],
                "facts": result["facts"],
            }
            return append(ledger, "grade.issue", payload, centre_key)
    raise AssertionError("the secret batch meets no shipped rule set")


def headers(world: World, reader: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[reader]}"} if reader else {}


def seen(text: str) -> set[str]:
    return {marker for marker in MARKERS if marker in text}


# -- REST: every GET route of the application ------------------------------------------
@pytest.fixture(scope="module")
def rest_paths(world: World, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    tmp = tmp_path_factory.mktemp("routes")
    settings = Settings(data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'r.db'}")
    app = create_app(init_ledger(settings).ledger)
    # The OpenAPI document is generated from the route table: every documented route.
    documented = {path for path, ops in app.openapi()["paths"].items() if "get" in ops}
    pages = {r.path for r in app.routes if "GET" in (getattr(r, "methods", None) or ())}
    paths = sorted(documented | pages)
    filled = []
    for path in paths:
        names = re.findall(r"{(\w+)(?::\w+)?}", path)
        missing = [name for name in names if name not in world.params]
        assert not missing, f"{path}: give this test a value for {missing}"
        filled.append(re.sub(r"{(\w+)(?::\w+)?}", lambda m: world.params[m.group(1)], path))
    return filled


def test_the_walk_covers_every_batch_read(rest_paths: list[str]) -> None:
    expected = {
        f"/v1/batches/{OWNER}/{BATCH}",
        "/v1/batches",
        f"/v1/batches/{OWNER}/{BATCH}/lineage",
        f"/v1/batches/{OWNER}/{BATCH}/custody",
        f"/v1/batches/{OWNER}/{BATCH}/grades",
    }
    assert expected <= set(rest_paths)
    assert any(p.startswith("/v1/records/") for p in rest_paths)
    assert any(p.startswith("/v1/certificates/") for p in rest_paths)


@pytest.mark.parametrize("reader", list(READERS), ids=lambda r: r or "anonymous")
def test_rest_reads_follow_the_read_policy(
    world: World, rest_paths: list[str], reader: str | None
) -> None:
    allowed = READERS[reader]
    shown: dict[str, set[str]] = {}
    with httpx.Client(base_url=world.url, headers=headers(world, reader), timeout=60) as http:
        for path in rest_paths:
            # Lists are narrowed to the owner's batches: every reader may see its own.
            response = http.get(path, params={"smelter": OWNER})
            assert response.status_code < 500, (path, response.text)
            shown[path] = seen(response.text)
    leaks = {path: found for path, found in shown.items() if found}
    if not allowed:
        assert leaks == {}, f"{reader or 'anonymous'} reads confidential values at {leaks}"
        return
    batch_path = f"/v1/batches/{OWNER}/{BATCH}"
    assert shown[batch_path] == set(MARKERS)
    assert shown["/v1/batches"] == set(MARKERS)
    assert {DESCRIPTION, FUEL_AMOUNT} <= shown[f"/v1/records/{world.params['index']}/disclosures"]
    # Records and certificate bundles are public: they carry commitments, never values.
    assert not shown[f"/v1/records/{world.params['index']}"]
    assert not shown[f"/v1/certificates/{world.params['grade_record_index']}"]


# -- GraphQL: every field reachable from Query ----------------------------------------
ARGUMENTS = {
    "smelterId": f'"{OWNER}"',
    "batchId": f'"{BATCH}"',
    "gradeIndex": "$grade",
    "index": "$record",
    "bundle": "$bundle",
}
VARIABLES = {"grade": "Int!", "record": "Int!", "bundle": "JSON!"}
#: Optional arguments given anyway: lists narrowed to the owner's batches.
# One batch per page and lineage 3 levels deep: the walk asks for every field, bundles and
# lineage included, and a default page of 50 (or lineage at its default depth of 5) of
# those is over the GraphQL cost limit (docs/graphql.md).
NARROWING = {"filter": f'{{smelterId: "{OWNER}"}}', "first": "1", "depth": "3"}
MAX_LEVELS = 5


def _arguments(field: Any) -> str | None:
    """The argument list for ``field``, or None when a required one has no value here."""
    required = [
        a
        for a, arg in field.args.items()
        if isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
    ]
    if any(a not in ARGUMENTS for a in required):
        return None
    given = {a: ARGUMENTS[a] for a in required}
    given |= {a: v for a, v in NARROWING.items() if a in field.args}
    return ", ".join(f"{a}: {v}" for a, v in given.items())


def _named(kind: GraphQLType) -> GraphQLType:
    while isinstance(kind, GraphQLNonNull | GraphQLList):
        kind = kind.of_type
    return kind


def selection(kind: GraphQLType, path: tuple[str, ...]) -> str | None:
    """Every field of ``kind`` to ``MAX_LEVELS``, skipping types already on the path."""
    named = _named(kind)
    if isinstance(named, GraphQLScalarType) or not isinstance(named, GraphQLObjectType):
        return ""
    if named.name in path or len(path) >= MAX_LEVELS:
        return None
    parts = []
    for name, field in named.fields.items():
        args = _arguments(field)
        if args is None:
            continue
        inner = selection(field.type, (*path, named.name))
        if inner is None:
            continue
        parts.append(f"{name}{f'({args})' if args else ''}{f' {{ {inner} }}' if inner else ''}")
    return " ".join(parts) or None


def graphql_queries() -> dict[str, str]:
    schema: GraphQLSchema = strawberry_schema._schema
    queries = {}
    for name, field in schema.query_type.fields.items():
        args = _arguments(field)
        assert args is not None, f"Query.{name}: give its required arguments a value here"
        inner = selection(field.type, ("Query",))
        body = f"{name}{f'({args})' if args else ''}{f' {{ {inner} }}' if inner else ''}"
        declared = ", ".join(f"${v}: {t}" for v, t in VARIABLES.items() if f"${v}" in body)
        queries[name] = f"query({declared}) {{ {body} }}" if declared else f"{{ {body} }}"
    return queries


def test_the_graphql_walk_reaches_the_confidential_fields() -> None:
    queries = graphql_queries()
    assert "activityData" in queries["batch"] and "breakdown" in queries["batch"]
    assert "description" in queries["batches"]
    assert "statement" in queries["record"] and "bundle" in queries["certificate"]


@pytest.mark.parametrize("reader", list(READERS), ids=lambda r: r or "anonymous")
def test_graphql_reads_follow_the_read_policy(world: World, reader: str | None) -> None:
    allowed = READERS[reader]
    variables = {
        "grade": int(world.params["grade_record_index"]),
        "record": int(world.params["index"]),
        "bundle": world.bundle,
    }
    shown = {}
    with httpx.Client(base_url=world.url, headers=headers(world, reader), timeout=60) as http:
        for name, query in graphql_queries().items():
            used = {k: v for k, v in variables.items() if f"${k}" in query}
            response = http.post("/graphql", json={"query": query, "variables": used})
            assert response.status_code == 200, (name, response.text)
            assert "Internal" not in response.text, (name, response.text)
            if allowed:
                assert "errors" not in response.json(), (name, response.text)
            shown[name] = seen(response.text)
    leaks = {name: found for name, found in shown.items() if found}
    if not allowed:
        assert leaks == {}, f"{reader or 'anonymous'} reads confidential values at {leaks}"
        return
    assert {DESCRIPTION, FUEL_AMOUNT} <= shown["batch"]
    assert not shown["record"] and not shown["certificate"]
