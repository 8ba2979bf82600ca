"""GraphQL at /graphql, through a real HTTP client against the running app.

One demo ledger (participants, batches, grades, custody) serves the read-only tests; the
statement-count test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from api.graphql.schema import MAX_PAGE
from ledger.bootstrap import init_ledger
from ledger.certificates import verify_bundle
from ledger.demo import demo_file, load_demo
from ledger.log import Ledger
from ledger.merkle import verify_inclusion
from ledger.settings import Settings
from ledger.tokens import issue_token
from tests.conftest import LedgerEnv
from tests.support import serving

ROOT = Path(__file__).resolve().parents[1]
SMELTER = "yn-lancang-aluminium"
PAGE = """
query Page($first: Int!, $after: String, $filter: BatchFilterInput) {
  batches(first: $first, after: $after, filter: $filter) {
    edges { cursor node {
      smelterId batchId massKg productForm route holderId
      footprint { declaredKgCo2ePerT computedKgCo2ePerT check }
      renewableShare
      electricity { source kwh certificateScheme }
      grades { ruleSetId ruleSetVersion grade expiresOn revoked }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
PRODUCT = ("cq-auto-parts", "CQ-CASTING-2025-0001")
LATE_BATCHES = ("GD-2025-0102", "GD-2025-0103", "GD-2025-0104")


class Api:
    """POSTs GraphQL to a live server as one participant (or anonymously)."""

    def __init__(self, url: str, tokens: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.tokens = tokens

    def query(self, text: str, as_: str | None = "foshan-extrusion", **variables: Any) -> dict:
        headers = {"Authorization": f"Bearer {self.tokens[as_]}"} if as_ else {}
        response = self.http.post(
            "/graphql", json={"query": text, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, text: str, as_: str | None = "foshan-extrusion", **variables: Any) -> dict:
        answer = self.query(text, as_, **variables)
        assert "errors" not in answer, answer["errors"]
        return answer["data"]


def demo_ledger(database_url: str, data_dir: Path) -> Ledger:
    ledger = init_ledger(Settings(data_dir=data_dir, database_url=database_url)).ledger
    load_demo(ledger, Settings(data_dir=data_dir, database_url=database_url), data_dir / "keys")
    return ledger


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("graphql")
    ledger = demo_ledger(f"sqlite:///{tmp / 'ledger.db'}", tmp / "data")
    ids = [p["participant_id"] for p in demo_file("participants.json")]
    tokens = {pid: issue_token(ledger.engine, pid).token for pid in ids}
    with serving(ledger) as url:
        yield Api(url, tokens)
    ledger.engine.dispose()


def nodes(data: dict) -> list[dict]:
    return [edge["node"] for edge in data["batches"]["edges"]]


# -- the schema is public ---------------------------------------------------------------
def test_graphiql_and_introspection_need_no_token(api: Api) -> None:
    page = api.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    introspection = api.data("{ __schema { queryType { fields { name } } } }", as_=None)
    names = {f["name"] for f in introspection["__schema"]["queryType"]["fields"]}
    assert {"batch", "batches", "participants", "ruleSets", "certificate", "checkpoint"} <= names
    assert {"record", "verifyCertificate"} <= names


def test_checked_in_sdl_matches_the_code() -> None:
    from api.graphql import schema

    checked_in = (ROOT / "schemas" / "graphql" / "schema.graphql").read_text()
    assert checked_in == schema.as_str() + "\n", "run python scripts/export_graphql_schema.py"


# -- reading ---------------------------------------------------------------------------
def test_a_page_of_batches_with_grades_and_electricity(api: Api) -> None:
    data = api.data(PAGE, first=5)
    page = nodes(data)
    assert [n["batchId"] for n in page] == [b["batch_id"] for b in demo_file("batches.json")[:5]]
    first = page[0]
    assert first["footprint"]["declaredKgCo2ePerT"] == 3800
    assert first["electricity"][0] == {"source": "hydro", "kwh": 300000, "certificateScheme": "GEC"}
    assert {g["grade"] for g in first["grades"]} >= {"tier-2", "green-power-aluminium"}
    assert data["batches"]["pageInfo"]["hasNextPage"] is True


def test_pages_follow_cursors_to_the_end(api: Api) -> None:
    seen, after = [], None
    while True:
        data = api.data(PAGE, first=4, after=after)
        seen += [(n["smelterId"], n["batchId"]) for n in nodes(data)]
        info = data["batches"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert sorted(seen) == sorted(
        (b["smelter_id"], b["batch_id"]) for b in demo_file("batches.json")
    )
    assert len(set(seen)) == len(seen)


@pytest.mark.parametrize(
    ("condition", "check"),
    [
        ({"smelterId": SMELTER}, lambda n: n["smelterId"] == SMELTER),
        ({"region": "CN_GD"}, lambda n: n["smelterId"] == "gd-zhaoqing-recycling"),
        ({"productForm": "BILLET"}, lambda n: n["productForm"] == "billet"),
        ({"route": "secondary"}, lambda n: n["route"] == "secondary"),
        ({"footprintMax": 4000}, lambda n: n["footprint"]["declaredKgCo2ePerT"] <= 4000),
        ({"footprintMin": 12000}, lambda n: n["footprint"]["declaredKgCo2ePerT"] >= 12000),
        ({"renewableShareMin": "0.5"}, lambda n: float(n["renewableShare"] or 0) >= 0.5),
        ({"ruleSetId": "asi-2017-smelter"}, lambda n: "asi-2017-smelter" in _rulesets(n)),
        ({"grade": "tier-1"}, lambda n: "tier-1" in {g["grade"] for g in n["grades"]}),
        ({"holderId": "foshan-extrusion"}, lambda n: n["holderId"] == "foshan-extrusion"),
        ({"periodFrom": "2025-03-12"}, lambda n: n["batchId"] in LATE_BATCHES),
        ({"periodTo": "2025-03-02"}, lambda n: n["batchId"] in ("NM-2025-0001", "XJ-2025-0001")),
    ],
)
def test_each_filter_narrows_the_page(api: Api, condition: dict, check: Any) -> None:
    everything = nodes(api.data(PAGE, first=100))
    found = nodes(api.data(PAGE, first=100, filter=condition))
    assert 0 < len(found) < len(everything), condition
    assert all(check(n) for n in found), condition


def _rulesets(node: dict) -> set[str]:
    return {g["ruleSetId"] for g in node["grades"] if not g["revoked"]}


def test_recycled_content_minimum(api: Api) -> None:
    query = """query($f: BatchFilterInput) { batches(first: 100, filter: $f) {
        edges { node { batchId recycledContent { total } } } } }"""
    found = nodes(api.data(query, f={"recycledContentMin": "0.5"}))
    assert found and all(float(n["recycledContent"]["total"]) >= 0.5 for n in found)


def test_one_batch_with_lineage_history_and_record(api: Api) -> None:
    query = """query($s: String!, $b: String!) { batch(smelterId: $s, batchId: $b) {
        registered massKg holder { participantId role } footprint { kgCo2ePerT basis }
        custodyHistory { recordIndex kind }
        lineage(direction: UP, depth: 5) {
          nodes { smelterId batchId } edges { parentBatchId childBatchId massKg operation }
          claimSummary {
            graded { ruleSetId grade share gradedKg } recycledPost footprintKgCo2ePerT
          }
        }
        record { index leafHash inclusionProof { treeSize hashes } }
        } checkpoint { treeSize rootHash note } }"""
    data = api.data(query, s=PRODUCT[0], b=PRODUCT[1])
    batch = data["batch"]
    assert batch["registered"] is False and batch["footprint"]["basis"] == "derived"
    assert batch["holder"] == {"participantId": "cq-auto-parts", "role": "manufacturer"}
    assert [e["kind"] for e in batch["custodyHistory"]] == ["custody.transform"]
    summary = batch["lineage"]["claimSummary"]
    assert any(g["grade"] == "tier-2" and g["gradedKg"] > 0 for g in summary["graded"])
    assert summary["footprintKgCo2ePerT"] == batch["footprint"]["kgCo2ePerT"]
    assert {e["operation"] for e in batch["lineage"]["edges"]} >= {"transfer", "remelt"}
    # the record's inclusion proof verifies against the checkpoint served with it
    record, checkpoint = batch["record"], data["checkpoint"]
    assert record["inclusionProof"]["treeSize"] == checkpoint["treeSize"]
    raw = api.data(
        "query($i: Int!) { record(index: $i) { statement signature integratedAt } }",
        i=record["index"],
    )["record"]
    assert raw["statement"]["kind"] == "custody.transform"
    verify_inclusion(
        bytes.fromhex(record["leafHash"]),
        record["index"],
        checkpoint["treeSize"],
        [bytes.fromhex(h) for h in record["inclusionProof"]["hashes"]],
        bytes.fromhex(checkpoint["rootHash"]),
    )


def test_grades_rulesets_and_participants(api: Api) -> None:
    query = """{ ruleSets { rulesetId version grades illustrative }
                 participants(role: "smelter") { participantId region } }"""
    data = api.data(query)
    assert len(data["ruleSets"]) == 5
    assert {p["participantId"] for p in data["participants"]} == {
        p["participant_id"] for p in demo_file("participants.json") if p["role"] == "smelter"
    }
    grade = api.data(
        """query($s: String!) { batch(smelterId: $s, batchId: "YN-2025-0001") {
        grades { grade issuer { participantId } ruleSet { title }
                 criteria { criterion value threshold passed } } } }""",
        s=SMELTER,
    )
    first = grade["batch"]["grades"][0]
    assert first["issuer"]["participantId"] == "green-eval-centre"
    assert first["criteria"][0]["passed"] is True


def test_certificates_and_their_verdict_match_the_cli(api: Api) -> None:
    query = """query($s: String!) { batch(smelterId: $s, batchId: "YN-2025-0001") {
        certificates { gradeIndex bundle } } checkpoint { note } }"""
    data = api.data(query, s=SMELTER)
    certificate = data["batch"]["certificates"][0]
    vkey = api.http.get("/v1/log-key").text.strip()
    offline = verify_bundle(certificate["bundle"], vkey)
    verdict = api.data(
        "query($b: JSON!) { verifyCertificate(bundle: $b) { status valid reasons treeSize } }",
        b=certificate["bundle"],
    )["verifyCertificate"]
    assert verdict["status"] == offline.status == "valid"
    assert verdict["reasons"] == list(offline.reasons)
    tampered = json.loads(json.dumps(certificate["bundle"]))
    tampered["records"]["grade"]["record"]["statement"]["payload"]["grade"] = "tier-1"
    bad = api.data(
        "query($b: JSON!) { verifyCertificate(bundle: $b) { status reasons } }", b=tampered
    )["verifyCertificate"]
    assert bad["status"] == "invalid" and bad["reasons"] == list(
        verify_bundle(tampered, vkey).reasons
    )


# -- access ----------------------------------------------------------------------------------
ACTIVITY = """query($s: String!) { batch(smelterId: $s, batchId: "YN-2025-0001") {
    disclosed footprint { declaredKgCo2ePerT } activityData
    evidence { sha256 description } } }"""


@pytest.mark.parametrize(
    ("reader", "sees"),
    [
        ("yn-lancang-aluminium", True),  # the batch's own smelter
        ("green-eval-centre", True),  # accredited evaluation centre
        ("bj-carbon-verify", True),  # auditor
        ("nm-baotou-aluminium", False),  # another smelter
        ("foshan-extrusion", False),  # a buyer
    ],
)
def test_activity_data_and_evidence_visibility(api: Api, reader: str, sees: bool) -> None:
    batch = api.data(ACTIVITY, as_=reader, s=SMELTER)["batch"]
    assert batch["footprint"]["declaredKgCo2ePerT"] == 3800  # footprints: everyone
    assert batch["disclosed"] is sees
    assert (batch["activityData"] is not None) is sees
    assert batch["evidence"], "evidence digests are public"
    assert all((e["description"] is not None) is sees for e in batch["evidence"])


def test_reading_needs_a_valid_token(api: Api) -> None:
    anonymous = api.query(PAGE, as_=None, first=1)
    assert anonymous["data"] is None
    assert anonymous["errors"][0]["extensions"] == {
        "code": "bad_signature",
        "field": "authorization",
    }
    api.tokens["bogus"] = "alt_000000000000_" + "x" * 43
    refused = api.query(PAGE, as_="bogus", first=1)
    assert "unknown token" in refused["errors"][0]["message"]
    certificate = api.query("{ certificate(gradeIndex: 29) { gradeIndex } }", as_=None)
    assert certificate["errors"][0]["extensions"]["code"] == "bad_signature"


def test_anonymous_certificates_when_enabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_GRAPHQL_ANONYMOUS_CERTIFICATES", "true")
    ledger = demo_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path / "data")
    with serving(ledger) as url:
        api = Api(url, {})
        grades = api.http.get(f"/v1/batches/{SMELTER}/YN-2025-0001/grades").json()["items"]
        index = grades[0]["record_index"]
        query = "query($i: Int!) { certificate(gradeIndex: $i) { gradeIndex grade { grade } } }"
        certificate = api.data(query, as_=None, i=index)["certificate"]
        refused = api.query(PAGE, as_=None, first=1)
    assert certificate == {"gradeIndex": index, "grade": {"grade": grades[0]["grade"]}}
    assert refused["errors"][0]["extensions"]["field"] == "authorization"


# -- limits ------------------------------------------------------------------------------
def test_page_size_and_query_depth_limits_are_named(api: Api) -> None:
    too_many = api.query(PAGE, first=MAX_PAGE + 1)
    assert too_many["errors"][0]["extensions"] == {"code": "malformed", "field": "first"}
    bad_share = api.query(PAGE, first=5, filter={"renewableShareMin": "lots"})
    assert bad_share["errors"][0]["extensions"]["field"] == "filter.renewableShareMin"
    hops = "certificate { grade { " * 4  # each hop is two levels deeper
    nested = "{ batches(first: 1) { edges { node { grades { " + hops + "grade"
    nested += " }" * (4 * 2 + 4) + " }"
    too_deep = api.query(nested)
    assert "exceeds maximum operation depth" in too_deep["errors"][0]["message"]
    aliases = "{ " + " ".join(f"a{i}: checkpoint {{ treeSize }}" for i in range(30)) + " }"
    assert "aliases" in api.query(aliases)["errors"][0]["message"].lower()


# -- no N+1 ---------------------------------------------------------------------------------
def count_statements(ledger: Ledger, run: Any) -> int:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(ledger.engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(ledger.engine, "before_cursor_execute", record)
    return len(statements)


def test_statement_count_stays_constant_as_the_page_grows(env: LedgerEnv, tmp_path: Path) -> None:
    ledger = env.ledger
    load_demo(ledger, env.settings, tmp_path / "keys")
    token = issue_token(ledger.engine, "foshan-extrusion").token
    with serving(ledger) as url:
        client = Api(url, {"buyer": token})
        counts = {
            size: count_statements(ledger, lambda s=size: client.data(PAGE, as_="buyer", first=s))
            for size in (2, 7, 14)
        }
    assert len(set(counts.values())) == 1, counts
    assert counts[14] <= 12, counts
