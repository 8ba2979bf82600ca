"""``alu-ledger``: the operator's and participants' command line.

Every command takes ``--database URL`` (default: ``LEDGER_DATABASE_URL`` or the
embedded SQLite file). A refusal prints one line ``error: <field>: <reason>`` to
stderr and exits 2; ``verify`` exits 1 when the ledger is not sound.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger import keys, statements
from ledger.audit import Auditor, AuditReport
from ledger.bootstrap import init_ledger, open_ledger
from ledger.checkpoints import NoteSigner, NoteVerifier
from ledger.disclosure.sign import sign_statement
from ledger.errors import LedgerError, MalformedError, NotFoundError
from ledger.log import Ledger
from ledger.secret_files import check_secret_target
from ledger.settings import Settings
from ledger.storage.db import make_engine, read_session
from ledger.storage.repository import Repository
from ledger.visibility import operator_viewer

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
proof_app = typer.Typer(no_args_is_help=True, help="Inclusion and consistency proofs.")
participant_app = typer.Typer(no_args_is_help=True, help="Participants and their keys.")
batch_app = typer.Typer(no_args_is_help=True, help="Batches smelters register.")
app.add_typer(proof_app, name="proof")
app.add_typer(participant_app, name="participant")
certificate_app = typer.Typer(no_args_is_help=True, help="Grade certificates, offline-verifiable.")
app.add_typer(batch_app, name="batch")
app.add_typer(certificate_app, name="certificate")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

Database = Annotated[
    str | None,
    typer.Option("--database", help="SQLAlchemy URL, e.g. postgresql+psycopg://u@host/db"),
]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Where keys and SQLite live")]
KeyFile = Annotated[Path, typer.Option("--key", help="PEM Ed25519 private key that signs")]
Server = Annotated[
    str | None,
    typer.Option("--server", help="Submit over HTTP to this ledger URL instead of the database"),
]
ReadServer = Annotated[
    str | None,
    typer.Option("--server", help="Read from this ledger server (URL) instead of a database"),
]
Token = Annotated[str | None, typer.Option(help="API token for --server (or LEDGER_API_TOKEN)")]
LogKey = Annotated[
    str | None,
    typer.Option("--log-key", help="Pinned verifier key string, or a file holding it"),
]

F = TypeVar("F", bound=Callable[..., Any])


def refusals_exit(func: F) -> F:
    """Turn a LedgerError into one readable line and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LedgerError as error:
            err.print(f"error: {error}", highlight=False, markup=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def settings_for(database: str | None, data_dir: Path | None = None) -> Settings:
    """The settings from the environment and the options; a bad ``LEDGER_*`` value is a
    refusal naming the variable."""
    overrides: dict[str, Any] = {}
    if database:
        overrides["database_url"] = database
    if data_dir:
        overrides["data_dir"] = data_dir
    try:
        return Settings(**overrides)
    except ValidationError as invalid:
        problem = invalid.errors()[0]
        variable = f"LEDGER_{str(problem['loc'][0]).upper()}" if problem["loc"] else "LEDGER_*"
        raise MalformedError(problem["msg"], field=variable) from None


def read_ledger(database: str | None, data_dir: Path | None) -> tuple[Ledger, Settings]:
    """The local ledger a read command reads, or a refusal that points a reader without
    one to ``--server`` (a buyer has no ledger to initialise)."""
    settings = settings_for(database, data_dir)
    if not settings.resolved_log_key_path().exists():
        raise NotFoundError(
            f"no ledger in {settings.data_dir}: to read a ledger server, add --server URL"
            " (and --token for what your participant may read)"
        )
    return open_ledger(settings), settings


@dataclass(frozen=True)
class ReadFrom:
    """Where a read command reads: the local ledger (as its operator), or a ledger server
    through its read policy (as the token's participant)."""

    database: str | None
    data_dir: Path | None
    server: str | None
    token: str | None

    def show(self, path: str, local: Callable[[Ledger, Settings], Any]) -> None:
        """Print the server's answer at REST ``path``, or ``local`` on the local ledger."""
        if self.server:
            print_json(remote_json(self.server, path, self.token))
        else:
            print_json(local(*read_ledger(self.database, self.data_dir)))


def remote_json(server: str, path: str, token: str | None = None) -> Any:
    from ledger.client import fetch_json

    return fetch_json(server, path, token=_token(token))


def _quoted(*parts: str) -> str:
    from urllib.parse import quote

    return "/".join(quote(part, safe="") for part in parts)


def print_json(value: Any) -> None:
    out.print_json(json.dumps(value))


def read_verifier_key_text(value: str) -> str:
    """A verifier key given inline or as a path to a file that holds it."""
    path = Path(value)
    return path.read_text().strip() if path.is_file() else value.strip()


def read_verifier_key(value: str) -> NoteVerifier:
    return NoteVerifier.parse(read_verifier_key_text(value))


def _own_verifier(settings: Settings) -> NoteVerifier:
    """The verifier key of the ledger whose log key this data directory holds."""
    path = settings.resolved_log_key_path()
    if not path.exists():
        raise NotFoundError(
            f"no --log-key given and no log key at {path}: pass the ledger's verifier key"
            " with --log-key (GET /v1/log-key gives it)",
            field="log_key",
        )
    signer = NoteSigner(settings.origin, keys.read_private_key(path))
    return NoteVerifier.parse(signer.verifier_key())


def read_json_file(path: Path) -> Any:
    """A JSON file, read as strictly as an HTTP body (``ledger/strict_json.py``)."""
    from ledger.strict_json import parse_json

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MalformedError(f"cannot read: {exc.strerror}", field=str(path)) from exc
    return parse_json(data, where=str(path))


# -- the log ----------------------------------------------------------------
@app.command()
@refusals_exit
def init(
    database: Database = None,
    data_dir: DataDir = None,
    operator_key: Annotated[
        Path | None, typer.Option(help="Operator's PEM key (default: create one)")
    ] = None,
    origin: Annotated[str | None, typer.Option(help="Checkpoint origin / log name")] = None,
) -> None:
    """Create the log key, the schema, the genesis record and the operator."""
    settings = settings_for(database, data_dir)
    if origin:
        settings.origin = origin
    result = init_ledger(settings, operator_key_path=operator_key)
    if not result.created:
        out.print(f"already initialised; log key {result.ledger.verifier_key}")
        return
    out.print(f"log key file: {result.log_key_path}")
    out.print(f"operator key: {result.operator_key_path}")
    out.print(f"verifier key: {result.ledger.verifier_key}")


@app.command()
@refusals_exit
def keygen(
    path: Annotated[Path, typer.Argument(help="Where to write the PEM private key")],
    force: Annotated[bool, typer.Option(help="Overwrite an existing file")] = False,
) -> None:
    """Write a new Ed25519 private key (PEM PKCS#8, mode 0600); print its id and public key.

    The file is written atomically and never through a symbolic link: a symlink at
    PATH is refused even with --force, and --force replaces a regular file whole."""
    check_secret_target(path, overwrite=True)  # a symlink or a non-file: never
    if path.exists() and not force:
        raise MalformedError("file exists; pass --force to overwrite", field=str(path))
    key = keys.generate()
    keys.write_private_key(key, path, overwrite=force)
    out.print(f"key id:     {keys.key_id(key)}")
    out.print(f"public key: {keys.public_key_b64(key)}")


@app.command()
@refusals_exit
def serve(
    database: Database = None,
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes (each forms its own groups)")
    ] = 1,
) -> None:
    """Serve the REST API (OpenAPI docs at /docs)."""
    settings = settings_for(database, data_dir)
    open_ledger(settings).engine.dispose()  # refuse at once if the ledger cannot be opened
    # The app (in each worker process) is built from the environment: pass the options on.
    os.environ["LEDGER_DATA_DIR"] = str(settings.data_dir)
    os.environ["LEDGER_DATABASE_URL"] = settings.resolved_database_url()
    if workers > 1:
        from api.local_server import serve_workers

        serve_workers("api.app:frozen_app", host, port, workers, settings.accept_grace_ms / 1000)
        return
    import uvicorn

    from api.app import frozen_app
    from api.local_server import HTTP_PARSER

    uvicorn.run(frozen_app(), host=host, port=port, http=HTTP_PARSER)


@app.command()
@refusals_exit
def demo(
    database: Database = None,
    data_dir: DataDir = None,
    keys_dir: Annotated[Path, typer.Option(help="Where demo participants' keys go")] = Path(
        "data/demo-keys"
    ),
) -> None:
    """Initialise if needed and load the demo participants and their records."""
    from ledger.demo import load_demo

    settings = settings_for(database, data_dir)
    result = init_ledger(settings)
    summary = load_demo(result.ledger, settings, keys_dir)
    for line in summary:
        out.print(line)


@app.command()
@refusals_exit
def verify(
    database: Database = None,
    data_dir: DataDir = None,
    log_key: LogKey = None,
    workers: Annotated[int | None, typer.Option(help="Processes checking signatures")] = None,
    server: Annotated[
        str | None, typer.Option("--server", help="Audit this ledger server over REST")
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(help="With --server: resume from and save the audit's progress here"),
    ] = None,
) -> None:
    """Audit everything: chain, signatures, key validity, Merkle root vs checkpoint.

    Needs only the log's public verifier key (--log-key, as `GET /v1/log-key` gives it;
    without it, the key of this data directory's ledger). The database is opened read
    only: the audit writes nothing and creates nothing, not even a missing database.
    With --server it reads the records over REST instead, page by page; --state FILE
    makes it resumable and proves the ledger still extends what was audited before."""
    if server:
        _verify_remote(server, log_key, state)
        return
    settings = settings_for(database, data_dir)
    verifier = read_verifier_key(log_key) if log_key else _own_verifier(settings)
    engine = make_engine(settings.resolved_database_url(), read_only=True)
    with read_session(engine) as session:
        head = Repository(session).head()
    total = head.size if head else 0
    with _progress() as progress:
        task = progress.add_task("records", total=total)
        auditor = Auditor(
            engine,
            verifier,
            workers=workers,
            on_progress=lambda done: progress.update(task, completed=done),
        )
        report = auditor.run()
    _print_report(report)


def _verify_remote(server: str, log_key: str | None, state: Path | None) -> None:
    from ledger.remote_audit import RemoteAuditor

    if not log_key:
        raise MalformedError(
            "--server needs --log-key: the key you trust, not one the server offers",
            field="log_key",
        )
    auditor = RemoteAuditor(server, read_verifier_key(log_key), state_file=state)
    with _progress() as progress:
        task = progress.add_task("records", total=None)
        auditor.on_progress = lambda done, total: progress.update(task, completed=done, total=total)
        report = auditor.run()
    if auditor.resumed_from:
        out.print(f"resumed from {auditor.resumed_from} records audited before")
    _print_report(report)


def _progress() -> Progress:
    return Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def _print_report(report: AuditReport) -> None:
    if report.ok:
        out.print(
            f"ok: {report.records} records verified against checkpoint {report.checkpoint_size}"
        )
        return
    problem = report.problem
    assert problem is not None  # a report that is not ok names its problem
    err.print(f"FAILED at index {problem.index}: {problem.reason}", markup=False)
    raise typer.Exit(1)


@app.command()
@refusals_exit
def checkpoint(
    database: Database = None,
    data_dir: DataDir = None,
    server: ReadServer = None,
    token: Token = None,
) -> None:
    """Print the latest signed checkpoint."""
    if server:
        from ledger.client import fetch_text

        sys.stdout.write(fetch_text(server, "/v1/checkpoint", token=_token(token)))
        return
    sys.stdout.write(read_ledger(database, data_dir)[0].latest_checkpoint())


@app.command()
@refusals_exit
def record(
    index: int,
    database: Database = None,
    data_dir: DataDir = None,
    server: ReadServer = None,
    token: Token = None,
) -> None:
    """Print one record and its leaf hash."""
    ReadFrom(database, data_dir, server, token).show(
        f"/v1/records/{index}", lambda ledger, _: ledger.record(index).with_leaf_hash()
    )


@proof_app.command("inclusion")
@refusals_exit
def proof_inclusion(
    index: int,
    tree_size: Annotated[int | None, typer.Option(help="Default: the latest size")] = None,
    database: Database = None,
    data_dir: DataDir = None,
    server: ReadServer = None,
    token: Token = None,
) -> None:
    """Inclusion proof of record INDEX in the tree of size N."""
    query = f"?tree_size={tree_size}" if tree_size else ""
    ReadFrom(database, data_dir, server, token).show(
        f"/v1/proofs/inclusion/{index}{query}",
        lambda ledger, _: ledger.inclusion_proof(index, tree_size).inclusion_json(),
    )


@proof_app.command("consistency")
@refusals_exit
def proof_consistency(
    old: int,
    new: int,
    database: Database = None,
    data_dir: DataDir = None,
    server: ReadServer = None,
    token: Token = None,
) -> None:
    """Consistency proof between tree sizes OLD and NEW."""
    if old > new:
        raise MalformedError("OLD must not exceed NEW", field="old")
    ReadFrom(database, data_dir, server, token).show(
        f"/v1/proofs/consistency?old={old}&new={new}",
        lambda ledger, _: ledger.consistency_proof(old, new).consistency_json(),
    )


# -- submitting ---------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Where a signed statement goes: the local database, or a ledger server over HTTP."""

    database: str | None = None
    data_dir: Path | None = None
    server: str | None = None
    log_key: str | None = None


def submit_statement(
    kind: str, payload: dict[str, Any], key_path: Path, target: Target
) -> dict[str, Any]:
    """Sign with the key file and append, locally or through a verifying HTTP client."""
    signed = sign_statement(kind, payload, keys.read_private_key(key_path))
    if target.server:
        return _submit_remote(signed, target.server, target.log_key)
    appended = open_ledger(settings_for(target.database, target.data_dir)).append(signed)
    return {"index": appended.index, "leaf_hash": appended.record.leaf_hash.hex()}


def submit_and_print(kind: str, payload: dict[str, Any], key_path: Path, target: Target) -> None:
    print_json(submit_statement(kind, payload, key_path, target))


def _submit_remote(
    signed: statements.SignedStatement, server: str, log_key: str | None
) -> dict[str, Any]:
    from ledger.client import LedgerClient

    if log_key:
        pinned = read_verifier_key_text(log_key)
    else:
        import httpx

        pinned = httpx.get(f"{server.rstrip('/')}/v1/log-key", timeout=10).text.strip()
        err.print(f"warning: trusting the server's log key on first use: {pinned}")
    with LedgerClient(server, pinned) as client:
        receipt = client.submit_signed(signed)
    return {"index": receipt.index, "leaf_hash": receipt.leaf_hash.hex(), "verified": True}


@app.command()
@refusals_exit
def submit(
    kind: Annotated[str, typer.Argument(help="Statement kind, e.g. document.attest")],
    payload_file: Annotated[Path, typer.Argument(help="JSON file with the payload")],
    key: KeyFile,
    database: Database = None,
    data_dir: DataDir = None,
    server: Server = None,
    log_key: LogKey = None,
) -> None:
    """Sign a payload of any kind and append it."""
    payload = read_json_file(payload_file)
    submit_and_print(kind, payload, key, Target(database, data_dir, server, log_key))


@participant_app.command("register")
@refusals_exit
def participant_register(
    participant_id: Annotated[str, typer.Option("--id")],
    legal_name: Annotated[str, typer.Option("--name")],
    role: Annotated[str, typer.Option(help="smelter | evaluation_centre | manufacturer | auditor")],
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2")],
    region: Annotated[str, typer.Option(help="Region or ISO 3166-2 code")],
    public_key: Annotated[
        str, typer.Option(help="base64 raw public key, or a PEM private key file")
    ],
    key: KeyFile,
    database: Database = None,
    data_dir: DataDir = None,
    server: Server = None,
    log_key: LogKey = None,
) -> None:
    """Register a participant and its public key (signed by the operator's key)."""
    payload = {
        "participant_id": participant_id,
        "legal_name": legal_name,
        "role": role,
        "country": country,
        "region": region,
        "public_key": public_key_text(public_key),
    }
    submit_and_print(
        "participant.register", payload, key, Target(database, data_dir, server, log_key)
    )


@participant_app.command("rotate-key")
@refusals_exit
def participant_rotate_key(
    participant_id: Annotated[str, typer.Option("--id")],
    new_public_key: Annotated[str, typer.Option(help="base64 raw key, or a PEM key file")],
    key: KeyFile,
    database: Database = None,
    data_dir: DataDir = None,
    server: Server = None,
    log_key: LogKey = None,
) -> None:
    """Replace a participant's key (signed by its current key or the operator)."""
    payload = {"participant_id": participant_id, "new_public_key": public_key_text(new_public_key)}
    submit_and_print("key.rotate", payload, key, Target(database, data_dir, server, log_key))


@participant_app.command("revoke-key")
@refusals_exit
def participant_revoke_key(
    participant_id: Annotated[str, typer.Option("--id")],
    key_id: Annotated[str, typer.Option("--key-id")],
    reason: Annotated[str, typer.Option()],
    key: KeyFile,
    database: Database = None,
    data_dir: DataDir = None,
    server: Server = None,
    log_key: LogKey = None,
) -> None:
    """Revoke a key: statements it signs from now on are refused."""
    payload = {"participant_id": participant_id, "key_id": key_id, "reason": reason}
    submit_and_print("key.revoke", payload, key, Target(database, data_dir, server, log_key))


@batch_app.command("register")
@refusals_exit
def batch_register(
    payload_file: Annotated[Path, typer.Argument(help="batch.register payload (JSON)")],
    key: KeyFile,
    database: Database = None,
    data_dir: DataDir = None,
    server: Server = None,
    log_key: LogKey = None,
) -> None:
    """Sign a batch registration with the smelter's key and submit it."""
    payload = read_json_file(payload_file)
    submit_and_print("batch.register", payload, key, Target(database, data_dir, server, log_key))


@batch_app.command("show")
@refusals_exit
def batch_show(
    smelter_id: str,
    batch_id: str,
    database: Database = None,
    data_dir: DataDir = None,
    server: ReadServer = None,
    token: Token = None,
) -> None:
    """A batch with its derived values, footprints and record (from the database as the
    operator, or from a server as your token's participant)."""
    from ledger.batches.reads import get_batch

    ReadFrom(database, data_dir, server, token).show(
        f"/v1/batches/{_quoted(smelter_id, batch_id)}",
        lambda ledger, settings: get_batch(
            ledger.engine, operator_viewer(settings.operator_id), smelter_id, batch_id
        ),
    )


@batch_app.command("footprint")
@refusals_exit
def batch_footprint(
    smelter_id: str,
    batch_id: str,
    method: Annotated[str, typer.Option(help="Footprint method")] = "alu-ledger-footprint/2",
    factor_table: Annotated[
        str | None, typer.Option(help="Factor table version (default: the newest)")
    ] = None,
    gwp_set: Annotated[str | None, typer.Option(help="GWP set (default: the declared)")] = None,
    database: Database = None,
    data_dir: DataDir = None,
    server: ReadServer = None,
    token: Token = None,
) -> None:
    """Recompute a stored batch's footprint with another method or factor table, beside the
    recorded one (a preview: nothing is written)."""
    from urllib.parse import urlencode

    from ledger.batches.reads import recompute_footprint
    from ledger.batches.registration import footprint_tolerance

    chosen = {"method": method, "factor_table_version": factor_table, "gwp_set": gwp_set}
    query = urlencode({name: value for name, value in chosen.items() if value})

    def local(ledger: Ledger, settings: Settings) -> dict[str, Any]:
        return recompute_footprint(
            ledger.engine,
            operator_viewer(settings.operator_id),
            smelter_id,
            batch_id,
            method=method,
            factor_table_version=factor_table,
            gwp_set=gwp_set,
            tolerance=footprint_tolerance(ledger.kinds),
        )

    ReadFrom(database, data_dir, server, token).show(
        f"/v1/batches/{_quoted(smelter_id, batch_id)}/footprint?{query}", local
    )


@app.command()
@refusals_exit
def footprint(
    payload_file: Annotated[Path, typer.Argument(help="batch.register payload (JSON)")],
) -> None:
    """Compute a batch's footprint from its activity data, without submitting anything."""
    from ledger.footprint import footprint_report_from_file

    print_json(footprint_report_from_file(payload_file).to_dict())


# -- certificates -------------------------------------------------------------
@certificate_app.command("get")
@refusals_exit
def certificate_get(
    grade_index: Annotated[int, typer.Argument(help="Record index of the grade.issue")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here")] = None,
    server: ReadServer = None,
    token: Token = None,
    database: Database = None,
    data_dir: DataDir = None,
) -> None:
    """Fetch a grade's certificate bundle (from the database, or a server with --server)."""
    if server:
        bundle = remote_json(server, f"/v1/certificates/{grade_index}", token)
    else:
        from ledger.certificates import build_bundle

        bundle = build_bundle(read_ledger(database, data_dir)[0], grade_index)
    text = json.dumps(bundle, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text)
    err.print(f"wrote certificate of grade {grade_index} to {output}")


@certificate_app.command("verify")
@refusals_exit
def certificate_verify(
    bundle_file: Annotated[Path, typer.Argument(help="Certificate bundle (JSON)")],
    log_key: Annotated[str, typer.Option("--log-key", help="Verifier key string, or its file")],
    against: Annotated[
        str | None, typer.Option(help="Also check freshness against this ledger URL")
    ] = None,
    today: Annotated[str | None, typer.Option(help="Judge expiry on YYYY-MM-DD")] = None,
    footprint_tolerance: Annotated[
        str, typer.Option(help="The ledger's LEDGER_FOOTPRINT_TOLERANCE")
    ] = "0.10",
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON")] = False,
    disclosures: Annotated[
        Path | None,
        typer.Option(help="The batch record's disclosures (GET /v1/records/N/disclosures)"),
    ] = None,
) -> None:
    """Verify a certificate offline; exit 0 only when the grade is valid.

    With --against, also fetch the grade's current bundle and prove the ledger's newer
    checkpoint consistent with the bundle's (revocations since then show up). With
    --disclosures, also check them against the batch record and recompute the grade's
    facts from the opened values."""
    from ledger.certificates import check_freshness, verify_bundle
    from ledger.disclosure.format import parse_document

    bundle = read_json_file(bundle_file)
    vkey = read_verifier_key_text(log_key)
    opened = None if disclosures is None else parse_document(read_json_file(disclosures))
    day = _date_option(today, "--today")
    tolerance = _decimal_option(footprint_tolerance, "--footprint-tolerance")
    if against:
        verdict = check_freshness(
            bundle, vkey, against, today=day, footprint_tolerance=tolerance, disclosures=opened
        )
    else:
        verdict = verify_bundle(
            bundle, vkey, today=day, footprint_tolerance=tolerance, disclosures=opened
        )
    if as_json:
        print_json(verdict.to_dict())
    else:
        for reason in verdict.reasons:
            out.print(f"{verdict.status}: {reason}", highlight=False, markup=False)
    if not verdict.valid:
        raise typer.Exit(1)


def _date_option(value: str | None, name: str) -> date | None:
    try:
        return None if value is None else date.fromisoformat(value)
    except ValueError:
        raise MalformedError("must be a date YYYY-MM-DD", field=name) from None


def _decimal_option(value: str, name: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = Decimal(-1)
    if not 0 <= number < 1:
        raise MalformedError("must be a decimal between 0 and 1", field=name)
    return number


# -- chain of custody ------------------------------------------------------------
custody_app = typer.Typer(no_args_is_help=True, help="Hand over, split and transform lots.")
app.add_typer(custody_app, name="custody")


@custody_app.command("transfer")
@refusals_exit
def custody_transfer(
    ns: Annotated[str, typer.Argument(help="Namespace of the lot (smelter id for a batch)")],
    batch_id: Annotated[str, typer.Argument(help="Batch or lot id")],
    to: Annotated[str, typer.Option("--to", help="Recipient participant id")],
    key: KeyFile,
    mass_kg: Annotated[
        int | None, typer.Option("--mass-kg", help="Part of the lot (needs --child-batch-id)")
    ] = None,
    child_batch_id: Annotated[
        str | None, typer.Option("--child-batch-id", help="Id of the child lot a part becomes")
    ] = None,
    database: Database = None,
    data_dir: DataDir = None,
    server: Server = None,
    log_key: LogKey = None,
) -> None:
    """Hand a lot you hold, or --mass-kg of it as a new child lot, to another participant."""
    payload: dict[str, Any] = {"ns": ns, "batch_id": batch_id, "recipient_id": to}
    if mass_kg is not None:
        payload["mass_kg"] = mass_kg
    if child_batch_id is not None:
        payload["child_batch_id"] = child_batch_id
    submit_and_print("custody.transfer", payload, key, Target(database, data_dir, server, log_key))


@custody_app.command("split")
@refusals_exit
def custody_split(
    ns: Annotated[str, typer.Argument(help="Namespace of the lot")],
    batch_id: Annotated[str, typer.Argument(help="Batch or lot id")],
    child: Annotated[
        list[str], typer.Option("--child", help="CHILD_ID=MASS_KG, once per child lot")
    ],
    key: KeyFile,
    database: Database = None,
    data_dir: DataDir = None,
    server: Server = None,
    log_key: LogKey = None,
) -> None:
    """Split a lot you hold into child lots that add up to its available mass."""
    payload = {"ns": ns, "batch_id": batch_id, "children": [_child_lot(c) for c in child]}
    submit_and_print("custody.split", payload, key, Target(database, data_dir, server, log_key))


def _child_lot(text: str) -> dict[str, Any]:
    child_id, _, mass = text.partition("=")
    if not child_id or not mass.isdigit():
        raise MalformedError(f"{text!r} is not CHILD_ID=MASS_KG", field="--child")
    return {"batch_id": child_id, "mass_kg": int(mass)}


@custody_app.command("transform")
@refusals_exit
def custody_transform(
    payload_file: Annotated[Path, typer.Argument(help="custody.transform payload (JSON)")],
    key: KeyFile,
    database: Database = None,
    data_dir: DataDir = None,
    server: Server = None,
    log_key: LogKey = None,
) -> None:
    """Remelt, cast, roll or extrude lots you hold (plus external inputs) into new lots."""
    payload = read_json_file(payload_file)
    target = Target(database, data_dir, server, log_key)
    submit_and_print("custody.transform", payload, key, target)


@custody_app.command("accept")
@refusals_exit
def custody_accept(
    transfer_index: Annotated[int, typer.Argument(help="Record index of the transfer")],
    key: KeyFile,
    database: Database = None,
    data_dir: DataDir = None,
    server: Server = None,
    log_key: LogKey = None,
) -> None:
    """Accept a transfer addressed to you that awaits acceptance."""
    payload = {"transfer_index": transfer_index}
    submit_and_print("custody.accept", payload, key, Target(database, data_dir, server, log_key))


@custody_app.command("cancel")
@refusals_exit
def custody_cancel(
    transfer_index: Annotated[int, typer.Argument(help="Record index of the transfer")],
    reason: Annotated[str, typer.Option()],
    key: KeyFile,
    database: Database = None,
    data_dir: DataDir = None,
    server: Server = None,
    log_key: LogKey = None,
) -> None:
    """Withdraw (sender) or decline (recipient) a transfer that awaits acceptance."""
    payload = {"transfer_index": transfer_index, "reason": reason}
    submit_and_print("custody.cancel", payload, key, Target(database, data_dir, server, log_key))


@custody_app.command("policy")
@refusals_exit
def custody_policy(
    key: KeyFile,
    require_acceptance: Annotated[
        bool,
        typer.Option(
            "--require-acceptance/--no-require-acceptance",
            help="Whether transfers to you wait for your custody accept",
        ),
    ],
    database: Database = None,
    data_dir: DataDir = None,
    server: Server = None,
    log_key: LogKey = None,
) -> None:
    """Set your custody policy (signed with your own key)."""
    payload = {"require_acceptance": require_acceptance}
    submit_and_print("custody.policy", payload, key, Target(database, data_dir, server, log_key))


@custody_app.command("show")
@refusals_exit
def custody_show(
    ns: str,
    batch_id: str,
    database: Database = None,
    data_dir: DataDir = None,
    server: ReadServer = None,
    token: Token = None,
) -> None:
    """A lot's holder, available mass, parents, children and custody history."""
    from ledger.custody.reads import custody_view

    ReadFrom(database, data_dir, server, token).show(
        f"/v1/batches/{_quoted(ns, batch_id)}/custody",
        lambda ledger, _: custody_view(ledger.engine, ns, batch_id),
    )


@app.command()
@refusals_exit
def lineage(
    ns: Annotated[str, typer.Argument(help="Namespace of the lot (smelter id for a batch)")],
    batch_id: Annotated[str, typer.Argument(help="Batch or lot id")],
    direction: Annotated[str, typer.Option(help="up (made of) or down (went into)")] = "up",
    depth: Annotated[int, typer.Option(help="Levels shown, 1 to 50")] = 10,
    database: Database = None,
    data_dir: DataDir = None,
    server: ReadServer = None,
    token: Token = None,
) -> None:
    """Lineage graph of a lot (JSON); going up, with its claim summary."""
    from ledger.custody.lineage import lineage as lineage_of

    ReadFrom(database, data_dir, server, token).show(
        f"/v1/batches/{_quoted(ns, batch_id)}/lineage?direction={direction}&depth={depth}",
        lambda ledger, _: lineage_of(ledger.engine, ns, batch_id, direction, depth),
    )


# -- disclosures ------------------------------------------------------------------
disclosure_app = typer.Typer(
    no_args_is_help=True,
    help="Who may read a smelter's confidential values, and the values' disclosures.",
)
app.add_typer(disclosure_app, name="disclosure")


@disclosure_app.command("grant")
@refusals_exit
def disclosure_grant(
    grantee: Annotated[str, typer.Argument(help="Participant id that may read")],
    key: KeyFile,
    batch_id: Annotated[
        str | None, typer.Option("--batch-id", help="Only this batch (default: all of yours)")
    ] = None,
    database: Database = None,
    data_dir: DataDir = None,
    server: Server = None,
    log_key: LogKey = None,
) -> None:
    """Let a participant read your batch's (or all your batches') disclosures."""
    payload: dict[str, Any] = {"grantee_id": grantee}
    if batch_id is not None:
        payload["batch_id"] = batch_id
    submit_and_print("disclosure.grant", payload, key, Target(database, data_dir, server, log_key))


@disclosure_app.command("revoke")
@refusals_exit
def disclosure_revoke(
    grant_index: Annotated[int, typer.Argument(help="Record index of the disclosure.grant")],
    key: KeyFile,
    database: Database = None,
    data_dir: DataDir = None,
    server: Server = None,
    log_key: LogKey = None,
) -> None:
    """End a grant you made."""
    payload = {"grant_index": grant_index}
    submit_and_print("disclosure.revoke", payload, key, Target(database, data_dir, server, log_key))


@disclosure_app.command("get")
@refusals_exit
def disclosure_get(
    index: Annotated[int, typer.Argument(help="Record index (e.g. of a batch.register)")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here")] = None,
    server: ReadServer = None,
    token: Token = None,
    database: Database = None,
    data_dir: DataDir = None,
) -> None:
    """A record's disclosures, for `certificate verify --disclosures` (from the database as
    the operator, or from a server with your API token)."""
    if server:
        document = remote_json(server, f"/v1/records/{index}/disclosures", token)
    else:
        from ledger.disclosure.reads import record_disclosures

        ledger, settings = read_ledger(database, data_dir)
        document = record_disclosures(ledger.engine, operator_viewer(settings.operator_id), index)
    text = json.dumps(document, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text)
    err.print(f"wrote the disclosures of record {index} to {output}")


def _token(value: str | None) -> str | None:
    return value or os.environ.get("LEDGER_API_TOKEN") or None


# -- API tokens (operator only) -------------------------------------------------
token_app = typer.Typer(
    no_args_is_help=True,
    help="API tokens for authenticated reads. Operator only: these commands need the "
    "ledger's database, so they run on the operator's machine (docs/tokens.md).",
)
app.add_typer(token_app, name="token")


@token_app.command("issue")
@refusals_exit
def token_issue(
    participant_id: Annotated[str, typer.Argument(help="Registered participant it speaks for")],
    label: Annotated[str | None, typer.Option(help="A note for listings, e.g. who uses it")] = None,
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", help="Expire after N days (default: never)")
    ] = None,
    database: Database = None,
    data_dir: DataDir = None,
) -> None:
    """Issue a token (operator only) and print it once: only its hash is kept."""
    from ledger.tokens import issue_token

    expires_at = None
    if expires_days is not None:
        if expires_days < 1:
            raise MalformedError("must be at least 1", field="--expires-days")
        expires_at = datetime.now(UTC) + timedelta(days=expires_days)
    ledger = open_ledger(settings_for(database, data_dir))
    issued = issue_token(ledger.engine, participant_id, label=label, expires_at=expires_at)
    sys.stdout.write(issued.token + "\n")
    err.print(
        f"warning: token {issued.info.token_id} cannot be shown again; store it now",
        highlight=False,
        markup=False,
    )


@token_app.command("list")
@refusals_exit
def token_list(
    participant: Annotated[str | None, typer.Option(help="Only this participant's")] = None,
    database: Database = None,
    data_dir: DataDir = None,
) -> None:
    """List tokens as JSON (ids, holders, labels, times, status; never secrets or hashes)."""
    from ledger.tokens import list_tokens

    ledger = open_ledger(settings_for(database, data_dir))
    print_json([info.to_dict() for info in list_tokens(ledger.engine, participant)])


@token_app.command("revoke")
@refusals_exit
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The 12 hex digits after alt_")],
    database: Database = None,
    data_dir: DataDir = None,
) -> None:
    """Revoke a token (operator only): refused from its next request on."""
    from ledger.tokens import revoke_token

    ledger = open_ledger(settings_for(database, data_dir))
    print_json(revoke_token(ledger.engine, token_id).to_dict())


def public_key_text(value: str) -> str:
    """Accept a base64 public key, or a PEM private key file to take the public half of."""
    path = Path(value)
    if path.is_file():
        return keys.public_key_b64(keys.read_private_key(path))
    keys.parse_public_key(value, field="--public-key")
    return value


def main() -> None:
    app()
