"""Set up, load the demo data and serve alu-ledger on the embedded SQLite database.

python3 scripts/run.py [--host 127.0.0.1] [--port 8000]
"""

from __future__ import annotations

import sys

from _bootstrap import ensure_venv, run, venv_bin

if __name__ == "__main__":
    ensure_venv()
    cli = str(venv_bin("alu-ledger"))
    status = run(cli, "demo")
    if status:
        sys.exit(status)
    sys.exit(run(cli, "serve", *sys.argv[1:]))
