"""One strict JSON reader for everything that arrives from outside (HTTP bodies, files).

RFC 8785 signs I-JSON (RFC 7493), so input is held to it before anything else looks at
it: UTF-8 only, no lone surrogates (``"\\ud800"`` decodes to a string no encoder can
write back), no duplicate member names (a parser that kept the first value would see
another document than one that kept the last), no NaN or Infinity. On top of I-JSON:

* nesting is bounded (``max_depth``), so no input reaches Python's recursion limit;
* strings and member names hold no NUL: PostgreSQL text cannot store it, and both
  databases must refuse the same inputs.

Every refusal is a ``MalformedError`` naming where it was found (``body`` or the member
path). The reader returns plain ``dict``/``list``/``str``/``int``/``float``/``bool``/``None``;
whether floats are acceptable is the caller's business (signed content refuses them).
"""

from __future__ import annotations

import json
from typing import Any, Final

from ledger.errors import MalformedError

#: Deepest nesting accepted by default: a batch statement with disclosures is about 8.
DEFAULT_MAX_DEPTH: Final = 64


def parse_json(
    data: bytes | str, *, max_depth: int = DEFAULT_MAX_DEPTH, where: str = "body"
) -> Any:
    """The JSON value of ``data``, or MalformedError naming ``where`` and the reason."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedError(
                f"is not UTF-8 (byte {exc.start}); JSON input must be UTF-8", field=where
            ) from None
    else:
        text = data
    try:
        value = json.loads(text, object_pairs_hook=_unique_members, parse_constant=_no_constant)
    except RecursionError:
        raise MalformedError(f"nests deeper than {max_depth} levels", field=where) from None
    except _DuplicateMemberError as exc:
        raise MalformedError(
            f"member {exc.name!r} appears twice in one object; JSON input must not repeat"
            " member names (I-JSON, RFC 7493)",
            field=where,
        ) from None
    except ValueError as exc:
        raise MalformedError(f"is not valid JSON: {exc}", field=where) from None
    check_json_value(value, max_depth=max_depth, where=where)
    return value


def check_json_value(
    value: Any, *, max_depth: int = DEFAULT_MAX_DEPTH, where: str = "body"
) -> None:
    """Refuse a parsed value nested deeper than ``max_depth`` or holding a string with a
    lone surrogate or a NUL. Iterative, so its own depth is bounded too."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, path)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise MalformedError(f"nests deeper than {max_depth} levels", field=path)
            if isinstance(item, dict):
                for key, member in item.items():
                    check_text(key, path)
                    stack.append((member, f"{path}.{key}", depth + 1))
            else:
                stack.extend((member, f"{path}[{n}]", depth + 1) for n, member in enumerate(item))


def check_text(text: str, field: str) -> None:
    """Refuse a string holding NUL or a lone surrogate (not encodable as UTF-8)."""
    if "\x00" in text:
        raise MalformedError("holds a NUL character (\\u0000), which is not allowed", field=field)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedError(
                "holds a lone UTF-16 surrogate (such as \\ud800), which is not a character",
                field=field,
            ) from None


class _DuplicateMemberError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _DuplicateMemberError(name)
            seen.add(name)
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
