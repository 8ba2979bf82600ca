"""``alu-ledger batch`` and ``alu-ledger footprint``: a smelter's batches from the command line.

The operator initialises a ledger and registers a smelter with the public half of a key the
smelter made with ``keygen``; the smelter registers a batch from a JSON file
(``batch register FILE --key smelter.pem``), which prints the record index and leaf hash;
anyone shows it (``batch show SMELTER BATCH``). ``footprint FILE`` computes a batch's
footprint offline and submits nothing. A refusal prints one line ``error: ...`` to stderr
and exits 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import support
from tests.support import SMELTER, CliLedger


def demo_batch(template: str = "YN-2025-0001", batch_id: str | None = None) -> dict:
    """A copy of a demo batch (scripts/demo/batches.json), owned by SMELTER."""
    return support.demo_batch(template, SMELTER, batch_id)


class Cli(CliLedger):
    """The shared runner, plus where the test smelter's key lives."""

    @property
    def smelter_key(self) -> Path:
        return self.tmp / "smelter.pem"

    def ok(self, result: Any) -> Any:
        assert result.exit_code == 0, result.output
        return result


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """An initialised ledger with SMELTER registered; its key in ``cli.smelter_key``."""
    cli = Cli(tmp_path)
    cli.ok(cli.ledger("init"))
    cli.ok(cli.run("keygen", cli.smelter_key))
    cli.ok(
        cli.ledger(
            "participant",
            "register",
            "--id",
            SMELTER,
            "--name",
            "Yunnan Hydro Aluminium Co., Ltd.",
            "--role",
            "smelter",
            "--country",
            "CN",
            "--region",
            "Yunnan",
            "--public-key",
            cli.smelter_key,
            "--key",
            cli.data_dir / "operator-key.pem",
        )
    )
    return cli


def test_a_smelter_registers_a_batch_and_gets_its_index_and_leaf_hash(cli: Cli) -> None:
    batch_file = cli.write_json("batch.json", demo_batch())
    size = cli.tree_size()

    result = cli.ok(cli.ledger("batch", "register", batch_file, "--key", cli.smelter_key))

    receipt = json.loads(result.stdout)
    assert receipt["index"] == size
    assert len(receipt["leaf_hash"]) == 64
    assert cli.tree_size() == size + 1


def test_batch_show_prints_the_batch_with_derived_values_footprint_and_record(cli: Cli) -> None:
    payload = demo_batch()
    batch_file = cli.write_json("batch.json", payload)
    registered = cli.ok(cli.ledger("batch", "register", batch_file, "--key", cli.smelter_key))
    receipt = json.loads(registered.stdout)

    shown = json.loads(cli.ok(cli.ledger("batch", "show", SMELTER, "YN-2025-0001")).stdout)

    assert shown["batch"] == payload
    assert shown["derived"]["renewable_share"] == "1.0000"
    assert shown["footprint"]["computed"]["total_kg_co2e_per_t"] > 0
    assert shown["footprint"]["check"] == "consistent"
    assert shown["region"] == "Yunnan"
    assert shown["record"]["index"] == receipt["index"]
    assert shown["record"]["leaf_hash"] == receipt["leaf_hash"]


def test_registering_the_same_batch_again_is_refused_with_one_error_line(cli: Cli) -> None:
    batch_file = cli.write_json("batch.json", demo_batch())
    cli.ok(cli.ledger("batch", "register", batch_file, "--key", cli.smelter_key))
    size = cli.tree_size()

    line = cli.error_line(cli.ledger("batch", "register", batch_file, "--key", cli.smelter_key))

    assert line == (
        f"error: statement.payload.batch_id: batch {SMELTER}/YN-2025-0001 is already registered"
    )
    assert cli.tree_size() == size


def test_claiming_certificates_another_batch_holds_is_refused_naming_them(cli: Cli) -> None:
    cli.ok(
        cli.ledger(
            "batch", "register", cli.write_json("a.json", demo_batch()), "--key", cli.smelter_key
        )
    )
    again = cli.write_json("b.json", demo_batch(batch_id="YN-2025-0001-bis"))

    line = cli.error_line(cli.ledger("batch", "register", again, "--key", cli.smelter_key))

    assert line.startswith("error: statement.payload.electricity[0].certificate: GEC certificate")
    assert f"by batch {SMELTER}/YN-2025-0001" in line


def test_showing_an_unknown_batch_is_refused(cli: Cli) -> None:
    line = cli.error_line(cli.ledger("batch", "show", SMELTER, "NOPE"))
    assert line == f"error: batch_id: no batch {SMELTER}/NOPE"


def test_footprint_prints_the_computation_and_submits_nothing(cli: Cli) -> None:
    payload = demo_batch("YN-2025-0004")
    batch_file = cli.write_json("batch.json", payload)
    size = cli.tree_size()

    report = json.loads(cli.ok(cli.run("footprint", batch_file)).stdout)

    assert report["smelter_id"] == SMELTER
    assert report["batch_id"] == "YN-2025-0004"
    assert report["declared_kg_co2e_per_t"] == 2500
    assert report["boundary"] == "cradle_to_gate"
    computed = report["computed"]
    assert computed["total_kg_co2e_per_t"] > 2500 / 0.9
    assert set(computed["breakdown"]) >= {"anode_consumption", "pfc", "upstream_alumina"}
    assert computed["factor_table_version"]
    assert report["check"] == "declared_below_computed"
    assert cli.tree_size() == size
    # The same numbers the ledger stores once the batch is registered.
    cli.ok(cli.ledger("batch", "register", batch_file, "--key", cli.smelter_key))
    shown = json.loads(cli.ok(cli.ledger("batch", "show", SMELTER, "YN-2025-0004")).stdout)
    assert shown["footprint"]["computed"] == computed


def test_footprint_of_a_batch_without_activity_data_is_not_computable(cli: Cli) -> None:
    payload = demo_batch()
    del payload["activity_data"]
    report = json.loads(cli.ok(cli.run("footprint", cli.write_json("b.json", payload))).stdout)
    assert report["computed"] is None
    assert report["check"] == "not_computable"


@pytest.mark.parametrize("command", ["register", "footprint"])
def test_a_file_with_a_float_is_refused_naming_the_field(cli: Cli, command: str) -> None:
    payload = demo_batch()
    payload["mass_kg"] = 24000.5
    batch_file = cli.write_json("float.json", payload)
    size = cli.tree_size()

    if command == "register":
        result = cli.ledger("batch", "register", batch_file, "--key", cli.smelter_key)
    else:
        result = cli.run("footprint", batch_file)
    line = cli.error_line(result)

    assert "payload.mass_kg: " in line
    assert "float" in line
    assert cli.tree_size() == size


def test_a_file_that_is_not_json_is_refused_naming_the_file(cli: Cli) -> None:
    broken = cli.tmp / "broken.json"
    broken.write_text('{"batch_id": ')
    line = cli.error_line(cli.ledger("batch", "register", broken, "--key", cli.smelter_key))
    assert line.startswith(f"error: {broken}: is not valid JSON")
