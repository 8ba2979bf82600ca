"""Helpers shared by several test modules: demo payloads, a CLI runner, a live server."""

from __future__ import annotations

import copy
import json
import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from api import local_server
from api.app import create_app
from ledger.bootstrap import open_ledger
from ledger.cli import app
from ledger.demo import demo_file
from ledger.log import Ledger
from ledger.settings import Settings

SMELTER = "yunnan-hydro"
OTHER_SMELTER = "baotou-grid"

runner = CliRunner()


def demo_batch(template: str, smelter_id: str = SMELTER, batch_id: str | None = None) -> dict:
    """A copy of a demo batch (scripts/demo/batches.json), re-owned by ``smelter_id``."""
    found = next(b for b in demo_file("batches.json") if b["batch_id"] == template)
    payload = copy.deepcopy(found)
    payload["smelter_id"] = smelter_id
    payload["batch_id"] = batch_id or template
    return payload


def uncertified(payload: dict) -> dict:
    """The payload with every certificate removed (its electricity stays, just unbacked)."""
    for source in payload["electricity"]:
        source.pop("certificate", None)
    return payload


@dataclass
class CliLedger:
    """Runs ``alu-ledger`` against one SQLite ledger under ``tmp``."""

    tmp: Path

    @property
    def database(self) -> str:
        return f"sqlite:///{self.tmp / 'ledger.db'}"

    @property
    def data_dir(self) -> Path:
        return self.tmp / "data"

    @property
    def operator_key(self) -> Path:
        return self.data_dir / "operator-key.pem"

    def run(self, *args: str | Path) -> Any:
        return runner.invoke(app, [str(a) for a in args])

    def ledger(self, *args: str | Path) -> Any:
        """A command that works on the ledger: ``--database`` and ``--data-dir`` added."""
        return self.run(*args, "--database", self.database, "--data-dir", self.data_dir)

    @staticmethod
    def error_line(result: Any) -> str:
        """The one ``error:`` line of a refused command (exit 2, nothing on stdout)."""
        assert result.exit_code == 2, result.output
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")
        assert result.stdout == ""
        return lines[0]

    def write_json(self, name: str, value: Any) -> Path:
        path = self.tmp / name
        path.write_text(json.dumps(value, indent=2))
        return path

    def tree_size(self) -> int:
        ledger = open_ledger(Settings(data_dir=self.data_dir, database_url=self.database))
        try:
            return ledger.tree_size()
        finally:
            ledger.engine.dispose()


def assert_refused(response: Any, status: int, error: str, field: str) -> dict[str, Any]:
    """The JSON body of an HTTP refusal, after checking its status, code and field."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == error
    assert body["field"] == field
    assert body["detail"].startswith(f"{field}: ")
    return body


@contextmanager
def serving(ledger: Ledger) -> Iterator[str]:
    """Serve the ledger's API over HTTP on a free 127.0.0.1 port; yield its base URL."""
    with local_server.serving(create_app(ledger)) as url:
        yield url


def race(target: Any, args_by_worker: dict[str, tuple], rounds: int) -> dict[int, dict[str, str]]:
    """Run ``target(*args, barrier, results)`` in one spawned process per worker; each
    process puts ``(worker, round, outcome)`` on ``results`` once per round, after meeting
    the others at ``barrier``. Returns ``{round: {worker: outcome}}``."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(args_by_worker))
    results = context.Queue()
    workers = [
        context.Process(target=target, args=(*args, barrier, results))
        for args in args_by_worker.values()
    ]
    for worker in workers:
        worker.start()
    outcomes: dict[int, dict[str, str]] = {}
    try:
        for _ in range(len(workers) * rounds):
            name, round_, outcome = results.get(timeout=120)
            outcomes.setdefault(round_, {})[name] = outcome
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.terminate()
                worker.join()
    return outcomes
