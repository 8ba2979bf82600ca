"""HTTP load for the benchmarks: closed-loop clients in a process of their own, so the load
generator never shares an interpreter with the server it measures.

``measure(plan)`` returns, for each step of the plan, the rate (expected answers/s), p50/p99
latency (ms), the number of unexpected statuses and the loader that made the load. A step
is ``{"name", "base", "clients", "seconds", "get": [paths]}`` (with ``"close": True``, a
new connection for every request) or, for submitters, ``{..., "post": "/v1/statements",
"key_pem": str, "start": int}``.

The load is made by ``wrk`` when it is installed (``apt-get install wrk``): a C load
generator spends a small part of a core on what an asyncio httpx client needs a whole
core for, and on a 2-core machine that client, not the server, would set the figure.
Without ``wrk`` the load falls back to httpx clients in a spawned process, and the result
says so. Every submitted request carries its own statement, signed before the clock
starts (signing is the client's cost, not the server's): wrk posts them in order from a
file, one per line. A step signs ``expected_rate x seconds x 1.5`` of them; a run that
would send more stops with an error rather than count the empty bodies wrk sends then.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

WRK = shutil.which("wrk")

#: wrk script: each request a random path of the step; at the end one JSON line of figures.
_WRK_DONE = """
done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bad_status":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
_WRK_GET = """
paths = {%s}
headers = %s
request = function() return wrk.format(nil, paths[math.random(#paths)], headers) end
"""
#: Each request the next signed statement of the file (a statement used twice would be a
#: replay, refused: the file holds more than the step can send).
_WRK_POST = """
bodies = {}
for line in io.lines(%s) do bodies[#bodies + 1] = line end
sent = 0
headers = {["Content-Type"] = "application/json"}
request = function()
  sent = sent + 1
  return wrk.format("POST", %s, headers, bodies[sent])
end
"""


def measure(plan: list[dict[str, Any]]) -> dict[str, Any]:
    """Run ``plan`` step by step; its figures by step name."""
    figures = {}
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        for step in plan:
            if WRK:
                figures[step["name"]] = _wrk(step)
            else:
                figures[step["name"]] = pool.apply(_run_httpx_step, (step,))
    return figures


def _wrk(step: dict[str, Any]) -> dict[str, Any]:
    """One step with ``wrk``: one thread, ``clients`` connections."""
    supply = None  # signed statements on hand, for a submitters' step
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "step.lua"
        if "get" in step:
            headers = '{["Connection"] = "close"}' if step.get("close") else "{}"
            lua = _WRK_GET % (", ".join(json.dumps(path) for path in step["get"]), headers)
        else:
            bodies = Path(tmp) / "bodies.jsonl"
            signed = _signed_bodies(step)
            supply = len(signed)
            bodies.write_bytes(b"\n".join(signed) + b"\n")
            lua = _WRK_POST % (json.dumps(str(bodies)), json.dumps(step["post"]))
        script.write_text(lua + _WRK_DONE)
        clients, seconds = step["clients"], step["seconds"]
        command = [
            WRK,
            "-t1",
            f"-c{clients}",
            f"-d{max(1, round(seconds))}s",
            "-s",
            str(script),
            step["base"],
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    if supply is not None and result["requests"] > supply:
        # Past the last signed statement wrk sends empty bodies: fast refusals that would
        # pass for appends.
        raise SystemExit(
            f"{step['name']}: {result['requests']} requests but only {supply} signed"
            " statements; raise the step's expected_rate"
        )
    unexpected = result["bad_status"] + result["errors"]
    return {
        "clients": clients,
        # Only expected answers count: a refusal is not an append, nor an error a read.
        "per_s": round((result["requests"] - unexpected) / (result["duration_us"] / 1e6), 1),
        "p50_ms": round(result["p50_us"] / 1000, 2),
        "p99_ms": round(result["p99_us"] / 1000, 2),
        "requests": result["requests"],
        "unexpected_status": unexpected,
        "loader": "wrk",
    }


def _run_httpx_step(step: dict[str, Any]) -> dict[str, Any]:
    return {**asyncio.run(_run_step(step)), "loader": "httpx"}


async def _run_step(step: dict[str, Any]) -> dict[str, Any]:
    clients = step["clients"]
    keep_alive = 0 if step.get("close") else clients
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=keep_alive)
    async with httpx.AsyncClient(base_url=step["base"], limits=limits, timeout=60) as http:
        if "get" in step:
            paths: list[str] = step["get"]

            async def call() -> bool:
                response = await http.get(random.choice(paths))
                return response.status_code == 200

        else:
            bodies = _signed_bodies(step)

            async def call() -> bool:
                response = await http.post(step["post"], content=bodies.pop())
                return response.status_code == 201

        await call()  # warm the connection pool and the server's caches
        return await _closed_loop(call, clients, step["seconds"])


def _signed_bodies(step: dict[str, Any]) -> list[bytes]:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from ledger import statements

    key = load_pem_private_key(step["key_pem"].encode(), password=None)
    count = int(step.get("expected_rate", 2_000) * step["seconds"] * 1.5) + step["clients"] + 1
    bodies = []
    for n in range(step["start"], step["start"] + count):
        payload = {"sha256": f"{n:064x}", "media_type": "application/pdf", "title": f"load {n}"}
        signed = statements.sign_new("document.attest", payload, key)
        bodies.append(json.dumps(signed.to_dict()).encode())
    return bodies


async def _closed_loop(
    call: Callable[[], Awaitable[bool]], clients: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    unexpected = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal unexpected
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            ok = await call()
            latencies.append((time.perf_counter() - started) * 1000)
            unexpected += not ok

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "clients": clients,
        "per_s": round((len(latencies) - unexpected) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "requests": len(latencies),
        "unexpected_status": unexpected,
    }
