"""Batches over HTTP: submit a signed ``batch.register``, read batches back, page through them.

A smelter posts its signed statement to ``/v1/statements`` like any other; readers get a
batch at ``GET /v1/batches/{smelter_id}/{batch_id}`` (the signed payload, derived values,
declared and computed footprint, and the record that proves it) and lists at
``GET /v1/batches`` filtered by smelter, product form and production period, in ledger
order, with an opaque ``next_cursor``. Refusals are JSON ``{error, detail, field}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.disclosure.sign import sign_statement
from ledger.tokens import issue_token
from tests.conftest import LedgerEnv
from tests.support import OTHER_SMELTER, SMELTER, assert_refused, demo_batch, uncertified


@pytest.fixture
def client(sqlite_env: LedgerEnv) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_env.ledger)) as test_client:
        yield test_client


@pytest.fixture
def smelter(sqlite_env: LedgerEnv) -> Ed25519PrivateKey:
    return sqlite_env.register(SMELTER, "smelter", region="Yunnan")


def post_batch(client: TestClient, payload: dict, key: Ed25519PrivateKey) -> Any:
    signed = sign_statement("batch.register", payload, key)
    return client.post("/v1/statements", json=signed.to_dict())


def test_a_posted_batch_reads_back_with_derived_values_footprint_and_record(
    client: TestClient, smelter: Ed25519PrivateKey, sqlite_env: LedgerEnv
) -> None:
    payload = demo_batch("YN-2025-0001")
    posted = post_batch(client, payload, smelter)
    assert posted.status_code == 201, posted.text
    token = issue_token(sqlite_env.ledger.engine, SMELTER).token

    response = client.get(
        f"/v1/batches/{SMELTER}/YN-2025-0001", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200
    batch = response.json()
    assert batch["batch"] == payload
    assert batch["disclosed"] is True
    assert batch["footprint"]["computed"]["breakdown"]["anode_consumption"] > 0
    assert batch["region"] == "Yunnan"
    assert batch["derived"]["metal_input_kg"] == 24_240
    assert batch["derived"]["electricity_kwh_per_t"] == "13541.6667"
    assert batch["derived"]["renewable_share"] == "1.0000"
    assert batch["derived"]["recycled_content_total"] == "0.0000"
    footprint = batch["footprint"]
    assert footprint["declared_kg_co2e_per_t"] == 3800
    assert footprint["computed"]["total_kg_co2e_per_t"] > 0
    assert footprint["computed"]["factor_table_version"]
    assert footprint["check"] == "consistent"
    assert batch["record"]["index"] == posted.json()["record"]["index"]
    assert batch["record"]["leaf_hash"] == posted.json()["leaf_hash"]


def test_anonymous_readers_get_the_signed_commitments_and_footprint_totals(
    client: TestClient, smelter: Ed25519PrivateKey
) -> None:
    payload = demo_batch("YN-2025-0001")
    posted = post_batch(client, payload, smelter)

    batch = client.get(f"/v1/batches/{SMELTER}/YN-2025-0001").json()

    assert batch["disclosed"] is False
    assert batch["batch"] == posted.json()["record"]["statement"]["payload"]
    assert set(batch["batch"]["activity_data"]) == {"_sd"}
    assert batch["batch"]["mass_kg"] == payload["mass_kg"]
    assert batch["batch"]["electricity"] == payload["electricity"]
    computed = batch["footprint"]["computed"]
    assert computed["total_kg_co2e_per_t"] > 0
    assert "breakdown" not in computed and "assumptions" not in computed


def test_an_unknown_batch_is_a_404_json_error(client: TestClient) -> None:
    body = assert_refused(client.get(f"/v1/batches/{SMELTER}/NOPE"), 404, "not_found", "batch_id")
    assert body["detail"] == f"batch_id: no batch {SMELTER}/NOPE"


def test_a_double_claimed_certificate_is_a_409_naming_the_certificate(
    client: TestClient, smelter: Ed25519PrivateKey, sqlite_env: LedgerEnv
) -> None:
    assert post_batch(client, demo_batch("YN-2025-0001"), smelter).status_code == 201
    size = sqlite_env.ledger.tree_size()
    # Same GEC serials as YN-2025-0001, under another batch id.
    again = demo_batch("YN-2025-0001", batch_id="YN-2025-0001-bis")

    body = assert_refused(
        post_batch(client, again, smelter),
        409,
        "conflict",
        "statement.payload.electricity[0].certificate",
    )

    first, last = (again["electricity"][0]["certificate"][k] for k in ("first_id", "last_id"))
    assert f"{first}..{last} (300 MWh) by batch {SMELTER}/YN-2025-0001" in body["detail"]
    assert sqlite_env.ledger.tree_size() == size
    assert client.get(f"/v1/batches/{SMELTER}/YN-2025-0001-bis").status_code == 404


def test_a_batch_in_another_smelters_name_is_a_403(
    client: TestClient, smelter: Ed25519PrivateKey, sqlite_env: LedgerEnv
) -> None:
    other = sqlite_env.register(OTHER_SMELTER, "smelter")
    response = post_batch(client, demo_batch("YN-2025-0001"), other)
    assert_refused(response, 403, "forbidden", "statement.payload.smelter_id")


def test_a_registered_batch_id_is_a_409(client: TestClient, smelter: Ed25519PrivateKey) -> None:
    payload = uncertified(demo_batch("YN-2025-0001"))
    assert post_batch(client, payload, smelter).status_code == 201
    body = assert_refused(
        post_batch(client, payload, smelter), 409, "conflict", "statement.payload.batch_id"
    )
    assert "already registered" in body["detail"]


def test_a_payload_breaking_a_domain_rule_is_a_422_naming_the_field(
    client: TestClient, smelter: Ed25519PrivateKey
) -> None:
    payload = demo_batch("YN-2025-0001")
    payload["production_period"] = {"start": "2025-03-04", "end": "2025-03-03"}
    body = assert_refused(
        post_batch(client, payload, smelter),
        422,
        "invalid",
        "statement.payload.production_period.end",
    )
    assert "runs forward" in body["detail"]


# -- lists ------------------------------------------------------------------------------------
@pytest.fixture
def listed(client: TestClient, smelter: Ed25519PrivateKey, sqlite_env: LedgerEnv) -> TestClient:
    """Five batches: A1..A3 of the Yunnan smelter, B1 and B2 of the Baotou one, interleaved."""
    other = sqlite_env.register(OTHER_SMELTER, "smelter")
    rows = [
        (SMELTER, smelter, "A1", "remelt_ingot", "2025-03-01"),
        (OTHER_SMELTER, other, "B1", "billet", "2025-03-02"),
        (SMELTER, smelter, "A2", "billet", "2025-03-03"),
        (SMELTER, smelter, "A3", "billet", "2025-03-05"),
        (OTHER_SMELTER, other, "B2", "remelt_ingot", "2025-03-06"),
    ]
    for smelter_id, key, batch_id, form, day in rows:
        template = "YN-2025-0001" if smelter_id == SMELTER else "NM-2025-0001"
        payload = uncertified(demo_batch(template, smelter_id, batch_id))
        payload["product_form"] = form
        payload["production_period"] = {"start": day, "end": day}
        assert post_batch(client, payload, key).status_code == 201
    return client


def batch_ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["batch_id"] for item in response.json()["items"]]


def test_the_list_filters_by_smelter_product_form_and_period(listed: TestClient) -> None:
    assert batch_ids(listed.get("/v1/batches")) == ["A1", "B1", "A2", "A3", "B2"]
    assert batch_ids(listed.get("/v1/batches", params={"smelter": SMELTER})) == ["A1", "A2", "A3"]
    assert batch_ids(listed.get("/v1/batches", params={"product_form": "billet"})) == [
        "B1",
        "A2",
        "A3",
    ]
    period = {"period_from": "2025-03-02", "period_to": "2025-03-05"}
    assert batch_ids(listed.get("/v1/batches", params=period)) == ["B1", "A2", "A3"]
    both = {"smelter": OTHER_SMELTER, "product_form": "billet"}
    assert batch_ids(listed.get("/v1/batches", params=both)) == ["B1"]


def test_list_items_are_full_batch_views(listed: TestClient) -> None:
    item = listed.get("/v1/batches", params={"limit": 1}).json()["items"][0]
    assert item == listed.get(f"/v1/batches/{SMELTER}/A1").json()


def test_next_cursor_pages_through_a_filtered_list(listed: TestClient) -> None:
    params: dict[str, Any] = {"smelter": SMELTER, "limit": 2}
    first = listed.get("/v1/batches", params=params).json()
    assert [item["batch_id"] for item in first["items"]] == ["A1", "A2"]
    assert first["next_cursor"]

    second = listed.get("/v1/batches", params={**params, "cursor": first["next_cursor"]}).json()
    assert [item["batch_id"] for item in second["items"]] == ["A3"]
    assert second["next_cursor"] is None


def test_a_cursor_the_api_did_not_return_is_a_422_naming_cursor(listed: TestClient) -> None:
    response = listed.get("/v1/batches", params={"cursor": "not-a-cursor"})
    body = assert_refused(response, 422, "malformed", "cursor")
    assert "not a cursor this API returned" in body["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"period_from": "2025-13-01"}, "period_from"),
        ({"period_to": "March"}, "period_to"),
    ],
)
def test_bad_list_parameters_are_a_422_naming_the_parameter(
    listed: TestClient, params: dict[str, Any], field: str
) -> None:
    assert_refused(listed.get("/v1/batches", params=params), 422, "malformed", field)
