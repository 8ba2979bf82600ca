"""Benchmark two typical buyer queries on the GraphQL API at 100,000 batches; print JSON.

    python scripts/bench_graphql.py                    # SQLite, 100,000 batches
    python scripts/bench_graphql.py --batches 5000     # quick run
    python scripts/bench_graphql.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Builds the ledger through ``Ledger.append_many`` in bulks of ``--chunk`` statements: 20
smelters in four regions, an evaluation centre accredited for every rule set, two
manufacturers, the shipped rule sets, ``--batches`` registrations made from the demo batch
templates (scripts/demo/batches.json) with unique batch ids and unique certificate
serials/ids (so no energy is claimed twice), one grade the batch supports on about a fifth
of them (issued in later bulks than the registrations: the ledger refuses a grade in the
same bulk as its batch), and one product whose lineage goes 5 levels up: ``--per-level``
registered batches handed to the first manufacturer, four levels of remelts (see
scripts/bench_lineage.py) and the product, then sold whole to the second manufacturer, the
buyer whose bearer token (``ledger.tokens``) signs every request.

Then serves ``api.app.create_app`` with uvicorn on a real socket (``gc.freeze()`` after
building the app, as ``alu-ledger serve`` does) and times, over one keep-alive
``httpx.Client``, after 5 warm-up requests each: walking the batches 50 a page (``after`` =
the previous ``endCursor``, from the first page again at the end), the same walk filtered to
billets with at least half certified renewable electricity, and the product's lineage up 5
levels with its claim summary; plus the REST equivalents. Then the liveness probe
``GET /v1/log-key`` (``probe``), idle and while a second client sends, back to back, a heavy
query close to the default cost limit (a page of 100, the product's lineage and a graded
batch's certificate bundles): what one expensive GraphQL query does to everyone else's
latency. Any GraphQL ``errors`` or non-200 answer fails the run (exit 1). Targets: p99
under 50 ms for the page, 100 ms for lineage.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _benchkit import machine, scratch_postgres, timings_ms
from bench_lineage import remelt
from sqlalchemy import event

from api.local_server import serving
from ledger import keys, statements
from ledger.bootstrap import init_ledger
from ledger.demo import demo_file
from ledger.disclosure.sign import sign_statement
from ledger.grading import evaluate, load_shipped_rulesets, parse_ruleset
from ledger.grading.facts_from_batch import facts_from_registration
from ledger.grading.reads import facts_of_batch
from ledger.log import Ledger
from ledger.settings import Settings

CENTRE = "bench-centre"
MAKER = "bench-extrusion"  # buys the root batches, remelts them, makes the product
BUYER = "bench-auto-parts"  # buys the product; the participant the token is issued to
PRODUCT = "PRODUCT"
GEC_PROJECT_DIGITS = 17  # schemas/certificates/gec-code.json
SMELTERS_PER_REGION = 5
LEVELS = 5  # lineage depth of the product: 4 levels of remelts above the registered batches
WARM_UP = 5
TARGETS_P99_MS = {"page": 50, "lineage": 100}  # GraphQL

NODE = """
      smelterId batchId massKg productForm route
      footprint { declaredKgCo2ePerT computedKgCo2ePerT check }
      renewableShare
      electricity { source kwh certificateScheme }
      grades { ruleSetId ruleSetVersion grade expiresOn revoked }
"""
PAGE_QUERY = (
    """query Page($first: Int!, $after: String) {
  batches(first: $first, after: $after) {
    edges { cursor node {"""
    + NODE
    + """    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
)
FILTERED_PAGE_QUERY = (
    """query FilteredPage($first: Int!, $after: String) {
  batches(first: $first, after: $after, filter: {productForm: "billet", renewableShareMin: "0.5"}) {
    edges { cursor node {"""
    + NODE
    + """    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
)
LINEAGE_QUERY = """query Lineage($smelterId: String!, $batchId: String!) {
  batch(smelterId: $smelterId, batchId: $batchId) {
    lineage(direction: UP, depth: 5) {
      nodes { smelterId batchId massKg holderId footprintKgCo2ePerT grades { grade ruleSetId } }
      edges { parentSmelterId parentBatchId childSmelterId childBatchId massKg operation recordIndex }
      claimSummary { graded { ruleSetId grade share gradedKg } recycledTotal renewableElectricityShare footprintKgCo2ePerT }
    }
  }
}"""  # noqa: E501 - the query text as a buyer writes it
#: Close to the default cost limit (docs/graphql.md, "Cost"): a page of 100, the product's
#: lineage, and a graded batch's certificates with their bundles, in one request.
HEAVY_QUERY = (
    """query Heavy($first: Int!, $smelterId: String!, $batchId: String!, $ruleSetId: String!) {
  page: batches(first: $first) {
    edges { cursor node {"""
    + NODE
    + """    } }
    pageInfo { hasNextPage endCursor }
  }
  graded: batches(first: 1, filter: {ruleSetId: $ruleSetId}) {
    edges { node { certificates { gradeIndex bundle } } }
  }
  product: batch(smelterId: $smelterId, batchId: $batchId) {"""
    + LINEAGE_QUERY.split("batch(smelterId: $smelterId, batchId: $batchId) {", 1)[1]
)
PROBE = "/v1/log-key"  # the liveness probe: answered from memory, no SQL


# --- the dataset ------------------------------------------------------------------------


class Bench:
    """Participants' keys and bulk appends, timed (signing excluded from ``append_s``)."""

    def __init__(self, ledger: Ledger, operator: Any, chunk: int) -> None:
        self.ledger = ledger
        self.operator = operator
        self.chunk = chunk
        self.keys: dict[str, Any] = {}
        self.statements = 0
        self.append_s = 0.0

    def participants(self, rows: list[dict[str, Any]]) -> None:
        signed = []
        for row in rows:
            key = keys.generate()
            self.keys[row["participant_id"]] = key
            payload = {**row, "public_key": keys.public_key_b64(key)}
            signed.append(statements.sign_new("participant.register", payload, self.operator))
        self.append(signed)

    def bulk(self, items: list[tuple[str, dict[str, Any], str]]) -> None:
        """Sign ``(kind, payload, signer)`` items (confidential members committed, their
        values sent as disclosures) and append them, ``chunk`` per bulk."""
        for start in range(0, len(items), self.chunk):
            part = items[start : start + self.chunk]
            self.append([sign_statement(k, p, self.keys[who]) for k, p, who in part])

    def append(self, signed: list[Any]) -> None:
        started = time.perf_counter()
        self.ledger.append_many(signed)
        self.append_s += time.perf_counter() - started
        self.statements += len(signed)


def smelter_of(template: dict[str, Any], copy_number: int) -> str:
    """The bench smelter, in the template smelter's region, that casts this copy."""
    region = template["smelter_id"].split("-")[0]
    return f"bench-{region}-{copy_number % SMELTERS_PER_REGION:02d}"


def unique_certificates(payload: dict[str, Any], i: int) -> None:
    """Give batch ``i`` certificates nobody else claims: ids of contracts and I-RECs get a
    suffix, and every GEC code (a certificate's own, or those a contract names in
    ``gec_serials``) moves to project code + ``i``, keeping its month, sequence and classes
    (a GEC claim is keyed by everything but the sequence, so no two copies overlap)."""
    for source in payload["electricity"]:
        cert = source.get("certificate")
        if cert is None:
            continue
        if cert["scheme"] == "GEC":
            move_gec_project(cert, i)
            continue
        if "id" in cert:
            cert["id"] = f"{cert['id']}-{i:07d}"
        for serials in cert.get("gec_serials", []):
            move_gec_project(serials, i)


def move_gec_project(codes: dict[str, Any], i: int) -> None:
    """Add ``i`` to the 17-digit project code of the GEC codes in ``codes``."""
    for name in ("id", "first_id", "last_id"):
        if name in codes:
            code = codes[name]
            project = f"{int(code[:GEC_PROJECT_DIGITS]) + i:0{GEC_PROJECT_DIGITS}d}"
            assert len(project) == GEC_PROJECT_DIGITS, f"{code} overflows at batch {i}"
            codes[name] = project + code[GEC_PROJECT_DIGITS:]


def batch_copy(templates: list[dict[str, Any]], i: int) -> dict[str, Any]:
    """Registration ``i``: template ``i mod len(templates)`` with a bench owner, a unique batch
    id and unique certificates. Copies name no purchased lots (a named lot must be one the
    signer bought through custody): their purchased primary metal counts unnamed, at the
    conservative factor."""
    template = templates[i % len(templates)]
    payload = copy.deepcopy(template)
    payload.update(
        smelter_id=smelter_of(template, i // len(templates)),
        batch_id=f"{template['batch_id']}-{i:07d}",
    )
    unique_certificates(payload, i)
    payload["metal_inputs"].pop("purchased_primary_batches", None)
    return payload


def build(ledger: Ledger, operator: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The dataset; returns counts that describe it."""
    bench = Bench(ledger, operator, args.chunk)
    templates = demo_file("batches.json")
    regions = {p["participant_id"]: p["region"] for p in demo_file("participants.json")}
    smelters = []
    for template in templates:
        for n in range(SMELTERS_PER_REGION):
            smelter = smelter_of(template, n)
            if smelter not in (row["participant_id"] for row in smelters):
                region = regions[template["smelter_id"]]
                smelters.append(participant(smelter, "smelter", region))
    bench.participants(
        [
            *smelters,
            participant(CENTRE, "evaluation_centre", "Beijing"),
            participant(MAKER, "manufacturer", "Guangdong"),
            participant(BUYER, "manufacturer", "Chongqing"),
        ]
    )
    grant = {
        "participant_id": CENTRE,
        "scope": {"rulesets": ["*"]},
        "valid_from": "2020-01-01",
        "valid_until": "2099-12-31",
    }
    bench.append([statements.sign_new("accreditation.grant", grant, operator)])
    rulesets = [parse_ruleset(doc) for doc in load_shipped_rulesets()]
    bench.bulk([("ruleset.publish", doc, CENTRE) for doc in load_shipped_rulesets()])

    # The grades each template supports. A copy differs from its template only in owner,
    # batch id and certificate ids, none of which the facts depend on, so evaluate one copy.
    supported: dict[str, list[tuple[str, str, str]]] = {}
    for t, template in enumerate(templates):
        facts = facts_from_registration(batch_copy(templates, t + len(templates)))
        grades = [(r.ruleset_id, r.version, evaluate(r, facts).grade) for r in rulesets]
        supported[template["batch_id"]] = [(r, v, g) for r, v, g in grades if g is not None]

    roots_at = {k * (args.batches // args.per_level) for k in range(args.per_level)}
    roots: list[tuple[str, str, int]] = []
    pending_grades: list[tuple[str, dict[str, Any], str]] = []  # (kind, payload, template)
    stated_facts: dict[tuple[str, str, str], dict[str, Any]] = {}
    graded = 0
    for start in range(0, args.batches, args.chunk):
        registrations = []
        for i in range(start, min(start + args.chunk, args.batches)):
            template = templates[i % len(templates)]
            copy_number = i // len(templates)
            payload = batch_copy(templates, i)
            smelter = payload["smelter_id"]
            registrations.append(("batch.register", payload, smelter))
            if i in roots_at:
                roots.append((smelter, payload["batch_id"], payload["mass_kg"]))
            choices = supported[template["batch_id"]]
            if choices and copy_number % 3 == 0:  # 9 of 14 templates grade: ~21 % of batches
                ruleset_id, version, grade = choices[(copy_number // 3) % len(choices)]
                issue = {
                    "smelter_id": smelter,
                    "batch_id": payload["batch_id"],
                    "ruleset_id": ruleset_id,
                    "ruleset_version": version,
                    "grade": grade,
                }
                pending_grades.append(("grade.issue", issue, template["batch_id"]))
                graded += 1
        bench.bulk(registrations)
        while len(pending_grades) >= args.chunk:  # their batches are on the ledger now
            bench.bulk(
                [stated(ledger, item, stated_facts) for item in pending_grades[: args.chunk]]
            )
            del pending_grades[: args.chunk]
        if (start // args.chunk) % 10 == 9:
            print(f"  {start + len(registrations):,} batches", file=sys.stderr, flush=True)
    if pending_grades:
        bench.bulk([stated(ledger, item, stated_facts) for item in pending_grades])
    ancestors = lineage_graph(bench, roots)
    return {
        "batches": args.batches,
        "graded_batches": graded,
        "statements": bench.statements,
        "append_s": round(bench.append_s, 1),
        "lineage_ancestors": ancestors,
    }


def stated(
    ledger: Ledger,
    item: tuple[str, dict[str, Any], str],
    cache: dict[tuple[str, str, str], dict[str, Any]],
) -> tuple[str, dict[str, Any], str]:
    """A pending ``grade.issue`` with the facts the ledger grades its batch on (as a centre
    states them), signed by the centre. The facts depend on the template, not the copy, so
    the ledger is asked once per template and rule set."""
    kind, issue, template = item
    key = (template, issue["ruleset_id"], issue["ruleset_version"])
    if key not in cache:
        cache[key] = facts_of_batch(
            ledger.engine,
            issue["smelter_id"],
            issue["batch_id"],
            issue["ruleset_id"],
            issue["ruleset_version"],
        )
    return kind, {**issue, "facts": cache[key]}, CENTRE


def participant(participant_id: str, role: str, region: str) -> dict[str, Any]:
    return {
        "participant_id": participant_id,
        "legal_name": f"{participant_id} (bench)",
        "role": role,
        "country": "CN",
        "region": region,
    }


def lineage_graph(bench: Bench, roots: list[tuple[str, str, int]]) -> int:
    """The roots go to MAKER; levels of remelts (output j takes a third of lots j, j+1, j+2
    of the level before, as scripts/bench_lineage.py does) and the product, sold to BUYER.
    Returns how many lots the product descends from."""
    bench.bulk(
        [
            ("custody.transfer", {"ns": ns, "batch_id": lot, "recipient_id": MAKER}, ns)
            for ns, lot, _ in roots
        ]
    )
    per_level = len(roots)
    previous = roots
    for level in range(1, LEVELS):
        current, transforms = [], []
        third = {lot: mass // 3 for _, lot, mass in previous}
        for j in range(per_level):
            picks = [previous[(j + k) % per_level] for k in range(3)]
            inputs = [{"ns": ns, "batch_id": lot, "mass_kg": third[lot]} for ns, lot, _ in picks]
            scrap = 200
            mass = (sum(item["mass_kg"] for item in inputs) + scrap) * 98 // 100
            lot_id = f"P{level}-{j:05d}"
            transforms.append(("custody.transform", remelt(inputs, scrap, lot_id, mass), MAKER))
            current.append((MAKER, lot_id, mass))
        bench.bulk(transforms)  # each level consumes lots the bulk before made
        previous = current
    inputs = [{"ns": ns, "batch_id": lot, "mass_kg": mass // 3} for ns, lot, mass in previous]
    mass = sum(item["mass_kg"] for item in inputs) * 98 // 100
    bench.bulk([("custody.transform", remelt(inputs, 0, PRODUCT, mass, "profile"), MAKER)])
    sale = {"ns": MAKER, "batch_id": PRODUCT, "recipient_id": BUYER}
    bench.bulk([("custody.transfer", sale, MAKER)])
    return per_level * LEVELS


# --- serving and timing -------------------------------------------------------------------


def ok_json(response: httpx.Response, what: str) -> Any:
    if response.status_code != 200:
        raise SystemExit(f"{what}: HTTP {response.status_code}: {response.text[:2000]}")
    body = response.json()
    if isinstance(body, dict) and body.get("errors"):
        raise SystemExit(f"{what}: GraphQL errors: {json.dumps(body['errors'])[:2000]}")
    return body


def graphql(client: httpx.Client, query: str, variables: dict[str, Any], what: str) -> Any:
    body = ok_json(client.post("/graphql", json={"query": query, "variables": variables}), what)
    if body.get("data") is None:
        raise SystemExit(f"{what}: no data in {json.dumps(body)[:2000]}")
    return body["data"]


class GraphQLPages:
    """Each call fetches the next page of ``query``; after the last, the first again."""

    def __init__(self, client: httpx.Client, query: str, what: str) -> None:
        self.client, self.query, self.what = client, query, what
        self.after: str | None = None
        self.sizes: list[int] = []

    def __call__(self) -> None:
        variables = {"first": 50, "after": self.after}
        page = graphql(self.client, self.query, variables, self.what)["batches"]
        self.sizes.append(len(page["edges"]))
        info = page["pageInfo"]
        self.after = info["endCursor"] if info["hasNextPage"] else None


class RestPages:
    """Each call fetches the next page of ``GET /v1/batches``; after the last, the first."""

    def __init__(self, client: httpx.Client, params: dict[str, Any], what: str) -> None:
        self.client, self.params, self.what = client, params, what
        self.cursor: str | None = None
        self.sizes: list[int] = []

    def __call__(self) -> None:
        params = {**self.params, "limit": 50}
        if self.cursor:
            params["cursor"] = self.cursor
        page = ok_json(self.client.get("/v1/batches", params=params), self.what)
        self.sizes.append(len(page["items"]))
        self.cursor = page["next_cursor"]


class SqlCount:
    """Counts the SQL statements the ledger's engine runs (the server is in this process)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.statements = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        self.statements += 1

    def of(self, call: Callable[[], Any]) -> int:
        """Statements run by one call."""
        before = self.statements
        call()
        return self.statements - before

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)


def served_figures(ledger: Ledger, args: argparse.Namespace) -> dict[str, Any]:
    from api.app import create_app

    headers = {}
    if not args.no_token:
        from ledger.tokens import issue_token

        headers["Authorization"] = f"Bearer {issue_token(ledger.engine, BUYER).token}"
    app = create_app(ledger)
    gc.freeze()  # as `alu-ledger serve` does once the app is built
    queries: dict[str, dict[str, Callable[[], Any]]] = {"graphql": {}, "rest": {}}
    figures: dict[str, Any] = {}
    with serving(app) as base, httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        if not args.no_graphql:
            pages = GraphQLPages(client, PAGE_QUERY, "page query")
            filtered = GraphQLPages(client, FILTERED_PAGE_QUERY, "filtered page query")
            variables = {"smelterId": MAKER, "batchId": PRODUCT}
            queries["graphql"] = {
                "page": pages,
                "filtered_page": filtered,
                "lineage": lambda: graphql(client, LINEAGE_QUERY, variables, "lineage query"),
            }
            found = queries["graphql"]["lineage"]()["batch"]["lineage"]
            figures["graphql"] = {
                "lineage_nodes": len(found["nodes"]),
                "lineage_edges": len(found["edges"]),
                "lineage_graded": found["claimSummary"]["graded"],
            }
        rest_pages = RestPages(client, {}, "REST page")
        rest_filtered = RestPages(client, {"product_form": "billet"}, "REST billet page")
        url = f"/v1/batches/{MAKER}/{PRODUCT}/lineage"
        params = {"direction": "up", "depth": LEVELS}
        queries["rest"] = {
            "page": rest_pages,
            "billet_page": rest_filtered,
            "lineage": lambda: ok_json(client.get(url, params=params), "REST lineage"),
        }
        figures["rest"] = {"lineage_nodes": len(queries["rest"]["lineage"]()["nodes"])}
        counter = SqlCount(ledger.engine)
        for api, calls in queries.items():
            if not calls:
                continue
            statements = {name: counter.of(call) for name, call in calls.items()}
            figures[api] = {
                **{
                    f"{name}_ms": timings_ms(call, args.samples, warm_up=WARM_UP)
                    for name, call in calls.items()
                },
                "sql_statements_per_request": statements,
                **figures[api],
            }
        counter.close()
        if not args.no_graphql:
            variables = {
                "first": 100,
                "smelterId": MAKER,
                "batchId": PRODUCT,
                "ruleSetId": figures["graphql"]["lineage_graded"][0]["ruleSetId"],
            }
            figures["probe"] = probe_latency(base, headers, variables, args.samples)
        if not args.no_graphql:
            figures["graphql"]["page_sizes"] = sorted(set(pages.sizes))
            figures["graphql"]["filtered_page_sizes"] = sorted(set(filtered.sizes))
        figures["rest"]["page_sizes"] = sorted(set(rest_pages.sizes))
    gc.unfreeze()
    if "graphql" in figures:
        figures["targets_p99_ms"] = {
            name: {"target": target, "p99": p99, "met": p99 < target}
            for name, target in TARGETS_P99_MS.items()
            for p99 in [figures["graphql"][f"{name}_ms"]["p99"]]
        }
    return figures


def heavy_cost(variables: dict[str, Any]) -> int | None:
    """What the GraphQL cost model (api/graphql/cost.py) charges for HEAVY_QUERY."""
    try:
        from graphql import parse

        from api.graphql.cost import operation_cost
        from api.graphql.schema import schema
    except ImportError:  # a tree without a cost model
        return None
    return operation_cost(schema._schema, parse(HEAVY_QUERY), None, variables)


def probe_latency(
    base: str, headers: dict[str, str], variables: dict[str, Any], samples: int
) -> dict[str, Any]:
    """``GET /v1/log-key`` timed idle, then while another client sends HEAVY_QUERY back to
    back (so each probe overlaps a heavy query in flight): what one expensive GraphQL query
    does to everyone else's latency. Also the heavy query's own latency meanwhile."""
    figures: dict[str, Any] = {"heavy_query_cost": heavy_cost(variables)}
    with httpx.Client(base_url=base, timeout=120) as probe:

        def get_probe() -> None:
            ok_text(probe.get(PROBE), "probe")

        figures["idle_ms"] = timings_ms(get_probe, samples, warm_up=WARM_UP)
        heavy_ms: list[float] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                while not stop.is_set():
                    started = time.perf_counter()
                    graphql(client, HEAVY_QUERY, variables, "heavy query")
                    heavy_ms.append((time.perf_counter() - started) * 1000)

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        while not heavy_ms and loader.is_alive():  # warm: one heavy query done
            time.sleep(0.01)
        try:
            figures["during_heavy_query_ms"] = timings_ms(get_probe, samples, warm_up=WARM_UP)
        finally:
            stop.set()
            loader.join()
    if not heavy_ms:
        raise SystemExit("heavy query: the load thread failed (see above)")
    heavy_ms.sort()
    figures["heavy_query_ms"] = {
        "p50": round(heavy_ms[len(heavy_ms) // 2], 1),
        "max": round(heavy_ms[-1], 1),
        "samples": len(heavy_ms),
    }
    return figures


def ok_text(response: httpx.Response, what: str) -> str:
    if response.status_code != 200:
        raise SystemExit(f"{what}: HTTP {response.status_code}: {response.text[:2000]}")
    return response.text


def measure(database_url: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    result = init_ledger(Settings(data_dir=data_dir, database_url=database_url))
    ledger = result.ledger
    operator = keys.read_private_key(result.operator_key_path)
    started = time.perf_counter()
    figures: dict[str, Any] = build(ledger, operator, args)
    figures = {"build_s": round(time.perf_counter() - started, 1), **figures}
    print(f"  built in {figures['build_s']} s", file=sys.stderr, flush=True)
    figures.update(served_figures(ledger, args))
    ledger.engine.dispose()
    return figures


def postgres(pg_url: str, args: argparse.Namespace) -> dict[str, Any]:
    with scratch_postgres(pg_url) as url, tempfile.TemporaryDirectory() as tmp:
        return measure(url, Path(tmp), args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100_000, help="registered batches")
    parser.add_argument("--chunk", type=int, default=2_000, help="statements per bulk append")
    parser.add_argument("--per-level", type=int, default=20, help="lots per lineage level")
    parser.add_argument("--samples", type=int, default=200, help="timed requests per query")
    parser.add_argument("--no-graphql", action="store_true", help="time the REST routes only")
    parser.add_argument("--no-token", action="store_true", help="send no bearer token")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--pg-url", default=os.environ.get("LEDGER_BENCH_PG_URL"))
    args = parser.parse_args()
    if not 3 <= args.per_level <= args.batches:
        parser.error("--per-level must be between 3 and --batches")
    output: dict[str, Any] = {
        "machine": {**machine(), "nproc": len(os.sched_getaffinity(0))},
        "batches": args.batches,
        "samples": args.samples,
    }
    if not args.no_sqlite:
        print("SQLite", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            output["sqlite"] = measure(f"sqlite:///{tmp}/bench.db", Path(tmp) / "data", args)
    if args.pg_url:
        print("PostgreSQL", file=sys.stderr, flush=True)
        output["postgresql"] = postgres(args.pg_url, args)
    json.dump(output, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
