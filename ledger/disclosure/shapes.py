"""Which payload members are confidential, read from each kind's JSON Schema.

Every property of a kind's payload schema carries ``"x-visibility": "public"`` or
``"x-visibility": "confidential"``; an array whose items are committed one by one adds
``"x-item-visibility": "confidential"``. The classification is data, beside the shape it
classifies, so a new member cannot be added without deciding who may read it:
``compile_shape`` refuses a property without one. A ``Shape`` is that classification as a
tree the commit and reveal walks follow.

Kinds whose payloads have no JSON Schema (participants, keys, documents, accreditation,
grades, disclosure grants) have no confidential members.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ledger.resources import load_json

PUBLIC: Final = "public"
CONFIDENTIAL: Final = "confidential"
VISIBILITIES: Final = (PUBLIC, CONFIDENTIAL)

#: Kind -> (schema file under schemas/, definition the payload is validated against).
KIND_SCHEMAS: Final[Mapping[str, tuple[str, str | None]]] = {
    "batch.register": ("batch/batch.register.schema.json", None),
    "ruleset.publish": ("ruleset/ruleset.schema.json", None),
    **{
        kind: ("custody/custody.schema.json", kind)
        for kind in (
            "custody.transfer",
            "custody.accept",
            "custody.cancel",
            "custody.split",
            "custody.transform",
            "custody.policy",
        )
    },
}


class SchemaClassificationError(ValueError):
    """A schema property without a valid ``x-visibility``: a fault in the data files."""


@dataclass(frozen=True)
class Member:
    """A member (or the items of an array) and whether it is committed."""

    confidential: bool
    shape: Shape


@dataclass(frozen=True)
class Shape:
    """The classified members of an object and the classified items of an array."""

    members: Mapping[str, Member] = field(default_factory=dict)
    items: Member | None = None

    @property
    def confidential_members(self) -> int:
        return sum(member.confidential for member in self.members.values())

    @property
    def has_confidential(self) -> bool:
        """Whether anything in this shape, at any depth, is committed."""
        children = [*self.members.values(), *([self.items] if self.items else [])]
        return any(child.confidential or child.shape.has_confidential for child in children)


EMPTY: Final = Shape()


def compile_shape(document: Mapping[str, Any], definition: str | None = None) -> Shape:
    """The shape of the payload a schema (or one of its ``$defs``) describes."""
    root = document if definition is None else document["$defs"][definition]
    return _Compiler(document).shape(root, definition or "payload", ())


class _Compiler:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise SchemaClassificationError(f"only local $refs are followed, not {ref}")
            target: Any = self.document
            for part in ref[2:].split("/"):
                target = target[part]
            node = target
        return node

    def shape(self, node: Mapping[str, Any], where: str, seen: tuple[str, ...]) -> Shape:
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:  # a recursive definition: its members are classified where it starts
                return EMPTY
            seen = (*seen, ref)
        node = self.resolve(node)
        members = {
            name: self.member(prop, f"{where}.{name}", seen)
            for name, prop in (node.get("properties") or {}).items()
        }
        items = None
        if isinstance(node.get("items"), Mapping):
            visibility = node.get("x-item-visibility", PUBLIC)
            if visibility not in VISIBILITIES:
                raise SchemaClassificationError(f"{where}: x-item-visibility {visibility!r}")
            item_shape = self.shape(node["items"], f"{where}[]", seen)
            items = Member(visibility == CONFIDENTIAL, item_shape)
        return Shape(members, items)

    def member(self, prop: Mapping[str, Any], where: str, seen: tuple[str, ...]) -> Member:
        visibility = prop.get("x-visibility")
        if visibility not in VISIBILITIES:
            raise SchemaClassificationError(
                f"{where} has no x-visibility: classify it 'public' or 'confidential'"
            )
        item_visibility = prop.get("x-item-visibility")
        shape = self.shape(prop, where, seen)
        if item_visibility is not None and shape.items is not None:
            shape = Shape(shape.members, Member(item_visibility == CONFIDENTIAL, shape.items.shape))
        return Member(visibility == CONFIDENTIAL, shape)


@functools.cache
def shape_for(kind: str) -> Shape | None:
    """The classified shape of ``kind``'s payload; None when it has nothing confidential."""
    entry = KIND_SCHEMAS.get(kind)
    if entry is None:
        return None
    path, definition = entry
    shape = compile_shape(load_json(path), definition)
    return shape if shape.has_confidential else None


def all_shapes() -> dict[str, Shape]:
    """Every schema'd kind's shape, compiled (so a classification fault shows at once)."""
    return {
        kind: compile_shape(load_json(path), definition)
        for kind, (path, definition) in KIND_SCHEMAS.items()
    }
