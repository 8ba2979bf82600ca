"""Canonical JSON (RFC 8785) for everything that is signed or hashed.

Signatures must not depend on key order or spacing, so signed content is always
serialised with RFC 8785 (JCS). JCS represents numbers as IEEE doubles, which makes
floats ambiguous across implementations: signed quantities must therefore be
integers in stated units (within the I-JSON safe range) or decimal strings.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from ledger.errors import MalformedError
from ledger.strict_json import DEFAULT_MAX_DEPTH, check_text

#: I-JSON (RFC 7493) interoperable integer range; beyond it JCS cannot be exact.
SAFE_INTEGER = 2**53 - 1


def check_signable(value: Any, path: str = "statement", depth: int = 0) -> None:
    """Raise MalformedError naming the first value that cannot be signed exactly, or that
    the strict reader would refuse (nested too deep, a string with NUL or a lone
    surrogate): what is signed must read back the same from any input path."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, str):
        check_text(value, path)
        return
    if isinstance(value, int):
        if abs(value) > SAFE_INTEGER:
            raise MalformedError(
                f"integer {value} is outside the I-JSON range ±(2^53-1); use a decimal string",
                field=path,
            )
        return
    if isinstance(value, float):
        raise MalformedError(
            "floats are not allowed in signed content; use an integer in stated units "
            "or a decimal string",
            field=path,
        )
    if isinstance(value, dict | list) and depth >= DEFAULT_MAX_DEPTH:
        raise MalformedError(f"nests deeper than {DEFAULT_MAX_DEPTH} levels", field=path)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MalformedError("object keys must be strings", field=path)
            check_text(key, path)
            check_signable(item, f"{path}.{key}", depth + 1)
        return
    if isinstance(value, list):
        for position, item in enumerate(value):
            check_signable(item, f"{path}[{position}]", depth + 1)
        return
    raise MalformedError(f"{type(value).__name__} is not a JSON value", field=path)


def canonical_bytes(value: Any, path: str = "statement") -> bytes:
    """RFC 8785 bytes of ``value`` after checking that it is exactly signable."""
    check_signable(value, path)
    return rfc8785.dumps(value)


def is_canonical(data: bytes) -> bool:
    """True when ``data`` is the RFC 8785 form of the JSON value it encodes."""
    return canonical_value(data) is not None


def canonical_value(data: bytes) -> Any | None:
    """The JSON value ``data`` encodes if ``data`` is its RFC 8785 form, else None.

    The audit calls this for every record, so it first tries the C JSON encoder,
    which produces JCS output for the integers and strings signed content is limited
    to; only a mismatch pays for the exact (pure Python) rfc8785 serialiser.
    """
    inexact: list[str] = []  # json.dumps writes these as Python does (1.0, NaN), not as JCS

    def noted(text: str) -> float:
        inexact.append(text)
        return float(text)

    try:
        value = json.loads(data, parse_float=noted, parse_constant=noted)
    except ValueError:
        return None
    if not inexact:
        fast = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        if fast.encode() == data:
            return value
    try:
        return value if rfc8785.dumps(value) == data else None
    except rfc8785.CanonicalizationError:
        return None
