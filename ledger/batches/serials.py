"""Serial numbers of GEC and I-REC certificates, and ranges of them.

A range claims every serial from ``first`` to ``last`` inclusive, one MWh each, so claims can
be compared as integer intervals under a shared key:

* GEC codes (32 digits) are read with the layout in ``schemas/certificates/gec-code.json``:
  project (17 digits), production month (YYYYMM), sequence, electricity class, trade class.
  The key is everything but the sequence; the serial is the sequence. A range is one only
  when both ends share every field but the sequence (same project, month and classes),
  and a GEC's production month comes from its code, never from what a payload declares.
* I-REC and other serials: the key is everything before the trailing run of digits, the
  serial is that run; both ends must have the same prefix and the same number of digits.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Final

from ledger.errors import InvalidError
from ledger.resources import load_json

GEC_LAYOUT: Final = "certificates/gec-code.json"

MAX_SERIAL_DIGITS: Final = 18
"""Longest serial a range may use, so every serial fits a signed 64-bit storage integer."""

_TRAILING_DIGITS: Final = re.compile(r"^(.*?)([0-9]+)$")


@dataclass(frozen=True)
class SerialRange:
    """Serials ``first..last`` (inclusive) of ``width`` digits between ``prefix`` and
    ``suffix``; ``production_month`` (YYYY-MM) when the codes state it (GEC)."""

    prefix: str
    first: int
    last: int
    width: int
    suffix: str = ""
    production_month: str | None = None

    @property
    def key(self) -> str:
        """What two claims must share for their serials to be compared."""
        return f"{self.prefix}/{self.suffix}" if self.suffix else self.prefix

    @property
    def count(self) -> int:
        """Number of certificates (MWh) in the range."""
        return self.last - self.first + 1

    def code(self, serial: int) -> str:
        """The full certificate id of one serial, as the issuer writes it."""
        return f"{self.prefix}{serial:0{self.width}d}{self.suffix}"

    def describe(self, first: int | None = None, last: int | None = None) -> str:
        """``<first code>..<last code>`` for a sub-range (default: the whole range)."""
        low = self.first if first is None else first
        high = self.last if last is None else last
        return self.code(low) if low == high else f"{self.code(low)}..{self.code(high)}"


@dataclass(frozen=True)
class GecCode:
    """One GEC code read field by field."""

    project: str
    production_month: str
    sequence: int
    sequence_width: int
    electricity_class: str
    trade_class: str

    def fields(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "production_month": self.production_month,
            "electricity_class": self.electricity_class,
            "trade_class": self.trade_class,
        }


@functools.cache
def gec_layout() -> tuple[tuple[str, int], ...]:
    """(field name, digits) of a GEC code, in order, from the data file."""
    layout = load_json(GEC_LAYOUT)
    fields = tuple((field["name"], int(field["digits"])) for field in layout["fields"])
    if sum(digits for _, digits in fields) != layout["digits"]:
        raise ValueError(f"{GEC_LAYOUT}: field widths do not add up to {layout['digits']}")
    return fields


def parse_gec(code: str, field: str) -> GecCode:
    """A GEC code's fields; InvalidError naming ``field`` for an impossible month."""
    parts: dict[str, str] = {}
    position = 0
    for name, digits in gec_layout():
        parts[name] = code[position : position + digits]
        position += digits
    month = parts["production_month"]
    if not 1 <= int(month[4:]) <= 12:
        raise InvalidError(
            f"{code} has production month {month[:4]}-{month[4:]}: the 6 digits after the 17-digit"
            " project code are the year and month the electricity was produced",
            field=field,
        )
    return GecCode(
        project=parts["project"],
        production_month=f"{month[:4]}-{month[4:]}",
        sequence=int(parts["sequence"]),
        sequence_width=len(parts["sequence"]),
        electricity_class=parts["electricity_class"],
        trade_class=parts["trade_class"],
    )


def _gec_range(first: GecCode, last: GecCode, first_id: str, last_id: str) -> SerialRange:
    """The range of sequences between two codes of one project, month and class."""
    prefix = first_id[: len(first.project) + 6]
    suffix = first_id[len(prefix) + first.sequence_width :]
    return SerialRange(
        prefix,
        first.sequence,
        last.sequence,
        first.sequence_width,
        suffix,
        first.production_month,
    )


def split_serial(code: str) -> tuple[str, str] | None:
    """(prefix, serial digits) of a non-GEC id, or None when it ends in no digits."""
    match = _TRAILING_DIGITS.fullmatch(code)
    return (match.group(1), match.group(2)) if match else None


def single_serial(scheme: str, code: str, field: str) -> SerialRange:
    """A one-certificate range for a GEC code given as ``id``."""
    if scheme != "GEC":  # pragma: no cover - only GEC codes are ranges when named by id
        raise ValueError(f"{scheme} ids are not serials")
    gec = parse_gec(code, field)
    return _gec_range(gec, gec, code, code)


def serial_range(scheme: str, first_id: str, last_id: str, field: str) -> SerialRange:
    """The range ``first_id..last_id``; InvalidError (at ``field.last_id``) if it is none."""
    where = f"{field}.last_id"
    if scheme == "GEC":
        first = parse_gec(first_id, f"{field}.first_id")
        last = parse_gec(last_id, where)
        differing = [name for name, value in first.fields().items() if last.fields()[name] != value]
        if differing:
            raise InvalidError(
                f"last_id {last_id} differs from first_id {first_id} in its {differing[0]}:"
                " a range covers certificates of one project, production month and class, and"
                " differs only in the sequence",
                field=where,
            )
        if first.sequence > last.sequence:
            raise InvalidError(
                f"last_id {last_id} comes before first_id {first_id}; a range runs from low"
                " to high",
                field=where,
            )
        return _gec_range(first, last, first_id, last_id)
    return _numbered_range(scheme, first_id, last_id, where)


def _numbered_range(scheme: str, first_id: str, last_id: str, where: str) -> SerialRange:
    first, last = split_serial(first_id), split_serial(last_id)
    if first is None or last is None:
        raise InvalidError(
            f"last_id: a {scheme} range needs ids that end in a serial number"
            f" ({first_id}, {last_id})",
            field=where,
        )
    if first[0] != last[0] or len(first[1]) != len(last[1]):
        raise InvalidError(
            f"last_id {last_id} does not share the prefix and serial length of first_id"
            f" {first_id}; a range covers serials of one series",
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


LEGACY_GEC_PROJECT_DIGITS: Final = 17


def legacy_range(scheme: str, first_id: str, last_id: str | None, field: str) -> SerialRange:
    """A range as ledgers before footprint method 2 read it: a GEC code split into its
    17-digit project and a 15-digit serial; other ids at their trailing digits. Used only to
    re-verify certificates issued then (``parse_registration(..., legacy=True)``)."""
    last = first_id if last_id is None else last_id
    if scheme != "GEC":
        return _numbered_range(scheme, first_id, last, f"{field}.last_id")
    cut = LEGACY_GEC_PROJECT_DIGITS
    if first_id[:cut] != last[:cut]:
        raise InvalidError(
            f"last_id {last} does not share the 17-digit project registration of first_id"
            f" {first_id}",
            field=f"{field}.last_id",
        )
    low, high = int(first_id[cut:]), int(last[cut:])
    if low > high:
        raise InvalidError(f"last_id {last} comes before first_id {first_id}", field=field)
    return SerialRange(first_id[:cut], low, high, len(first_id) - cut)
