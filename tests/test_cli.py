"""``alu-ledger``: the command line an operator and participants use.

A walk through a ledger's life on SQLite: ``init`` creates the log and prints
the verifier key to pin; ``keygen`` writes private keys; the operator registers
a participant; the participant submits a statement; anyone reads records,
checkpoints and proofs, and the printed proofs verify against the printed
checkpoints. Every refusal prints exactly one line ``error: <field>: <reason>``
to stderr and exits 2.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from ledger import keys, merkle
from ledger.bootstrap import open_ledger
from ledger.checkpoints import Checkpoint, NoteVerifier, open_checkpoint
from ledger.settings import Settings
from tests.support import CliLedger
from tests.test_client import serving


class Cli(CliLedger):
    """The shared runner, plus checks that read like the tests' sentences."""

    def ok(self, *args: str | Path) -> Any:
        result = self.ledger(*args)
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str | Path) -> Any:
        return json.loads(self.ok(*args).stdout)

    def refused(self, *args: str | Path, database: bool = True) -> str:
        """Run a command that must be refused; return its one ``error:`` line."""
        return self.error_line(self.ledger(*args) if database else self.run(*args))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def initialised(cli: Cli) -> str:
    """Initialise the ledger; return the verifier key ``init`` printed."""
    result = cli.ok("init")
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    return lines["verifier key"]


@pytest.fixture
def smelter_key(cli: Cli, initialised: str) -> Path:
    """A key made with keygen and registered by the operator as a smelter."""
    path = cli.tmp / "smelter.pem"
    cli.run("keygen", path)
    appended = cli.json(
        "participant",
        "register",
        "--id",
        "yunnan-hydro",
        "--name",
        "Yunnan Hydro Aluminium",
        "--role",
        "smelter",
        "--country",
        "CN",
        "--region",
        "CN-YN",
        "--public-key",
        path,
        "--key",
        cli.operator_key,
    )
    assert appended["index"] == 1
    return path


def document(i: int) -> dict[str, Any]:
    return {"sha256": f"{i:064x}", "media_type": "application/pdf", "title": f"report {i}"}


# -- init and keygen ------------------------------------------------------------------


def test_init_creates_the_log_and_prints_the_verifier_key(cli: Cli) -> None:
    result = cli.ok("init")
    assert f"log key file: {cli.data_dir / 'log-key.pem'}" in result.stdout
    assert f"operator key: {cli.operator_key}" in result.stdout
    vkey = result.stdout.split("verifier key: ", 1)[1].strip()
    verifier = NoteVerifier.parse(vkey)
    assert verifier.name == "alu-ledger.localhost/log"
    note = cli.ok("checkpoint").stdout
    assert open_checkpoint(note, verifier).size == 1


def test_init_is_idempotent(cli: Cli, initialised: str) -> None:
    log_key = (cli.data_dir / "log-key.pem").read_bytes()
    operator_key = cli.operator_key.read_bytes()
    result = cli.ok("init")
    assert result.stdout.strip() == f"already initialised; log key {initialised}"
    assert (cli.data_dir / "log-key.pem").read_bytes() == log_key
    assert cli.operator_key.read_bytes() == operator_key
    note = cli.ok("checkpoint").stdout
    assert open_checkpoint(note, NoteVerifier.parse(initialised)).size == 1


def test_init_with_a_custom_origin_names_the_log(cli: Cli) -> None:
    result = cli.ok("init", "--origin", "ledger.example.cn/alu")
    vkey = result.stdout.split("verifier key: ", 1)[1].strip()
    assert vkey.startswith("ledger.example.cn/alu+")


def test_keygen_writes_an_owner_only_pem_and_prints_its_id(cli: Cli) -> None:
    path = cli.tmp / "keys" / "smelter.pem"
    result = cli.run("keygen", path)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    key = keys.read_private_key(path)
    assert f"key id:     {keys.key_id(key)}" in result.stdout
    assert f"public key: {keys.public_key_b64(key)}" in result.stdout


def test_keygen_refuses_to_overwrite_a_key_without_force(cli: Cli) -> None:
    path = cli.tmp / "smelter.pem"
    cli.run("keygen", path)
    before = path.read_bytes()
    line = cli.refused("keygen", path, database=False)
    assert line == f"error: {path}: file exists; pass --force to overwrite"
    assert path.read_bytes() == before

    result = cli.run("keygen", path, "--force")
    assert result.exit_code == 0, result.output
    assert path.read_bytes() != before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- the participant flow ---------------------------------------------------------------


def test_a_registered_participant_submits_a_statement(cli: Cli, smelter_key: Path) -> None:
    payload = cli.write_json("attest.json", document(7))
    appended = cli.json("submit", "document.attest", payload, "--key", smelter_key)
    assert appended["index"] == 2

    shown = cli.json("record", "2")
    record = shown["record"]
    assert record["index"] == 2
    assert record["statement"]["kind"] == "document.attest"
    assert record["statement"]["payload"] == document(7)
    assert record["statement"]["signer"] == keys.key_id(keys.read_private_key(smelter_key))
    leaf_hash = merkle.leaf_hash(rfc8785.dumps(record))
    assert shown["leaf_hash"] == appended["leaf_hash"] == leaf_hash.hex()


def test_the_registration_record_names_the_participant(cli: Cli, smelter_key: Path) -> None:
    statement = cli.json("record", "1")["record"]["statement"]
    assert statement["kind"] == "participant.register"
    assert statement["payload"]["participant_id"] == "yunnan-hydro"
    assert statement["payload"]["role"] == "smelter"
    public_key = keys.public_key_b64(keys.read_private_key(smelter_key))
    assert statement["payload"]["public_key"] == public_key
    assert statement["signer"] == keys.key_id(keys.read_private_key(cli.operator_key))


def test_printed_proofs_verify_against_printed_checkpoints(
    cli: Cli, initialised: str, smelter_key: Path
) -> None:
    verifier = NoteVerifier.parse(initialised)
    cli.ok("submit", "document.attest", cli.write_json("a.json", document(1)), "--key", smelter_key)
    old = open_checkpoint(cli.ok("checkpoint").stdout, verifier, origin=verifier.name)
    assert old.size == 3
    for i in range(2, 5):
        payload = cli.write_json(f"{i}.json", document(i))
        cli.ok("submit", "document.attest", payload, "--key", smelter_key)
    new = open_checkpoint(cli.ok("checkpoint").stdout, verifier, origin=verifier.name)
    assert new.size == 6

    leaf = bytes.fromhex(cli.json("record", "2")["leaf_hash"])
    for checkpoint, size_args in ((old, ("--tree-size", "3")), (new, ())):
        proof = cli.json("proof", "inclusion", "2", *size_args)
        assert (proof["index"], proof["tree_size"]) == (2, checkpoint.size)
        hashes = [bytes.fromhex(h) for h in proof["hashes"]]
        merkle.verify_inclusion(leaf, 2, checkpoint.size, hashes, checkpoint.root)

    proof = cli.json("proof", "consistency", "3", "6")
    assert (proof["old"], proof["new"]) == (3, 6)
    hashes = [bytes.fromhex(h) for h in proof["hashes"]]
    merkle.verify_consistency(old.size, new.size, hashes, old.root, new.root)


def test_the_checkpoint_command_prints_the_signed_note_verbatim(cli: Cli, initialised: str) -> None:
    note = cli.ok("checkpoint").stdout
    body, signature = note.split("\n\n")
    assert body.split("\n")[:2] == ["alu-ledger.localhost/log", "1"]
    assert signature.startswith("— alu-ledger.localhost/log ")
    assert isinstance(open_checkpoint(note, NoteVerifier.parse(initialised)), Checkpoint)


def test_verify_passes_on_a_ledger_built_by_the_cli(cli: Cli, smelter_key: Path) -> None:
    cli.ok("submit", "document.attest", cli.write_json("a.json", document(1)), "--key", smelter_key)
    assert "ok: 3 records verified against checkpoint 3" in cli.ok("verify").stdout


def test_a_key_rotated_by_the_cli_stops_signing(cli: Cli, smelter_key: Path) -> None:
    new_key = cli.tmp / "smelter-2.pem"
    cli.run("keygen", new_key)
    cli.ok(
        "participant",
        "rotate-key",
        "--id",
        "yunnan-hydro",
        "--new-public-key",
        new_key,
        "--key",
        smelter_key,
    )
    payload = cli.write_json("a.json", document(1))
    line = cli.refused("submit", "document.attest", payload, "--key", smelter_key)
    assert line.startswith("error: statement.signer: signer key was rotated at record 2")
    assert cli.json("submit", "document.attest", payload, "--key", new_key)["index"] == 3


def test_submit_over_http_verifies_the_receipt(
    cli: Cli, initialised: str, smelter_key: Path
) -> None:
    ledger = open_ledger(Settings(data_dir=cli.data_dir, database_url=cli.database))
    payload = cli.write_json("a.json", document(1))
    with serving(ledger) as url:
        result = cli.run(
            "submit",
            "document.attest",
            payload,
            "--key",
            smelter_key,
            "--server",
            url,
            "--log-key",
            initialised,
        )
    ledger.engine.dispose()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "index": 2,
        "leaf_hash": cli.json("record", "2")["leaf_hash"],
        "verified": True,
    }


# -- refusals: exit 2 and one readable line --------------------------------------------------


def test_an_unknown_kind_is_refused(cli: Cli, smelter_key: Path) -> None:
    payload = cli.write_json("a.json", document(1))
    line = cli.refused("submit", "batch.teleport", payload, "--key", smelter_key)
    assert line.startswith("error: statement.kind: unknown kind 'batch.teleport'; known kinds: ")
    assert "document.attest" in line


def test_a_missing_payload_file_is_refused(cli: Cli, smelter_key: Path) -> None:
    missing = cli.tmp / "nowhere.json"
    line = cli.refused("submit", "document.attest", missing, "--key", smelter_key)
    assert line == f"error: {missing}: cannot read: No such file or directory"


def test_a_payload_file_that_is_not_json_is_refused(cli: Cli, smelter_key: Path) -> None:
    path = cli.tmp / "broken.json"
    path.write_text('{"sha256": ')
    line = cli.refused("submit", "document.attest", path, "--key", smelter_key)
    assert line.startswith(f"error: {path}: is not valid JSON")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"sha256": "a", "sha256": "b"}', "member 'sha256' appears twice"),
        ('{"media_type": "\\ud800"}', "lone UTF-16 surrogate"),
        ('{"media_type": "a\\u0000"}', "NUL character"),
        ("[" * 100 + "]" * 100, "nests deeper than 64 levels"),
    ],
)
def test_a_payload_file_is_read_as_strictly_as_an_http_body(
    cli: Cli, smelter_key: Path, text: str, reason: str
) -> None:
    path = cli.tmp / "hostile.json"
    path.write_text(text)
    line = cli.refused("submit", "document.attest", path, "--key", smelter_key)
    assert reason in line


def test_a_float_in_the_payload_is_refused_naming_its_path(cli: Cli, smelter_key: Path) -> None:
    payload = cli.write_json("a.json", {**document(1), "parts": [{"mass": 1.25}]})
    line = cli.refused("submit", "document.attest", payload, "--key", smelter_key)
    assert line.startswith("error: statement.payload.parts[0].mass: floats are not allowed")


def test_a_payload_the_kind_refuses_is_refused(cli: Cli, smelter_key: Path) -> None:
    payload = cli.write_json("a.json", {"sha256": "XYZ", "media_type": "application/pdf"})
    line = cli.refused("submit", "document.attest", payload, "--key", smelter_key)
    assert line == "error: statement.payload.sha256: must be 64 lowercase hex digits"


def test_an_unregistered_key_is_refused(cli: Cli, initialised: str) -> None:
    stranger = cli.tmp / "stranger.pem"
    cli.run("keygen", stranger)
    payload = cli.write_json("a.json", document(1))
    line = cli.refused("submit", "document.attest", payload, "--key", stranger)
    assert line == "error: statement.signer: signer key is not registered"


def test_a_participant_cannot_register_participants(cli: Cli, smelter_key: Path) -> None:
    other = cli.tmp / "other.pem"
    cli.run("keygen", other)
    line = cli.refused(
        "participant",
        "register",
        "--id",
        "sock-puppet",
        "--name",
        "Sock Puppet",
        "--role",
        "auditor",
        "--country",
        "CN",
        "--region",
        "CN-BJ",
        "--public-key",
        other,
        "--key",
        smelter_key,
    )
    assert line.startswith("error: statement.signer: registering a participant needs role operator")


def test_a_bad_public_key_is_refused(cli: Cli, initialised: str) -> None:
    line = cli.refused(
        "participant",
        "register",
        "--id",
        "yunnan-hydro",
        "--name",
        "Yunnan Hydro",
        "--role",
        "smelter",
        "--country",
        "CN",
        "--region",
        "CN-YN",
        "--public-key",
        "not-a-key",
        "--key",
        cli.operator_key,
    )
    assert line == "error: --public-key: not valid base64"


def test_a_key_file_that_is_not_a_pem_key_is_refused(cli: Cli, initialised: str) -> None:
    bogus = cli.tmp / "bogus.pem"
    bogus.write_text("hello")
    payload = cli.write_json("a.json", document(1))
    line = cli.refused("submit", "document.attest", payload, "--key", bogus)
    assert line == f"error: {bogus}: not a PEM PKCS#8 private key"


def test_an_unknown_record_is_refused(cli: Cli, initialised: str) -> None:
    assert cli.refused("record", "99") == "error: index: no record with index 99"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("inclusion", "0", "--tree-size", "9"), "error: tree_size: tree_size must be between"),
        (("inclusion", "5"), "error: index: index 5 is not in a tree of size 1"),
        (("consistency", "2", "1"), "error: old: OLD must not exceed NEW"),
        (("consistency", "0", "1"), "error: old: old must be between 1 and new"),
    ],
)
def test_impossible_proofs_are_refused(
    cli: Cli, initialised: str, args: tuple[str, ...], expected: str
) -> None:
    assert cli.refused("proof", *args).startswith(expected)


def test_commands_before_init_are_refused(cli: Cli, tmp_path: Path) -> None:
    """A read points to a ledger server (a reader has none of their own to create); a
    write, which only the operator's ledger takes locally, points to init."""
    line = cli.refused("checkpoint")
    assert line.startswith(f"error: no ledger in {cli.data_dir}: to read a ledger server")
    key = tmp_path / "k.pem"
    cli.run("keygen", key)
    payload = cli.write_json("d.json", document(1))
    line = cli.refused("submit", "document.attest", payload, "--key", key)
    log_key = cli.data_dir / "log-key.pem"
    assert line == f"error: no log key at {log_key}; run `alu-ledger init` first"


def test_a_refused_submit_stores_nothing(cli: Cli, initialised: str, smelter_key: Path) -> None:
    payload = cli.write_json("a.json", {**document(1), "mass": 0.5})
    cli.refused("submit", "document.attest", payload, "--key", smelter_key)
    assert "ok: 2 records verified" in cli.ok("verify").stdout


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("LEDGER_ACCEPT_GRACE_MS", "0", "greater than or equal to 0.1"),
        ("LEDGER_GROUP_COMMIT_WAIT_MS", "soon", "a valid number"),
    ],
)
def test_a_bad_setting_in_the_environment_is_refused_naming_it(
    cli: Cli,
    initialised: str,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    says: str,
) -> None:
    monkeypatch.setenv(variable, value)
    line = cli.refused("checkpoint")  # every command reads its settings the same way
    assert line.startswith(f"error: {variable}: ") and says in line
