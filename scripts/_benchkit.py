"""What the benchmark scripts share: the machine block, latency percentiles, and a scratch
PostgreSQL database that is dropped afterwards."""

from __future__ import annotations

import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def machine() -> dict[str, Any]:
    """Where the figures came from (README quotes this block)."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        cpu = models[0] if models else cpu
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
    }


def timings_ms(call: Callable[[], Any], samples: int, warm_up: int = 1) -> dict[str, Any]:
    """p50, p99 and max of ``samples`` timed calls, after ``warm_up`` untimed ones."""
    for _ in range(warm_up):
        call()
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "p50": round(statistics.median(times), 1),
        "p99": round(times[min(len(times) - 1, int(len(times) * 0.99))], 1),
        "max": round(times[-1], 1),
        "samples": samples,
    }


@contextmanager
def scratch_postgres(pg_url: str) -> Iterator[str]:
    """A new, empty database on the server of ``pg_url``; yields its URL, drops it after."""
    name = f"alu_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
