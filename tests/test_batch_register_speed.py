"""``batch.register`` at bulk speed with the same checks: what is done once, not per batch.

Every schema is compiled once (its references resolved once, into a fast twin that only
accepts), the factor-table directory is listed once, and a registration reads the ledger
once and writes each of its rows once: the batch's root lot is made from the values at
hand, not read back. These tests count that work; none of them times anything. The twin
may only ever accept what jsonschema accepts, which a differential test holds it to, and
refusals are still jsonschema's, named as before.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from ledger import json_schema, resources
from ledger.batches.payload import SCHEMA_PATH, parse_registration, payload_validator
from ledger.custody.payloads import _validator as custody_validator
from ledger.demo import demo_file
from ledger.disclosure.sign import sign_statement
from ledger.errors import ConflictError, InvalidError, MalformedError
from ledger.footprint import factors
from ledger.json_schema import EcmaValidator, accepts, make_validator
from ledger.resources import load_json
from ledger.storage.batches import BatchRepository
from ledger.storage.custody import CustodyRepository
from ledger.storage.db import read_session
from tests.conftest import LedgerEnv
from tests.custody_support import split
from tests.support import SMELTER, demo_batch, uncertified

TEMPLATES = ("YN-2025-0001", "NM-2025-0001", "XJ-2025-0001", "YN-2025-0002")


def batch(batch_id: str, template: str = "YN-2025-0001") -> dict[str, Any]:
    return uncertified(demo_batch(template, SMELTER, batch_id))


def signed_batches(env: LedgerEnv, prefix: str, count: int) -> list[Any]:
    key = env.participant_keys[SMELTER]
    return [
        sign_statement("batch.register", batch(f"{prefix}-{n}", TEMPLATES[n % 4]), key)
        for n in range(count)
    ]


@contextmanager
def sql_run(env: LedgerEnv) -> Iterator[list[str]]:
    """Every SQL statement the engine runs meanwhile, as sent."""
    seen: list[str] = []

    def capture(*args: Any) -> None:
        seen.append(" ".join(args[2].split()))

    engine = env.ledger.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


# -- compiled once, listed once -----------------------------------------------------------
def test_registrations_compile_no_schema_and_list_no_directory(
    env: LedgerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.register(SMELTER, "smelter")
    env.ledger.append_many(signed_batches(env, "warm", 1))
    factors_dir = resources.SCHEMAS / factors.FACTORS_DIR
    listings: list[Path] = []
    real_iterdir = Path.iterdir

    def counted_iterdir(self: Path) -> Any:
        if self == factors_dir:
            listings.append(self)
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", counted_iterdir)
    factors._versions.cache_clear()  # forget the listing: the next registrations list once
    resources.schema_names.cache_clear()
    reported = jsonschema_walks(monkeypatch)
    compiled = json_schema.compilations

    env.ledger.append_many(signed_batches(env, "bulk", 8))
    env.ledger.append_many(signed_batches(env, "more", 4))

    assert json_schema.compilations == compiled  # no validator, twin or registry rebuilt
    assert listings == [factors_dir]  # once for both bulks, not once per registration
    assert reported == []  # the twin accepted every valid payload: jsonschema never walked one


def jsonschema_walks(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The validators jsonschema walks an instance with from now on (one entry a walk)."""
    reported: list[Any] = []
    real_iter_errors = EcmaValidator.iter_errors

    def counted_iter_errors(self: Any, *args: Any, **kwargs: Any) -> Any:
        reported.append(self)
        return real_iter_errors(self, *args, **kwargs)

    monkeypatch.setattr(EcmaValidator, "iter_errors", counted_iter_errors)
    return reported


def test_make_validator_compiles_a_schema_document_once() -> None:
    document = load_json(SCHEMA_PATH)
    compiled = json_schema.compilations
    assert make_validator(document) is make_validator(document) is payload_validator()
    assert json_schema.compilations == compiled
    # another document (a copy, or the same one without format checks) is compiled anew
    assert make_validator(copy.deepcopy(document)) is not payload_validator()
    assert make_validator(document, formats=False) is not payload_validator()


def test_a_refused_payload_is_named_by_jsonschema_as_before(
    env: LedgerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twin never names a failure: a payload it does not accept goes to jsonschema."""
    env.register(SMELTER, "smelter")
    reported = jsonschema_walks(monkeypatch)
    look_alike = batch("YN-2025-0001\n")  # `$` of a Python regex would accept it
    with pytest.raises(MalformedError) as refused:
        env.append("batch.register", look_alike, env.participant_keys[SMELTER])
    assert refused.value.field == "statement.payload.batch_id"
    assert refused.value.detail.startswith("batch_id must start with a letter or digit")
    assert reported[0] is payload_validator()  # then its subschemas' (if/then) validators

    tupled = batch("B-tuple")
    tupled["electricity"] = tuple(tupled["electricity"])  # not what a JSON parser makes
    with pytest.raises(MalformedError) as refused:
        parse_registration(tupled)
    assert refused.value.field == "payload.electricity"


# -- the ledger read once, each row written once ------------------------------------------
def test_a_registration_reads_the_ledger_once_and_writes_each_row_once(env: LedgerEnv) -> None:
    env.register(SMELTER, "smelter")
    env.ledger.append_many(signed_batches(env, "warm", 1))
    (signed,) = signed_batches(env, "one", 1)

    with sql_run(env) as statements:
        env.ledger.append(signed)

    def touching(*tables: str) -> list[str]:
        words = [f" {table} " for table in tables]
        return [s for s in statements if any(w in f"{s} " for w in words)]

    reads = [s for s in touching("batches", "lots") if s.upper().startswith("SELECT")]
    writes = [s for s in touching("batches", "lots", "lot_events") if not s.startswith("SELECT")]
    assert len(reads) == 1  # the batch, the lot of its id and the smelter's region together
    inserts = [w[w.index("INSERT INTO") :].split("(")[0].strip() for w in writes]
    if env.ledger.engine.dialect.name == "postgresql":  # one round trip for the three rows
        (write,) = writes
        assert write.startswith("WITH new_batch AS (INSERT INTO batches")
        assert "new_lot AS (INSERT INTO lots" in write and "INSERT INTO lot_events" in write
    else:
        assert inserts == ["INSERT INTO batches", "INSERT INTO lots", "INSERT INTO lot_events"]


@contextmanager
def sql_sent(env: LedgerEnv) -> Iterator[list[tuple[str, bool]]]:
    """Every SQL statement the engine sends meanwhile, and whether it went as executemany."""
    seen: list[tuple[str, bool]] = []

    def capture(_c: Any, _cursor: Any, statement: str, _p: Any, _x: Any, many: bool) -> None:
        seen.append((" ".join(statement.split()), many))

    event.listen(env.ledger.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(env.ledger.engine, "before_cursor_execute", capture)


@pytest.mark.parametrize("count", [8, 40])
def test_a_bulk_reads_ahead_once_and_sends_its_rows_together(env: LedgerEnv, count: int) -> None:
    """A bulk of registrations reads the ledger for all of them at once (batches and lots
    of the smelter among the bulk's ids) and sends their rows after the last is checked,
    in one executemany per statement (on PostgreSQL one statement, pipelined by psycopg;
    on SQLite batches, lots and first events): no query or write per registration."""
    env.register(SMELTER, "smelter")
    bulk = signed_batches(env, "bulk", count)
    with sql_sent(env) as sent:
        env.ledger.append_many(bulk)
    reads = [s for s, _ in sent if s.startswith("SELECT") and (" batches " in s or " lots " in s)]
    assert len(reads) == 2, reads  # independent of the bulk's size
    writes = [(s, many) for s, many in sent if "INSERT INTO batches" in s]
    assert len(writes) == 1 and writes[0][1]
    if env.ledger.engine.dialect.name == "sqlite":
        for table in ("lots", "lot_events"):
            inserts = [many for s, many in sent if s.startswith(f"INSERT INTO {table} ")]
            assert inserts == [True], (table, inserts)
    with read_session(env.ledger.engine) as session:
        stored = BatchRepository(session).get_many([(SMELTER, f"bulk-{n}") for n in range(count)])
        assert len(stored) == count
        assert CustodyRepository(session).lot(SMELTER, f"bulk-{count - 1}") is not None


def test_a_batch_twice_in_one_bulk_is_refused_and_nothing_is_stored(env: LedgerEnv) -> None:
    env.register(SMELTER, "smelter")
    bulk = signed_batches(env, "twice", 5)
    again = sign_statement("batch.register", batch("twice-1"), env.participant_keys[SMELTER])
    size = env.ledger.tree_size()
    with pytest.raises(ConflictError) as refused:
        env.ledger.append_many([*bulk, again])
    assert refused.value.field == "statements[5].statement.payload.batch_id"
    assert env.ledger.tree_size() == size
    with read_session(env.ledger.engine) as session:
        assert BatchRepository(session).get(SMELTER, "twice-0") is None


def test_a_bulk_that_transfers_a_lot_it_registered_sees_the_lot(env: LedgerEnv) -> None:
    """A statement of another kind in the bulk reads what the registrations before it
    deferred (the bulk's scope is flushed before it)."""
    env.register(SMELTER, "smelter")
    env.register("casthouse", "manufacturer")
    bulk = signed_batches(env, "moved", 6)
    transfer = {"ns": SMELTER, "batch_id": "moved-5", "recipient_id": "casthouse"}
    offer = sign_statement("custody.transfer", transfer, env.participant_keys[SMELTER])
    env.ledger.append_many([*bulk, offer])
    with read_session(env.ledger.engine) as session:
        lot = CustodyRepository(session).lot(SMELTER, "moved-5")
        assert lot is not None and lot.holder_id == "casthouse"


def test_the_root_lot_states_what_the_batch_row_states(env: LedgerEnv) -> None:
    """What ``root_lot`` made of the stored batch row, the lot made from the values at hand
    states too (0004's backfill restates those rules; custody tests compare the two)."""
    env.register(SMELTER, "smelter")
    env.ledger.append_many(signed_batches(env, "B", 4))
    with read_session(env.ledger.engine) as session:
        for n in range(4):
            row = BatchRepository(session).get(SMELTER, f"B-{n}")
            lot = CustodyRepository(session).lot(SMELTER, f"B-{n}")
            assert row is not None and lot is not None
            derived = json.loads(row.derived)
            assert (lot.origin, lot.holder_id, lot.created_index) == (
                "batch",
                SMELTER,
                row.record_index,
            )
            assert lot.mass_kg == lot.available_kg == lot.input_kg == row.mass_kg
            assert lot.product_form == row.product_form
            if row.computed_kg_co2e_per_t is None:
                assert lot.footprint_kg_co2e_per_t == row.declared_kg_co2e_per_t
            else:
                assert (lot.footprint_kg_co2e_per_t, lot.footprint_basis) == (
                    row.computed_kg_co2e_per_t,
                    "computed",
                )
            assert lot.recycled_pre_share == derived["recycled_content_pre_consumer"]
            assert lot.recycled_post_share == derived["recycled_content_post_consumer"]
            assert (lot.pending_index, lot.pending_to, lot.derivation) == (None, None, None)
            assert (lot.external_pre_kg, lot.external_post_kg, lot.external_primary_kg) == (0, 0, 0)


def test_a_taken_lot_id_is_refused_after_every_other_check(env: LedgerEnv) -> None:
    """The lot of the batch's id is looked up with the batch, but refused where applying
    refused it: after the checks of the payload, its lots, claims and footprint."""
    env.register(SMELTER, "smelter")
    env.ledger.append_many(signed_batches(env, "B", 1))
    split(env, SMELTER, SMELTER, "B-0", a=1_000, b=23_000)
    key = env.participant_keys[SMELTER]

    with pytest.raises(ConflictError) as refused:
        env.append("batch.register", batch("a"), key)
    assert refused.value.field == "statement.payload.batch_id"
    assert refused.value.detail == f"{SMELTER}/a is already a batch or lot; choose another id"

    unknown_region = batch("a")
    unknown_region["electricity"][1]["grid_region"] = "CN-ZZ"
    with pytest.raises(InvalidError) as refused:
        env.append("batch.register", unknown_region, key)
    assert refused.value.field == "statement.payload.electricity[1].grid_region"


# -- the twin accepts exactly what jsonschema accepts -------------------------------------
ODD_VALUES: tuple[Any, ...] = (
    "",
    "x",
    "\n",
    "A\n",
    "٣",  # an Arabic-Indic digit: `\d` of some engines, not of ECMA-262 or of [0-9]
    "Ａ",
    "2025-02-30",
    "2025-13-01",
    "2025-02-28",
    "2025-1-1",
    "1e3",
    " 12",
    "0.1234567",
    "x" * 300,
    "GEC",
    "hydro",
    "CN-YN",
    "CN-YN\n",
    0,
    -1,
    1,
    2**53,
    10**30,
    True,
    False,
    None,
    [],
    {},
    [1],
    {"a": 1},
)


def mutations(instance: Any, rng: random.Random, count: int) -> Iterator[Any]:
    """``count`` copies of ``instance``, each changed in one place: a value replaced by an
    odd one, a member dropped, an unknown member added, an item duplicated."""
    for _ in range(count):
        copied = copy.deepcopy(instance)
        containers = list(walk(copied))
        parent = rng.choice(containers)
        keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
        action = rng.random()
        if not keys or action < 0.1:
            if isinstance(parent, dict):
                parent[rng.choice(["extra", "_sd", "..."])] = rng.choice(ODD_VALUES)
            else:
                parent.append(rng.choice(ODD_VALUES))
        elif action < 0.25 and isinstance(parent, dict):
            del parent[rng.choice(keys)]
        elif action < 0.3 and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[rng.choice(keys)]))
        else:
            parent[rng.choice(keys)] = rng.choice(ODD_VALUES)  # type: ignore[index]
        yield copied


def walk(value: Any) -> Iterator[Any]:
    if isinstance(value, dict | list):
        yield value
        for child in value.values() if isinstance(value, dict) else value:
            yield from walk(child)


def differential_cases() -> Iterator[tuple[str, Any, list[Any]]]:
    batches = [b for b in demo_file("batches.json")]
    yield "batch.register", payload_validator(), batches
    legacy = payload_validator(legacy=True)
    yield "batch.register v1", legacy, batches
    table = make_validator(load_json(factors.SCHEMA_FILE))
    yield "factor table", table, [load_json(f"factors/{v}.json") for v in ("2024.1", "2025.1")]
    transfer = {"ns": "yn-smelter", "batch_id": "B1", "recipient_id": "maker", "mass_kg": 5}
    yield "custody.transfer", custody_validator("custody.transfer"), [transfer]
    children = [{"batch_id": "a", "mass_kg": 1_000}, {"batch_id": "b", "mass_kg": 2_000}]
    split_payload = {"ns": "yn-smelter", "batch_id": "B1", "children": children}
    yield "custody.split", custody_validator("custody.split"), [split_payload]


@pytest.mark.parametrize("case", list(differential_cases()), ids=lambda case: case[0])
def test_the_twin_accepts_exactly_what_jsonschema_accepts(case: tuple[str, Any, list[Any]]) -> None:
    name, validator, instances = case
    assert json_schema._by_validator[id(validator)].twin is not None, f"{name} has no twin"
    rng = random.Random(f"twin-{name}")
    checked = accepted = 0
    for instance in instances:
        for candidate in [instance, *mutations(instance, rng, 400 // len(instances) + 1)]:
            expected = not any(validator.iter_errors(candidate))
            assert accepts(validator, candidate) is expected, (name, candidate)
            checked += 1
            accepted += expected
    assert 0 < accepted < checked  # both verdicts were exercised


def test_schemas_whose_meaning_could_differ_get_no_twin() -> None:
    """``patternProperties`` runs a Python expression in jsonschema; another draft, a
    reference out of the document or an unknown keyword might be read otherwise too."""
    base = {"$schema": json_schema.DRAFT_2020_12, "type": "object"}
    for extra in (
        {"patternProperties": {"^a$": {"type": "string"}}},
        {"$ref": "https://example.com/other.json"},
        {"properties": {"a": {"contentMediaType": "application/json"}}},
        {"dependencies": {"a": ["b"]}},
    ):
        validator = make_validator({**base, **extra})
        assert json_schema._by_validator[id(validator)].twin is None, extra
        assert accepts(validator, {"a": "x"}) is False  # so jsonschema judges every instance
    draft7 = make_validator({"$schema": "http://json-schema.org/draft-07/schema#"})
    assert json_schema._by_validator[id(draft7)].twin is None
    named = make_validator({**base, "properties": {"$schema": {"type": "string"}}})
    assert json_schema._by_validator[id(named)].twin is not None  # a property, no keyword


def test_a_registration_may_name_a_lot_registered_earlier_in_its_bulk(env: LedgerEnv) -> None:
    """Registrations defer their rows, and a later one in the same bulk that names an
    earlier one's lot as purchased primary metal finds it and takes its kilograms."""
    env.register(SMELTER, "smelter")
    key = env.participant_keys[SMELTER]
    first = batch("made-0")
    remelted = batch("made-1", "NM-2025-0002")  # 5,000 kg of purchased primary metal
    remelted["metal_inputs"]["purchased_primary_batches"] = [
        {"smelter_id": SMELTER, "batch_id": "made-0", "mass_kg": 1000}
    ]
    bulk = [sign_statement("batch.register", p, key) for p in (first, remelted)]
    env.ledger.append_many(bulk)
    with read_session(env.ledger.engine) as session:
        lot = CustodyRepository(session).lot(SMELTER, "made-0")
        assert lot is not None and lot.available_kg == first["mass_kg"] - 1000
        assert BatchRepository(session).get(SMELTER, "made-1") is not None
