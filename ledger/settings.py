"""Settings, read from the environment (``LEDGER_*``) by pydantic-settings."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.footprint import DEFAULT_TOLERANCE


class Settings(BaseSettings):
    """Everything an operator configures; each field is ``LEDGER_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", env_file=".env", extra="ignore")

    data_dir: Path = Path("data")
    #: SQLAlchemy URL; empty means the embedded SQLite file ``<data_dir>/ledger.db``.
    database_url: str = ""
    #: Ed25519 private key (PEM PKCS#8) that signs checkpoints; default ``<data_dir>/log-key.pem``.
    log_key_path: Path | None = None
    #: Checkpoint origin line, also the signed-note key name (no spaces, no '+').
    origin: str = "alu-ledger.localhost/log"
    operator_id: str = "operator"
    #: A statement signed more than this far in the future is refused.
    max_clock_skew_seconds: int = 300
    #: A statement signed longer ago than this is refused (default 30 days); so is one
    #: signed before the record that added its key (``max_clock_skew_seconds`` allowed).
    max_statement_age_seconds: int = 2_592_000
    #: Largest number of statements one bulk request may carry.
    max_bulk: int = 10_000
    #: A declared footprint more than this share below the computed one is flagged.
    footprint_tolerance: Decimal = DEFAULT_TOLERANCE
    #: Let GraphQL readers without a token open certificates (and nothing else).
    graphql_anonymous_certificates: bool = False
    #: Largest request body, in bytes, of one statement and of any other JSON request.
    max_body_bytes: int = 1_048_576
    #: Largest body of ``POST /v1/statements/bulk``.
    max_bulk_body_bytes: int = 16_777_216
    #: Largest body of certificate verification (REST and GraphQL, which take bundles).
    max_certificate_body_bytes: int = 4_194_304
    #: Deepest JSON nesting accepted in a request.
    max_json_depth: int = 64
    #: Most a GraphQL operation may cost, computed before it runs (docs/graphql.md).
    graphql_max_cost: int = 10_000
    #: How long one GraphQL request may read for, enforced in the database.
    graphql_time_limit_seconds: float = 10.0
    #: A grade's certificate bundle is rebuilt at most this often (at once when the grade's
    #: status changes); in between it is served from a cache.
    certificate_cache_seconds: float = 1.0
    #: Group commit: how long the first statement of a group may wait for others, in ms.
    group_commit_wait_ms: float = 2.0
    #: Group commit: most statements appended in one transaction under one checkpoint.
    group_commit_max_statements: int = 256
    #: ``serve --workers N``: how long a new connection may wait for the least loaded worker
    #: before any worker takes it (api/connection_balance.py).
    accept_grace_ms: float = Field(default=2.0, ge=0.1, le=1000.0)
    #: Committed tree nodes each server process keeps in memory for proofs (an LRU; about
    #: 150 bytes an entry; 0 turns it off). Nodes never change, so it never goes stale.
    node_cache_entries: int = 65_536

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'ledger.db'}"

    def resolved_log_key_path(self) -> Path:
        return self.log_key_path or self.data_dir / "log-key.pem"
