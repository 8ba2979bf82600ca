"""The certificate verifier is a module a buyer can run with nothing of the server: importing
it loads no storage, database, web or HTTP code (checked in a fresh interpreter, where
nothing else has loaded them first)."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_SIDE = (
    "ledger.storage",
    "ledger.log",
    "api",
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "psycopg",
    "fastapi",
    "starlette",
    "strawberry",
    "uvicorn",
    "httpx",
)


def modules_loaded_by(statement: str) -> list[str]:
    program = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def server_side(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in SERVER_SIDE or m.startswith(SERVER_SIDE)]


def test_the_certificate_verifier_imports_no_storage_or_web_code() -> None:
    loaded = modules_loaded_by("from ledger.certificates import verify_bundle")
    assert "ledger.certificates.verify" in loaded
    assert server_side(loaded) == []


def test_the_check_sees_server_code_when_it_is_there() -> None:
    """The same check on the bundle builder, which reads the database, names it."""
    loaded = modules_loaded_by("from ledger.certificates import build_bundle")
    assert "ledger.storage.repository" in server_side(loaded)
