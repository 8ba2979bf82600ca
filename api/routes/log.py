"""The log: submit statements, read records, checkpoints and proofs."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.body_docs import body_doc
from api.deps import (
    BodyDep,
    CommitterDep,
    LedgerDep,
    MaybeTreeSize,
    RecordIndex,
    TreeSize,
    ViewerDep,
    committer_of,
    json_body,
    ledger_of,
    proof_reads_of,
)
from api.errors import EVERY_ROUTE, documented
from ledger.canonical import SAFE_INTEGER
from ledger.disclosure.reads import record_disclosures
from ledger.disclosure.views import RecordDisclosures
from ledger.errors import MalformedError
from ledger.log import Appended
from ledger.statements import SignedStatement

router = APIRouter(prefix="/v1", tags=["log"], responses=EVERY_ROUTE)


# The request models below only document the bodies (``body_doc``): the routes parse
# the raw JSON themselves (``SignedStatement.parse``), which refuses unknown members.
class StatementModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(examples=["document.attest"])
    payload: dict[str, Any]
    signer: str = Field(description="lowercase hex SHA-256 of the raw Ed25519 public key")
    nonce: str = Field(description="random, never reused by the same signer")
    signed_at: str = Field(examples=["2026-11-21T08:00:00Z"])


class SignedStatementModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statement: StatementModel
    signature: str = Field(description="base64 Ed25519 signature over the RFC 8785 statement")
    disclosures: list[list[Any]] = Field(
        default=[],
        description="Disclosures opening the statement's committed members: [salt, name, value],"
        " [salt, value] or the decoy [salt] (docs/confidentiality.md); stored apart, never in"
        " the record",
    )


class BulkModel(BaseModel):
    statements: list[SignedStatementModel]


class InclusionProofModel(BaseModel):
    index: int
    tree_size: int
    hashes: list[str]


class ConsistencyProofModel(BaseModel):
    old: int
    new: int
    hashes: list[str]


class RecordModel(BaseModel):
    record: dict[str, Any]
    leaf_hash: str


class RawRecordModel(BaseModel):
    index: int
    leaf: str = Field(description="the record's exact bytes (RFC 8785 JSON), standard base64")
    leaf_hash: str = Field(description="RFC 9162 leaf hash of those bytes, hex")


class RecordsPageModel(BaseModel):
    records: list[RawRecordModel]
    tree_size: int = Field(description="the tree size the page was read under")
    next_start: int | None = Field(description="start of the next page; null after the last")


#: The most records one page holds (about 1 KB each).
MAX_RECORDS_PAGE = 1_000


class AppendedModel(RecordModel):
    inclusion_proof: InclusionProofModel
    checkpoint: str


class BulkAppendedModel(BaseModel):
    records: list[RecordModel]
    tree_size: int
    checkpoint: str


def json_response(content: Any, status_code: int = 200) -> Response:
    """``content`` (plain integers and strings) encoded here, for a hot route whose
    ``response_model`` only documents the answer: a pass through the model would cost
    more than building the answer did."""
    body = json.dumps(content, separators=(",", ":"))
    return Response(body, status_code=status_code, media_type="application/json")


def appended_body(appended: Appended) -> bytes:
    """The answer to one append (``AppendedModel``). The record goes in as its leaf bytes:
    RFC 8785 JSON is JSON, so it is not parsed here only to be encoded again."""
    proof = appended.inclusion_proof()  # from the writer's nodes: no read after the commit
    rest = {
        "leaf_hash": appended.record.leaf_hash.hex(),
        "inclusion_proof": proof.inclusion_json(),
        "checkpoint": appended.checkpoint,
    }
    encoded = json.dumps(rest, separators=(",", ":")).encode()
    return b'{"record":' + appended.record.leaf + b"," + encoded[1:]


@router.post(
    "/statements",
    status_code=201,
    response_model=AppendedModel,  # documents the answer (encoded directly)
    openapi_extra=body_doc(SignedStatementModel),
    summary="Append one signed statement",
    responses=documented(401, 403, 409, 413),
)
async def post_statement(request: Request) -> Response:
    """Append a signed statement; returns the record, its inclusion proof and a checkpoint.

    Statements that arrive together are appended in one transaction under one checkpoint
    (group commit, `LEDGER_GROUP_COMMIT_WAIT_MS`); each is checked on its own, so another
    caller's refused statement never fails this one.

    Errors: 422 malformed or invalid (naming the field), 401 bad signature, 403 signer
    not allowed, 409 replay or conflict with recorded state.
    """
    # Async: the request waits on the writer thread's future in the event loop, with no
    # worker thread of its own to hand the request to and wake again. The body and the
    # writer are taken from the request, not through dependencies (``ledger_of``).
    signed = SignedStatement.parse(await json_body(request))
    appended = await committer_of(request).submit_async(signed)
    return Response(appended_body(appended), status_code=201, media_type="application/json")


@router.post(
    "/statements/bulk",
    status_code=201,
    response_model=BulkAppendedModel,
    openapi_extra=body_doc(BulkModel),
    summary="Append many signed statements in one transaction",
    responses=documented(401, 403, 409, 413),
)
def post_statements_bulk(writer: CommitterDep, body: BodyDep) -> dict[str, Any]:
    """All statements are recorded, in order, under one checkpoint - or none is."""
    if not isinstance(body, dict) or not isinstance(body.get("statements"), list):
        raise MalformedError("must be a list of signed statements", field="statements")
    items = body["statements"]
    parsed = [SignedStatement.parse(item, f"statements[{i}]") for i, item in enumerate(items)]
    appended = writer.submit_many(parsed)
    return {
        "records": [a.record.with_leaf_hash() for a in appended],
        "tree_size": appended[-1].tree_size,
        "checkpoint": appended[-1].checkpoint,
    }


@router.get("/records", response_model=RecordsPageModel, summary="Records in index order")
def get_records(
    ledger: LedgerDep,
    start: Annotated[int, Query(ge=0, le=SAFE_INTEGER)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_RECORDS_PAGE)] = MAX_RECORDS_PAGE,
) -> dict[str, Any]:
    """Records ``[start, start + limit)`` with their exact bytes, for an audit of the whole
    log over HTTP (`alu-ledger verify --server`): page on with ``next_start`` until it is
    null. Records are public; their confidential members are commitments."""
    rows, size = ledger.records_page(start, limit)
    following = start + len(rows)
    return {
        "records": [
            {"index": idx, "leaf": base64.b64encode(leaf).decode(), "leaf_hash": digest.hex()}
            for idx, leaf, digest in rows
        ],
        "tree_size": size,
        "next_start": following if rows and following < size else None,
    }


@router.get(
    "/records/{index}", response_model=RecordModel, summary="One record", responses=documented(404)
)
def get_record(ledger: LedgerDep, index: RecordIndex) -> dict[str, Any]:
    return ledger.record(index).with_leaf_hash()


@router.get(
    "/records/{index}/disclosures",
    summary="The disclosures of a record",
    responses=documented(401, 403, 404),
)
def get_record_disclosures(
    ledger: LedgerDep, viewer: ViewerDep, index: RecordIndex
) -> RecordDisclosures:
    """The disclosures that open the record's committed (confidential) members, for readers
    the read policy allows (403 for others): verify them against the record offline with
    `alu-ledger certificate verify --disclosures`. Records without confidential members
    have none."""
    return RecordDisclosures.model_validate(record_disclosures(ledger.engine, viewer, index))


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    summary="Latest signed checkpoint",
    responses=documented(404),
)
def get_checkpoint(ledger: LedgerDep) -> str:
    """The newest C2SP signed note (``text/plain``): origin, tree size, root, signature."""
    return ledger.latest_checkpoint()


@router.get("/log-key", response_class=PlainTextResponse, summary="The log's verifier key")
async def get_log_key(ledger: LedgerDep) -> str:
    """The C2SP verifier-key string to pin: ``<name>+<key id>+<base64 key>``."""
    # A constant: answered on the event loop, no worker thread.
    return ledger.verifier_key


@router.get(
    "/proofs/inclusion/{index}",
    response_model=InclusionProofModel,  # documents the answer (encoded directly)
    summary="Inclusion proof",
    responses=documented(404),
)
async def get_inclusion_proof(
    request: Request, index: RecordIndex, tree_size: MaybeTreeSize = None
) -> Response:
    """The record's RFC 9162 inclusion proof in ``tree_size`` (default: the current size)."""
    # Answered on the event loop when the process holds the nodes (no thread hand-off,
    # no query); a proof that must read joins the proofs of the other requests waiting,
    # read by one thread in one query. The ledger is taken from the app, not through
    # ``LedgerDep``: a dependency costs more to resolve than answering from the node
    # cache does.
    proof = ledger_of(request).cached_inclusion_proof(index, tree_size)
    if proof is None:
        proof = await proof_reads_of(request).read((index, tree_size))
    return json_response(proof.inclusion_json())


@router.get(
    "/proofs/consistency",
    response_model=ConsistencyProofModel,
    summary="Consistency proof",
    responses=documented(404),
)
def get_consistency_proof(ledger: LedgerDep, old: TreeSize, new: TreeSize) -> dict[str, Any]:
    if old > new:
        raise MalformedError("old must not exceed new", field="old")
    return ledger.consistency_proof(old, new).consistency_json()
