"""Certificate claims: GEC / I-REC range overlap, partial claims adding up, duplicates, formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.batches import (
    CertificateClaim,
    MemoryClaimBook,
    certificate_claims,
    check_claims,
    parse_registration,
)
from ledger.batches.serials import SerialRange
from ledger.errors import ConflictError, MalformedError

PROJECT = "11012019061553087"
OTHER_PROJECT = "21032020081244015"
DEMO = Path(__file__).resolve().parents[1] / "scripts" / "demo" / "batches.json"


def gec(sequence: int, project: str = PROJECT) -> str:
    """A GEC code of ``project`` for electricity of 2025-02, classes 1 and 1."""
    return f"{project}202502{sequence:07d}11"


def gec_range(first: int, last: int, project: str = PROJECT) -> dict[str, Any]:
    return {
        "scheme": "GEC",
        "first_id": gec(first, project),
        "last_id": gec(last, project),
        "mwh": str(last - first + 1),
        "vintage": "2025-02",
    }


def ppa(mwh: str, total: str = "100", contract: str = "ABC-2025-07") -> dict[str, Any]:
    return {"scheme": "PPA", "id": contract, "mwh": mwh, "vintage": "2025", "total_mwh": total}


def batch(batch_id: str, *certificates: dict[str, Any]) -> dict[str, Any]:
    """A small remelt batch whose electricity sources each carry one certificate."""
    sources = [
        {"type": "wind", "kwh": int(float(c["mwh"]) * 1000) or 1000, "certificate": c}
        for c in certificates
    ]
    return {
        "batch_id": batch_id,
        "smelter_id": "gd-zhaoqing-recycling",
        "product_form": "billet",
        "alloy": "6063",
        "mass_kg": 20000,
        "production_period": {"start": "2025-03-01", "end": "2025-03-31"},
        "site": "Zhaoqing casthouse",
        "route": "secondary",
        "metal_inputs": {
            "own_electrolysis_kg": 0,
            "purchased_primary_kg": 0,
            "pre_consumer_scrap_kg": 0,
            "post_consumer_scrap_kg": 20000,
        },
        "electricity": sources,
        "declared_footprint": {
            "kg_co2e_per_t": 500,
            "boundary": "cradle_to_gate",
            "method_standard": "ISO 14067",
            "gwp_set": "AR5",
            "recycled_content_method": "cut_off",
        },
    }


def claims_of(payload: dict[str, Any]) -> list[CertificateClaim]:
    return certificate_claims(parse_registration(payload))


def register(book: MemoryClaimBook, payload: dict[str, Any]) -> None:
    """What the append pipeline does: check, then record."""
    claims = claims_of(payload)
    check_claims(claims, book)
    book.record(claims, f"{payload['smelter_id']}/{payload['batch_id']}")


def conflict(book: MemoryClaimBook, payload: dict[str, Any]) -> ConflictError:
    with pytest.raises(ConflictError) as caught:
        register(book, payload)
    return caught.value


# --- claims from a registration -------------------------------------------------------------


def test_claims_of_each_kind():
    claims = claims_of(
        batch(
            "B-1",
            gec_range(101, 400),
            {"scheme": "GEC", "id": gec(401), "mwh": "1", "vintage": "2025-02"},
            {
                "scheme": "I-REC",
                "first_id": "IREC-CN-2025-0000012001",
                "last_id": "IREC-CN-2025-0000012270",
                "mwh": "270",
                "vintage": "2025-02",
            },
            ppa("12.5"),
            {
                "scheme": "I-REC",
                "id": "IREC-GD-2025-SOLAR-0007",
                "mwh": "2.5",
                "vintage": "2025",
                "total_mwh": "800",
            },
        )
    )
    gec_claim, single, irec_range, ppa_claim, irec_id = claims
    assert (gec_claim.kind, gec_claim.key, gec_claim.first, gec_claim.last) == (
        "range",
        f"GEC:{PROJECT}202502/11",
        101,
        400,
    )
    assert (gec_claim.claimed_kwh, gec_claim.total_kwh) == (300_000, 300_000)
    assert gec_claim.field == "payload.electricity[0].certificate"
    assert (single.key, single.first, single.last, single.claimed_kwh) == (
        f"GEC:{PROJECT}202502/11",
        401,
        401,
        1000,
    )
    assert (irec_range.key, irec_range.first, irec_range.last) == (
        "I-REC:IREC-CN-2025-",
        12001,
        12270,
    )
    assert (ppa_claim.kind, ppa_claim.key, ppa_claim.claimed_kwh, ppa_claim.total_kwh) == (
        "id",
        "PPA:ABC-2025-07",
        12_500,
        100_000,
    )
    assert ppa_claim.first is None
    assert (irec_id.kind, irec_id.key, irec_id.claimed_kwh) == (
        "id",
        "I-REC:IREC-GD-2025-SOLAR-0007",
        2_500,
    )


def test_serial_codes_are_written_back_in_full():
    serials = SerialRange(f"{PROJECT}202502", 101, 400, 7, "11")
    assert serials.code(101) == gec(101)
    assert serials.describe(150, 150) == gec(150)
    assert serials.describe() == f"{gec(101)}..{gec(400)}"


# --- GEC ranges -----------------------------------------------------------------------------


def test_overlapping_gec_range_is_refused_naming_the_overlap():
    book = MemoryClaimBook()
    register(book, batch("B-1", gec_range(101, 400)))
    err = conflict(book, batch("B-2", gec_range(350, 500)))
    assert err.field == "payload.electricity[0].certificate"
    assert f"{gec(350)}..{gec(400)} (51 MWh) by batch gd-zhaoqing-recycling/B-1" in err.detail
    assert f"this batch claims GEC {gec(350)}..{gec(500)}" in err.detail


def test_range_inside_an_earlier_range_is_refused():
    book = MemoryClaimBook()
    register(book, batch("B-1", gec_range(101, 400)))
    err = conflict(
        book, batch("B-2", {"scheme": "GEC", "id": gec(200), "mwh": "1", "vintage": "2025"})
    )
    assert f"{gec(200)} (1 MWh) by batch gd-zhaoqing-recycling/B-1" in err.detail


def test_range_spanning_several_claims_names_each():
    book = MemoryClaimBook()
    for index, (first, last) in enumerate([(1, 10), (21, 30), (41, 50), (61, 70)]):
        register(book, batch(f"B-{index}", gec_range(first, last)))
    err = conflict(book, batch("B-9", gec_range(5, 65)))
    assert f"{gec(5)}..{gec(10)} (6 MWh) by batch gd-zhaoqing-recycling/B-0" in err.detail
    assert f"{gec(21)}..{gec(30)} (10 MWh)" in err.detail
    assert f"{gec(41)}..{gec(50)} (10 MWh)" in err.detail
    assert "and 1 more claim(s)" in err.detail


def test_adjacent_ranges_do_not_conflict():
    book = MemoryClaimBook()
    register(book, batch("B-1", gec_range(101, 400)))
    register(book, batch("B-2", gec_range(401, 500)))
    register(book, batch("B-3", gec_range(1, 100)))


def test_same_serials_of_another_project_do_not_conflict():
    book = MemoryClaimBook()
    register(book, batch("B-1", gec_range(101, 400)))
    register(book, batch("B-2", gec_range(101, 400, OTHER_PROJECT)))


def test_irec_ranges_overlap_like_gec_ranges():
    def irec(first: int, last: int) -> dict[str, Any]:
        return {
            "scheme": "I-REC",
            "first_id": f"IREC-CN-2025-{first:010d}",
            "last_id": f"IREC-CN-2025-{last:010d}",
            "mwh": str(last - first + 1),
            "vintage": "2025-02",
        }

    book = MemoryClaimBook()
    register(book, batch("B-1", irec(12001, 12270)))
    err = conflict(book, batch("B-2", irec(12270, 12300)))
    assert "IREC-CN-2025-0000012270 (1 MWh) by batch gd-zhaoqing-recycling/B-1" in err.detail


@given(
    a=st.tuples(st.integers(0, 60), st.integers(0, 20)),
    b=st.tuples(st.integers(0, 60), st.integers(0, 20)),
)
def test_range_conflict_exactly_when_intervals_share_a_serial(
    a: tuple[int, int], b: tuple[int, int]
):
    first_a, last_a = a[0], a[0] + a[1]
    first_b, last_b = b[0], b[0] + b[1]
    book = MemoryClaimBook()
    register(book, batch("A", gec_range(first_a, last_a)))
    shared = set(range(first_a, last_a + 1)) & set(range(first_b, last_b + 1))
    if shared:
        err = conflict(book, batch("B", gec_range(first_b, last_b)))
        assert f"({len(shared)} MWh)" in err.detail
    else:
        register(book, batch("B", gec_range(first_b, last_b)))


# --- id certificates: partial claims add up -------------------------------------------------


def test_partial_claims_add_up_to_the_face_value():
    book = MemoryClaimBook()
    register(book, batch("B-1", ppa("50")))
    register(book, batch("B-2", ppa("30")))
    err = conflict(book, batch("B-3", ppa("30")))
    assert err.field == "payload.electricity[0].certificate"
    assert err.detail == (
        "certificate PPA:ABC-2025-07 has 100 MWh; 80 MWh already claimed, 20 MWh remain;"
        " this batch claims 30 MWh"
    )
    register(book, batch("B-4", ppa("20")))  # exactly what remains
    err = conflict(book, batch("B-5", ppa("0.001")))
    assert "0 MWh remain; this batch claims 0.001 MWh" in err.detail


def test_fractional_claims_are_exact():
    book = MemoryClaimBook()
    for index in range(10):
        register(book, batch(f"B-{index}", ppa("0.1", total="1")))  # 10 x 0.1 = 1, no float drift
    assert book.id_holding("PPA:ABC-2025-07").claimed_kwh == 1000  # type: ignore[union-attr]
    assert (
        "1 MWh already claimed, 0 MWh remain"
        in conflict(book, batch("B-X", ppa("0.1", "1"))).detail
    )


def test_every_claimant_states_the_same_face_value():
    book = MemoryClaimBook()
    register(book, batch("B-1", ppa("50")))
    err = conflict(book, batch("B-2", ppa("50", total="200")))
    assert "on the ledger with a face value of 100 MWh; this batch states 200 MWh" in err.detail


def test_id_and_range_keys_do_not_mix():
    book = MemoryClaimBook()
    irec_id = {
        "scheme": "I-REC",
        "id": "IREC-CN-2025-0000012001",
        "mwh": "1",
        "vintage": "2025",
        "total_mwh": "1",
    }
    register(book, batch("B-1", irec_id))
    assert book.overlapping_ranges("I-REC:IREC-CN-2025-", 0, 10**12) == []


# --- double claims within one payload -------------------------------------------------------


def test_overlapping_ranges_within_one_payload():
    err = conflict(MemoryClaimBook(), batch("B-1", gec_range(101, 200), gec_range(150, 250)))
    assert err.field == "payload.electricity[1].certificate"
    assert f"{gec(150)}..{gec(200)} (51 MWh) are already claimed by" in err.detail
    assert "payload.electricity[0].certificate in this batch" in err.detail


def test_same_code_twice_within_one_payload():
    single = {"scheme": "GEC", "id": gec(7), "mwh": "1", "vintage": "2025"}
    err = conflict(MemoryClaimBook(), batch("B-1", single, dict(single)))
    assert err.field == "payload.electricity[1].certificate"
    assert f"certificate(s) {gec(7)} (1 MWh)" in err.detail


def test_same_contract_twice_within_one_payload():
    err = conflict(MemoryClaimBook(), batch("B-1", ppa("10"), ppa("20")))
    assert err.field == "payload.electricity[1].certificate"
    assert "PPA:ABC-2025-07 is already claimed by payload.electricity[0].certificate" in err.detail


def test_within_payload_is_checked_before_the_book():
    book = MemoryClaimBook()
    register(book, batch("B-1", gec_range(1, 10)))
    err = conflict(book, batch("B-2", gec_range(20, 30), gec_range(25, 26)))
    assert "in this batch" in err.detail


def test_refused_batch_leaves_the_book_untouched():
    book = MemoryClaimBook()
    register(book, batch("B-1", ppa("90")))
    conflict(book, batch("B-2", ppa("5"), gec_range(1, 2), ppa("6")))
    assert book.id_holding("PPA:ABC-2025-07").claimed_kwh == 90000  # type: ignore[union-attr]
    assert book.overlapping_ranges(f"GEC:{PROJECT}202502/11", 1, 2) == []


# --- malformed GEC codes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "why"),
    [
        (PROJECT + "0" * 14, "31 digits"),
        (PROJECT + "0" * 16, "33 digits"),
        (PROJECT + "0" * 14 + "A", "a letter"),
        ("GEC-" + PROJECT + "0" * 11, "a prefix"),
        (" " + PROJECT + "0" * 14, "a space"),
    ],
)
def test_malformed_gec_code(code: str, why: str):
    single = {"scheme": "GEC", "id": code, "mwh": "1", "vintage": "2025"}
    with pytest.raises(MalformedError) as caught:
        parse_registration(batch("B-1", single))
    assert caught.value.field == "payload.electricity[0].certificate.id", why
    assert "32-digit GEC code" in caught.value.detail


# --- demo data ------------------------------------------------------------------------------


def test_demo_batches_claim_every_certificate_once():
    book = MemoryClaimBook()
    payloads = json.loads(DEMO.read_text())
    for payload in payloads:
        register(book, payload)
    with_certificates = [p for p in payloads if claims_of(p)]
    assert len(with_certificates) >= 8
    schemes = {c.scheme for p in with_certificates for c in claims_of(p)}
    assert schemes == {"GEC", "I-REC", "PPA", "green_power_trade"}
    for payload in with_certificates:
        # serials claimed directly are claimed whole; a contract's parts may add up
        if any(c.kind == "range" and c.via is None for c in claims_of(payload)):
            conflict(book, {**payload, "batch_id": payload["batch_id"] + "-again"})
