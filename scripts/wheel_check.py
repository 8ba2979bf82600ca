"""Build the wheel, install it into a clean virtual environment and use it as a user would.

    python3 scripts/wheel_check.py                 # the check (a step of .ci/run)
    python3 scripts/wheel_check.py --write-lock    # ... and refresh requirements.lock

The wheel must hold its data (schemas, factor tables, rule sets, demo data): from an empty
folder, with nothing of the repository in reach, ``alu-ledger demo`` loads the demo and
``alu-ledger serve`` answers requests about it. The wheel is installed as the Dockerfile
installs it, against ``requirements.lock`` (so the check also proves the lock complete);
``--write-lock`` instead resolves the dependencies afresh and writes their exact versions
(``pip freeze``, without the project itself) to ``requirements.lock``.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
START_TIMEOUT_S = 60


def run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def build_wheel(out: Path) -> Path:
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, ROOT, cwd=ROOT)
    (wheel,) = out.glob("alu_ledger-*.whl")
    return wheel


def clean_environment(where: Path, wheel: Path, *, locked: bool) -> Path:
    """A new virtual environment with the wheel installed: ``locked``, as the Dockerfile
    does it (the lock's exact versions, then the wheel without resolving anything, then
    ``pip check`` that the lock holds everything the wheel needs); else resolved afresh."""
    venv.EnvBuilder(with_pip=True).create(where)
    pip = [where / "bin" / "python", "-m", "pip", "--disable-pip-version-check"]
    if locked:
        run(*pip, "install", "-q", "-r", LOCK, cwd=where)
        run(*pip, "install", "-q", "--no-deps", wheel, cwd=where)
        run(*pip, "check", cwd=where)
    else:
        run(*pip, "install", "-q", wheel, cwd=where)
    return where / "bin"


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_and_ask(cli: Path, folder: Path) -> None:
    """Start the installed server on the demo ledger and read what the demo recorded."""
    port = free_port()
    server = subprocess.Popen(
        [str(cli), "serve", "--port", str(port)],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                batches = get_json(f"{base}/v1/batches")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"alu-ledger serve did not start: {server.stderr.read()!r}")
                time.sleep(0.3)
        assert isinstance(batches, dict)
        if not batches.get("items"):
            sys.exit(f"the installed server lists no demo batches: {batches}")
        get_json(f"{base}/openapi.json")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-lock", action="store_true", help="refresh requirements.lock")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alu-wheel-") as tmp:
        work = Path(tmp)
        wheel = build_wheel(work / "dist")
        bin_dir = clean_environment(work / "venv", wheel, locked=not options.write_lock)
        empty = work / "empty"
        empty.mkdir()
        cli = bin_dir / "alu-ledger"
        print(run(cli, "demo", cwd=empty).strip().splitlines()[-1])
        serve_and_ask(cli, empty)
        if options.write_lock:
            python = bin_dir / "python"
            frozen = run(python, "-m", "pip", "freeze", "--exclude", "alu-ledger", cwd=work)
            LOCK.write_text(
                "# Exact versions alu-ledger runs with, from a clean install of the wheel.\n"
                "# Refresh: python3 scripts/wheel_check.py --write-lock\n" + frozen
            )
            print(f"wrote {LOCK.relative_to(ROOT)}")
    print(f"wheel check passed: {wheel.name} installs, loads the demo and serves it")


if __name__ == "__main__":
    main()
