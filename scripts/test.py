"""Set up and run the whole test suite (pytest; PostgreSQL tests need LEDGER_TEST_PG_URL
or the default postgresql+psycopg://postgres@127.0.0.1:5432/test).

    python3 scripts/test.py [pytest arguments]

The tests run in one process per core (pytest-xdist, ``-n auto``) unless the arguments
choose otherwise (``-n 0`` runs them in this process, as a debugger wants).
"""

from __future__ import annotations

import sys

from _bootstrap import ensure_venv, run, venv_bin


def pytest_arguments(given: list[str]) -> list[str]:
    chosen = any(arg == "-n" or arg.startswith(("-n", "--numprocesses")) for arg in given)
    return given if chosen else ["-n", "auto", *given]


if __name__ == "__main__":
    ensure_venv()
    sys.exit(run(str(venv_bin("python")), "-m", "pytest", *pytest_arguments(sys.argv[1:])))
