"""Serial numbers of GEC and I-REC certificates, and ranges of them.

A range claims every serial from ``first`` to ``last`` inclusive, one MWh each, so claims can
be compared by integer intervals under a shared prefix:

* GEC codes are 32 digits: the first 17 register the project (type, energy, technology,
  approval date, location, sequence, check digit), the last 15 describe the energy
  (generation date, certificate sequence, electricity class, trade class). The prefix is the
  17-digit project registration; the serial is the 15-digit tail read as an integer.
  Assumption (check): consecutive certificates of a range are consecutive integers there.
* I-REC and other serials: the prefix is everything before the trailing run of digits, the
  serial is that run; both ends must have the same prefix and the same number of digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ledger.errors import InvalidError

GEC_PROJECT_DIGITS: Final = 17
"""Digits of a GEC code that register the project: the key under which its serials count."""

MAX_SERIAL_DIGITS: Final = 18
"""Longest serial a range may use, so every serial fits a signed 64-bit storage integer."""

_TRAILING_DIGITS: Final = re.compile(r"^(.*?)([0-9]+)$")


@dataclass(frozen=True)
class SerialRange:
    """Serials ``first..last`` (inclusive) under ``prefix``; ``width`` digits each."""

    prefix: str
    first: int
    last: int
    width: int

    @property
    def count(self) -> int:
        """Number of certificates (MWh) in the range."""
        return self.last - self.first + 1

    def code(self, serial: int) -> str:
        """The full certificate id of one serial, as the issuer writes it."""
        return f"{self.prefix}{serial:0{self.width}d}"

    def describe(self, first: int | None = None, last: int | None = None) -> str:
        """``<first code>..<last code>`` for a sub-range (default: the whole range)."""
        low = self.first if first is None else first
        high = self.last if last is None else last
        return self.code(low) if low == high else f"{self.code(low)}..{self.code(high)}"


def split_serial(scheme: str, code: str) -> tuple[str, str] | None:
    """(prefix, serial digits) of one id, or None when it ends in no digits."""
    if scheme == "GEC":
        return code[:GEC_PROJECT_DIGITS], code[GEC_PROJECT_DIGITS:]
    match = _TRAILING_DIGITS.match(code)
    return (match.group(1), match.group(2)) if match else None


def single_serial(scheme: str, code: str) -> SerialRange:
    """A one-certificate range for a GEC code given as ``id``."""
    parts = split_serial(scheme, code)
    if parts is None:  # pragma: no cover - GEC codes are all digits (schema)
        raise ValueError(f"{code} has no serial digits")
    prefix, digits = parts
    return SerialRange(prefix, int(digits), int(digits), len(digits))


def serial_range(scheme: str, first_id: str, last_id: str, field: str) -> SerialRange:
    """The range ``first_id..last_id``; InvalidError (at ``field.last_id``) if it is none."""
    first = split_serial(scheme, first_id)
    last = split_serial(scheme, last_id)
    where = f"{field}.last_id"
    if first is None or last is None:
        raise InvalidError(
            f"last_id: a {scheme} range needs ids that end in a serial number"
            f" ({first_id}, {last_id})",
            field=where,
        )
    if first[0] != last[0] or len(first[1]) != len(last[1]):
        part = "17-digit project registration" if scheme == "GEC" else "prefix and serial length"
        raise InvalidError(
            f"last_id {last_id} does not share the {part} of first_id {first_id};"
            " a range covers serials of one project",
            field=where,
        )
    if len(first[1]) > MAX_SERIAL_DIGITS:
        raise InvalidError(
            f"last_id: serial numbers of a range may have at most {MAX_SERIAL_DIGITS} digits;"
            f" {first[1]} has {len(first[1])}",
            field=where,
        )
    if int(first[1]) > int(last[1]):
        raise InvalidError(
            f"last_id {last_id} comes before first_id {first_id}; a range runs from low to high",
            field=where,
        )
    return SerialRange(first[0], int(first[1]), int(last[1]), len(first[1]))
