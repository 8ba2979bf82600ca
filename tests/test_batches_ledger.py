"""Registering batches on the ledger: what a smelter may register, and what readers get back.

A smelter signs a ``batch.register`` statement for each batch it casts. The ledger checks
that the signer is a smelter registering its own, new batch; that purchased primary metal
names batches already on the ledger; and that no green-electricity certificate is claimed
twice. For an accepted batch it stores the derived values (recycled content, renewable
share, electricity per tonne), the footprint it recomputed from the activity data, and how
the declared footprint compares. A refused batch leaves no trace. Runs on SQLite and on
PostgreSQL; the certificate race between two processes runs on PostgreSQL only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from ledger import keys
from ledger.batches.payload import parse_registration
from ledger.batches.reads import get_batch, list_batches
from ledger.disclosure.reveal import strip_commitments
from ledger.disclosure.sign import sign_statement
from ledger.errors import (
    ConflictError,
    ForbiddenError,
    MalformedError,
    NotFoundError,
)
from ledger.footprint import compute_footprint, load_factor_tables
from ledger.footprint.calculator import BREAKDOWN_ITEMS_V2
from ledger.storage.batches import BatchFilter
from ledger.storage.db import read_session
from ledger.storage.tables import CertificateClaimRow
from ledger.visibility import operator_viewer
from tests.conftest import PG_URL, LedgerEnv, make_env
from tests.support import OTHER_SMELTER, SMELTER, demo_batch, race, uncertified

GEC_PROJECT = "11012019061553087"
"""The 17-digit project part of the synthetic GEC codes below."""
GEC_KEY = f"GEC:{GEC_PROJECT}202502/11"
"""The claim key of the codes below: project, production month 2025-02, classes 1 and 1."""
OPERATOR = operator_viewer("operator")


# -- payloads -------------------------------------------------------------------------------
def gec(serial: int) -> str:
    """A well-formed 32-digit GEC code: the project, production month 2025-02, the 7-digit
    sequence, electricity and trade class 1."""
    return f"{GEC_PROJECT}202502{serial:07d}11"


def only_hydro_claim(batch_id: str) -> dict:
    """YN-2025-0001 under another id, its grid power uncertified: the claim a test makes
    on the hydro line is then the batch's only one."""
    payload = demo_batch("YN-2025-0001", batch_id=batch_id)
    payload["electricity"][1].pop("certificate", None)
    return payload


def claiming_gec(batch_id: str, first: int, last: int) -> dict:
    """YN-2025-0001 (300 MWh of hydro) backed by GEC serials ``first..last`` of one project."""
    payload = only_hydro_claim(batch_id)
    payload["electricity"][0]["certificate"] = {
        "scheme": "GEC",
        "first_id": gec(first),
        "last_id": gec(last),
        "mwh": str(last - first + 1),
        "vintage": "2025-02",
    }
    return payload


def claiming_ppa(batch_id: str, contract: str, mwh: str, total_mwh: str = "100") -> dict:
    """YN-2025-0001 with ``mwh`` of a PPA contract of ``total_mwh`` backing its hydro power."""
    payload = only_hydro_claim(batch_id)
    payload["electricity"][0]["certificate"] = {
        "scheme": "PPA",
        "id": contract,
        "mwh": mwh,
        "total_mwh": total_mwh,
        "vintage": "2025",
    }
    return payload


def computed_total(payload: dict) -> int:
    """The footprint the ledger will compute for this payload, kg CO2e/t."""
    result = compute_footprint(parse_registration(payload))
    assert result is not None
    return result.total_kg_co2e_per_t


def claims_in(env: LedgerEnv, key: str) -> list[tuple[str, str, int]]:
    """(smelter, batch, claimed kWh) of every stored claim under a certificate key."""
    table = CertificateClaimRow
    query = (
        select(table.smelter_id, table.batch_id, table.claimed_kwh)
        .where(table.claim_key == key)
        .order_by(table.record_index)
    )
    with read_session(env.ledger.engine) as session:
        return [tuple(row) for row in session.execute(query).all()]


# -- registering and reading back -------------------------------------------------------------
def test_a_registered_batch_reads_back_with_its_derived_values_and_record(
    env: LedgerEnv,
) -> None:
    smelter = env.register(SMELTER, "smelter", region="Yunnan")
    payload = demo_batch("YN-2025-0003")
    appended = env.append("batch.register", payload, smelter)

    batch = get_batch(env.ledger.engine, OPERATOR, SMELTER, "YN-2025-0003")

    assert batch["smelter_id"] == SMELTER
    assert batch["batch_id"] == "YN-2025-0003"
    assert batch["batch"] == payload
    assert batch["region"] == "Yunnan"
    # 22 t own metal + 2.775 t post-consumer scrap (with 272.8 kg of Mg and Si for 6063);
    # 290 MWh GEC-backed hydro + 15 MWh grid.
    assert batch["derived"] == {
        "metal_input_kg": 24_775,
        "recycled_content_pre_consumer": "0.0000",
        "recycled_content_post_consumer": "0.1120",
        "recycled_content_total": "0.1120",
        "electricity_total_kwh": 305_000,
        "electricity_kwh_per_t": "12298.3871",
        "renewable_kwh_certified": 290_000,
        "renewable_share": "0.9508",
        "renewable_kwh_uncertified": 0,
        "renewable_share_uncertified": "0.0000",
        # 22,000 of 24,775 kg from its own pots; their electricity 95.08 % certified
        "own_electrolysis_share": "0.8880",
        "green_power_share_primary": "0.9508",
        "certificate_time_matching": "same_year",
        "method": "alu-ledger-footprint/2",
        "factor_table_version": "2025.1",
        "gwp_set": "AR5",
    }
    # The record that proves it: same index and leaf hash as the ledger's own record.
    record = batch["record"]
    assert record["index"] == appended.index == env.ledger.tree_size() - 1
    stored = env.ledger.record(record["index"])
    assert record["leaf_hash"] == stored.leaf_hash.hex() == appended.record.leaf_hash.hex()
    assert record["integrated_at"] == stored.to_dict()["integrated_at"]
    assert stored.to_dict()["statement"] == appended.record.to_dict()["statement"]
    # The record carries the commitments the smelter signed, never the confidential values.
    signed = stored.to_dict()["statement"]["payload"]
    assert signed == strip_commitments(signed) | {
        "activity_data": signed["activity_data"],
        "evidence": signed["evidence"],
    }
    assert "ac_power_kwh_per_t" not in json.dumps(signed)
    assert "Casting record" not in json.dumps(signed)
    assert {k: v for k, v in signed.items() if k not in ("activity_data", "evidence")} == {
        k: v for k, v in payload.items() if k not in ("activity_data", "evidence")
    }


def test_the_stored_footprint_is_the_recomputation_with_breakdown_and_factor_version(
    env: LedgerEnv,
) -> None:
    smelter = env.register(SMELTER, "smelter")
    payload = demo_batch("YN-2025-0001")
    env.append("batch.register", payload, smelter)

    footprint = get_batch(env.ledger.engine, OPERATOR, SMELTER, "YN-2025-0001")["footprint"]

    expected = compute_footprint(parse_registration(payload))
    assert expected is not None
    assert footprint["declared_kg_co2e_per_t"] == 3800
    assert footprint["declared_boundary"] == "cradle_to_gate"
    assert footprint["computed"] == expected.to_dict()
    computed = footprint["computed"]
    assert list(computed["breakdown"]) == list(BREAKDOWN_ITEMS_V2)
    assert computed["method"] == "alu-ledger-footprint/2"
    assert computed["factor_table_version"] == load_factor_tables().version
    assert computed["gwp_set"] == "AR5"
    # Items are rounded one by one, so they may miss the rounded total by a kilogram or two
    # (the location-based electricity is a total of its own, not part of the market one).
    market = {k: v for k, v in computed["breakdown"].items() if k != "electricity_location_based"}
    assert abs(sum(market.values()) - computed["total_kg_co2e_per_t"]) <= 2
    assert footprint["check"] == "consistent"


def test_a_declaration_more_than_ten_percent_below_the_computation_is_flagged(
    env: LedgerEnv,
) -> None:
    smelter = env.register(SMELTER, "smelter")
    computed = computed_total(only_hydro_claim("YN-2025-0001"))
    edge = Decimal(computed) * Decimal("0.9")
    just_below = int(edge.to_integral_value(ROUND_CEILING)) - 1
    at_or_above = int(edge.to_integral_value(ROUND_CEILING))
    cases = (("low", 1, just_below), ("edge", 301, at_or_above), ("high", 601, 2 * computed))
    for batch_id, first_serial, declared in cases:
        payload = claiming_gec(batch_id, first_serial, first_serial + 299)
        payload["declared_footprint"]["kg_co2e_per_t"] = declared
        env.append("batch.register", payload, smelter)

    flagged = get_batch(env.ledger.engine, OPERATOR, SMELTER, "low")["footprint"]
    assert flagged["check"] == "declared_below_computed"
    assert flagged["computed"]["total_kg_co2e_per_t"] == computed
    # At the tolerance, or above the computation (measured upstream data...), is consistent.
    for batch_id in ("edge", "high"):
        assert get_batch(env.ledger.engine, OPERATOR, SMELTER, batch_id)["footprint"]["check"] == (
            "consistent"
        )


def test_a_batch_without_activity_data_is_registered_as_not_computable(env: LedgerEnv) -> None:
    smelter = env.register(SMELTER, "smelter")
    payload = demo_batch("YN-2025-0001")
    del payload["activity_data"]
    env.append("batch.register", payload, smelter)

    batch = get_batch(env.ledger.engine, OPERATOR, SMELTER, "YN-2025-0001")
    assert batch["footprint"]["computed"] is None
    assert batch["footprint"]["check"] == "not_computable"
    assert batch["footprint"]["declared_kg_co2e_per_t"] == 3800
    assert batch["derived"]["renewable_share"] == "1.0000"  # 300 + 25 MWh, all certified


# -- refusals ---------------------------------------------------------------------------------
def test_only_a_smelter_registers_batches(env: LedgerEnv) -> None:
    centre = env.register("green-eval", "evaluation_centre")
    size = env.ledger.tree_size()
    with pytest.raises(ForbiddenError, match="needs role smelter") as refused:
        env.append("batch.register", demo_batch("YN-2025-0001", smelter_id="green-eval"), centre)
    assert refused.value.field == "statement.signer"
    assert env.ledger.tree_size() == size


def test_a_smelter_cannot_register_a_batch_in_another_smelters_name(env: LedgerEnv) -> None:
    env.register(SMELTER, "smelter")
    other = env.register(OTHER_SMELTER, "smelter")
    size = env.ledger.tree_size()
    with pytest.raises(ForbiddenError, match=f"signer is {OTHER_SMELTER}") as refused:
        env.append("batch.register", demo_batch("YN-2025-0001", smelter_id=SMELTER), other)
    assert refused.value.field == "statement.payload.smelter_id"
    assert env.ledger.tree_size() == size


def test_a_batch_id_is_registered_once_per_smelter(env: LedgerEnv) -> None:
    smelter = env.register(SMELTER, "smelter")
    other = env.register(OTHER_SMELTER, "smelter")
    env.append("batch.register", uncertified(demo_batch("YN-2025-0001")), smelter)
    size = env.ledger.tree_size()

    with pytest.raises(ConflictError, match="already registered") as refused:
        env.append("batch.register", uncertified(demo_batch("YN-2025-0001")), smelter)
    assert refused.value.field == "statement.payload.batch_id"
    assert env.ledger.tree_size() == size

    # Batch ids are per smelter: another smelter may use the same one.
    mine = uncertified(demo_batch("YN-2025-0001", smelter_id=OTHER_SMELTER))
    env.append("batch.register", mine, other)
    assert get_batch(env.ledger.engine, OPERATOR, OTHER_SMELTER, "YN-2025-0001")["batch"] == mine


def test_purchased_primary_metal_names_lots_the_smelter_holds(env: LedgerEnv) -> None:
    env.register(SMELTER, "smelter")
    remelter = env.register("guangdong-remelt", "smelter")
    payload = demo_batch("GD-2025-0101", smelter_id="guangdong-remelt")
    payload["metal_inputs"]["purchased_primary_batches"] = [
        {"smelter_id": SMELTER, "batch_id": "YN-2025-0001", "mass_kg": 3000}
    ]
    size = env.ledger.tree_size()
    field = "statement.payload.metal_inputs.purchased_primary_batches[0].batch_id"

    with pytest.raises(NotFoundError, match=f"no lot {SMELTER}/YN-2025-0001") as refused:
        env.append("batch.register", payload, remelter)
    assert refused.value.field == field
    assert env.ledger.tree_size() == size

    env.append("batch.register", demo_batch("YN-2025-0001"), env.participant_keys[SMELTER])
    with pytest.raises(ForbiddenError, match=f"held by {SMELTER}") as refused:
        env.append("batch.register", payload, remelter)  # not bought yet
    assert refused.value.field == field
    assert env.ledger.tree_size() == size + 1

    sale = {
        "ns": SMELTER,
        "batch_id": "YN-2025-0001",
        "recipient_id": "guangdong-remelt",
        "mass_kg": 3000,
        "child_batch_id": "YN-2025-0001-GD",
    }
    env.append("custody.transfer", sale, env.participant_keys[SMELTER])
    payload["metal_inputs"]["purchased_primary_batches"][0]["batch_id"] = "YN-2025-0001-GD"
    env.append("batch.register", payload, remelter)
    batch = get_batch(env.ledger.engine, OPERATOR, "guangdong-remelt", "GD-2025-0101")
    assert batch["batch"] == payload
    # the lot gave up its kilograms: naming it again is a double spend
    again = {**payload, "batch_id": "GD-2025-0101-B"}
    with pytest.raises(ConflictError, match="0 kg available") as refused:
        env.append("batch.register", again, remelter)
    assert refused.value.field == field.replace(".batch_id", ".mass_kg")


def test_a_float_in_the_payload_is_refused_naming_the_field(env: LedgerEnv) -> None:
    smelter = env.register(SMELTER, "smelter")
    payload = demo_batch("YN-2025-0001")
    payload["electricity"][1]["kwh"] = 25000.0
    size = env.ledger.tree_size()
    with pytest.raises(MalformedError, match="float") as refused:
        env.append("batch.register", payload, smelter)
    assert refused.value.field == "statement.payload.electricity[1].kwh"
    assert env.ledger.tree_size() == size


# -- certificate claims -----------------------------------------------------------------------
def test_an_overlapping_gec_range_is_refused_naming_the_overlap_and_nothing_is_stored(
    env: LedgerEnv,
) -> None:
    smelter = env.register(SMELTER, "smelter")
    env.append("batch.register", claiming_gec("A", 101, 400), smelter)
    size = env.ledger.tree_size()

    with pytest.raises(ConflictError) as refused:
        env.append("batch.register", claiming_gec("B", 350, 500), smelter)

    assert refused.value.field == "statement.payload.electricity[0].certificate"
    assert f"{gec(350)}..{gec(400)} (51 MWh) by batch {SMELTER}/A" in refused.value.detail
    assert f"this batch claims GEC {gec(350)}..{gec(500)}" in refused.value.detail
    assert env.ledger.tree_size() == size
    with pytest.raises(NotFoundError):
        get_batch(env.ledger.engine, OPERATOR, SMELTER, "B")
    assert claims_in(env, GEC_KEY) == [(SMELTER, "A", 300_000)]

    # The serials right after A's are free.
    env.append("batch.register", claiming_gec("B", 401, 500), smelter)
    assert [batch for _, batch, _ in claims_in(env, GEC_KEY)] == ["A", "B"]


def test_another_smelter_cannot_claim_a_single_gec_code_inside_a_claimed_range(
    env: LedgerEnv,
) -> None:
    env.append("batch.register", claiming_gec("A", 101, 400), env.register(SMELTER, "smelter"))
    other = env.register(OTHER_SMELTER, "smelter")
    payload = demo_batch("YN-2025-0001", smelter_id=OTHER_SMELTER, batch_id="B")
    payload["electricity"][0]["certificate"] = {
        "scheme": "GEC",
        "id": gec(250),
        "mwh": "1",
        "vintage": "2025-02",
    }
    with pytest.raises(ConflictError, match=f"{gec(250)} \\(1 MWh\\) by batch {SMELTER}/A"):
        env.append("batch.register", payload, other)


def test_partial_claims_on_a_contract_add_up_to_its_face_value(env: LedgerEnv) -> None:
    smelter = env.register(SMELTER, "smelter")
    env.append("batch.register", claiming_ppa("A", "PPA-HYDRO-7", "60"), smelter)
    env.append("batch.register", claiming_ppa("B", "PPA-HYDRO-7", "30"), smelter)
    size = env.ledger.tree_size()

    with pytest.raises(ConflictError) as refused:
        env.append("batch.register", claiming_ppa("C", "PPA-HYDRO-7", "20"), smelter)
    assert refused.value.field == "statement.payload.electricity[0].certificate"
    assert refused.value.detail == (
        "certificate PPA:PPA-HYDRO-7 has 100 MWh; 90 MWh already claimed, 10 MWh remain;"
        " this batch claims 20 MWh"
    )
    assert env.ledger.tree_size() == size

    # What remains can still be claimed, to the kWh.
    env.append("batch.register", claiming_ppa("D", "PPA-HYDRO-7", "10"), smelter)
    claims = claims_in(env, "PPA:PPA-HYDRO-7")
    assert [(batch, kwh) for _, batch, kwh in claims] == [
        ("A", 60_000),
        ("B", 30_000),
        ("D", 10_000),
    ]
    with pytest.raises(ConflictError, match="0 MWh remain"):
        env.append("batch.register", claiming_ppa("E", "PPA-HYDRO-7", "0.001"), smelter)


def test_every_claimant_of_a_contract_states_the_same_face_value(env: LedgerEnv) -> None:
    smelter = env.register(SMELTER, "smelter")
    env.append("batch.register", claiming_ppa("A", "PPA-HYDRO-7", "60", total_mwh="100"), smelter)
    with pytest.raises(ConflictError, match="face value of 100 MWh; this batch states 1000 MWh"):
        env.append(
            "batch.register", claiming_ppa("B", "PPA-HYDRO-7", "60", total_mwh="1000"), smelter
        )


# -- listing ----------------------------------------------------------------------------------
LISTED = [
    # (smelter, batch id, product form, start, end)
    (SMELTER, "A1", "remelt_ingot", "2025-03-01", "2025-03-01"),
    (OTHER_SMELTER, "B1", "remelt_ingot", "2025-03-01", "2025-03-01"),
    (SMELTER, "A2", "billet", "2025-03-02", "2025-03-03"),
    (OTHER_SMELTER, "B2", "slab", "2025-03-03", "2025-03-04"),
    (SMELTER, "A3", "remelt_ingot", "2025-03-04", "2025-03-04"),
    (SMELTER, "A4", "billet", "2025-03-05", "2025-03-06"),
    (OTHER_SMELTER, "B3", "billet", "2025-03-07", "2025-03-07"),
]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def listed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LedgerEnv]:
    """Seven batches of two smelters, in the order of LISTED; shared by read-only tests."""
    tmp = tmp_path_factory.mktemp("listed")
    database = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'ledger.db'}"
    else:
        admin = request.getfixturevalue("pg_admin")
        template = request.getfixturevalue("pg_template")
        database = f"alu_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}" TEMPLATE "{template}"'))
        url = make_url(PG_URL).set(database=database).render_as_string(hide_password=False)
    env = make_env(url, tmp / "data")
    env.register(SMELTER, "smelter")
    env.register(OTHER_SMELTER, "smelter")
    signed = []
    for smelter_id, batch_id, form, start, end in LISTED:
        template = "YN-2025-0001" if smelter_id == SMELTER else "NM-2025-0001"
        payload = uncertified(demo_batch(template, smelter_id, batch_id))
        payload["product_form"] = form
        payload["production_period"] = {"start": start, "end": end}
        signed.append(sign_statement("batch.register", payload, env.participant_keys[smelter_id]))
    env.ledger.append_many(signed)
    yield env
    env.ledger.engine.dispose()
    if database:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def listed_ids(env: LedgerEnv, **where: str) -> list[str]:
    page = list_batches(env.ledger.engine, OPERATOR, BatchFilter(**where), limit=200)
    assert page["next_cursor"] is None
    return [item["batch_id"] for item in page["items"]]


def test_batches_list_in_ledger_order(listed: LedgerEnv) -> None:
    assert listed_ids(listed) == [batch_id for _, batch_id, *_ in LISTED]


def test_batches_filter_by_smelter_and_product_form(listed: LedgerEnv) -> None:
    assert listed_ids(listed, smelter_id=OTHER_SMELTER) == ["B1", "B2", "B3"]
    assert listed_ids(listed, product_form="billet") == ["A2", "A4", "B3"]
    assert listed_ids(listed, smelter_id=SMELTER, product_form="remelt_ingot") == ["A1", "A3"]
    assert listed_ids(listed, product_form="wire_rod") == []


def test_a_period_filter_keeps_batches_whose_production_overlaps_it(listed: LedgerEnv) -> None:
    overlapping = listed_ids(listed, period_from="2025-03-03", period_to="2025-03-04")
    assert overlapping == ["A2", "B2", "A3"]
    assert listed_ids(listed, period_from="2025-03-06") == ["A4", "B3"]
    assert listed_ids(listed, period_to="2025-03-01") == ["A1", "B1"]


def test_cursor_pages_return_every_batch_exactly_once(listed: LedgerEnv) -> None:
    seen: list[str] = []
    sizes: list[int] = []
    cursor = None
    while True:
        page = list_batches(listed.ledger.engine, OPERATOR, BatchFilter(), cursor=cursor, limit=3)
        seen += [item["batch_id"] for item in page["items"]]
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [3, 3, 1]
    assert seen == [batch_id for _, batch_id, *_ in LISTED]


def test_cursor_pages_keep_the_filter(listed: LedgerEnv) -> None:
    where = BatchFilter(smelter_id=SMELTER)
    first = list_batches(listed.ledger.engine, OPERATOR, where, limit=3)
    assert [item["batch_id"] for item in first["items"]] == ["A1", "A2", "A3"]
    second = list_batches(
        listed.ledger.engine, OPERATOR, where, cursor=first["next_cursor"], limit=3
    )
    assert [item["batch_id"] for item in second["items"]] == ["A4"]
    assert second["next_cursor"] is None


def test_an_unknown_batch_is_not_found(listed: LedgerEnv) -> None:
    with pytest.raises(NotFoundError, match=f"no batch {SMELTER}/B1") as refused:
        get_batch(listed.ledger.engine, OPERATOR, SMELTER, "B1")
    assert refused.value.field == "batch_id"


def test_a_page_that_ends_exactly_at_the_last_batch_has_no_next_cursor(
    listed: LedgerEnv,
) -> None:
    page = list_batches(listed.ledger.engine, OPERATOR, BatchFilter(), limit=len(LISTED))
    assert len(page["items"]) == len(LISTED)
    assert page["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["garbage!", "YmF0Y2g6eA", "b3RoZXI6Mw"])
def test_a_cursor_the_api_did_not_return_is_refused(listed: LedgerEnv, cursor: str) -> None:
    with pytest.raises(MalformedError) as refused:
        list_batches(listed.ledger.engine, OPERATOR, BatchFilter(), cursor=cursor)
    assert refused.value.field == "cursor"


@pytest.mark.parametrize("limit", [0, 201])
def test_a_page_size_out_of_range_is_refused(listed: LedgerEnv, limit: int) -> None:
    with pytest.raises(MalformedError, match="between 1 and 200") as refused:
        list_batches(listed.ledger.engine, OPERATOR, BatchFilter(), limit=limit)
    assert refused.value.field == "limit"


# -- two processes racing for one certificate ------------------------------------------------
RACE_ROUNDS = 5


def race_payloads(smelter_id: str, rounds: int) -> list[dict]:
    """Per round one batch claiming more than half of a fresh certificate.

    Even rounds: 60 of a 100 MWh PPA. Odd rounds: GEC ranges that share 100 serials.
    """
    payloads = []
    offset = 0 if smelter_id == "race-a" else 200
    for round_ in range(rounds):
        batch_id = f"{smelter_id}-{round_}"
        if round_ % 2 == 0:
            payload = claiming_ppa(batch_id, f"PPA-RACE-{round_}", "60")
        else:
            base = 10_000 * round_
            payload = claiming_gec(batch_id, base + offset + 1, base + offset + 300)
        payload["smelter_id"] = smelter_id
        payloads.append(payload)
    return payloads


def race_claim_key(round_: int) -> str:
    return f"PPA:PPA-RACE-{round_}" if round_ % 2 == 0 else GEC_KEY


def _race_worker(
    name: str,
    data_dir: str,
    database_url: str,
    key_path: str,
    payloads: list[dict],
    barrier: Any,
    results: Any,
) -> None:
    """Child process: open the ledger, then per round wait for the other and append."""
    from ledger.bootstrap import open_ledger
    from ledger.settings import Settings

    ledger = open_ledger(Settings(data_dir=Path(data_dir), database_url=database_url))
    key = keys.read_private_key(Path(key_path))
    try:
        for round_, payload in enumerate(payloads):
            signed = sign_statement("batch.register", payload, key)
            barrier.wait(timeout=60)
            try:
                ledger.append(signed)
                outcome = "ok"
            except ConflictError as error:
                outcome = f"conflict: {error}"
            except Exception as error:  # report anything else to the parent
                outcome = f"error: {type(error).__name__}: {error}"
            results.put((name, round_, outcome))
    finally:
        ledger.engine.dispose()


@pytest.mark.postgres
def test_two_processes_racing_for_one_certificate_cannot_both_claim_it(
    pg_url: str, tmp_path: Path
) -> None:
    env = make_env(pg_url, tmp_path / "data")
    try:
        key_paths = {}
        for name in ("race-a", "race-b"):
            key_paths[name] = tmp_path / f"{name}.pem"
            keys.write_private_key(env.register(name, "smelter"), key_paths[name])
        size = env.ledger.tree_size()

        outcomes = run_race(env, pg_url, key_paths)

        winners = []
        for round_ in range(RACE_ROUNDS):
            by_worker = outcomes[round_]
            won = [name for name, outcome in by_worker.items() if outcome == "ok"]
            lost = [n for n, outcome in by_worker.items() if outcome.startswith("conflict: ")]
            assert len(won) == 1 and len(lost) == 1, (round_, by_worker)
            assert "already claimed" in by_worker[lost[0]], by_worker
            winners.append(won[0])
        for round_, winner in enumerate(winners):
            held = [
                (smelter, batch)
                for smelter, batch, _ in claims_in(env, race_claim_key(round_))
                if batch.endswith(f"-{round_}")
            ]
            assert held == [(winner, f"{winner}-{round_}")]
        assert env.ledger.tree_size() == size + RACE_ROUNDS
    finally:
        env.ledger.engine.dispose()


def run_race(env: LedgerEnv, database_url: str, key_paths: dict[str, Path]) -> dict:
    """Start one process per smelter; return {round: {smelter: outcome}}."""
    data_dir = str(env.settings.data_dir)
    args = {
        name: (name, data_dir, database_url, str(path), race_payloads(name, RACE_ROUNDS))
        for name, path in key_paths.items()
    }
    return race(_race_worker, args, RACE_ROUNDS)
