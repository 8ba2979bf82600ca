"""Statements and their canonical bytes: what exactly a participant signs.

A statement is signed over its RFC 8785 (JCS) bytes, so the bytes must not
depend on key order, and every value must have exactly one serialisation:
floats and integers outside the I-JSON range are refused, naming the exact
path of the offending value. Parsing a submitted statement names the field
that is wrong. Inside a stored record, the statement's canonical bytes are a
slice of the record's leaf bytes, which is what lets the audit verify
signatures without re-serialising anything.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
import rfc8785

from ledger import canonical, keys, records, statements
from ledger.canonical import SAFE_INTEGER, canonical_bytes, is_canonical
from ledger.errors import MalformedError
from ledger.statements import SignedStatement, Statement
from tests.conftest import LedgerEnv

SIGNER = "ab" * 32


def statement_dict(**overrides: Any) -> dict[str, Any]:
    """A well-formed statement envelope, with some fields replaced or removed."""
    obj: dict[str, Any] = {
        "kind": "document.attest",
        "payload": {"sha256": "0" * 64, "media_type": "application/pdf"},
        "signer": SIGNER,
        "nonce": "nonce-0001",
        "signed_at": "2026-01-31T08:00:00Z",
    }
    for name, value in overrides.items():
        if value is ...:
            del obj[name]
        else:
            obj[name] = value
    return obj


def refusal(obj: Any, path: str = "statement") -> MalformedError:
    with pytest.raises(MalformedError) as refused:
        Statement.parse(obj, path)
    return refused.value


# -- canonical JSON -----------------------------------------------------------


def test_canonical_bytes_do_not_depend_on_key_order() -> None:
    one = {"b": 1, "a": {"y": [1, 2], "x": "é"}, "c": None}
    other = {"c": None, "a": {"x": "é", "y": [1, 2]}, "b": 1}
    assert canonical_bytes(one) == canonical_bytes(other)
    assert canonical_bytes(one) == b'{"a":{"x":"\xc3\xa9","y":[1,2]},"b":1,"c":null}'


def test_statements_with_reordered_payload_keys_sign_the_same_bytes() -> None:
    key = keys.generate()
    first = statements.make_statement(
        "document.attest",
        {"sha256": "0" * 64, "media_type": "application/pdf"},
        key,
        nonce="same-nonce",
        signed_at="2026-01-31T08:00:00Z",
    )
    second = statements.make_statement(
        "document.attest",
        {"media_type": "application/pdf", "sha256": "0" * 64},
        key,
        nonce="same-nonce",
        signed_at="2026-01-31T08:00:00Z",
    )
    assert first.canonical() == second.canonical()
    assert statements.sign(first, key).signature == statements.sign(second, key).signature


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"mass": 1.5}, "statement.payload.mass"),
        ({"mass": 2.0}, "statement.payload.mass"),
        ({"items": [{"mass": 1}, {"mass": 0.25}]}, "statement.payload.items[1].mass"),
        ({"a": {"b": {"c": [0, [1, 1e3]]}}}, "statement.payload.a.b.c[1][1]"),
    ],
)
def test_a_float_anywhere_in_a_payload_is_refused_naming_its_path(
    payload: dict[str, Any], field: str
) -> None:
    error = refusal(statement_dict(payload=payload))
    assert error.field == field
    assert "floats are not allowed" in error.detail


def test_canonical_bytes_name_the_path_they_were_given() -> None:
    with pytest.raises(MalformedError) as refused:
        canonical_bytes({"rows": [{"kg": 0.5}]}, "body")
    assert refused.value.field == "body.rows[0].kg"


@pytest.mark.parametrize("value", [SAFE_INTEGER + 1, -(SAFE_INTEGER + 1), 2**64])
def test_integers_beyond_the_i_json_range_are_refused(value: int) -> None:
    error = refusal(statement_dict(payload={"total": {"kg": value}}))
    assert error.field == "statement.payload.total.kg"
    assert "I-JSON" in error.detail


def test_integers_at_the_edge_of_the_i_json_range_are_accepted() -> None:
    payload = {"max": SAFE_INTEGER, "min": -SAFE_INTEGER, "flag": True, "none": None}
    statement = Statement.parse(statement_dict(payload=payload))
    assert b'"max":9007199254740991' in statement.canonical()


def test_non_json_values_are_refused() -> None:
    with pytest.raises(MalformedError) as refused:
        canonical.check_signable({"when": object()})
    assert refused.value.field == "statement.when"


# -- Statement.parse ------------------------------------------------------------


def test_a_well_formed_statement_parses_to_the_same_fields() -> None:
    obj = statement_dict()
    assert Statement.parse(obj).to_dict() == obj


@pytest.mark.parametrize("name", ["kind", "payload", "signer", "nonce", "signed_at"])
def test_a_missing_field_is_named(name: str) -> None:
    error = refusal(statement_dict(**{name: ...}))
    assert error.field == f"statement.{name}"
    assert error.detail == "required field is missing"


def test_an_unknown_field_is_named() -> None:
    error = refusal({**statement_dict(), "comment": "hi"})
    assert error.field == "statement.comment"
    assert error.detail == "unknown field"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "Document.Attest"),
        ("kind", "attest"),
        ("signer", "AB" * 32),
        ("signer", "ab" * 31),
        ("signer", 42),
        ("nonce", "short"),
        ("nonce", "has space in it"),
        ("nonce", "x" * 129),
        ("signed_at", "2026-01-31 08:00:00"),
        ("signed_at", "2026-01-31T08:00:00+08:00"),
        ("signed_at", "2026-02-31T08:00:00Z"),
        ("signed_at", 1767168000),
        ("payload", ["not", "an", "object"]),
        ("payload", "text"),
    ],
)
def test_a_bad_field_value_is_named(field: str, value: Any) -> None:
    error = refusal(statement_dict(**{field: value}))
    assert error.field == f"statement.{field}"


def test_the_field_path_follows_the_given_prefix() -> None:
    error = refusal(statement_dict(nonce="bad nonce"), "statements[3].statement")
    assert error.field == "statements[3].statement.nonce"


def test_a_statement_that_is_not_an_object_is_refused() -> None:
    assert refusal(["kind"]).field == "statement"


# -- SignedStatement.parse --------------------------------------------------------


def signed_dict(signature: Any) -> dict[str, Any]:
    return {"statement": statement_dict(), "signature": signature}


def test_a_signed_statement_round_trips_through_its_dict() -> None:
    key = keys.generate()
    signed = statements.sign_new("document.attest", {"sha256": "1" * 64}, key)
    assert SignedStatement.parse(signed.to_dict()) == signed


@pytest.mark.parametrize("signature", ["not base64!", "QUJD=", 12345, None])
def test_a_signature_that_is_not_base64_is_refused(signature: Any) -> None:
    with pytest.raises(MalformedError) as refused:
        SignedStatement.parse(signed_dict(signature))
    assert refused.value.field == "signature"


@pytest.mark.parametrize("length", [0, 32, 63, 65])
def test_a_signature_of_the_wrong_length_is_refused(length: int) -> None:
    encoded = base64.b64encode(b"\x01" * length).decode()
    with pytest.raises(MalformedError, match=f"got {length}") as refused:
        SignedStatement.parse(signed_dict(encoded))
    assert refused.value.field == "signature"


def test_signed_statement_errors_carry_the_bulk_position() -> None:
    with pytest.raises(MalformedError) as refused:
        SignedStatement.parse(signed_dict("AAAA"), "statements[2]")
    assert refused.value.field == "statements[2].signature"


def test_a_missing_signature_and_extra_fields_are_named() -> None:
    with pytest.raises(MalformedError) as missing:
        SignedStatement.parse({"statement": statement_dict()})
    assert missing.value.field == "signature"
    with pytest.raises(MalformedError) as extra:
        SignedStatement.parse({**signed_dict("AAAA"), "witness": "x"})
    assert extra.value.field == "witness"


def test_a_missing_statement_is_named() -> None:
    signature = base64.b64encode(bytes(64)).decode()
    with pytest.raises(MalformedError) as refused:
        SignedStatement.parse({"signature": signature})
    assert refused.value.field == "statement"


# -- statement bytes inside records ----------------------------------------------


def test_a_records_statement_slice_is_the_signed_canonical_bytes(env: LedgerEnv) -> None:
    smelter = env.register("yunnan-hydro", "smelter")
    signed = statements.sign_new(
        "document.attest",
        {"title": 'Prüfbericht 水电 "quoted" \\ ✓', "sha256": "f" * 64, "media_type": "a/b"},
        smelter,
    )
    leaf = env.ledger.append(signed).record.leaf
    assert records.statement_slice(leaf) == signed.statement.canonical()
    keys.verify(keys.raw_public_key(smelter), signed.signature, records.statement_slice(leaf))
    assert is_canonical(leaf)


def test_leaf_bytes_are_the_rfc8785_form_of_the_record() -> None:
    key = keys.generate()
    signed = statements.sign_new("document.attest", {"sha256": "e" * 64}, key)
    leaf = records.leaf_bytes(
        7, "ab" * 32, "2026-01-31T08:00:00.000000Z", signed.signature, signed.statement.canonical()
    )
    record = {
        "index": 7,
        "prev": "ab" * 32,
        "integrated_at": "2026-01-31T08:00:00.000000Z",
        "signature": base64.b64encode(signed.signature).decode(),
        "statement": signed.statement.to_dict(),
    }
    assert leaf == rfc8785.dumps(record)
    assert records.statement_slice(leaf) == signed.statement.canonical()


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1}',
        b'{"b":1,"a":2}',
        b'{"a":"\\u00e9"}',
        b'{"a":"\\/"}',
        b'{"a":1}\n',
        b'{"a":1.0}',
        b'{"a":1e-07}',
        b'{"a":NaN}',
        b"not json",
    ],
)
def test_non_canonical_bytes_are_detected(data: bytes) -> None:
    assert not is_canonical(data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1,"b":2}',
        '{"a":"é","b":["✓",null,true]}'.encode(),
        b'{"a":"\\u001f"}',
        b'{"a":0.5,"b":1e-7}',
        b"[]",
    ],
)
def test_canonical_bytes_are_recognised(data: bytes) -> None:
    assert is_canonical(data)
