"""An auditor with nothing but the log's verifier key audits a ledger over its REST API:
every record streamed in pages and checked, the tree rebuilt and matched to the signed
checkpoint. With a state file the audit resumes where it stopped, after proving the
ledger still extends what it audited; a ledger that rewrote its past fails, and so does
a record changed on the way."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.bootstrap import init_ledger
from ledger.remote_audit import PAGE, RemoteAuditor
from ledger.settings import Settings
from tests.conftest import LedgerEnv, make_env
from tests.support import CliLedger, serving


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[LedgerEnv, str, Any]]:
    """A ledger of a little more than two pages, served over HTTP, and its smelter's key."""
    env = make_env(database_url, tmp_path / "data")
    smelter = env.register("yunnan-hydro", "smelter")
    env.attest(smelter, PAGE * 2 + 5)
    with serving(env.ledger) as url:
        yield env, url, smelter
    env.ledger.engine.dispose()


class Recording(httpx.HTTPTransport):
    """The real transport, noting each path asked for; ``tamper`` may change a response."""

    def __init__(self, tamper: Any = None) -> None:
        super().__init__()
        self.paths: list[str] = []
        self.tamper = tamper

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.raw_path.decode())
        response = super().handle_request(request)
        if self.tamper is None:
            return response
        response.read()
        return self.tamper(request, response)


def auditor(env: LedgerEnv, url: str, **options: Any) -> RemoteAuditor:
    transport = options.pop("transport", None) or Recording()
    client = httpx.Client(transport=transport, timeout=30)
    return RemoteAuditor(url, env.ledger.verifier, client=client, **options)


def test_the_whole_log_is_audited_in_pages(served: tuple[LedgerEnv, str, Any]) -> None:
    env, url, _ = served
    transport = Recording()
    report = auditor(env, url, transport=transport).run()
    assert report.ok, report.problem
    assert report.records == report.checkpoint_size == env.ledger.tree_size()
    pages = [p for p in transport.paths if p.startswith("/v1/records?")]
    assert len(pages) == -(-report.records // PAGE)  # one request a page, not one a record


def test_an_audit_resumes_after_proving_the_ledger_extends_what_it_audited(
    served: tuple[LedgerEnv, str, Any], tmp_path: Path
) -> None:
    env, url, smelter = served
    state = tmp_path / "audit-state.json"
    first = auditor(env, url, state_file=state).run()
    assert first.ok and json.loads(state.read_text())["size"] == first.records

    env.ledger.append_many([_attestation(smelter, n) for n in range(10_000, 10_007)])
    transport = Recording()
    resumed = auditor(env, url, state_file=state, transport=transport)
    second = resumed.run()

    assert second.ok, second.problem
    assert resumed.resumed_from == first.records
    assert second.records == first.records + 7
    assert f"/v1/proofs/consistency?old={first.records}&new={second.records}" in transport.paths
    assert [p for p in transport.paths if p.startswith("/v1/records?")] == [
        f"/v1/records?start={first.records}&limit=7"  # only what is new
    ]


def test_a_ledger_that_rewrote_what_was_audited_fails(
    served: tuple[LedgerEnv, str, Any], tmp_path: Path
) -> None:
    """A second ledger under the same log key and origin (another genesis): the state
    saved auditing the first names a tree the second does not extend."""
    env, url, _ = served
    state = tmp_path / "audit-state.json"
    assert auditor(env, url, state_file=state).run().ok
    database = f"sqlite:///{tmp_path / 'f.db'}"
    settings = Settings(data_dir=env.settings.data_dir, database_url=database)
    fork = init_ledger(settings).ledger
    fork.append_many([_attestation(env.operator_key, n) for n in range(PAGE * 3)])
    with serving(fork) as fork_url:
        report = auditor(env, fork_url, state_file=state).run()
    assert not report.ok and report.problem is not None
    assert "not consistent with the tree audited" in report.problem.reason
    fork.engine.dispose()


def test_a_record_changed_on_the_way_fails_at_its_index(
    served: tuple[LedgerEnv, str, Any],
) -> None:
    env, url, _ = served

    def change_record_700(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if not request.url.path.endswith("/v1/records"):
            return response
        page = response.json()
        for item in page["records"]:
            if item["index"] == 700:
                leaf = base64.b64decode(item["leaf"]).replace(b'"report ', b'"REPORT ')
                item["leaf"] = base64.b64encode(leaf).decode()
        return httpx.Response(200, json=page)

    report = auditor(env, url, transport=Recording(change_record_700)).run()
    assert report.problem is not None and report.problem.index == 700
    assert report.records == 700


def test_another_key_fails_at_the_checkpoint(
    served: tuple[LedgerEnv, str, Any], tmp_path: Path
) -> None:
    _, url, _ = served
    other = make_env(f"sqlite:///{tmp_path / 'o.db'}", tmp_path / "other").ledger
    report = RemoteAuditor(url, other.verifier).run()
    assert report.problem is not None and report.problem.reason.startswith("checkpoint:")


def test_the_cli_audits_a_server_with_the_public_key_alone(
    served: tuple[LedgerEnv, str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, url, _ = served
    monkeypatch.chdir(tmp_path)
    cli, key = CliLedger(tmp_path), env.ledger.verifier_key
    state = tmp_path / "state.json"
    run = cli.run("verify", "--server", url, "--log-key", key, "--state", state)
    assert run.exit_code == 0, run.output
    size = env.ledger.tree_size()
    assert f"ok: {size} records verified against checkpoint {size}" in run.stdout
    again = cli.run("verify", "--server", url, "--log-key", key, "--state", state)
    assert f"resumed from {size} records audited before" in again.stdout
    refused = CliLedger.error_line(cli.run("verify", "--server", url))
    assert "--log-key" in refused


def test_records_come_in_bounded_pages(served: tuple[LedgerEnv, str, Any]) -> None:
    env, url, _ = served
    size = env.ledger.tree_size()
    last = httpx.get(f"{url}/v1/records", params={"start": size - 3, "limit": 10}).json()
    assert [r["index"] for r in last["records"]] == [size - 3, size - 2, size - 1]
    assert last["next_start"] is None and last["tree_size"] == size
    first = httpx.get(f"{url}/v1/records", params={"limit": 2}).json()
    assert first["next_start"] == 2
    assert base64.b64decode(first["records"][0]["leaf"]) == env.ledger.record(0).leaf
    for bad in ({"limit": 0}, {"limit": 1001}, {"start": -1}, {"start": "x"}):
        response = httpx.get(f"{url}/v1/records", params=bad)
        assert response.status_code == 422
        assert set(response.json()) == {"error", "detail", "field"}


def _attestation(key: Any, n: int) -> Any:
    from tests.conftest import attestation

    return attestation(key, n)


@pytest.mark.parametrize(
    "saved",
    ["not json", '{"format": "alu-ledger-audit-state/1"}', '{"format": "other/1", "origin": "x"}'],
)
def test_a_damaged_state_file_is_refused_and_left_as_it_was(
    served: tuple[LedgerEnv, str, Any], tmp_path: Path, saved: str
) -> None:
    env, url, _ = served
    state = tmp_path / "state.json"
    state.write_text(saved)
    key = env.ledger.verifier_key
    result = CliLedger(tmp_path).run("verify", "--server", url, "--log-key", key, "--state", state)
    assert "audit state" in CliLedger.error_line(result)
    assert state.read_text() == saved
