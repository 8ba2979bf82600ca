"""Custody over HTTP, on the command line, and in the demo.

Custody statements are posted to ``/v1/statements`` like any other; lineage and custody
history are read at ``/v1/batches/{ns}/{batch_id}/lineage`` and ``/custody`` for every lot,
registered batch or not. The CLI signs and submits the same statements
(``alu-ledger custody transfer|split|transform|accept|cancel|policy``) and prints lineage as
JSON; ``alu-ledger demo`` ends with a manufacturer buying graded batches, splitting,
remelting with post-consumer scrap and selling on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.custody.views import Custody, Lineage
from ledger.disclosure.sign import sign_statement
from tests.conftest import LedgerEnv
from tests.custody_support import (
    BUYER,
    MAKER,
    SMELTER,
    register_batch,
    transform_payload,
    world,
)
from tests.support import CliLedger, assert_refused, demo_batch


# -- REST ------------------------------------------------------------------------------------
@pytest.fixture
def client(sqlite_env: LedgerEnv) -> Iterator[TestClient]:
    world(sqlite_env)
    register_batch(sqlite_env, SMELTER, "B1")
    with TestClient(create_app(sqlite_env.ledger)) as test_client:
        yield test_client


def post(client: TestClient, env: LedgerEnv, kind: str, payload: dict, who: str) -> Any:
    signed = sign_statement(kind, payload, env.participant_keys[who])
    return client.post("/v1/statements", json=signed.to_dict())


def test_posted_custody_statements_read_back_as_custody_and_lineage(
    client: TestClient, sqlite_env: LedgerEnv
) -> None:
    hand = {"ns": SMELTER, "batch_id": "B1", "recipient_id": MAKER}
    sent = post(client, sqlite_env, "custody.transfer", hand, SMELTER)
    assert sent.status_code == 201, sent.text
    remelt = transform_payload([(SMELTER, "B1", 24_000)], [("P1", 23_000)])
    made = post(client, sqlite_env, "custody.transform", remelt, MAKER)
    assert made.status_code == 201, made.text

    custody = client.get(f"/v1/batches/{SMELTER}/B1/custody").json()
    assert (custody["holder_id"], custody["available_kg"]) == (MAKER, 0)
    assert [h["record_index"] for h in custody["history"]][1:] == [
        sent.json()["record"]["index"],
        made.json()["record"]["index"],
    ]
    product = client.get(f"/v1/batches/{MAKER}/P1/custody").json()
    assert product["lot"]["derivation"]["yield"] == "0.9583"

    up = client.get(f"/v1/batches/{MAKER}/P1/lineage", params={"direction": "up", "depth": 3})
    assert up.status_code == 200
    body = up.json()
    assert [n["batch_id"] for n in body["nodes"]] == ["P1", "B1"]
    assert body["claim_summary"]["metal"]["registered_batches"] == "1.0000"
    down = client.get(f"/v1/batches/{SMELTER}/B1/lineage", params={"direction": "down"}).json()
    assert [e["operation"] for e in down["edges"]] == ["remelt"]
    assert "claim_summary" not in down
    # The answers are what the documented read models say, to the last member.
    for answer in (body, down):
        assert Lineage.model_validate(answer).model_dump(exclude_unset=True) == answer
    for lot in (custody, product):
        assert Custody.model_validate(lot).model_dump(mode="json") == lot


def test_custody_refusals_are_json_errors_naming_the_field(
    client: TestClient, sqlite_env: LedgerEnv
) -> None:
    too_much = {
        "ns": SMELTER,
        "batch_id": "B1",
        "recipient_id": MAKER,
        "mass_kg": 30_000,
        "child_batch_id": "c",
    }
    response = post(client, sqlite_env, "custody.transfer", too_much, SMELTER)
    assert_refused(response, 409, "conflict", "statement.payload.mass_kg")
    response = post(client, sqlite_env, "custody.transfer", {**too_much, "mass_kg": 1}, BUYER)
    assert_refused(response, 403, "forbidden", "statement.payload.batch_id")
    response = post(client, sqlite_env, "custody.accept", {"transfer_index": 1}, BUYER)
    assert_refused(response, 404, "not_found", "statement.payload.transfer_index")
    response = post(client, sqlite_env, "custody.policy", {"require_acceptance": "yes"}, BUYER)
    assert_refused(response, 422, "malformed", "statement.payload.require_acceptance")


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        (f"/v1/batches/{SMELTER}/nope/lineage", {}, 404, "batch_id"),
        (f"/v1/batches/{SMELTER}/nope/custody", {}, 404, "batch_id"),
        (f"/v1/batches/{SMELTER}/B1/lineage", {"depth": 0}, 422, "depth"),
        (f"/v1/batches/{SMELTER}/B1/lineage", {"depth": 51}, 422, "depth"),
        (f"/v1/batches/{SMELTER}/B1/lineage", {"depth": "deep"}, 422, "depth"),
        (f"/v1/batches/{SMELTER}/B1/lineage", {"direction": "left"}, 422, "direction"),
    ],
)
def test_lineage_and_custody_reads_refuse_by_name(
    client: TestClient, path: str, params: dict, status: int, field: str
) -> None:
    error = "not_found" if status == 404 else "malformed"
    assert_refused(client.get(path, params=params), status, error, field)


# -- CLI ---------------------------------------------------------------------------------------
class Cli(CliLedger):
    def key(self, who: str) -> Path:
        return self.tmp / f"{who}.pem"

    def ok(self, result: Any) -> Any:
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: Any) -> Any:
        """Run a ledger command that prints JSON; return it parsed."""
        return json.loads(self.ok(self.ledger(*args)).stdout)


def test_a_cli_round_trip_hands_over_splits_remelts_and_shows_lineage(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.ok(cli.ledger("init"))
    for who, role in ((SMELTER, "smelter"), (MAKER, "manufacturer"), (BUYER, "manufacturer")):
        cli.ok(cli.run("keygen", cli.key(who)))
        cli.ok(
            cli.ledger(
                "participant",
                "register",
                "--id",
                who,
                "--name",
                f"{who} Co.",
                "--role",
                role,
                "--country",
                "CN",
                "--region",
                "CN-GD",
                "--public-key",
                cli.key(who),
                "--key",
                cli.operator_key,
            )
        )
    batch = cli.write_json("batch.json", demo_batch("YN-2025-0001", SMELTER, "B1"))
    cli.ok(cli.ledger("batch", "register", batch, "--key", cli.key(SMELTER)))
    key = ("--key",)

    cli.ok(cli.ledger("custody", "policy", "--require-acceptance", *key, cli.key(BUYER)))
    cli.ok(cli.ledger("custody", "transfer", SMELTER, "B1", "--to", MAKER, *key, cli.key(SMELTER)))
    cli.ok(
        cli.ledger(
            "custody",
            "split",
            SMELTER,
            "B1",
            "--child",
            "B1-a=20000",
            "--child",
            "B1-b=4000",
            *key,
            cli.key(MAKER),
        )
    )
    remelt = transform_payload(
        [(MAKER, "B1-a", 20_000)],
        [("P1", 20_500)],
        external=[{"type": "post_consumer_scrap", "mass_kg": 1_000}],
        process={"electricity": [{"type": "grid", "kwh": 6_000, "grid_region": "CN-GD"}]},
    )
    made = cli.json("custody", "transform", cli.write_json("t.json", remelt), *key, cli.key(MAKER))
    sent = cli.json("custody", "transfer", MAKER, "P1", "--to", BUYER, *key, cli.key(MAKER))
    cli.ok(cli.ledger("custody", "accept", str(sent["index"]), *key, cli.key(BUYER)))

    shown = cli.json("custody", "show", MAKER, "P1")
    assert shown["holder_id"] == BUYER
    assert shown["history"][0]["record_index"] == made["index"]
    up = cli.json("lineage", MAKER, "P1", "--depth", "5")
    assert {n["batch_id"] for n in up["nodes"]} == {"P1", "B1-a", "B1"}
    assert up["claim_summary"]["recycled_content"]["post_consumer"] == "0.0476"  # 1,000 / 21,000

    line = cli.error_line(
        cli.ledger("custody", "split", MAKER, "P1", "--child", "x", *key, cli.key(BUYER))
    )
    assert line == "error: --child: 'x' is not CHILD_ID=MASS_KG"
    line = cli.error_line(cli.ledger("lineage", MAKER, "P1", "--direction", "sideways"))
    assert line == "error: direction: must be one of up, down"
    line = cli.error_line(
        cli.ledger("custody", "transfer", MAKER, "P1", "--to", SMELTER, *key, cli.key(MAKER))
    )
    assert line.startswith("error: statement.payload.batch_id: lot maker/P1 is held by buyer")


# -- demo --------------------------------------------------------------------------------------
def test_the_demo_product_descends_from_graded_batches_and_loading_again_adds_nothing(
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path)
    keys_dir = tmp_path / "keys"
    first = cli.ok(cli.ledger("demo", "--keys-dir", keys_dir))
    # 10 custody steps and the purchase a casthouse makes before registering a batch
    assert sum(line.startswith("custody: ") for line in first.stdout.splitlines()) == 11
    size = cli.tree_size()
    again = cli.ok(cli.ledger("demo", "--keys-dir", keys_dir))
    assert not any(line.startswith("custody: ") for line in again.stdout.splitlines())
    assert cli.tree_size() == size

    up = cli.json("lineage", "cq-auto-parts", "CQ-CASTING-2025-0001")
    summary = up["claim_summary"]
    assert {s["smelter_id"] for s in summary["smelters"]} == {
        "yn-lancang-aluminium",
        "gd-zhaoqing-recycling",
    }
    graded = {(g["ruleset_id"], g["grade"]): g for g in summary["graded"]}
    low_carbon = graded[("example-green-low-carbon-aluminium", "tier-2")]
    assert float(low_carbon["share"]) > 0 and low_carbon["graded_kg"] > 0
    assert low_carbon["graded_kg"] <= summary["available_kg"]
    assert float(summary["recycled_content"]["post_consumer"]) > 0.3
    assert float(summary["metal"]["primary_unregistered"]) > 0
    profile = cli.json("custody", "show", "foshan-extrusion", "FS-PROFILE-2025-0001")
    assert profile["lot"]["product_form"] == "profile"
    assert profile["lot"]["footprint"]["basis"] == "derived"
