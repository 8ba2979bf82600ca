"""Benchmark lineage: a product with 1,000 ancestor lots over 10 levels; print JSON.

    python scripts/bench_lineage.py                  # SQLite, 100 lots x 10 levels
    python scripts/bench_lineage.py --per-level 50 --levels 20 --samples 100
    python scripts/bench_lineage.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Builds the graph directly through the Ledger with bulk appends: level 0 is ``per_level``
registered batches (demo templates, some of them graded), handed whole to a manufacturer;
each later level is ``per_level`` remelts, output j consuming a third of lots j, j+1, j+2
of the level before (plus a little post-consumer scrap); the product consumes a third of
every lot of the last level. So the product has ``per_level x levels`` ancestors and
reaches the registered batches after ``levels`` edges. Then times the lineage-up query
with its claim summary (depth = levels, every ancestor shown): through the ledger
function, and through the HTTP route (FastAPI TestClient, JSON encoding included).
Target: p99 under 200 ms on SQLite.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _benchkit import machine, scratch_postgres, timings_ms

from ledger import keys, statements
from ledger.bootstrap import init_ledger
from ledger.custody.lineage import MAX_DEPTH, lineage
from ledger.demo import demo_file
from ledger.grading import load_shipped_rulesets
from ledger.log import Ledger
from ledger.settings import Settings

MAKER = "bench-maker"
CENTRE = "bench-centre"
#: Demo batch templates (registered uncertified: a certificate is claimed once) and the
#: grade each earns, if any, as (rule set, grade).
TEMPLATES = {
    "YN-2025-0001": ("common-low-carbon-aluminium", "low-carbon-aluminium"),
    "NM-2025-0001": None,
    "GD-2025-0102": ("cnia-green-low-carbon-aluminium", "tier-2"),
    "XJ-2025-0001": None,
    "YN-2025-0002": ("common-low-carbon-aluminium", "low-carbon-aluminium"),
}


class Builder:
    def __init__(self, ledger: Ledger, operator: Any) -> None:
        self.ledger = ledger
        self.operator = operator
        self.keys: dict[str, Any] = {}

    def register(self, participant_id: str, role: str) -> None:
        key = keys.generate()
        payload = {
            "participant_id": participant_id,
            "legal_name": f"{participant_id} (bench)",
            "role": role,
            "country": "CN",
            "region": "CN-GD",
            "public_key": keys.public_key_b64(key),
        }
        self.ledger.append(statements.sign_new("participant.register", payload, self.operator))
        self.keys[participant_id] = key

    def bulk(self, items: list[tuple[str, dict[str, Any], str]]) -> None:
        signed = [statements.sign_new(k, p, self.keys[who]) for k, p, who in items]
        for start in range(0, len(signed), 1_000):
            self.ledger.append_many(signed[start : start + 1_000])


def build(ledger: Ledger, operator: Any, per_level: int, levels: int) -> tuple[str, int]:
    """The graph; returns the product's id (in MAKER's namespace) and the statements made."""
    b = Builder(ledger, operator)
    templates = {t["batch_id"]: t for t in demo_file("batches.json") if t["batch_id"] in TEMPLATES}
    smelters = sorted({f"bench-{t['smelter_id'].split('-')[0]}" for t in templates.values()})
    for smelter in smelters:
        b.register(smelter, "smelter")
    b.register(MAKER, "manufacturer")
    b.register(CENTRE, "evaluation_centre")
    grant = {
        "participant_id": CENTRE,
        "scope": {"rulesets": ["*"]},
        "valid_from": "2020-01-01",
        "valid_until": "2099-12-31",
    }
    ledger.append(statements.sign_new("accreditation.grant", grant, operator))
    b.bulk([("ruleset.publish", doc, CENTRE) for doc in load_shipped_rulesets()])

    roots, grades, handovers = [], [], []
    names = list(TEMPLATES)
    for i in range(per_level):
        template = templates[names[i % len(names)]]
        payload = copy.deepcopy(template)
        smelter = f"bench-{template['smelter_id'].split('-')[0]}"
        payload.update(smelter_id=smelter, batch_id=f"L0-{i:05d}")
        for source in payload["electricity"]:
            source.pop("certificate", None)
        roots.append(("batch.register", payload, smelter))
        hand = {"ns": smelter, "batch_id": payload["batch_id"], "recipient_id": MAKER}
        handovers.append(("custody.transfer", hand, smelter))
        earned = TEMPLATES[template["batch_id"]]
        if earned:
            ruleset_id, grade = earned
            issue = {
                "smelter_id": smelter,
                "batch_id": payload["batch_id"],
                "ruleset_id": ruleset_id,
                "ruleset_version": "1.0.0",
                "grade": grade,
            }
            grades.append(("grade.issue", issue, CENTRE))
    b.bulk(roots)
    b.bulk(grades + handovers)  # grade.issue reads the batch's record: not in the same bulk
    made = len(roots) + len(grades) + len(handovers)

    previous = [(p["smelter_id"], p["batch_id"], p["mass_kg"]) for _, p, _ in roots]
    for level in range(1, levels):
        current, transforms = [], []
        third = {lot: mass // 3 for _, lot, mass in previous}
        for j in range(per_level):
            picks = [previous[(j + k) % per_level] for k in range(3)]
            inputs = [{"ns": ns, "batch_id": lot, "mass_kg": third[lot]} for ns, lot, _ in picks]
            scrap = 200
            mass = (sum(item["mass_kg"] for item in inputs) + scrap) * 98 // 100
            lot_id = f"L{level}-{j:05d}"
            transforms.append(("custody.transform", remelt(inputs, scrap, lot_id, mass), MAKER))
            current.append((MAKER, lot_id, mass))
        b.bulk(transforms)
        made += len(transforms)
        previous = current
    inputs = [{"ns": ns, "batch_id": lot, "mass_kg": mass // 3} for ns, lot, mass in previous]
    mass = sum(item["mass_kg"] for item in inputs) * 98 // 100
    b.bulk([("custody.transform", remelt(inputs, 0, "PRODUCT", mass, "profile"), MAKER)])
    return "PRODUCT", made + 1


def remelt(
    inputs: list[dict[str, Any]], scrap: int, lot_id: str, mass: int, form: str = "billet"
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "operation": "remelt",
        "inputs": inputs,
        "process": {"electricity": [{"type": "grid", "kwh": 500, "grid_region": "CN-GD"}]},
        "outputs": [{"batch_id": lot_id, "mass_kg": mass, "product_form": form}],
    }
    if scrap:
        payload["external_inputs"] = [{"type": "post_consumer_scrap", "mass_kg": scrap}]
    return payload


def measure(database_url: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    result = init_ledger(Settings(data_dir=data_dir, database_url=database_url))
    ledger = result.ledger
    operator = keys.read_private_key(result.operator_key_path)
    started = time.perf_counter()
    product, made = build(ledger, operator, args.per_level, args.levels)
    built_s = time.perf_counter() - started
    depth = min(args.levels, MAX_DEPTH)
    gc.freeze()  # as `alu-ledger serve` does once the app is built
    answer = lineage(ledger.engine, MAKER, product, "up", depth)
    figures: dict[str, Any] = {
        "build_s": round(built_s, 1),
        "statements": made,
        "ancestors": len(answer["nodes"]) - 1,
        "edges": len(answer["edges"]),
        "graded_share": answer["claim_summary"]["graded"],
        "lineage_up_ms": timings_ms(
            lambda: lineage(ledger.engine, MAKER, product, "up", depth), args.samples
        ),
    }
    if not args.no_http:
        from fastapi.testclient import TestClient

        from api.app import create_app

        with TestClient(create_app(ledger)) as client:
            url = f"/v1/batches/{MAKER}/{product}/lineage?direction=up&depth={depth}"
            figures["http_lineage_up_ms"] = timings_ms(lambda: client.get(url), args.samples)
    ledger.engine.dispose()
    return figures


def postgres(pg_url: str, args: argparse.Namespace) -> dict[str, Any]:
    with scratch_postgres(pg_url) as url, tempfile.TemporaryDirectory() as tmp:
        return measure(url, Path(tmp), args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-level", type=int, default=100, help="lots per level")
    parser.add_argument("--levels", type=int, default=10, help="levels of ancestors")
    parser.add_argument("--samples", type=int, default=50, help="timed queries")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP route")
    parser.add_argument("--pg-url", default=os.environ.get("LEDGER_BENCH_PG_URL"))
    args = parser.parse_args()
    output: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        output["sqlite"] = measure(f"sqlite:///{tmp}/bench.db", Path(tmp) / "data", args)
    if args.pg_url:
        output["postgresql"] = postgres(args.pg_url, args)
    json.dump(output, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
