"""``alu-ledger demo``: a ledger with realistic participants and batches to try things on.

The demo initialises the ledger if needed, registers the participants of
``scripts/demo/participants.json`` (writing each one's private key to
``<keys dir>/<participant id>.pem``) and the batches of ``scripts/demo/batches.json``,
signed by their smelters. Running it again adds nothing. The batches span hydro-powered
to coal-grid aluminium, so the computed footprints run from about 2 to 16 t CO2e per t.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger import keys
from ledger.batches.reads import list_batches
from ledger.bootstrap import open_ledger
from ledger.demo import demo_file
from ledger.grading import load_shipped_rulesets
from ledger.log import Ledger
from ledger.settings import Settings
from ledger.storage.batches import BatchFilter
from ledger.storage.db import read_session
from ledger.storage.grading import GradingRepository
from ledger.storage.repository import Repository
from ledger.tokens import authenticate
from ledger.visibility import operator_viewer
from tests.support import CliLedger

PARTICIPANTS = demo_file("participants.json")
BATCHES = demo_file("batches.json")
GRADING = demo_file("grading.json")
OPERATOR = operator_viewer("operator")


@dataclass
class Demo(CliLedger):
    first_run: Any = None

    @property
    def keys_dir(self) -> Path:
        return self.tmp / "demo-keys"

    def load(self) -> Any:
        return self.ledger("demo", "--keys-dir", self.keys_dir)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """One demo ledger, loaded once, shared by the read-only tests below."""
    tmp = tmp_path_factory.mktemp("demo")
    demo = Demo(tmp, None)
    demo.first_run = demo.load()
    assert demo.first_run.exit_code == 0, demo.first_run.output
    return demo


@pytest.fixture
def ledger(demo: Demo) -> Iterator[Ledger]:
    opened = open_ledger(Settings(data_dir=demo.data_dir, database_url=demo.database))
    yield opened
    opened.engine.dispose()


def all_batches(ledger: Ledger) -> list[dict[str, Any]]:
    page = list_batches(ledger.engine, OPERATOR, BatchFilter(), limit=200)
    assert page["next_cursor"] is None
    return page["items"]


def test_the_demo_registers_every_participant_and_batch(demo: Demo, ledger: Ledger) -> None:
    with read_session(ledger.engine) as session:
        registered = {p.participant_id: p.role for p in Repository(session).participants()}
    for participant in PARTICIPANTS:
        assert registered[participant["participant_id"]] == participant["role"]
    stored = [(b["smelter_id"], b["batch_id"]) for b in all_batches(ledger)]
    # batches naming a lot they bought come after the purchase (purchases.json)
    buying = [b for b in BATCHES if b["metal_inputs"].get("purchased_primary_batches")]
    in_order = [b for b in BATCHES if b not in buying] + buying
    assert stored == [(b["smelter_id"], b["batch_id"]) for b in in_order]
    with read_session(ledger.engine) as session:
        batch_records = Repository(session).records_of_kinds(["batch.register"])
    assert len(batch_records) == len(BATCHES)
    output = demo.first_run.stdout
    assert f"registered participant {PARTICIPANTS[0]['participant_id']}" in output
    assert f"registered batch {in_order[-1]['smelter_id']}/{in_order[-1]['batch_id']}" in output


def test_each_participant_gets_a_pem_key_the_ledger_knows(demo: Demo, ledger: Ledger) -> None:
    pems = sorted(path.name for path in demo.keys_dir.glob("*.pem"))
    assert pems == sorted(f"{p['participant_id']}.pem" for p in PARTICIPANTS)
    with read_session(ledger.engine) as session:
        repo = Repository(session)
        for participant in PARTICIPANTS:
            key = keys.read_private_key(demo.keys_dir / f"{participant['participant_id']}.pem")
            registered = [row.key_id for row in repo.keys_of(participant["participant_id"])]
            assert registered == [keys.key_id(key)]


def test_computed_footprints_span_hydro_to_coal_grid_aluminium(ledger: Ledger) -> None:
    computed = [b["footprint"]["computed"] for b in all_batches(ledger)]
    assert all(c is not None for c in computed)
    totals = [c["total_kg_co2e_per_t"] for c in computed if c["total_kg_co2e_per_t"] is not None]
    # alloys with an element of no confirmed factor (Mn, Cr) have no cradle-to-gate total
    assert len(totals) == len(BATCHES) - 3
    assert min(totals) < 4_000
    assert max(totals) > 12_000


def test_the_demo_shows_gec_backing_and_a_flagged_declaration(ledger: Ledger) -> None:
    batches = all_batches(ledger)
    gec_backed = [
        b["batch_id"]
        for b in batches
        if any(s.get("certificate", {}).get("scheme") == "GEC" for s in b["batch"]["electricity"])
    ]
    assert gec_backed
    assert all(
        b["derived"]["renewable_share"] not in (None, "0.0000")
        for b in batches
        if b["batch_id"] in gec_backed
    )
    flagged = [b for b in batches if b["footprint"]["check"] == "declared_below_computed"]
    assert flagged
    for batch in flagged:
        footprint = batch["footprint"]
        computed = footprint["computed"]["total_kg_co2e_per_t"]
        assert footprint["declared_kg_co2e_per_t"] < 0.9 * computed


def test_the_demo_ledger_verifies(demo: Demo) -> None:
    result = demo.ledger("verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: ")


def test_running_the_demo_again_adds_nothing(demo: Demo, ledger: Ledger) -> None:
    size = ledger.tree_size()
    pems = {path.name: path.read_bytes() for path in demo.keys_dir.iterdir()}

    again = demo.load()

    assert again.exit_code == 0, again.output
    assert "registered" not in again.stdout
    assert "issued" not in again.stdout and "published" not in again.stdout
    assert f"ledger size {size}" in again.stdout
    assert ledger.tree_size() == size
    assert {path.name: path.read_bytes() for path in demo.keys_dir.iterdir()} == pems
    assert demo.ledger("verify").exit_code == 0


def test_the_demo_centre_grades_batches_under_every_kind_of_rule_set(ledger: Ledger) -> None:
    with read_session(ledger.engine) as session:
        grading = GradingRepository(session)
        published = {row.ruleset_id for row in grading.rulesets()}
        grades = [
            row
            for batch in BATCHES
            for row in grading.grades_of(batch["smelter_id"], batch["batch_id"])
        ]
    assert published == {doc["ruleset_id"] for doc in load_shipped_rulesets()}
    assert len(grades) == len(GRADING["grades"])
    assert {row.issuer_id for row in grades} == {GRADING["centre"]}
    assert len({(row.ruleset_id, row.grade) for row in grades}) >= 6
    assert [row.batch_id for row in grades if row.revoked_index is not None] == [
        revocation["batch_id"] for revocation in GRADING["revocations"]
    ]


def test_demo_certificates_verify_offline_with_the_cli(demo: Demo, ledger: Ledger) -> None:
    with read_session(ledger.engine) as session:
        grading = GradingRepository(session)
        grades = [row for b in BATCHES for row in grading.grades_of(b["smelter_id"], b["batch_id"])]
    log_key = demo.tmp / "log.vkey"  # --log-key takes the key or a file holding it
    log_key.write_text(ledger.verifier_key + "\n")
    for row in grades:
        bundle = demo.tmp / f"certificate-{row.record_index}.json"
        assert demo.ledger("certificate", "get", row.record_index, "-o", bundle).exit_code == 0
        result = demo.run("certificate", "verify", bundle, "--log-key", log_key)
        expected = "revoked" if row.revoked_index is not None else "valid"
        assert result.exit_code == (0 if expected == "valid" else 1), result.output
        assert result.stdout.startswith(f"{expected}: grade {row.grade} "), result.stdout

    tampered = json.loads(bundle.read_text())
    tampered["records"]["batch"]["record"]["statement"]["payload"]["mass_kg"] += 1000
    tampered_file = demo.write_json("tampered.json", tampered)
    result = demo.run("certificate", "verify", tampered_file, "--log-key", ledger.verifier_key)
    assert result.exit_code == 1
    assert result.stdout.startswith("invalid: records.batch: record ")


def test_the_demo_buyer_gets_a_graphql_token(demo: Demo, ledger: Ledger) -> None:
    token = (demo.keys_dir / "foshan-extrusion.token").read_text().strip()
    assert authenticate(ledger.engine, token).participant_id == "foshan-extrusion"
    assert "GraphQL token of foshan-extrusion" in demo.first_run.stdout
