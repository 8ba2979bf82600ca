"""The full audit of a ledger over its REST API, trusting nothing but a pinned verifier key.

``RemoteAuditor`` reads the latest checkpoint (``GET /v1/checkpoint``) and opens it with the
pinned key, then streams every record in pages (``GET /v1/records?start=&limit=``) and
checks each as the local audit does (``ledger.audit.check_chunk``: index, canonical bytes,
leaf hash, ``prev`` chain, the signer key valid at that index, the signature), building
the Merkle tree from the leaves it checked; the tree's root must be the checkpoint's.

Resumable: after each page the auditor can save where it got to (``AuditState``: the size
audited, the tree's frontier, the last leaf hash and the key history, all derived from
records it checked itself). A later run loads the state, proves the server's current
checkpoint consistent with the audited tree (``GET /v1/proofs/consistency``), which shows
that nothing audited has changed since, and checks only the records after it. A ledger
that does not extend the saved tree is a fork and fails the audit.

Invariants: the state only ever holds what this auditor verified; a page is linked to
the records before it (``prev``, index) before its leaves join the tree.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ledger import merkle
from ledger.audit import AuditReport, Problem, check_chunk, set_key_history
from ledger.checkpoints import NoteVerifier, open_checkpoint
from ledger.errors import LedgerError, MalformedError
from ledger.key_history import KEY_KINDS, KeyHistory, KeyState
from ledger.records import GENESIS_PREV

STATE_FORMAT = "alu-ledger-audit-state/1"
#: Records per request: a power of two no larger than the server's page limit.
PAGE = 512


@dataclass
class AuditState:
    """How far an audit got: everything the next run needs to go on from there."""

    origin: str
    size: int
    frontier: merkle.Frontier
    last_hash: str
    history: KeyHistory

    @classmethod
    def empty(cls, origin: str) -> AuditState:
        return cls(origin, 0, merkle.Frontier.empty(), GENESIS_PREV, KeyHistory())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "origin": self.origin,
            "size": self.size,
            "root": self.frontier.root().hex(),
            "last_hash": self.last_hash,
            "frontier": [[level, index, h.hex()] for (level, index), h in self.frontier.nodes],
            "keys": {
                key_id: [s.participant_id, s.public_key.hex(), s.added_index, s.ended_index]
                for key_id, s in self.history.keys.items()
            },
        }

    @classmethod
    def from_json(cls, data: Any, origin: str) -> AuditState:
        """A saved state, refused (``MalformedError``) unless it is whole and of this log."""
        try:
            if data["format"] != STATE_FORMAT or data["origin"] != origin:
                raise MalformedError(f"not an audit state of {origin}", field="state")
            nodes = [((level, index), bytes.fromhex(h)) for level, index, h in data["frontier"]]
            frontier = merkle.Frontier(data["size"], nodes)
            history = KeyHistory()
            for key_id, (participant, public, added, ended) in data["keys"].items():
                history.keys[key_id] = KeyState(participant, bytes.fromhex(public), added, ended)
            state = cls(origin, data["size"], frontier, data["last_hash"], history)
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedError(f"the audit state is damaged: {error}", field="state") from None
        if state.frontier.root().hex() != data["root"]:
            raise MalformedError("the audit state's root is not its frontier's", field="state")
        return state


class RemoteAuditor:
    """One audit of the ledger at ``base_url`` against the pinned ``verifier``."""

    def __init__(
        self,
        base_url: str,
        verifier: NoteVerifier,
        *,
        state_file: Path | None = None,
        client: httpx.Client | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.verifier = verifier
        self.state_file = state_file
        self.http = client or httpx.Client(timeout=60)
        self.on_progress = on_progress or (lambda _done, _total: None)
        # Read now, so a damaged state is refused before anything is fetched.
        self.state = self._load_state()
        #: The size the audit goes on from (0 without a saved state).
        self.resumed_from = self.state.size

    def run(self) -> AuditReport:
        try:
            checkpoint = open_checkpoint(self._text("/v1/checkpoint"), self.verifier)
        except LedgerError as error:
            return AuditReport(0, 0, Problem(0, f"checkpoint: {error}"))
        state = self.state
        problem = self._extends(state, checkpoint.size, checkpoint.root)
        if problem is not None:
            return AuditReport(state.size, checkpoint.size, problem)
        while state.size < checkpoint.size:
            problem = self._check_page(state, checkpoint.size)
            if problem is not None:
                return AuditReport(state.size, checkpoint.size, problem)
            self._save(state)
            self.on_progress(state.size, checkpoint.size)
        if state.frontier.root() != checkpoint.root:
            last = checkpoint.size - 1
            return AuditReport(state.size, checkpoint.size, Problem(last, "Merkle root differs"))
        return AuditReport(state.size, checkpoint.size, None)

    # -- steps ------------------------------------------------------------------------
    def _extends(self, state: AuditState, size: int, root: bytes) -> Problem | None:
        """The checkpoint's tree extends the audited one, or the ledger forked."""
        if state.size == 0:
            return None
        if state.size > size:
            return Problem(size, f"the ledger shrank below the audited size {state.size}")
        proof = self._json(f"/v1/proofs/consistency?old={state.size}&new={size}")
        try:
            hashes = [bytes.fromhex(h) for h in proof["hashes"]]
            merkle.verify_consistency(state.size, size, hashes, state.frontier.root(), root)
        except (LedgerError, KeyError, TypeError, ValueError):
            return Problem(
                state.size - 1,
                f"the checkpoint at size {size} is not consistent with the tree audited up to"
                f" {state.size}: the ledger has changed what it recorded",
            )
        return None

    def _check_page(self, state: AuditState, size: int) -> Problem | None:
        start = state.size
        stop = min(size, start + PAGE - start % PAGE)  # pages aligned after the first
        rows = self._rows(start, stop)
        for idx, leaf, _ in rows:  # keys these records add are valid after their index
            _apply_keys(state.history, idx, leaf)
        set_key_history(state.history)
        result = check_chunk(start, stop, rows)
        if result.checked and result.first_prev != state.last_hash:
            return Problem(start, "prev is not the leaf hash of the previous record")
        checked = [digest for _, _, digest in rows[: result.checked]]
        state.frontier.absorb(checked)
        state.size += result.checked
        if checked:
            state.last_hash = checked[-1].hex()
        return result.problem

    def _rows(self, start: int, stop: int) -> list[tuple[int, bytes, bytes]]:
        page = self._json(f"/v1/records?start={start}&limit={stop - start}")
        try:
            return [
                (
                    int(item["index"]),
                    base64.b64decode(item["leaf"], validate=True),
                    bytes.fromhex(item["leaf_hash"]),
                )
                for item in page["records"]
            ]
        except (KeyError, TypeError, ValueError):
            raise LedgerError(f"{self.base_url}: records page from {start} is malformed") from None

    # -- state ------------------------------------------------------------------------
    def _load_state(self) -> AuditState:
        if self.state_file is None or not self.state_file.exists():
            return AuditState.empty(self.verifier.name)
        try:
            data = json.loads(self.state_file.read_text())
        except ValueError:
            raise MalformedError("the audit state is not JSON", field="state") from None
        return AuditState.from_json(data, self.verifier.name)

    def _save(self, state: AuditState) -> None:
        if self.state_file is None:
            return
        temporary = self.state_file.with_name(self.state_file.name + ".tmp")
        temporary.write_text(json.dumps(state.to_json()))
        os.replace(temporary, self.state_file)  # a crash leaves the old state or the new

    # -- HTTP -------------------------------------------------------------------------
    def _get(self, path: str) -> httpx.Response:
        try:
            response = self.http.get(self.base_url + path)
        except httpx.HTTPError as error:
            raise LedgerError(f"{self.base_url}: {error or type(error).__name__}") from None
        if response.status_code != 200:
            raise LedgerError(f"{self.base_url}{path}: HTTP {response.status_code}")
        return response

    def _text(self, path: str) -> str:
        return self._get(path).text

    def _json(self, path: str) -> Any:
        try:
            return self._get(path).json()
        except ValueError:
            raise LedgerError(f"{self.base_url}{path}: not JSON") from None


def _apply_keys(history: KeyHistory, index: int, leaf: bytes) -> None:
    try:
        statement = json.loads(leaf)["statement"]
        if statement["kind"] in KEY_KINDS:
            history.apply(index, statement["kind"], statement["payload"])
    except (ValueError, LedgerError, KeyError, TypeError):
        return  # a damaged record is reported by the check of its page
