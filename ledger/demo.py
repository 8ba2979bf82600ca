"""Demo data: participants, the batches the demo smelters cast, grades and custody.

The demo writes every participant's private key to ``<keys dir>/<id>.pem`` so a
new user can act as a smelter, an evaluation centre or a buyer straight away.
Loading is idempotent: whatever is already on the ledger is left as it is.
The data lives in ``scripts/demo/`` (participants.json, batches.json, grading.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import keys
from ledger.batches.registration import KIND as BATCH_REGISTER
from ledger.bootstrap import load_or_create_key
from ledger.custody.demo import load_custody_demo, load_custody_steps
from ledger.disclosure.sign import sign_statement
from ledger.grading.demo import load_grading_demo
from ledger.kind_names import PARTICIPANT_REGISTER as REGISTER
from ledger.log import Ledger
from ledger.resources import load_demo_json
from ledger.secret_files import check_secret_target, write_secret_file
from ledger.settings import Settings
from ledger.storage.batches import BatchRepository
from ledger.storage.db import read_session
from ledger.storage.repository import Repository
from ledger.tokens import issue_token

DEMO_BUYER = "foshan-extrusion"


def demo_file(name: str) -> Any:
    """A demo data file, parsed afresh (``ledger.resources``)."""
    return load_demo_json(name)


def load_demo(ledger: Ledger, settings: Settings, keys_dir: Path) -> list[str]:
    """Load every demo record not yet on the ledger; return lines describing what happened."""
    operator_key = keys.read_private_key(settings.data_dir / "operator-key.pem")
    participant_keys = {
        p["participant_id"]: load_or_create_key(keys_dir / f"{p['participant_id']}.pem")[0]
        for p in demo_file("participants.json")
    }
    lines = _register_participants(ledger, operator_key, participant_keys)
    lines += _register_batches(ledger, participant_keys)
    grading = demo_file("grading.json")
    lines += load_grading_demo(ledger, grading, operator_key, participant_keys[grading["centre"]])
    lines += load_custody_demo(ledger, participant_keys)
    lines.append(_buyer_token(ledger, keys_dir))
    lines.append(f"ledger size {ledger.tree_size()}; demo keys in {keys_dir}")
    return lines


def _buyer_token(ledger: Ledger, keys_dir: Path) -> str:
    """An API token for the demo buyer, so GraphiQL can be tried at once (issued once)."""
    path = keys_dir / f"{DEMO_BUYER}.token"
    if not path.exists():
        check_secret_target(path, overwrite=False)  # refuse a symlink before issuing
        token = issue_token(ledger.engine, DEMO_BUYER, label="demo").token
        write_secret_file(path, (token + "\n").encode(), overwrite=False)
    return f"GraphQL token of {DEMO_BUYER} (Authorization: Bearer ...) in {path}"


def _register_participants(
    ledger: Ledger, operator_key: Ed25519PrivateKey, participant_keys: dict[str, Ed25519PrivateKey]
) -> list[str]:
    with read_session(ledger.engine) as session:
        known = {row.participant_id for row in Repository(session).participants()}
    todo = [p for p in demo_file("participants.json") if p["participant_id"] not in known]
    signed = [
        sign_statement(
            REGISTER,
            {**p, "public_key": keys.public_key_b64(participant_keys[p["participant_id"]])},
            operator_key,
        )
        for p in todo
    ]
    if signed:
        ledger.append_many(signed)
    return [f"registered participant {p['participant_id']} ({p['role']})" for p in todo]


def _register_batches(ledger: Ledger, participant_keys: dict[str, Ed25519PrivateKey]) -> list[str]:
    """Batches that name no lot, then the purchases (custody), then the batches naming
    the lots bought: a batch consumes the lots it names, so they must be its smelter's."""
    every = demo_file("batches.json")
    own = [b for b in every if not b["metal_inputs"].get("purchased_primary_batches")]
    lines = _register(ledger, own, participant_keys)
    purchases = demo_file("purchases.json")["steps"]
    lines += load_custody_steps(ledger, purchases, participant_keys)
    buying = [b for b in every if b["metal_inputs"].get("purchased_primary_batches")]
    return lines + _register(ledger, buying, participant_keys)


def _register(
    ledger: Ledger, payloads: list[dict[str, Any]], participant_keys: dict[str, Ed25519PrivateKey]
) -> list[str]:
    with read_session(ledger.engine) as session:
        batches = BatchRepository(session)
        todo = [b for b in payloads if not batches.exists(b["smelter_id"], b["batch_id"])]
    signed = [sign_statement(BATCH_REGISTER, b, participant_keys[b["smelter_id"]]) for b in todo]
    if signed:
        ledger.append_many(signed)
    return [f"registered batch {b['smelter_id']}/{b['batch_id']}" for b in todo]
