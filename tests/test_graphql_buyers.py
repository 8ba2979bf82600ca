"""GraphQL for buyers: complete Relay pages with a total, filters that refuse what they do
not know (product forms and region ids, the same ids as electricity lines), filters on the
computed footprint and on the footprint check, and the grades behind the metal a
participant holds, revoked ones first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger import keys
from ledger.demo import demo_file
from ledger.disclosure.sign import sign_statement
from ledger.tokens import issue_token
from tests.support import serving
from tests.test_graphql import Api, demo_ledger

NODES = """
query Page($first: Int!, $after: String, $filter: BatchFilterInput) {
  batches(first: $first, after: $after, filter: $filter) {
    totalCount
    edges { cursor node {
      smelterId batchId productForm region regionName
      footprint { declaredKgCo2ePerT computedKgCo2ePerT check }
    } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
HELD = """
{ heldLineageGrades {
    heldSmelterId heldBatchId sourceSmelterId sourceBatchId
    grade { recordIndex grade revoked revokedAtIndex }
} }"""
REVOKED_GRADE = 31  # green-power-aluminium of YN-2025-0001, behind the demo buyers' metal


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The demo ledger, with one grade behind the buyers' metal revoked by its centre."""
    tmp = tmp_path_factory.mktemp("buyers")
    ledger = demo_ledger(f"sqlite:///{tmp / 'ledger.db'}", tmp / "data")
    centre = keys.read_private_key(tmp / "data" / "keys" / "green-eval-centre.pem")
    payload = {"grade_record_index": REVOKED_GRADE, "reason": "certificates withdrawn"}
    ledger.append(sign_statement("grade.revoke", payload, centre))
    ids = [p["participant_id"] for p in demo_file("participants.json")]
    tokens = {pid: issue_token(ledger.engine, pid).token for pid in ids}
    with serving(ledger) as url:
        yield Api(url, tokens)
    ledger.engine.dispose()


def page(api: Api, **variables: Any) -> dict:
    return api.data(NODES, **{"first": 50, **variables})["batches"]


def nodes(connection: dict) -> list[dict]:
    return [edge["node"] for edge in connection["edges"]]


# -- pages -------------------------------------------------------------------------------
def test_pages_carry_complete_relay_page_info_and_the_total(api: Api) -> None:
    everything = page(api, first=100)
    first = page(api, first=4)
    second = page(api, first=4, after=first["pageInfo"]["endCursor"])

    assert first["totalCount"] == second["totalCount"] == len(everything["edges"]) > 8
    assert first["pageInfo"]["hasPreviousPage"] is False
    assert first["pageInfo"]["startCursor"] == first["edges"][0]["cursor"]
    assert second["pageInfo"]["hasPreviousPage"] is True
    assert second["pageInfo"]["startCursor"] == second["edges"][0]["cursor"]
    assert second["pageInfo"]["endCursor"] == second["edges"][-1]["cursor"]


def test_the_total_counts_what_the_filter_keeps(api: Api) -> None:
    billets = page(api, filter={"productForm": "BILLET"})
    assert billets["totalCount"] == len(billets["edges"]) > 0
    assert {n["productForm"] for n in nodes(billets)} == {"billet"}


# -- vocabularies --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"), [("productForm", "ingot"), ("productForm", "billet"), ("region", "Yunnan")]
)
def test_a_filter_value_it_does_not_know_is_refused(api: Api, field: str, value: str) -> None:
    answer = api.query(NODES, first=5, filter={field: value})
    assert answer["data"] is None
    assert value in answer["errors"][0]["message"]


def test_regions_are_read_and_filtered_by_id(api: Api) -> None:
    yunnan = page(api, filter={"region": "CN_YN"})
    smelters = {p["participant_id"]: p for p in demo_file("participants.json")}
    assert nodes(yunnan), "the demo has batches from Yunnan"
    for node in nodes(yunnan):
        assert node["region"] == "CN-YN"  # as electricity lines name it
        assert node["regionName"] == smelters[node["smelterId"]]["region"] == "Yunnan"
    everywhere = nodes(page(api, first=100))
    assert {n["region"] for n in everywhere} <= {"CN-YN", "CN-NM", "CN-XJ", "CN-GD", "CN-CQ"}


# -- footprints --------------------------------------------------------------------------
def test_the_computed_footprint_filter_keeps_only_batches_computed_below_it(api: Api) -> None:
    everything = nodes(page(api, first=100))
    figures = [n["footprint"]["computedKgCo2ePerT"] for n in everything]
    computed = sorted(figure for figure in figures if figure is not None)
    bound = computed[len(computed) // 2]
    kept = nodes(page(api, first=100, filter={"computedFootprintMax": bound}))
    expected = [
        n["batchId"]
        for n in everything
        if n["footprint"]["computedKgCo2ePerT"] is not None
        and n["footprint"]["computedKgCo2ePerT"] <= bound
    ]
    assert [n["batchId"] for n in kept] == expected
    declared = nodes(page(api, first=100, filter={"footprintMax": bound}))
    assert declared != kept  # the declared figure is another question


def test_the_footprint_check_filter(api: Api) -> None:
    everything = nodes(page(api, first=100))
    for check in {n["footprint"]["check"] for n in everything}:
        kept = nodes(page(api, first=100, filter={"footprintCheck": check.upper()}))
        assert [n["batchId"] for n in kept] == [
            n["batchId"] for n in everything if n["footprint"]["check"] == check
        ]


# -- grades behind held metal ------------------------------------------------------------
def test_the_grades_behind_held_metal_put_revocations_first(api: Api) -> None:
    held = api.data(HELD, as_="cq-auto-parts")["heldLineageGrades"]
    assert held, "the demo's car-parts maker holds metal with graded sources"
    first = held[0]
    assert first["grade"] == {
        "recordIndex": REVOKED_GRADE,
        "grade": "green-power-aluminium",
        "revoked": True,
        "revokedAtIndex": first["grade"]["revokedAtIndex"],
    }
    assert first["sourceBatchId"] == "YN-2025-0001"
    assert first["heldSmelterId"] == "cq-auto-parts"
    assert all(not item["grade"]["revoked"] for item in held[1:])
    indexes = [item["grade"]["recordIndex"] for item in held[1:]]
    assert indexes == sorted(indexes, reverse=True)


def test_a_participant_holding_nothing_sees_no_grades(api: Api) -> None:
    assert api.data(HELD, as_="bj-carbon-verify")["heldLineageGrades"] == []


def test_the_held_grades_query_is_bounded(api: Api) -> None:
    most = "{ heldLineageGrades(first: 20) { heldBatchId grade { grade revoked } } }"
    assert "errors" not in api.query(most)
    for first in (0, 21):
        answer = api.query(f"{{ heldLineageGrades(first: {first}) {{ heldBatchId }} }}")
        assert answer["errors"][0]["extensions"]["field"] == "first"


def test_the_sdl_documents_the_new_fields() -> None:
    sdl = (
        Path(__file__).resolve().parents[1] / "schemas" / "graphql" / "schema.graphql"
    ).read_text()
    for text in (
        "enum RegionId",
        "enum ProductForm",
        "enum FootprintCheck",
        "totalCount",
        "hasPreviousPage",
        "heldLineageGrades",
    ):
        assert text in sdl
