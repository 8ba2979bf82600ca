"""The commitment format (docs/confidentiality.md): disclosures, digests, commit and reveal.

The worked example of the docs is recomputed here with Python's standard ``json`` and
``hashlib`` rather than the ledger's own code, so a slip in either shows up.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ledger.demo import demo_file
from ledger.disclosure.commit import commit
from ledger.disclosure.format import SALT_BYTES, Disclosure, decoy, item, member, parse_disclosure
from ledger.disclosure.reveal import disclose, reveal, strip_commitments
from ledger.disclosure.shapes import (
    KIND_SCHEMAS,
    SchemaClassificationError,
    all_shapes,
    compile_shape,
    shape_for,
)
from ledger.errors import InvalidError, MalformedError

DOC = Path(__file__).resolve().parents[1] / "docs" / "confidentiality.md"
SHAPE = shape_for("batch.register")


def doc_block(label: str) -> Any:
    """The fenced ```json <label> block of docs/confidentiality.md."""
    match = re.search(rf"```json {label}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert match, label
    return json.loads(match.group(1))


def independent_digest(disclosure: list[Any]) -> str:
    """RFC 8785 for these values (strings, small integers) is sorted, compact JSON."""
    canonical = json.dumps(disclosure, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_every_digest_of_the_worked_example_recomputes() -> None:
    for disclosure, digest in doc_block("disclosures"):
        assert independent_digest(disclosure) == digest
        assert parse_disclosure(disclosure, "d").digest == digest


def test_the_worked_example_commits_exactly_its_digests_and_opens_to_its_plaintext() -> None:
    committed, plaintext = doc_block("committed"), doc_block("plaintext")
    listed = [parse_disclosure(d, "d") for d, _ in doc_block("disclosures")]
    fuel_line = listed[1]
    assert fuel_line.item
    top_level = {d.digest for d in listed} - {fuel_line.digest}  # its digest is inside fuels
    signed = set(committed["activity_data"]["_sd"]) | set(committed["evidence"][0]["_sd"])
    assert signed == top_level
    assert reveal(committed, listed, SHAPE).payload == plaintext


def test_commit_with_the_examples_salts_gives_the_documented_committed_payload() -> None:
    salts = iter(d[0] for d, _ in doc_block("disclosures"))
    made = commit(doc_block("plaintext"), SHAPE, salt=lambda: next(salts))
    assert made.payload == doc_block("committed")
    assert [d.to_json() for d in made.disclosures] == [d for d, _ in doc_block("disclosures")]


@pytest.mark.parametrize("batch", demo_file("batches.json"), ids=lambda b: b["batch_id"])
def test_every_demo_batch_round_trips(batch: dict[str, Any]) -> None:
    made = commit(batch, SHAPE)
    assert strip_commitments(made.payload)["activity_data"] == {}
    assert reveal(made.payload, made.disclosures, SHAPE).payload == batch
    served = [d for d in made.disclosures if not d.decoy]
    assert disclose(made.payload, served) == batch


def test_salts_carry_at_least_128_random_bits() -> None:
    made = commit(demo_file("batches.json")[0], SHAPE)
    salts = [d.salt for d in made.disclosures]
    assert len(set(salts)) == len(salts)
    assert all(len(base64.urlsafe_b64decode(s + "==")) >= SALT_BYTES for s in salts)
    with pytest.raises(MalformedError) as short:
        parse_disclosure(["c2hvcnQ", "name", 1], "disclosures[0]")
    assert short.value.field == "disclosures[0][0]"


def test_decoys_fill_every_sd_to_the_number_the_schema_defines() -> None:
    batch = demo_file("batches.json")[0]
    sparse = {**batch, "activity_data": {"ac_power_kwh_per_t": 13_200}}
    made = commit(sparse, SHAPE)
    assert len(made.payload["activity_data"]["_sd"]) == 11
    full = commit(batch, SHAPE)
    assert len(full.payload["activity_data"]["_sd"]) == 11


def test_disclosure_shapes_parse_and_refuse() -> None:
    assert parse_disclosure(["A" * 22, "x", 1], "d") == member("x", 1, "A" * 22)
    assert parse_disclosure(["A" * 22, [1, 2]], "d") == item([1, 2], "A" * 22)
    assert parse_disclosure(["A" * 22], "d") == decoy("A" * 22)
    for bad, field in [
        ([], "d"),
        ("x", "d"),
        (["A" * 22, "_sd", 1], "d[1]"),
        (["A" * 22, 5, 1], "d[1]"),
        (["A" * 22, "x", 1.5], "d[2]"),
        (["A" * 22, "x", 1, 2], "d"),
    ]:
        with pytest.raises(MalformedError) as refused:
            parse_disclosure(bad, "d")
        assert refused.value.field == field, bad


def refusal(payload: dict[str, Any], disclosures: list[Disclosure]) -> tuple[str, str]:
    with pytest.raises((MalformedError, InvalidError)) as refused:
        reveal(payload, disclosures, SHAPE)
    return refused.value.field or "", refused.value.detail


@pytest.fixture
def made() -> Any:
    return commit(demo_file("batches.json")[0], SHAPE)


def test_a_withheld_value_is_named_by_its_digest(made: Any) -> None:
    position = next(i for i, d in enumerate(made.disclosures) if d.name == "ac_power_kwh_per_t")
    kept = [d for i, d in enumerate(made.disclosures) if i != position]
    field, detail = refusal(made.payload, kept)
    assert field.startswith("payload.activity_data._sd[")
    assert made.disclosures[position].digest in detail


def test_an_altered_disclosure_opens_nothing(made: Any) -> None:
    position = next(i for i, d in enumerate(made.disclosures) if d.name == "ac_power_kwh_per_t")
    altered = list(made.disclosures)
    altered[position] = member("ac_power_kwh_per_t", 12_000, made.disclosures[position].salt)
    field, _ = refusal(made.payload, altered)
    # The original digest now has no disclosure; the altered one opens nothing.
    assert field.startswith("payload.activity_data._sd[") or field == f"disclosures[{position}]"


def test_an_extra_or_repeated_disclosure_is_named(made: Any) -> None:
    extra = [*made.disclosures, member("alumina_kg_per_t", 1900)]
    assert refusal(made.payload, extra)[0] == f"disclosures[{len(made.disclosures)}]"
    twice = [*made.disclosures, made.disclosures[0]]
    field, detail = refusal(made.payload, twice)
    assert field == f"disclosures[{len(made.disclosures)}]" and "repeats disclosures[0]" in detail


def test_a_confidential_member_in_plaintext_is_refused(made: Any) -> None:
    leaked = json.loads(json.dumps(made.payload))
    leaked["activity_data"]["ac_power_kwh_per_t"] = 13_000
    assert refusal(leaked, list(made.disclosures))[0] == "payload.activity_data.ac_power_kwh_per_t"


def test_a_public_member_behind_a_digest_is_refused(made: Any) -> None:
    hidden = member("mass_kg", 24_000)
    payload = {k: v for k, v in made.payload.items() if k != "mass_kg"}
    payload["_sd"] = [hidden.digest]
    assert refusal(payload, [*made.disclosures, hidden])[0] == "payload.mass_kg"


def test_a_kind_without_confidential_members_takes_no_disclosures() -> None:
    assert shape_for("document.attest") is None
    with pytest.raises(MalformedError) as refused:
        reveal({"sha256": "0" * 64}, [decoy()], None)
    assert refused.value.field == "disclosures[0]"


def test_every_kind_schema_classifies_every_member() -> None:
    shapes = all_shapes()
    assert set(shapes) == set(KIND_SCHEMAS)
    assert {kind for kind, shape in shapes.items() if shape.has_confidential} == {"batch.register"}


def test_an_unclassified_member_is_a_fault_in_the_data() -> None:
    schema = {"type": "object", "properties": {"new_member": {"type": "string"}}}
    with pytest.raises(SchemaClassificationError, match=r"payload\.new_member"):
        compile_shape(schema)
