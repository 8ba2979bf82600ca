"""Open a committed payload with its disclosures, refusing anything that does not fit.

The ledger runs this on every statement it appends, before the kind checks the
payload: the kind then validates and computes on the plaintext (footprints, checks)
while the record keeps only digests. Every digest needs exactly one disclosure (a decoy
is disclosed as ``[salt]``), every disclosure must open exactly one digest, and each
member must sit where the kind's schema classifies it: a confidential member in
plaintext, or a public member behind a digest, is refused. Errors name the field:
``statement.payload.activity_data._sd[2]`` for a digest without its disclosure,
``disclosures[3]`` for a disclosure that opens nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ledger.disclosure.format import (
    ELLIPSIS,
    SD,
    Disclosure,
    is_committed_item,
    is_digest,
)
from ledger.disclosure.shapes import EMPTY, Shape
from ledger.errors import InvalidError, MalformedError


@dataclass(frozen=True)
class Revealed:
    """The plaintext payload, and the disclosures that opened it (in submission order)."""

    payload: dict[str, Any]
    disclosures: tuple[Disclosure, ...]


def reveal(
    payload: Mapping[str, Any],
    disclosures: Sequence[Disclosure],
    shape: Shape | None,
    *,
    root: str = "payload",
    disclosures_field: str = "disclosures",
) -> Revealed:
    """The plaintext of ``payload``; MalformedError or InvalidError naming what is wrong.

    ``shape`` None: the kind has nothing confidential, so no disclosure is accepted.
    """
    if shape is None:
        if disclosures:
            raise MalformedError(
                "this kind has no confidential members; send no disclosures",
                field=f"{disclosures_field}[0]",
            )
        return Revealed(dict(payload), ())
    walk = _Revealer(disclosures, disclosures_field)
    plain = walk.object(payload, shape, root)
    walk.refuse_unused()
    return Revealed(plain, tuple(disclosures))


def disclose(value: Any, disclosures: Sequence[Disclosure]) -> Any:
    """``value`` with every digest the given disclosures open replaced by its plaintext,
    and every other digest left out: what a reader allowed some disclosures reads.

    Lenient where ``reveal`` is strict: the record was checked when it was appended, and
    a reader may hold only part of its disclosures (decoys are never served)."""
    opened = {d.digest: d for d in disclosures}
    return _disclose(value, opened)


def _disclose(value: Any, opened: Mapping[str, Disclosure]) -> Any:
    if isinstance(value, Mapping):
        out = {k: _disclose(v, opened) for k, v in value.items() if k != SD}
        for digest in value.get(SD) or ():
            found = opened.get(digest) if isinstance(digest, str) else None
            if found is not None and found.name is not None and not found.decoy:
                out[found.name] = _disclose(found.value, opened)
        return out
    if isinstance(value, list):
        items = []
        for entry in value:
            if not is_committed_item(entry):
                items.append(_disclose(entry, opened))
                continue
            found = (
                opened.get(entry.get(ELLIPSIS)) if isinstance(entry.get(ELLIPSIS), str) else None
            )
            if found is not None and found.item:
                items.append(_disclose(found.value, opened))
        return items
    return value


def strip_commitments(value: Any) -> Any:
    """The payload without its digests: what anyone may read of a committed payload.

    Committed members and items are left out; a public reader parses what remains.
    """
    if isinstance(value, Mapping):
        return {k: strip_commitments(v) for k, v in value.items() if k != SD}
    if isinstance(value, list):
        return [strip_commitments(v) for v in value if not is_committed_item(v)]
    return value


def digests_in(value: Any) -> list[str]:
    """Every digest a committed value carries, at any depth (not inside disclosures)."""
    found: list[str] = []
    if isinstance(value, Mapping):
        sd = value.get(SD)
        if isinstance(sd, list):
            found.extend(d for d in sd if isinstance(d, str))
        if isinstance(value.get(ELLIPSIS), str):
            found.append(value[ELLIPSIS])
        for key, child in value.items():
            if key not in (SD, ELLIPSIS):
                found.extend(digests_in(child))
    elif isinstance(value, list):
        for child in value:
            found.extend(digests_in(child))
    return found


#: Types of the JSON scalars: ``_Revealer.value`` returns them unchanged.
_LEAVES: Final = frozenset({str, int, bool, float, type(None)})


class _Revealer:
    def __init__(self, disclosures: Sequence[Disclosure], field: str) -> None:
        self.field = field
        self.positions: dict[str, int] = {}
        self.disclosures = disclosures
        for position, disclosure in enumerate(disclosures):
            earlier = self.positions.get(disclosure.digest)
            if earlier is not None:
                raise MalformedError(
                    f"repeats {field}[{earlier}]; send each disclosure once",
                    field=f"{field}[{position}]",
                )
            self.positions[disclosure.digest] = position
        self.used: set[str] = set()

    def take(self, digest: Any, path: str) -> Disclosure:
        if not is_digest(digest):
            raise MalformedError(
                "must be a digest: base64url without padding of a SHA-256 hash", field=path
            )
        if digest in self.used:
            raise MalformedError(f"digest {digest} appears twice in the statement", field=path)
        position = self.positions.get(digest)
        if position is None:
            raise InvalidError(
                f"no disclosure opens digest {digest}; send its disclosure (a decoy is"
                " disclosed as [salt])",
                field=path,
            )
        self.used.add(digest)
        return self.disclosures[position]

    def value(self, node: Any, shape: Shape, path: str) -> Any:
        kind = type(node)
        if kind is dict:
            return self.object(node, shape, path)
        if kind is list:
            return self.array(node, shape, path)
        if kind in _LEAVES:
            return node
        if isinstance(node, Mapping):
            return self.object(node, shape, path)
        if isinstance(node, list):
            return self.array(node, shape, path)
        return node

    def object(self, node: Mapping[str, Any], shape: Shape, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        members = shape.members
        for name, value in node.items():
            if name == SD:
                continue
            if name == ELLIPSIS:
                raise MalformedError(
                    "'...' stands for a committed array item and may only appear as the one"
                    " member of an array item",
                    field=f"{path}.{name}",
                )
            spec = members.get(name)
            if spec is not None and spec.confidential:
                raise InvalidError(
                    f"{name} is confidential: sign its digest and send the value as a"
                    " disclosure, never in the statement",
                    field=f"{path}.{name}",
                )
            if type(value) in _LEAVES:  # what ``value`` returns as is, without its path
                out[name] = value
            else:
                out[name] = self.value(value, spec.shape if spec else EMPTY, f"{path}.{name}")
        if SD in node:
            self.open_members(node[SD], shape, out, path)
        return out

    def open_members(self, digests: Any, shape: Shape, out: dict[str, Any], path: str) -> None:
        where = f"{path}.{SD}"
        if not isinstance(digests, list) or not digests:
            raise MalformedError("must be a non-empty list of digests", field=where)
        if any(not isinstance(d, str) for d in digests) or digests != sorted(digests):
            raise MalformedError("must list digest strings in sorted order", field=where)
        for position, digest in enumerate(digests):
            here = f"{where}[{position}]"
            disclosure = self.take(digest, here)
            if disclosure.decoy:
                continue
            if disclosure.item or disclosure.name is None:
                raise InvalidError(
                    "opens an array item, but the digest sits in an object's _sd", field=here
                )
            name = disclosure.name
            if name in out:
                raise InvalidError(
                    f"discloses {name}, which the statement also carries", field=here
                )
            spec = shape.members.get(name)
            if spec is not None and not spec.confidential:
                raise InvalidError(
                    f"{name} is public: it stays in the signed statement, not behind a digest",
                    field=f"{path}.{name}",
                )
            opened = disclosure.value
            if type(opened) in _LEAVES:
                out[name] = opened
            else:
                out[name] = self.value(opened, spec.shape if spec else EMPTY, f"{path}.{name}")

    def array(self, node: list[Any], shape: Shape, path: str) -> list[Any]:
        spec = shape.items
        confidential = spec is not None and spec.confidential
        inner = spec.shape if spec else EMPTY
        out: list[Any] = []
        for position, entry in enumerate(node):
            if not confidential and type(entry) in _LEAVES:  # public scalars stay as they are
                out.append(entry)
                continue
            here = f"{path}[{position}]"
            if not is_committed_item(entry):
                if confidential:
                    raise InvalidError(
                        "items here are confidential: sign {'...': digest} and send the item"
                        " as a disclosure",
                        field=here,
                    )
                out.append(self.value(entry, inner, here))
                continue
            if len(entry) != 1:
                raise MalformedError("a committed item is exactly {'...': digest}", field=here)
            disclosure = self.take(entry[ELLIPSIS], f"{here}.{ELLIPSIS}")
            if disclosure.decoy:
                continue
            if not disclosure.item:
                raise InvalidError(
                    f"opens {disclosure.what}, but the digest stands for an array item",
                    field=here,
                )
            if not confidential:
                raise InvalidError(
                    "items here are public: they stay in the signed statement", field=here
                )
            out.append(self.value(disclosure.value, inner, here))
        return out

    def refuse_unused(self) -> None:
        for position, disclosure in enumerate(self.disclosures):
            if disclosure.digest not in self.used:
                raise InvalidError(
                    f"{disclosure.what} that does not hash to any digest in the statement"
                    f" (digest {disclosure.digest})",
                    field=f"{self.field}[{position}]",
                )
