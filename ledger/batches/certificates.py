"""Certificate claims and the double-claim rule: a certificate's energy is claimed once.

Each certificate a batch names becomes one ``CertificateClaim``:

* GEC codes and I-REC serial ranges are *range claims*: key ``SCHEME:key`` (for GEC
  everything but the sequence: project, production month and classes) and the inclusive
  integer interval ``[first, last]`` of serials, one MWh each. Two range claims conflict
  when their intervals under one key overlap; a serial is claimed whole or not at all.
* A PPA or green power trade that names the GECs it carried (``gec_serials``) makes an id
  claim for the contract *and* range claims for those serials, held ``via`` the contract:
  the book is keyed by serial, so a serial claimed in a range by one batch and inside a
  contract by another conflicts (naming both), while the batches that share one contract
  claim parts of it that add up to at most its serials' MWh.
* Everything named by ``id`` (PPA, green power trade contracts, an I-REC certificate id) is
  an *id claim*: key ``SCHEME:id``, a claimed amount and the face value. Several batches may
  claim parts of it as long as the parts add up to no more than the face value, and all of
  them must state the same face value.

Range keys and id keys are separate namespaces: storage must keep the two kinds apart.
``check_claims`` asks a ``ClaimBook`` (storage; ``MemoryClaimBook`` in tests) what is already
claimed and raises ConflictError naming the certificate and what remains. Storage must run
the check and record the claims in one transaction, holding a lock on the keys, or two
batches can each see the certificate free.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Protocol

from ledger.batches.payload import KWH_PER_MWH, BatchRegistration, Certificate
from ledger.batches.serials import SerialRange
from ledger.errors import ConflictError

MAX_NAMED_HOLDINGS: Final = 3
"""How many earlier claims a conflict message names before summarising the rest."""


@dataclass(frozen=True)
class CertificateClaim:
    """One certificate named by a batch: what is claimed, out of what, and where it was named.

    Amounts are integer kWh (milli-MWh). ``serials`` is set for range claims.
    """

    scheme: str
    key: str
    claimed_kwh: int
    total_kwh: int
    field: str
    label: str
    serials: SerialRange | None = None
    #: The contract (``SCHEME:id``) a range claim is made through, for a contract's GECs.
    via: str | None = None

    @property
    def kind(self) -> str:
        """``range`` (serials, compared by interval) or ``id`` (amounts add up)."""
        return "id" if self.serials is None else "range"

    @property
    def first(self) -> int | None:
        """First serial of a range claim."""
        return None if self.serials is None else self.serials.first

    @property
    def last(self) -> int | None:
        """Last serial (inclusive) of a range claim."""
        return None if self.serials is None else self.serials.last


@dataclass(frozen=True)
class RangeHolding:
    """Serials ``first..last`` of a key already claimed, by whom (``smelter/batch``), and
    through which contract, if any."""

    first: int
    last: int
    holder: str
    via: str | None = None

    @property
    def who(self) -> str:
        return f"batch {self.holder}" + (f" through contract {self.via}" if self.via else "")


@dataclass(frozen=True)
class IdHolding:
    """What the ledger holds for an id certificate: its face value and the kWh claimed so far."""

    total_kwh: int
    claimed_kwh: int


class ClaimBook(Protocol):
    """What storage must answer about claims already on the ledger."""

    def overlapping_ranges(self, key: str, first: int, last: int) -> Sequence[RangeHolding]:
        """Range claims under ``key`` whose interval meets ``[first, last]``."""
        ...

    def id_holding(self, key: str) -> IdHolding | None:
        """Face value and total claimed for an id certificate, or None if never claimed."""
        ...

    def ranges_via(self, via: str) -> Sequence[tuple[str, int, int]]:
        """``(key, first, last)`` of the serials claimed through contract ``via``."""
        ...


def certificate_claims(reg: BatchRegistration) -> list[CertificateClaim]:
    """The claims a registration makes, in payload order (a contract's GECs after it)."""
    claims: list[CertificateClaim] = []
    for index, source in enumerate(reg.electricity):
        if source.certificate is not None:
            claims.extend(_claims(source.certificate, f"payload.electricity[{index}].certificate"))
    return claims


def _claims(cert: Certificate, field: str) -> list[CertificateClaim]:
    serials = cert.serials
    suffix = cert.id if serials is None else serials.key
    claim = CertificateClaim(
        scheme=cert.scheme,
        key=f"{cert.scheme}:{suffix}",
        claimed_kwh=cert.claimed_kwh,
        total_kwh=cert.total_kwh,
        field=field,
        label=cert.label,
        serials=serials,
    )
    carried = [
        CertificateClaim(
            scheme="GEC",
            key=f"GEC:{r.key}",
            claimed_kwh=r.count * KWH_PER_MWH,
            total_kwh=r.count * KWH_PER_MWH,
            field=f"{field}.gec_serials[{n}]",
            label=f"GEC {r.describe()}",
            serials=r,
            via=claim.key,
        )
        for n, r in enumerate(cert.gec_serials)
    ]
    return [claim, *carried]


def check_claims(new: Sequence[CertificateClaim], book: ClaimBook) -> None:
    """Refuse a batch whose claims overlap each other or what the ledger already holds."""
    _check_within_batch(new)
    for claim in new:
        if claim.serials is None:
            _check_id_claim(claim, book)
            _check_same_serials(claim, new, book)
        else:
            _check_range_claim(claim, claim.serials, book)


def _check_within_batch(claims: Sequence[CertificateClaim]) -> None:
    """The same certificate twice in one payload is a double claim too."""
    for later_index, later in enumerate(claims):
        for earlier in claims[:later_index]:
            if earlier.key != later.key or earlier.kind != later.kind:
                continue
            if later.serials is None or earlier.serials is None:
                raise ConflictError(
                    f"certificate {later.key} is already claimed by {earlier.field} in this"
                    " batch; claim each certificate once per batch",
                    field=later.field,
                )
            low = max(earlier.serials.first, later.serials.first)
            high = min(earlier.serials.last, later.serials.last)
            if low <= high:
                raise ConflictError(
                    f"{later.scheme} certificate(s) {later.serials.describe(low, high)}"
                    f" ({high - low + 1:,} MWh) are already claimed by {earlier.field} in this"
                    " batch; claim each certificate once",
                    field=later.field,
                )


def _check_range_claim(claim: CertificateClaim, serials: SerialRange, book: ClaimBook) -> None:
    """Any serial already claimed by another batch refuses the claim, naming the overlap."""
    holdings = sorted(
        (
            holding
            for holding in book.overlapping_ranges(claim.key, serials.first, serials.last)
            if claim.via is None or holding.via != claim.via  # one contract, shared by design
        ),
        key=lambda h: h.first,
    )
    if not holdings:
        return
    parts = []
    for holding in holdings[:MAX_NAMED_HOLDINGS]:
        low, high = max(holding.first, serials.first), min(holding.last, serials.last)
        parts.append(f"{serials.describe(low, high)} ({high - low + 1:,} MWh) by {holding.who}")
    more = len(holdings) - MAX_NAMED_HOLDINGS
    tail = f" and {more} more claim(s)" if more > 0 else ""
    mine = f"{claim.label} through contract {claim.via}" if claim.via else claim.label
    raise ConflictError(
        f"{claim.scheme} certificate(s) already claimed: {'; '.join(parts)}{tail}; this batch"
        f" claims {mine}",
        field=claim.field,
    )


def _check_same_serials(
    claim: CertificateClaim, new: Sequence[CertificateClaim], book: ClaimBook
) -> None:
    """Every batch claiming one contract names the same GECs for it."""
    known = sorted(book.ranges_via(claim.key))
    if not known:
        return
    named = sorted((c.key, c.first, c.last) for c in new if c.via == claim.key)
    if named != known:
        raise ConflictError(
            f"contract {claim.key} is on the ledger with other GEC serials than this batch"
            " names; every claim of a contract names the GECs it carried",
            field=claim.field,
        )


def _check_id_claim(claim: CertificateClaim, book: ClaimBook) -> None:
    """Partial claims add up to at most the face value, which every claimant states alike."""
    holding = book.id_holding(claim.key)
    if holding is None:
        return
    if holding.total_kwh != claim.total_kwh:
        raise ConflictError(
            f"certificate {claim.key} is on the ledger with a face value of"
            f" {_mwh(holding.total_kwh)} MWh; this batch states {_mwh(claim.total_kwh)} MWh",
            field=claim.field,
        )
    remaining = holding.total_kwh - holding.claimed_kwh
    if claim.claimed_kwh > remaining:
        raise ConflictError(
            f"certificate {claim.key} has {_mwh(holding.total_kwh)} MWh;"
            f" {_mwh(holding.claimed_kwh)} MWh already claimed, {_mwh(remaining)} MWh remain;"
            f" this batch claims {_mwh(claim.claimed_kwh)} MWh",
            field=claim.field,
        )


def _mwh(kwh: int) -> str:
    """kWh as a plain MWh number: 100000 -> '100', 12500 -> '12.5'."""
    return format((Decimal(kwh) / KWH_PER_MWH).normalize(), "f")


class MemoryClaimBook:
    """A ClaimBook in memory, for tests and offline checks."""

    def __init__(self) -> None:
        self._ranges: dict[str, list[RangeHolding]] = {}
        self._ids: dict[str, IdHolding] = {}
        self._via: dict[str, set[tuple[str, int, int]]] = {}

    def overlapping_ranges(self, key: str, first: int, last: int) -> Sequence[RangeHolding]:
        """Range claims under ``key`` whose interval meets ``[first, last]``."""
        return [h for h in self._ranges.get(key, []) if h.first <= last and first <= h.last]

    def id_holding(self, key: str) -> IdHolding | None:
        """Face value and total claimed for an id certificate."""
        return self._ids.get(key)

    def ranges_via(self, via: str) -> Sequence[tuple[str, int, int]]:
        """Serials claimed through contract ``via``."""
        return sorted(self._via.get(via, set()))

    def record(self, claims: Iterable[CertificateClaim], holder: str) -> None:
        """Book accepted claims for ``holder`` (``smelter/batch``); call after check_claims."""
        for claim in claims:
            if claim.serials is None:
                held = self._ids.get(claim.key, IdHolding(claim.total_kwh, 0))
                self._ids[claim.key] = IdHolding(
                    held.total_kwh, held.claimed_kwh + claim.claimed_kwh
                )
            else:
                first, last = claim.serials.first, claim.serials.last
                holding = RangeHolding(first, last, holder, claim.via)
                self._ranges.setdefault(claim.key, []).append(holding)
                if claim.via is not None:
                    self._via.setdefault(claim.via, set()).add((claim.key, first, last))
