"""Create a ledger (``alu-ledger init``) and open an existing one.

The log key lives in a PEM file beside the data (``LEDGER_LOG_KEY_PATH``); the
database remembers the verifier key written at genesis, and opening refuses a key
file that does not match it, so a misconfigured server can never sign checkpoints
for somebody else's log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import keys, statements
from ledger.catalog import default_kinds
from ledger.checkpoints import NoteSigner
from ledger.errors import InvalidError, NotFoundError
from ledger.kind_names import GENESIS
from ledger.log import Ledger
from ledger.settings import Settings
from ledger.storage.db import make_engine, read_session
from ledger.storage.migrate import migrate
from ledger.storage.repository import Repository


@dataclass(frozen=True)
class InitResult:
    ledger: Ledger
    created: bool
    operator_key_path: Path | None
    log_key_path: Path


def load_or_create_key(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    if path.exists():
        return keys.read_private_key(path), False
    key = keys.generate()
    keys.write_private_key(key, path)
    return key, True


def _ledger(settings: Settings, log_key: Ed25519PrivateKey) -> Ledger:
    engine = make_engine(settings.resolved_database_url())
    return Ledger(
        engine,
        NoteSigner(settings.origin, log_key),
        default_kinds(settings.footprint_tolerance),
        operator_id=settings.operator_id,
        max_clock_skew=timedelta(seconds=settings.max_clock_skew_seconds),
        max_statement_age=timedelta(seconds=settings.max_statement_age_seconds),
        max_bulk=settings.max_bulk,
        node_cache_entries=settings.node_cache_entries,
    )


def init_ledger(
    settings: Settings,
    *,
    operator_key_path: Path | None = None,
    operator_name: str = "Ledger Operator",
    country: str = "CN",
    region: str = "CN-BJ",
) -> InitResult:
    """Migrate the schema and, on an empty ledger, write the genesis record."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_key_path = settings.resolved_log_key_path()
    log_key, _ = load_or_create_key(log_key_path)
    ledger = _ledger(settings, log_key)
    migrate(ledger.engine)
    if ledger.tree_size() > 0:
        check_log_key(ledger)
        return InitResult(ledger, False, None, log_key_path)
    if operator_key_path is None:
        operator_key_path = settings.data_dir / "operator-key.pem"
        operator_key, _ = load_or_create_key(operator_key_path)
    else:
        operator_key = keys.read_private_key(operator_key_path)
    payload = {
        "origin": settings.origin,
        "log_verifier_key": ledger.verifier_key,
        "operator": {
            "participant_id": settings.operator_id,
            "legal_name": operator_name,
            "country": country,
            "region": region,
            "public_key": keys.public_key_b64(operator_key),
        },
    }
    ledger.append(statements.sign_new(GENESIS, payload, operator_key))
    return InitResult(ledger, True, operator_key_path, log_key_path)


def open_ledger(settings: Settings) -> Ledger:
    """Open an initialised ledger, refusing a log key that is not the genesis one."""
    path = settings.resolved_log_key_path()
    if not path.exists():
        raise NotFoundError(f"no log key at {path}; run `alu-ledger init` first")
    ledger = _ledger(settings, keys.read_private_key(path))
    migrate(ledger.engine)
    check_log_key(ledger)
    return ledger


def check_log_key(ledger: Ledger) -> None:
    with read_session(ledger.engine) as session:
        meta = Repository(session).meta()
    if not meta:
        raise NotFoundError("the ledger is not initialised; run `alu-ledger init`")
    if meta["log_verifier_key"] != ledger.verifier_key:
        raise InvalidError(
            f"log key file does not belong to this ledger (genesis key {meta['log_verifier_key']})",
            field="LEDGER_LOG_KEY_PATH",
        )
    if meta["origin"] != ledger.origin:
        raise InvalidError(
            f"LEDGER_ORIGIN is {ledger.origin!r} but this ledger's origin is {meta['origin']!r}",
            field="LEDGER_ORIGIN",
        )
