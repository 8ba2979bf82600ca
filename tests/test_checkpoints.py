"""C2SP checkpoints and signed notes: format compatibility and every refusal.

Compatibility matters more than self-consistency here: witnesses and auditors
will check our checkpoints with the Go reference code, so one test reproduces
the golang.org/x/mod/sumdb/note documentation example byte for byte.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.checkpoints import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    open_checkpoint,
    sign_checkpoint,
)
from ledger.errors import ProofError

ORIGIN = "ledger.example/alu/log1"
ROOT = hashlib.sha256(b"some root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()
URLSAFE_ROOT = base64.urlsafe_b64encode(bytes([0xFF]) * 32).decode()
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64e(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner(ORIGIN, _key(1))


@pytest.fixture
def verifier(signer: NoteSigner) -> NoteVerifier:
    return NoteVerifier.parse(signer.verifier_key())


@pytest.fixture
def note(signer: NoteSigner) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), signer)


def _sig_line(note: str) -> str:
    return note.rsplit("\n\n", 1)[1]


# --- checkpoint body -----------------------------------------------------------------------


def test_body_is_exactly_three_lines():
    assert Checkpoint(ORIGIN, 42, ROOT).body() == f"{ORIGIN}\n42\n{ROOT_B64}\n"
    assert Checkpoint(ORIGIN, 0, ROOT).body() == f"{ORIGIN}\n0\n{ROOT_B64}\n"


def test_body_round_trip():
    cp = Checkpoint(ORIGIN, 20852163, ROOT)
    assert Checkpoint.parse_body(cp.body()) == cp


def test_c2sp_spec_example_body_parses():
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = Checkpoint.parse_body(text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert cp.body() == text


def test_extension_lines_are_accepted_and_ignored():
    cp = Checkpoint.parse_body(f"{ORIGIN}\n7\n{ROOT_B64}\nextension one\nx\n")
    assert cp == Checkpoint(ORIGIN, 7, ROOT)


@pytest.mark.parametrize(
    "text",
    [
        "",
        f"{ORIGIN}\n42\n{ROOT_B64}",  # no final newline
        f"{ORIGIN}\n42\n",  # two lines
        f"\n42\n{ROOT_B64}\n",  # empty origin
        f"{ORIGIN}\n042\n{ROOT_B64}\n",  # leading zero
        f"{ORIGIN}\n00\n{ROOT_B64}\n",
        f"{ORIGIN}\n+42\n{ROOT_B64}\n",
        f"{ORIGIN}\n-1\n{ROOT_B64}\n",
        f"{ORIGIN}\n 42\n{ROOT_B64}\n",
        f"{ORIGIN}\n4_2\n{ROOT_B64}\n",
        f"{ORIGIN}\n\u0664\u0662\n{ROOT_B64}\n",  # Arabic-Indic digits: int() would accept
        f"{ORIGIN}\n18446744073709551616\n{ROOT_B64}\n",  # 2**64
        f"{ORIGIN}\n42\n{ROOT_B64[:-1]}\n",  # bad padding
        f"{ORIGIN}\n42\n{base64.b64encode(ROOT[:31]).decode()}\n",  # 31 bytes
        f"{ORIGIN}\n42\n{URLSAFE_ROOT}\n",  # URL alphabet
        f"{ORIGIN}\n42\n{ROOT_B64}\n\n",  # empty extension line
        f"{ORIGIN}\n42\n{ROOT_B64}\r\n",  # control character
    ],
)
def test_malformed_bodies_are_rejected(text: str):
    with pytest.raises(ProofError):
        Checkpoint.parse_body(text)


def test_non_canonical_base64_root_is_rejected():
    # 32 bytes end in a 3-digit group whose last 2 bits are padding: flipping one
    # decodes to the same root, so accepting it would make the body malleable.
    last = B64_ALPHABET[B64_ALPHABET.index(ROOT_B64[-2]) ^ 1]
    tweaked = ROOT_B64[:-2] + last + "="
    assert tweaked != ROOT_B64 and base64.b64decode(tweaked) == ROOT
    with pytest.raises(ProofError):
        Checkpoint.parse_body(f"{ORIGIN}\n42\n{tweaked}\n")


def test_bad_checkpoints_cannot_be_built():
    for args in [("", 1, ROOT), ("a\nb", 1, ROOT), (ORIGIN, -1, ROOT), (ORIGIN, 1, ROOT[:31])]:
        with pytest.raises(ValueError):
            Checkpoint(*args)


# --- keys -------------------------------------------------------------------------------------


def test_key_id_known_answer():
    """key id = SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4], spelled out."""
    key = _key(7)
    public = _raw_public(key)
    expected = hashlib.sha256(b"witness.example/w1" + b"\x0a" + b"\x01" + public).digest()[:4]
    signer = NoteSigner("witness.example/w1", key)
    assert signer.key_id == expected
    vkey_key = base64.b64encode(b"\x01" + public).decode()
    assert signer.verifier_key() == f"witness.example/w1+{expected.hex()}+{vkey_key}"
    parsed = NoteVerifier.parse(signer.verifier_key())
    assert (parsed.name, parsed.key_id) == ("witness.example/w1", expected)


# From the golang.org/x/mod/sumdb/note package documentation (BSD-3-Clause):
# a private seed, its verifier key and the note the reference code signs with it.
GO_SKEY_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2"
    "pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_matches_go_reference_byte_for_byte():
    seed = base64.b64decode(GO_SKEY_B64)
    assert seed[0] == 0x01
    signer = NoteSigner("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed[1:]))
    assert signer.verifier_key() == GO_VKEY
    assert signer.sign(GO_TEXT) == GO_NOTE  # Ed25519 is deterministic
    assert NoteVerifier.parse(GO_VKEY).verify(GO_NOTE) == GO_TEXT


def test_verifier_key_with_plus_in_base64_parses():
    """'+' separates the fields but is also a base64 digit: split only twice."""
    signer = next(
        s
        for s in (NoteSigner("log", _key(i)) for i in range(1, 200))
        if "+" in s.verifier_key()[13:]
    )
    assert NoteVerifier.parse(signer.verifier_key()).key_id == signer.key_id


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\there", "nl\nx", "nbsp\u00a0x"])
def test_invalid_key_names_are_refused(name: str):
    with pytest.raises(ValueError):
        NoteSigner(name, _key(1))


def _vkey(name: str, key_id: bytes, payload: bytes) -> str:
    return f"{name}+{key_id.hex()}+{base64.b64encode(payload).decode()}"


def test_malformed_verifier_keys_are_rejected():
    public = _raw_public(_key(1))
    kid = NoteSigner("log", _key(1)).key_id
    other_kid = NoteSigner("log", _key(2)).key_id
    good_key = _b64e(bytes([0x01]) + public)
    bad = [
        "",
        "log",
        f"log+{kid.hex()}",
        _vkey("log", other_kid, bytes([0x01]) + public),  # id of another key
        _vkey("other", kid, bytes([0x01]) + public),  # id computed under another name
        _vkey("log", kid, bytes([0x02]) + public),  # not Ed25519
        _vkey("log", kid, bytes([0x01]) + public[:31]),
        _vkey("log", kid, bytes([0x01]) + public + bytes(1)),
        _vkey("log", kid, b""),
        f"log+{kid.hex().upper()}+{good_key}",
        f"log+{kid.hex()[:7]}+{good_key}",
        f"log+{kid.hex()}+{good_key[:-1]}",
        f"lo g+{kid.hex()}+{good_key}",
    ]
    for vkey in bad:
        with pytest.raises(ProofError):
            NoteVerifier.parse(vkey)


# --- signed notes ------------------------------------------------------------------------------


def test_signed_note_layout(signer: NoteSigner, note: str):
    body = Checkpoint(ORIGIN, 42, ROOT).body()
    assert note.startswith(body + "\n— " + ORIGIN + " ")
    assert note.endswith("\n") and note.count("\n") == 5
    raw = base64.b64decode(_sig_line(note)[len("— " + ORIGIN + " ") :])
    assert len(raw) == 4 + 64 and raw[:4] == signer.key_id
    assert "\u2014" in note  # an em dash, not a hyphen


def test_round_trip(note: str, verifier: NoteVerifier):
    assert open_checkpoint(note, verifier, origin=ORIGIN) == Checkpoint(ORIGIN, 42, ROOT)
    assert open_checkpoint(note, verifier) == Checkpoint(ORIGIN, 42, ROOT)


def test_signer_verifier_shortcut(signer: NoteSigner, note: str):
    assert signer.verifier().verify(note).startswith(ORIGIN)


def test_tampered_text_is_rejected(note: str, verifier: NoteVerifier):
    with pytest.raises(ProofError):
        open_checkpoint(note.replace("\n42\n", "\n43\n"), verifier)


def test_tampered_signature_is_rejected(note: str, verifier: NoteVerifier):
    text, line = note.rsplit("\n\n", 1)
    prefix, encoded = line.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[10] ^= 0x01
    tampered = f"{text}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(ProofError, match="does not verify"):
        verifier.verify(tampered)


def test_same_name_other_key_is_rejected(verifier: NoteVerifier):
    impostor = NoteSigner(ORIGIN, _key(2))
    forged = sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), impostor)
    with pytest.raises(ProofError, match="no signature by"):
        open_checkpoint(forged, verifier)


def test_same_name_and_key_id_but_wrong_signature_is_rejected(note: str, verifier: NoteVerifier):
    """A line naming our key must verify; a failing one is not silently skipped."""
    impostor = NoteSigner(ORIGIN, _key(2))
    impostor_raw = base64.b64decode(_sig_line(impostor.sign("x\n")).split(" ")[-1])
    forged_line = f"— {ORIGIN} {base64.b64encode(verifier.key_id + impostor_raw[4:]).decode()}\n"
    with pytest.raises(ProofError, match="does not verify"):
        verifier.verify(note + forged_line)


def test_unknown_signatures_are_ignored_next_to_a_valid_one(note: str, verifier: NoteVerifier):
    body = Checkpoint(ORIGIN, 42, ROOT).body()
    witness = _sig_line(NoteSigner("witness.example/w1", _key(3)).sign(body))
    same_name_other_key = _sig_line(NoteSigner(ORIGIN, _key(4)).sign(body))
    odd_algorithm = f"— other.example/pq {_b64e(bytes(304))}\n"
    for extra in (witness, same_name_other_key, odd_algorithm):
        assert open_checkpoint(note + extra, verifier).size == 42
        text, sig = note.rsplit("\n\n", 1)
        assert open_checkpoint(f"{text}\n\n{extra}{sig}", verifier).size == 42


def test_wrong_origin_is_rejected(note: str, verifier: NoteVerifier):
    with pytest.raises(ProofError, match="expected"):
        open_checkpoint(note, verifier, origin="ledger.example/alu/other")


def test_verifier_with_other_name_rejects(note: str, signer: NoteSigner):
    other = NoteVerifier("some.other/log", _key(1).public_key())
    with pytest.raises(ProofError):
        open_checkpoint(note, other)


def test_valid_note_with_non_checkpoint_text_is_rejected(signer, verifier):
    with pytest.raises(ProofError):
        open_checkpoint(signer.sign("hello\nworld\n"), verifier)


def _malformed_notes(note: str) -> dict[str, str]:
    text, line = note.rsplit("\n\n", 1)
    encoded = line.rsplit(" ", 1)[1].rstrip("\n")
    return {
        "no blank line": note.replace("\n\n", "\n"),
        "unterminated signature": note[:-1],
        "no signature lines": text + "\n\n",
        "hyphen instead of em dash": note.replace("— ", "- "),
        "missing space after dash": note.replace("— ", "—"),
        "no signature after name": f"{text}\n\n— {ORIGIN}\n",
        "empty signature": f"{text}\n\n— {ORIGIN} \n",
        "bad base64": f"{text}\n\n— {ORIGIN} {encoded[:-2]}!=\n",
        "unpadded base64": f"{text}\n\n— {ORIGIN} {encoded.rstrip('=')}\n",
        "signature too short": f"{text}\n\n— {ORIGIN} {base64.b64encode(b'1234').decode()}\n",
        "truncated ed25519 signature": (
            f"{text}\n\n— {ORIGIN} {base64.b64encode(base64.b64decode(encoded)[:-1]).decode()}\n"
        ),
        "blank line among signatures": note + "\n" + line,
        "control character": note.replace("\n42\n", "\n42\t\n"),
        "carriage returns": note.replace("\n", "\r\n"),
        "too many signatures": note + line * 100,
        "lone surrogate": note.replace(ORIGIN, ORIGIN + "\ud800", 1),
        "empty": "",
    }


MALFORMED_CASES = sorted(
    _malformed_notes(sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), NoteSigner(ORIGIN, _key(1))))
)


@pytest.mark.parametrize("case", MALFORMED_CASES)
def test_malformed_notes_are_rejected(case: str, note: str, verifier: NoteVerifier):
    with pytest.raises(ProofError):
        verifier.verify(_malformed_notes(note)[case])


def test_one_hundred_signatures_are_still_accepted(note: str, verifier: NoteVerifier):
    unknown = _sig_line(NoteSigner("witness.example/w1", _key(3)).sign("x\n"))
    assert verifier.verify(note + unknown * 99).startswith(ORIGIN)


@pytest.mark.parametrize("text", ["no newline", "a\rb\n", "bell\x07\n", "\ud800\n"])
def test_signer_refuses_unsignable_text(signer: NoteSigner, text: str):
    with pytest.raises(ValueError):
        signer.sign(text)


def test_note_text_with_blank_lines_splits_at_the_last_one(signer, verifier):
    text = "para one\n\npara two\n"
    assert verifier.verify(signer.sign(text)) == text
