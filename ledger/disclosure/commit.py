"""Turn a plaintext payload into its committed form and the disclosures that open it.

What the signer (a smelter's client, the CLI) runs before signing: every member the
kind's schema classifies confidential becomes a disclosure and leaves the payload, and
only its digest is signed. Each ``_sd`` array is padded with decoys up to the number of
confidential members its schema defines, so a reader without disclosures cannot tell
which members were given (whether anode effects were measured, say).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.disclosure.format import SD, Disclosure, decoy, item, member
from ledger.disclosure.shapes import EMPTY, Shape


@dataclass(frozen=True)
class Committed:
    """A payload ready to sign, and every disclosure it needs (decoys included)."""

    payload: dict[str, Any]
    disclosures: tuple[Disclosure, ...]


def commit(
    payload: Mapping[str, Any], shape: Shape | None, *, salt: Callable[[], str] | None = None
) -> Committed:
    """Commit the confidential members of ``payload`` (unchanged when ``shape`` is None).

    ``salt`` makes salts (default: 128 random bits each); tests pass a fixed source to
    get reproducible digests.
    """
    if shape is None:
        return Committed(dict(payload), ())
    walk = _Committer(salt)
    committed = walk.object(payload, shape)
    return Committed(committed, tuple(walk.disclosures))


class _Committer:
    def __init__(self, salt: Callable[[], str] | None) -> None:
        self.salt = salt
        self.disclosures: list[Disclosure] = []

    def _salt(self) -> str | None:
        return self.salt() if self.salt else None

    def value(self, node: Any, shape: Shape) -> Any:
        if isinstance(node, Mapping):
            return self.object(node, shape)
        if isinstance(node, list):
            return self.array(node, shape)
        return node

    def object(self, node: Mapping[str, Any], shape: Shape) -> dict[str, Any]:
        out: dict[str, Any] = {}
        digests: list[str] = []
        for name, value in node.items():
            spec = shape.members.get(name)
            inner = self.value(value, spec.shape if spec else EMPTY)
            if spec is not None and spec.confidential:
                digests.append(self.keep(member(name, inner, self._salt())))
            else:
                out[name] = inner
        if shape.confidential_members:
            while len(digests) < shape.confidential_members:
                digests.append(self.keep(decoy(self._salt())))
            out[SD] = sorted(digests)
        return out

    def array(self, node: list[Any], shape: Shape) -> list[Any]:
        spec = shape.items
        inner_shape = spec.shape if spec else EMPTY
        values = [self.value(entry, inner_shape) for entry in node]
        if spec is None or not spec.confidential:
            return values
        return [{"...": self.keep(item(value, self._salt()))} for value in values]

    def keep(self, disclosure: Disclosure) -> str:
        self.disclosures.append(disclosure)
        return disclosure.digest
