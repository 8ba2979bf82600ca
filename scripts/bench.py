"""Benchmark the ledger core and print the figures as JSON.

    python scripts/bench.py                 # full run: up to 1,000,000 records on SQLite
    python scripts/bench.py --quick         # 100,000 records, smaller samples
    python scripts/bench.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Measures, in one run and so on one machine state: raw Ed25519 verifies/s of
`cryptography`; appends/s with one statement per transaction and in bulk (SQLite,
and PostgreSQL when --pg-url is given); full-audit records/s and its ratio to raw
verifies/s x the processes it used; inclusion-proof latency p50/p99 at each size; bulk
`batch.register` appends/s at 10,000 records with confidential members committed (the
ledger's form) against the same batches in plaintext (the pre-commitment form, as a
reference), interleaved on one database.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _benchkit import machine, scratch_postgres

from ledger import keys, statements
from ledger.audit import Auditor
from ledger.batches.registration import RegisterBatch
from ledger.bootstrap import init_ledger
from ledger.catalog import default_kinds
from ledger.demo import demo_file
from ledger.disclosure.shapes import Shape
from ledger.disclosure.sign import sign_statement
from ledger.kinds import KindRegistry
from ledger.log import Ledger
from ledger.settings import Settings

BULK = 1_000


def raw_verifies_per_second(samples: int) -> float:
    key = keys.generate()
    message = statements.make_statement("document.attest", attestation_payload(0), key).canonical()
    signature = key.sign(message)
    public = key.public_key()
    started = time.perf_counter()
    for _ in range(samples):
        public.verify(signature, message)
    return samples / (time.perf_counter() - started)


def attestation_payload(i: int) -> dict[str, Any]:
    return {"sha256": f"{i:064x}", "media_type": "application/pdf", "title": f"mill report {i}"}


def signed_batch(key: Any, start: int, count: int) -> list[statements.SignedStatement]:
    return [
        statements.sign_new("document.attest", attestation_payload(i), key)
        for i in range(start, start + count)
    ]


def new_ledger(database_url: str, data_dir: Path) -> tuple[Ledger, Any]:
    result = init_ledger(Settings(data_dir=data_dir, database_url=database_url))
    operator = keys.read_private_key(result.operator_key_path)
    member = keys.generate()
    payload = {
        "participant_id": "bench-smelter",
        "legal_name": "Bench Smelter",
        "role": "smelter",
        "country": "CN",
        "region": "CN-YN",
        "public_key": keys.public_key_b64(member),
    }
    result.ledger.append(statements.sign_new("participant.register", payload, operator))
    return result.ledger, member


def single_appends_per_second(ledger: Ledger, key: Any, count: int) -> float:
    batch = signed_batch(key, 10**9, count)
    started = time.perf_counter()
    for signed in batch:
        ledger.append(signed)
    return count / (time.perf_counter() - started)


def grow(ledger: Ledger, key: Any, target: int) -> float:
    """Bulk-append until the tree has ``target`` records; return appends/s (signing excluded)."""
    spent, appended = 0.0, 0
    while (size := ledger.tree_size()) < target:
        batch = signed_batch(key, size, min(BULK, target - size))
        started = time.perf_counter()
        ledger.append_many(batch)
        spent += time.perf_counter() - started
        appended += len(batch)
    return appended / spent if spent else 0.0


def proof_latency_ms(ledger: Ledger, samples: int) -> dict[str, float]:
    size = ledger.tree_size()
    timings = []
    for _ in range(samples):
        index = random.randrange(size)
        started = time.perf_counter()
        ledger.inclusion_proof(index, size)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "p50": round(statistics.median(timings), 3),
        "p99": round(timings[int(len(timings) * 0.99) - 1], 3),
    }


def audit_rate(ledger: Ledger, workers: int) -> float:
    started = time.perf_counter()
    report = Auditor(ledger.engine, ledger.verifier, workers=workers).run()
    if not report.ok:
        raise SystemExit(f"audit failed: {report.problem}")
    return report.records / (time.perf_counter() - started)


def sqlite_figures(
    sizes: list[int], proof_samples: int, single: int, workers: int, raw: float
) -> dict:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ledger, key = new_ledger(f"sqlite:///{tmp}/bench.db", Path(tmp))
        figures["append_single_per_s"] = round(single_appends_per_second(ledger, key, single))
        bulk_rates = []
        for size in sizes:
            bulk_rates.append(grow(ledger, key, size))
            at = figures.setdefault(f"at_{size}", {})
            at["inclusion_proof_ms"] = proof_latency_ms(ledger, proof_samples)
            if size == sizes[0]:
                rate = audit_rate(ledger, workers)
                at["verify_records_per_s"] = round(rate)
                at["verify_ratio_to_raw_x_workers"] = round(rate / (raw * workers), 3)
        figures["append_bulk_per_s"] = round(statistics.mean(bulk_rates))
        ledger.engine.dispose()
    return figures


def postgres_figures(pg_url: str, records: int, single: int) -> dict:
    with scratch_postgres(pg_url) as url, tempfile.TemporaryDirectory() as tmp:
        ledger, key = new_ledger(url, Path(tmp))
        figures = {
            "append_single_per_s": round(single_appends_per_second(ledger, key, single)),
            "append_bulk_per_s": round(grow(ledger, key, records)),
        }
        ledger.engine.dispose()
    return figures


class PlaintextBatch(RegisterBatch):
    """``batch.register`` without commitments: the reference the committed form is timed
    against. No ledger runs this; it exists only to measure what commitments cost."""

    def visibility(self) -> Shape | None:
        return None


def plaintext_twin(ledger: Ledger) -> Ledger:
    """A ledger over the same database whose ``batch.register`` takes plaintext."""
    current = default_kinds()
    kinds = [current.get(name) for name in current.names() if name != "batch.register"]
    return Ledger(
        ledger.engine,
        ledger.signer,
        KindRegistry([*kinds, PlaintextBatch()]),
        operator_id=ledger.operator_id,
    )


def batch_payloads(smelter_id: str, prefix: str, count: int) -> list[dict[str, Any]]:
    """Demo batches (certificates dropped, so nothing is claimed twice) under new ids."""
    templates = [b for b in demo_file("batches.json") if "activity_data" in b]
    payloads = []
    for i in range(count):
        payload = json.loads(json.dumps(templates[i % len(templates)]))
        payload.update(smelter_id=smelter_id, batch_id=f"{prefix}-{i}")
        payload["metal_inputs"].pop("purchased_primary_batches", None)
        for source in payload["electricity"]:
            source.pop("certificate", None)
        payloads.append(payload)
    return payloads


def batch_register_figures(database_url: str, data_dir: Path, rounds: int, bulk: int) -> dict:
    """Bulk ``batch.register`` appends/s at 10,000 records, committed vs plaintext."""
    ledger, key = new_ledger(database_url, data_dir)
    grow(ledger, key, 10_000)
    twin = plaintext_twin(ledger)
    rates: dict[str, list[float]] = {"committed": [], "plaintext": []}
    for n in range(rounds):
        for mode, target in (("committed", ledger), ("plaintext", twin)):
            payloads = batch_payloads("bench-smelter", f"{mode}-{n}", bulk)
            signer = sign_statement if mode == "committed" else statements.sign_new
            signed = [signer("batch.register", p, key) for p in payloads]
            started = time.perf_counter()
            target.append_many(signed)
            rates[mode].append(bulk / (time.perf_counter() - started))
    ledger.engine.dispose()
    committed, plaintext = statistics.mean(rates["committed"]), statistics.mean(rates["plaintext"])
    return {
        "records": 10_000,
        "committed_per_s": round(committed),
        "plaintext_reference_per_s": round(plaintext),
        "ratio": round(committed / plaintext, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 records only")
    parser.add_argument("--pg-url", default=os.environ.get("LEDGER_BENCH_PG_URL"))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    raw = raw_verifies_per_second(5_000 if args.quick else 20_000)
    result: dict[str, Any] = {
        "machine": machine(),
        "raw_ed25519_verifies_per_s": round(raw),
        "sqlite": sqlite_figures(sizes, 500 if args.quick else 2_000, 500, args.workers, raw),
    }
    with tempfile.TemporaryDirectory() as tmp:
        result["sqlite"]["batch_register_bulk"] = batch_register_figures(
            f"sqlite:///{tmp}/batches.db", Path(tmp), rounds=3, bulk=500
        )
    if args.pg_url:
        result["postgresql"] = postgres_figures(args.pg_url, 20_000, 300)
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
