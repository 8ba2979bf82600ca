"""``signed_at``: when a statement says it was signed must be believable.

A statement's ``signed_at`` is the signer's clock. The ledger judges it against its own
clock and its own history, allowing the two clocks to differ by ``max_clock_skew``
(``LEDGER_MAX_CLOCK_SKEW_SECONDS``, 5 minutes) either way. It refuses a statement:

* signed in the future;
* signed longer ago than ``max_statement_age`` (``LEDGER_MAX_STATEMENT_AGE_SECONDS``,
  30 days): a statement signed in 1970 or in year 1 rewrites history, it is not a slow
  submission;
* signed before the record that added its signer key (``participant.register``,
  ``key.rotate``) was integrated: a key cannot have signed before the log knew it, so
  no participant backdates a statement to before its registration, nor a new key to
  before the rotation that brought it in.

Genesis adds its own key, so only the clock applies to it. The last two refusals are
``422 invalid`` naming ``statement.signed_at``; a refused statement changes nothing
stored, and a bulk append applies the same rules to every statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

import ledger.log
import ledger.statements
from api.app import create_app
from ledger import keys
from ledger.bootstrap import init_ledger
from ledger.catalog import default_kinds
from ledger.disclosure.sign import sign_statement
from ledger.errors import InvalidError, MalformedError
from ledger.kind_names import GENESIS
from ledger.log import Ledger
from ledger.settings import Settings
from ledger.statements import SignedStatement, make_statement, sign
from tests.conftest import LedgerEnv, make_env
from tests.support import assert_refused
from tests.test_attacks import empty_ledger, genesis_payload, stored_state

SMELTER = "yunnan-hydro"
THIRTY_DAYS = timedelta(days=30)


def stamp(when: datetime) -> str:
    """RFC 3339 UTC with microseconds, as the ledger writes ``integrated_at``."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def signed_at(key: Ed25519PrivateKey, when: str, i: int = 0) -> SignedStatement:
    """A document attestation by ``key`` that says it was signed at ``when``."""
    payload = {"sha256": f"{i:064x}", "media_type": "application/pdf", "title": f"report {i}"}
    return sign_statement("document.attest", payload, key, signed_at=when)


def integrated_at(env: LedgerEnv, index: int) -> datetime:
    text = env.ledger.record(index).to_dict()["integrated_at"]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def refused(env: LedgerEnv, *statements: SignedStatement) -> InvalidError:
    """Append ``statements`` (one, or a bulk), expecting a refusal that stores nothing."""
    before = stored_state(env.ledger.engine)
    with pytest.raises(InvalidError) as caught:
        if len(statements) == 1:
            env.ledger.append(statements[0])
        else:
            env.ledger.append_many(list(statements))
    assert stored_state(env.ledger.engine) == before
    return caught.value


def with_clock(env: LedgerEnv, **windows: timedelta) -> Ledger:
    """Another ledger object over the same database, with other time windows."""
    return Ledger(
        env.ledger.engine,
        env.ledger.signer,
        default_kinds(),
        operator_id=env.ledger.operator_id,
        **windows,
    )


@pytest.fixture
def aged(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LedgerEnv]:
    """A ledger started 40 days ago (its clock and its operator's were moved back), with
    a smelter registered that day; both clocks are back to now when the test runs."""
    then = datetime.now(UTC) - timedelta(days=40)
    with monkeypatch.context() as past:
        past.setattr(ledger.log, "clock", lambda: then)
        past.setattr(ledger.statements, "utc_now", lambda: stamp(then))
        env = make_env(database_url, tmp_path / "data")
        env.register(SMELTER, "smelter")
    assert integrated_at(env, 1) == then
    yield env
    env.ledger.engine.dispose()


# -- too old ------------------------------------------------------------------------------
@pytest.mark.parametrize("when", ["1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z"])
def test_a_statement_signed_in_1970_or_year_1_is_refused(env: LedgerEnv, when: str) -> None:
    smelter = env.register(SMELTER, "smelter")

    error = refused(env, signed_at(smelter, when))

    assert error.field == "statement.signed_at"
    assert f"signed_at {when} is older than the 30 days this ledger accepts" in error.detail
    assert "sign the statement again with the current time" in error.detail


def test_over_http_the_refusal_is_a_422_naming_signed_at(env: LedgerEnv) -> None:
    smelter = env.register(SMELTER, "smelter")
    client = TestClient(create_app(env.ledger))
    body = signed_at(smelter, "1970-01-01T00:00:00Z").to_dict()

    response = client.post("/v1/statements", json=body)

    refusal = assert_refused(response, 422, "invalid", "statement.signed_at")
    assert "older than the 30 days" in refusal["detail"]
    assert env.ledger.tree_size() == 2


def test_the_window_ends_exactly_max_statement_age_ago(
    aged: LedgerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the ledger's clock held still: signed exactly 30 days ago is accepted, a
    microsecond earlier is not. (The smelter's key is 40 days old, so only the window
    decides.)"""
    now = datetime.now(UTC)
    monkeypatch.setattr(ledger.log, "clock", lambda: now)
    smelter = aged.participant_keys[SMELTER]

    assert aged.ledger.append(signed_at(smelter, stamp(now - THIRTY_DAYS), 1)).index == 2
    error = refused(aged, signed_at(smelter, stamp(now - THIRTY_DAYS - timedelta(microseconds=1))))
    assert error.field == "statement.signed_at"
    assert "older than the 30 days" in error.detail


def test_just_inside_the_window_is_accepted(aged: LedgerEnv) -> None:
    smelter = aged.participant_keys[SMELTER]
    when = stamp(datetime.now(UTC) - THIRTY_DAYS + timedelta(minutes=1))
    appended = aged.ledger.append(signed_at(smelter, when))
    assert appended.record.statement["signed_at"] == when


def test_the_window_is_a_setting(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``LEDGER_MAX_STATEMENT_AGE_SECONDS`` reaches the ledger that ``init`` opens."""
    assert Settings.model_fields["max_statement_age_seconds"].default == 2_592_000
    monkeypatch.setenv("LEDGER_MAX_STATEMENT_AGE_SECONDS", "3600")
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    result = init_ledger(settings)
    try:
        assert result.ledger.max_statement_age == timedelta(hours=1)
        operator = keys.read_private_key(result.operator_key_path)
        two_hours_ago = stamp(datetime.now(UTC) - timedelta(hours=2))
        env = LedgerEnv(result.ledger, settings, operator)
        error = refused(env, signed_at(operator, two_hours_ago))
        assert "older than the 1 hour this ledger accepts" in error.detail
    finally:
        result.ledger.engine.dispose()


# -- before the key existed ---------------------------------------------------------------
def test_a_statement_signed_before_its_key_was_registered_is_refused(env: LedgerEnv) -> None:
    """Well inside the 30 days, but an hour before the smelter's registration."""
    smelter = env.register(SMELTER, "smelter")
    an_hour_before = stamp(integrated_at(env, 1) - timedelta(hours=1))

    error = refused(env, signed_at(smelter, an_hour_before))

    assert error.field == "statement.signed_at"
    assert f"signed_at {an_hour_before} is before the signer key was added" in error.detail
    assert "(record 1, integrated " in error.detail
    assert "sign the statement again with the current time" in error.detail


def test_a_signer_clock_behind_the_ledgers_by_less_than_the_skew_is_tolerated(
    env: LedgerEnv,
) -> None:
    smelter = env.register(SMELTER, "smelter")
    four_minutes_before = stamp(integrated_at(env, 1) - timedelta(minutes=4))
    assert env.ledger.append(signed_at(smelter, four_minutes_before)).index == 2


def test_with_no_skew_the_key_record_is_the_exact_boundary(env: LedgerEnv) -> None:
    smelter = env.register(SMELTER, "smelter")
    strict = with_clock(env, max_clock_skew=timedelta(0))
    added = integrated_at(env, 1)

    assert strict.append(signed_at(smelter, stamp(added), 1)).index == 2
    with pytest.raises(InvalidError, match="before the signer key was added"):
        strict.append(signed_at(smelter, stamp(added - timedelta(microseconds=1)), 2))


def test_a_rotated_in_key_cannot_sign_before_its_rotation(aged: LedgerEnv) -> None:
    """The smelter has existed for 40 days, but its new key only since the rotation: a
    statement the new key dates to yesterday is refused, naming the rotation record."""
    old = aged.participant_keys[SMELTER]
    new = keys.generate()
    rotation = aged.append(
        "key.rotate",
        {"participant_id": SMELTER, "new_public_key": keys.public_key_b64(new)},
        old,
    ).index
    yesterday = stamp(datetime.now(UTC) - timedelta(days=1))

    error = refused(aged, signed_at(new, yesterday))

    assert error.field == "statement.signed_at"
    assert f"(record {rotation}, integrated " in error.detail
    assert aged.ledger.append(signed_at(new, stamp(datetime.now(UTC)), 1)).index == rotation + 1


# -- bulks and genesis --------------------------------------------------------------------
@pytest.mark.parametrize("why", ["ancient", "before the key"])
def test_a_bulk_append_applies_the_same_checks_and_stores_nothing(env: LedgerEnv, why: str) -> None:
    smelter = env.register(SMELTER, "smelter")
    good = [signed_at(smelter, stamp(datetime.now(UTC)), i) for i in range(2)]
    when = (
        "1970-01-01T00:00:00Z"
        if why == "ancient"
        else stamp(integrated_at(env, 1) - timedelta(hours=1))
    )

    error = refused(env, *good, signed_at(smelter, when, 2))

    assert error.field == "statements[2].statement.signed_at"


def test_a_key_registered_earlier_in_a_bulk_signs_later_statements_of_that_bulk(
    env: LedgerEnv,
) -> None:
    """Every record of a bulk is integrated at the same time, the key's record too."""
    smelter = keys.generate()
    registration = sign_statement(
        "participant.register",
        {
            "participant_id": SMELTER,
            "legal_name": "Yunnan Hydro Aluminium Co., Ltd.",
            "role": "smelter",
            "country": "CN",
            "region": "CN-YN",
            "public_key": keys.public_key_b64(smelter),
        },
        env.operator_key,
    )
    now = stamp(datetime.now(UTC))
    appended = env.ledger.append_many([registration, signed_at(smelter, now)])
    assert [a.index for a in appended] == [1, 2]


def test_genesis_is_judged_by_the_clock_alone(database_url: str) -> None:
    """Genesis adds the key that signs it, so there is no earlier key record to be after:
    an hour-old genesis is accepted, one from 1970 is refused and leaves the ledger empty."""
    empty = empty_ledger(database_url)
    try:
        operator = keys.generate()
        payload = genesis_payload(empty, operator)
        ancient = make_statement(GENESIS, payload, operator, signed_at="1970-01-01T00:00:00Z")
        before = stored_state(empty.engine)
        with pytest.raises(InvalidError, match="older than the 30 days") as caught:
            empty.append(sign(ancient, operator))
        assert caught.value.field == "statement.signed_at"
        assert stored_state(empty.engine) == before
        assert empty.tree_size() == 0

        an_hour_ago = stamp(datetime.now(UTC) - timedelta(hours=1))
        genesis = make_statement(GENESIS, payload, operator, signed_at=an_hour_ago)
        assert empty.append(sign(genesis, operator)).index == 0
    finally:
        empty.engine.dispose()


def test_the_future_is_still_refused(env: LedgerEnv) -> None:
    smelter = env.register(SMELTER, "smelter")
    in_ten_minutes = stamp(datetime.now(UTC) + timedelta(minutes=10))
    with pytest.raises(MalformedError, match="future"):
        env.ledger.append(signed_at(smelter, in_ten_minutes))
