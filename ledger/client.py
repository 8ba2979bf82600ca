"""A Python client that trusts nothing but a pinned log key.

``LedgerClient`` signs statements with a local key, submits them over HTTP and
checks every answer before returning it: the checkpoint's signature against the
pinned verifier key, the record's leaf hash, that the record carries exactly the
statement that was sent, the inclusion proof against the checkpoint root, and
that each new checkpoint is consistent with the last one this client saw. Any
failure raises ``ProofError``; server refusals raise the matching ``LedgerError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import merkle
from ledger.checkpoints import Checkpoint, NoteVerifier, open_checkpoint
from ledger.disclosure.format import Disclosure, parse_document
from ledger.disclosure.reveal import digests_in
from ledger.disclosure.sign import sign_statement
from ledger.errors import LedgerError, ProofError, error_class
from ledger.statements import SignedStatement, decode_signature


@dataclass(frozen=True)
class Receipt:
    """A record the client has verified to be in the log under ``checkpoint``."""

    record: dict[str, Any]
    leaf_hash: bytes
    checkpoint: Checkpoint
    note: str

    @property
    def index(self) -> int:
        index: int = self.record["index"]
        return index


class LedgerClient:
    def __init__(
        self,
        base_url: str,
        log_key: str,
        *,
        key: Ed25519PrivateKey | None = None,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
        token: str | None = None,
    ) -> None:
        self.verifier = NoteVerifier.parse(log_key)
        self.key = key
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout, headers=headers)
        self.latest: Checkpoint | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------
    def submit(
        self, kind: str, payload: dict[str, Any], key: Ed25519PrivateKey | None = None
    ) -> Receipt:
        signing_key = key or self.key
        if signing_key is None:
            raise ValueError("no signing key: pass key= here or to LedgerClient()")
        # Confidential members are committed here: only their digests leave signed, the
        # values travel beside as disclosures and never enter the record.
        return self.submit_signed(sign_statement(kind, payload, signing_key))

    def submit_signed(self, signed: SignedStatement) -> Receipt:
        body = self._request("POST", "/v1/statements", json=signed.to_dict())
        receipt = self._verify_record(body, body["checkpoint"])
        if receipt.record["statement"] != signed.statement.to_dict():
            raise ProofError("the log recorded a different statement than was sent")
        proof = body["inclusion_proof"]
        if proof["index"] != receipt.index or proof["tree_size"] != receipt.checkpoint.size:
            raise ProofError("inclusion proof is not for this record and checkpoint")
        self._verify_inclusion(receipt, proof["hashes"])
        return receipt

    def submit_many(self, signed: Sequence[SignedStatement]) -> list[Receipt]:
        """Bulk submit; each record is checked against the one checkpoint returned."""
        body = self._request(
            "POST", "/v1/statements/bulk", json={"statements": [s.to_dict() for s in signed]}
        )
        if len(body["records"]) != len(signed):
            raise ProofError(f"sent {len(signed)} statements, got {len(body['records'])} records")
        receipts = [self._verify_record(item, body["checkpoint"]) for item in body["records"]]
        for receipt, sent in zip(receipts, signed, strict=True):
            if receipt.record["statement"] != sent.statement.to_dict():
                raise ProofError(f"record {receipt.index} is not the statement that was sent")
            self.prove_included(receipt)
        return receipts

    # -- reading ----------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        note = self._request("GET", "/v1/checkpoint", text=True)
        return self.accept_checkpoint(note)

    def record(self, index: int) -> Receipt:
        """Fetch a record and prove it is in the latest checkpoint."""
        note = self._request("GET", "/v1/checkpoint", text=True)
        receipt = self._verify_record(self._request("GET", f"/v1/records/{index}"), note)
        if receipt.index != index:
            raise ProofError(f"asked for record {index}, got record {receipt.index}")
        self.prove_included(receipt)
        return receipt

    def certificate(self, grade_index: int) -> dict[str, Any]:
        """The grade's current certificate bundle; its checkpoint is checked for consistency.

        The bundle's contents are for ``ledger.certificates.verify_bundle`` to judge.
        """
        bundle = self._request("GET", f"/v1/certificates/{grade_index}")
        if not isinstance(bundle, dict) or not isinstance(bundle.get("checkpoint"), str):
            raise ProofError("the certificate bundle has no checkpoint")
        self.accept_checkpoint(bundle["checkpoint"])
        return bundle

    def disclosures(self, index: int) -> tuple[Disclosure, ...]:
        """The disclosures of record ``index`` (needs a token the read policy lets in),
        each checked to open a digest of the record, which is proven in the log."""
        receipt = self.record(index)
        document = self._request("GET", f"/v1/records/{index}/disclosures")
        found = parse_document(document)
        known = set(digests_in(receipt.record["statement"]["payload"]))
        for disclosure in found:
            known.update(digests_in(disclosure.value))
        strangers = [d for d in found if d.digest not in known]
        if strangers:
            raise ProofError(f"record {index}: a disclosure opens no digest of the record")
        return found

    def prove_included(self, receipt: Receipt) -> None:
        proof = self._request(
            "GET",
            f"/v1/proofs/inclusion/{receipt.index}",
            params={"tree_size": receipt.checkpoint.size},
        )
        self._verify_inclusion(receipt, proof["hashes"])

    # -- checks -----------------------------------------------------------
    def _verify_record(self, body: dict[str, Any], note: str) -> Receipt:
        checkpoint = self.accept_checkpoint(note)
        record = body["record"]
        leaf_hash = merkle.leaf_hash(rfc8785.dumps(record))
        if leaf_hash.hex() != body["leaf_hash"]:
            raise ProofError(f"record {record.get('index')}: leaf hash does not match its bytes")
        decode_signature(record.get("signature"), "record.signature")
        return Receipt(record, leaf_hash, checkpoint, note)

    def _verify_inclusion(self, receipt: Receipt, hashes: list[str]) -> None:
        merkle.verify_inclusion(
            receipt.leaf_hash,
            receipt.index,
            receipt.checkpoint.size,
            [bytes.fromhex(h) for h in hashes],
            receipt.checkpoint.root,
        )

    def accept_checkpoint(self, note: str) -> Checkpoint:
        """Verify a checkpoint and its consistency with the newest one seen so far."""
        checkpoint = open_checkpoint(note, self.verifier, origin=self.verifier.name)
        seen = self.latest
        if seen is None or seen == checkpoint:
            self.latest = checkpoint if seen is None else seen
            return checkpoint
        old, new = sorted((seen, checkpoint), key=lambda cp: cp.size)
        if old.size == new.size:
            raise ProofError(f"two different roots signed for tree size {old.size}: log forked")
        proof = self._request(
            "GET", "/v1/proofs/consistency", params={"old": old.size, "new": new.size}
        )
        merkle.verify_consistency(
            old.size, new.size, [bytes.fromhex(h) for h in proof["hashes"]], old.root, new.root
        )
        self.latest = new
        return checkpoint

    def _request(self, method: str, path: str, *, text: bool = False, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _server_error(response)
        return response.text if text else response.json()


def fetch_json(base_url: str, path: str, *, token: str | None = None) -> Any:
    """GET a JSON document from a ledger server; its refusals raise the matching error."""
    return _get(base_url, path, token).json()


def fetch_text(base_url: str, path: str, *, token: str | None = None) -> str:
    """GET a text document (a checkpoint, the log key) from a ledger server."""
    return _get(base_url, path, token).text


def _get(base_url: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{base_url.rstrip('/')}{path}"
    try:
        response = httpx.get(url, headers=headers, timeout=30)
    except httpx.HTTPError as error:  # unreachable, refused, timed out: one readable line
        raise LedgerError(f"{base_url}: {error or type(error).__name__}") from None
    if response.status_code >= 400:
        raise _server_error(response)
    return response


def _server_error(response: httpx.Response) -> LedgerError:
    try:
        body = response.json()
    except ValueError:
        return LedgerError(f"HTTP {response.status_code}: {response.text[:200]}")
    error = error_class(body.get("error", ""))(body.get("detail", ""))
    error.status_code = response.status_code  # type: ignore[attr-defined]
    return error
