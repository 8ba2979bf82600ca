"""API tokens: the operator issues them, participants read with them, only hashes are kept.

A token ``alt_<token_id>_<secret>`` authenticates as its participant with the role the
ledger holds for it. The table never holds the secret or the token. A wrong secret, an
unknown id, malformed text, a revoked or an expired token are each refused with
``SignatureError`` (401) naming ``authorization``. Listings never show hashes. The
``alu-ledger token`` commands do the same from the operator's machine.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.bootstrap import open_ledger
from ledger.errors import InvalidError, MalformedError, NotFoundError, SignatureError
from ledger.settings import Settings
from ledger.storage.db import read_session
from ledger.storage.tables import ApiTokenRow
from ledger.storage.tokens import TokenRepository
from ledger.tokens import Viewer, authenticate, issue_token, list_tokens, revoke_token
from tests.conftest import LedgerEnv
from tests.support import SMELTER, CliLedger

CENTRE = "cnas-lab"


def refused(env: LedgerEnv, token: object, **kwargs: datetime) -> str:
    """Authenticate a token that must be refused; return the refusal's detail."""
    with pytest.raises(SignatureError) as caught:
        authenticate(env.ledger.engine, token, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == "authorization"
    assert caught.value.code == "bad_signature"
    return caught.value.detail


def test_an_issued_token_authenticates_as_its_participant_and_role(env: LedgerEnv) -> None:
    env.register(SMELTER, "smelter")
    env.register(CENTRE, "evaluation_centre")

    issued = issue_token(env.ledger.engine, SMELTER, label="erp integration")
    other = issue_token(env.ledger.engine, CENTRE)

    assert issued.token.startswith(f"alt_{issued.info.token_id}_")
    assert len(issued.info.token_id) == 12
    assert issued.token not in repr(issued)
    viewer = authenticate(env.ledger.engine, issued.token)
    assert viewer == Viewer(SMELTER, "smelter", issued.info.token_id)
    assert not viewer.is_anonymous
    with read_session(env.ledger.engine) as session:
        assert authenticate(session, other.token).role == "evaluation_centre"


def test_the_table_holds_only_the_sha256_of_the_secret(env: LedgerEnv) -> None:
    env.register(SMELTER, "smelter")
    issued = issue_token(env.ledger.engine, SMELTER, label="erp")
    secret = issued.token.split("_", 2)[2]

    with read_session(env.ledger.engine) as session:
        row = TokenRepository(session).token(issued.info.token_id)
        values = [getattr(row, column.name) for column in ApiTokenRow.__table__.columns]

    assert bytes(row.secret_sha256) == hashlib.sha256(secret.encode()).digest()
    for value in values:
        stored = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
        assert secret.encode() not in stored
        assert secret.encode().hex().encode() not in stored


def test_a_wrong_secret_an_unknown_id_and_malformed_text_are_refused(env: LedgerEnv) -> None:
    env.register(SMELTER, "smelter")
    issued = issue_token(env.ledger.engine, SMELTER)
    token_id = issued.info.token_id
    forged = f"alt_{token_id}_{'A' * 43}"
    unknown = f"alt_{'0' * 12}_{issued.token.split('_', 2)[2]}"

    assert refused(env, forged) == "unknown token or wrong secret"
    assert refused(env, unknown) == "unknown token or wrong secret"
    for text in (
        "",
        "Bearer " + issued.token,
        issued.token + "\n",
        issued.token[:-1],
        issued.token.replace("alt_", "alx_"),
        f"alt_{token_id.upper()}_{issued.token.split('_', 2)[2]}",
        None,
    ):
        assert refused(env, text).startswith("not an API token"), text


def test_a_revoked_token_is_refused_from_its_next_use(env: LedgerEnv) -> None:
    env.register(SMELTER, "smelter")
    issued = issue_token(env.ledger.engine, SMELTER)
    kept = issue_token(env.ledger.engine, SMELTER)

    revoked = revoke_token(env.ledger.engine, issued.info.token_id)
    again = revoke_token(env.ledger.engine, issued.info.token_id)

    assert revoked.status == "revoked"
    assert again.revoked_at == revoked.revoked_at
    assert refused(env, issued.token).startswith(f"token {issued.info.token_id} was revoked at")
    assert authenticate(env.ledger.engine, kept.token).participant_id == SMELTER
    with pytest.raises(NotFoundError) as unknown:
        revoke_token(env.ledger.engine, "0" * 12)
    assert unknown.value.field == "token_id"
    with pytest.raises(MalformedError) as malformed:
        revoke_token(env.ledger.engine, issued.token)
    assert malformed.value.field == "token_id"


def test_an_expired_token_is_refused(env: LedgerEnv) -> None:
    env.register(SMELTER, "smelter")
    expires = datetime.now(UTC) + timedelta(days=1)
    issued = issue_token(env.ledger.engine, SMELTER, expires_at=expires)

    assert authenticate(env.ledger.engine, issued.token).participant_id == SMELTER
    later = expires + timedelta(microseconds=1)
    assert refused(env, issued.token, now=later).startswith(
        f"token {issued.info.token_id} expired at {issued.info.expires_at}"
    )
    [listed] = list_tokens(env.ledger.engine, now=later)
    assert listed.status == "expired"


def test_tokens_are_issued_only_to_registered_participants(env: LedgerEnv) -> None:
    with pytest.raises(NotFoundError) as caught:
        issue_token(env.ledger.engine, "nobody")
    assert caught.value.field == "participant_id"
    with pytest.raises(NotFoundError):
        list_tokens(env.ledger.engine, "nobody")
    assert list_tokens(env.ledger.engine) == []


def test_a_listing_shows_status_and_holder_never_a_hash(env: LedgerEnv) -> None:
    env.register(SMELTER, "smelter")
    env.register(CENTRE, "evaluation_centre")
    first = issue_token(env.ledger.engine, SMELTER, label="erp")
    second = issue_token(env.ledger.engine, SMELTER)
    issue_token(env.ledger.engine, CENTRE)
    revoke_token(env.ledger.engine, second.info.token_id)

    listed = [info.to_dict() for info in list_tokens(env.ledger.engine, SMELTER)]

    assert [(t["token_id"], t["status"]) for t in listed] == [
        (first.info.token_id, "active"),
        (second.info.token_id, "revoked"),
    ]
    assert listed[0]["label"] == "erp"
    assert set(listed[0]) == {
        "token_id",
        "participant_id",
        "label",
        "created_at",
        "expires_at",
        "revoked_at",
        "status",
    }
    assert len(list_tokens(env.ledger.engine)) == 3


def test_a_past_or_naive_expiry_and_a_bad_label_are_refused(sqlite_env: LedgerEnv) -> None:
    engine = sqlite_env.ledger.engine
    cases = [
        ({"expires_at": datetime.now(UTC) - timedelta(seconds=1)}, InvalidError, "expires_at"),
        ({"expires_at": datetime(2099, 1, 1)}, MalformedError, "expires_at"),
        ({"label": ""}, MalformedError, "label"),
        ({"label": "two\nlines"}, MalformedError, "label"),
        ({"label": "x" * 201}, MalformedError, "label"),
    ]
    for kwargs, error, field in cases:
        with pytest.raises(error) as caught:
            issue_token(engine, "operator", **kwargs)
        assert caught.value.field == field, kwargs
    assert list_tokens(engine) == []


def test_the_anonymous_viewer_has_no_participant() -> None:
    viewer = Viewer.anonymous()
    assert viewer.is_anonymous
    assert (viewer.participant_id, viewer.role, viewer.token_id) == (None, None, None)


def test_the_operator_issues_lists_and_revokes_tokens_from_the_cli(tmp_path: Path) -> None:
    cli = CliLedger(tmp_path)
    assert cli.ledger("init").exit_code == 0

    issued = cli.ledger("token", "issue", "operator", "--label", "ops", "--expires-days", "30")
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip()
    token_id = token.split("_")[1]
    assert issued.stdout == token + "\n"
    assert issued.stderr.splitlines() == [
        f"warning: token {token_id} cannot be shown again; store it now"
    ]
    listed = json.loads(cli.ledger("token", "list", "--participant", "operator").stdout)
    assert [(t["token_id"], t["label"], t["status"]) for t in listed] == [
        (token_id, "ops", "active")
    ]
    assert token.split("_", 2)[2] not in json.dumps(listed)

    revoked = cli.ledger("token", "revoke", token_id)
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout)["status"] == "revoked"
    assert json.loads(cli.ledger("token", "list").stdout)[0]["status"] == "revoked"
    ledger = open_ledger(Settings(data_dir=cli.data_dir, database_url=cli.database))
    try:
        with pytest.raises(SignatureError, match="was revoked"):
            authenticate(ledger.engine, token)
    finally:
        ledger.engine.dispose()

    line = cli.error_line(cli.ledger("token", "issue", "nobody"))
    assert line == "error: participant_id: no participant nobody"
    line = cli.error_line(cli.ledger("token", "issue", "operator", "--expires-days", "0"))
    assert line == "error: --expires-days: must be at least 1"
    assert cli.error_line(cli.ledger("token", "revoke", "0" * 12)).startswith("error: token_id:")
