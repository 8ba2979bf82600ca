"""Set up and run the whole test suite (pytest; PostgreSQL tests need LEDGER_TEST_PG_URL
or the default postgresql+psycopg://postgres@127.0.0.1:5432/test).

    python3 scripts/test.py [pytest arguments]
"""

from __future__ import annotations

import sys

from _bootstrap import ensure_venv, run, venv_bin

if __name__ == "__main__":
    ensure_venv()
    sys.exit(run(str(venv_bin("python")), "-m", "pytest", *sys.argv[1:]))
