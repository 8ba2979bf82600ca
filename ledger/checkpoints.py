"""Signed tree heads: C2SP tlog-checkpoint bodies in C2SP signed notes (Ed25519).

A checkpoint is what makes a Merkle proof mean anything: the log commits, under
its key, to (origin, size, root). The byte format matches
golang.org/x/mod/sumdb/note so that standard witnesses and verifiers (Go
sumdb, transparency-dev, Sigsum) can check our checkpoints without our code:

- body: ``origin\\nsize\\nbase64(root)\\n`` (optional non-empty extension lines);
- note: body, a blank line, then ``— <key name> base64(key id || signature)\\n``
  lines, the signature being Ed25519 over the UTF-8 body;
- key id: ``SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]``;
- verifier key: ``<name>+<8 hex key id>+base64(0x01 || public key)``.

Everything read from outside is parsed strictly and refused with
``ProofError``; misuse by our own code (a bad key name, a malformed
checkpoint built in memory) raises ``ValueError``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.errors import ProofError

ALG_ED25519 = 0x01
KEY_ID_SIZE = 4
SIGNATURE_SIZE = 64
ROOT_SIZE = 32
MAX_SIGNATURES = 100
MAX_TREE_SIZE = 2**64 - 1
SIG_PREFIX = "— "  # U+2014 EM DASH, U+0020 SPACE

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")


# --- shared syntax checks ---------------------------------------------------------


def _name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid note key name (None when it is)."""
    if not name:
        return "key name is empty"
    if "+" in name:
        return "key name contains '+'"
    if any(ch.isspace() or ord(ch) < 0x20 for ch in name):
        return "key name contains a space or control character"
    return None


def _text_problem(text: str) -> str | None:
    """Why ``text`` may not appear in a signed note (None when it may)."""
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        return "contains an ASCII control character other than newline"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    return None


def _b64decode(value: str, field: str) -> bytes:
    """Standard base64, canonical only: one encoding per value, no malleability."""
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII input
        raise ProofError("not valid base64", field=field) from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise ProofError("not canonical base64", field=field)
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public_key: bytes) -> bytes:
    """C2SP key id of an Ed25519 key: the 4-byte tag each signature line carries."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    ).digest()[:KEY_ID_SIZE]


# --- checkpoint body -------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: which log, how many leaves, which root."""

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        """Refuse values whose body would not parse back to the same checkpoint."""
        if not self.origin or "\n" in self.origin or _text_problem(self.origin):
            raise ValueError("origin must be a non-empty line without control characters")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValueError(f"tree size {self.size!r} is not a uint64")
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_SIZE:
            raise ValueError(f"root must be {ROOT_SIZE} bytes")

    def body(self) -> str:
        """The note text to sign (no extension lines: monitors cannot audit them)."""
        return f"{self.origin}\n{self.size}\n{_b64encode(self.root)}\n"

    @classmethod
    def parse_body(cls, text: str) -> Checkpoint:
        """Strictly parse a checkpoint body; extension lines are accepted and dropped."""
        problem = _text_problem(text)
        if problem:
            raise ProofError(f"checkpoint {problem}", field="checkpoint")
        if not text.endswith("\n"):
            raise ProofError("checkpoint does not end with a newline", field="checkpoint")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise ProofError("checkpoint has fewer than three lines", field="checkpoint")
        if "" in lines:
            raise ProofError("checkpoint has an empty line", field="checkpoint")
        origin, size_text, root_text = lines[:3]
        return cls(origin, _parse_size(size_text), _parse_root(root_text))


def _parse_size(text: str) -> int:
    if not _DECIMAL.fullmatch(text):
        raise ProofError("tree size is not plain decimal", field="checkpoint.size")
    size = int(text)
    if size > MAX_TREE_SIZE:
        raise ProofError("tree size does not fit in 64 bits", field="checkpoint.size")
    return size


def _parse_root(text: str) -> bytes:
    root = _b64decode(text, "checkpoint.root")
    if len(root) != ROOT_SIZE:
        raise ProofError(f"root hash is not {ROOT_SIZE} bytes", field="checkpoint.root")
    return root


# --- signing ---------------------------------------------------------------------


class NoteSigner:
    """Signs note texts with one named Ed25519 key (the log's, or a witness's)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        problem = _name_problem(name)
        if problem:
            raise ValueError(problem)
        self._name = name
        self._private_key = private_key
        self._public_key = _raw_public_key(private_key.public_key())
        self._key_id = key_id(name, self._public_key)

    @property
    def name(self) -> str:
        """Key name written on every signature line."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """4-byte id that lets verifiers pick this key's signature line."""
        return self._key_id

    def verifier_key(self) -> str:
        """Public verifier key string to publish and pin in verifiers."""
        encoded = _b64encode(bytes([ALG_ED25519]) + self._public_key)
        return f"{self._name}+{self._key_id.hex()}+{encoded}"

    def verifier(self) -> NoteVerifier:
        """The matching verifier, without a round trip through the string form."""
        return NoteVerifier(self._name, self._private_key.public_key())

    def sign(self, text: str) -> str:
        """Return ``text`` as a signed note carrying one signature by this key."""
        problem = _text_problem(text)
        if problem:
            raise ValueError(f"note text {problem}")
        if not text.endswith("\n"):
            raise ValueError("note text must end with a newline")
        signature = self._private_key.sign(text.encode("utf-8"))
        return f"{text}\n{SIG_PREFIX}{self._name} {_b64encode(self._key_id + signature)}\n"


# --- verifying ---------------------------------------------------------------------


class NoteVerifier:
    """Checks notes against one pinned key; signatures by other keys are ignored."""

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        problem = _name_problem(name)
        if problem:
            raise ValueError(problem)
        self._name = name
        self._public_key = public_key
        self._key_id = key_id(name, _raw_public_key(public_key))

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        """Parse ``<name>+<hex key id>+<base64(0x01 || key)>``; the id must match."""
        parts = vkey.split("+", 2)  # base64 may itself contain '+'
        if len(parts) != 3:
            raise ProofError("verifier key needs name+id+key", field="vkey")
        name, id_hex, key_b64 = parts
        problem = _name_problem(name)
        if problem:
            raise ProofError(problem, field="vkey.name")
        if not _KEY_ID_HEX.fullmatch(id_hex):
            raise ProofError("key id is not 8 lowercase hex digits", field="vkey.id")
        key = _b64decode(key_b64, "vkey.key")
        if not key or key[0] != ALG_ED25519:
            raise ProofError("key algorithm is not Ed25519 (0x01)", field="vkey.key")
        if len(key) != 1 + 32:
            raise ProofError("Ed25519 public key is not 32 bytes", field="vkey.key")
        if key_id(name, key[1:]) != bytes.fromhex(id_hex):
            raise ProofError("key id does not match name and key", field="vkey.id")
        return cls(name, Ed25519PublicKey.from_public_bytes(key[1:]))

    @property
    def name(self) -> str:
        """Key name this verifier answers to."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """4-byte key id this verifier answers to."""
        return self._key_id

    def verify(self, note: str) -> str:
        """Return the note's text if this key signed it; raise ProofError otherwise.

        Every line carrying this key's name and id must verify (C2SP: reject
        the note when a known key's signature fails); lines of other keys,
        even with the same name or id, are skipped.
        """
        text, lines = _split_note(note)
        verified = False
        for line in lines:
            name, line_key_id, signature = _parse_signature_line(line)
            if name != self._name or line_key_id != self._key_id:
                continue
            self._check_signature(text, signature)
            verified = True
        if not verified:
            raise ProofError(
                f"note carries no signature by {self._name}+{self._key_id.hex()}",
                field="note.signature",
            )
        return text

    def _check_signature(self, text: str, signature: bytes) -> None:
        if len(signature) != SIGNATURE_SIZE:
            raise ProofError("Ed25519 signature is not 64 bytes", field="note.signature")
        try:
            self._public_key.verify(signature, text.encode("utf-8"))
        except InvalidSignature as exc:
            raise ProofError("signature does not verify", field="note.signature") from exc


def _split_note(note: str) -> tuple[str, list[str]]:
    """Split at the last blank line into text and signature lines."""
    problem = _text_problem(note)
    if problem:
        raise ProofError(f"note {problem}", field="note")
    split = note.rfind("\n\n")
    if split < 0:
        raise ProofError("note has no blank line before its signatures", field="note")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith("\n"):
        raise ProofError("note signature block is empty or unterminated", field="note")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise ProofError(f"note has more than {MAX_SIGNATURES} signatures", field="note")
    return text, lines


def _parse_signature_line(line: str) -> tuple[str, bytes, bytes]:
    """``— name base64(id || sig)`` -> (name, key id, signature)."""
    if not line.startswith(SIG_PREFIX):
        raise ProofError("signature line does not start with an em dash", field="note")
    name, sep, encoded = line[len(SIG_PREFIX) :].partition(" ")
    problem = _name_problem(name)
    if problem or not sep or not encoded:
        raise ProofError(problem or "signature line lacks a signature", field="note")
    raw = _b64decode(encoded, "note.signature")
    if len(raw) <= KEY_ID_SIZE:
        raise ProofError("signature is too short", field="note.signature")
    return name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:]


# --- checkpoints as signed notes ------------------------------------------------------


def sign_checkpoint(cp: Checkpoint, signer: NoteSigner) -> str:
    """The signed note publishing ``cp`` under ``signer``'s key."""
    return signer.sign(cp.body())


def open_checkpoint(note: str, verifier: NoteVerifier, origin: str | None = None) -> Checkpoint:
    """Verify the note's signature, then parse it; check the origin when given."""
    cp = Checkpoint.parse_body(verifier.verify(note))
    if origin is not None and cp.origin != origin:
        raise ProofError(
            f"checkpoint is for log {cp.origin!r}, expected {origin!r}",
            field="checkpoint.origin",
        )
    return cp
