"""Helpers shared by several test modules: demo payloads, a CLI runner, a live server."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from typer.testing import CliRunner

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
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP; without it responses wait on delayed ACKs (~40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(ledger), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "the server thread died while starting"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
