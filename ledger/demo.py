"""Demo data: participants (and, as the product grows, their records).

The demo writes every participant's private key to ``<keys dir>/<id>.pem`` so a
new user can act as a smelter, an evaluation centre or a buyer straight away.
Loading is idempotent: participants already registered are left as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledger import keys, statements
from ledger.bootstrap import load_or_create_key
from ledger.log import Ledger
from ledger.settings import Settings
from ledger.storage.db import read_session
from ledger.storage.repository import Repository

DEMO_DIR = Path(__file__).resolve().parent.parent / "scripts" / "demo"


def demo_participants() -> list[dict[str, Any]]:
    return json.loads((DEMO_DIR / "participants.json").read_text())


def load_demo(ledger: Ledger, settings: Settings, keys_dir: Path) -> list[str]:
    """Register the demo participants; return human-readable lines of what was done."""
    operator_key = keys.read_private_key(settings.data_dir / "operator-key.pem")
    with read_session(ledger.engine) as session:
        known = {row.participant_id for row in Repository(session).participants()}
    batch: list[statements.SignedStatement] = []
    lines: list[str] = []
    for participant in demo_participants():
        key_path = keys_dir / f"{participant['participant_id']}.pem"
        key, _ = load_or_create_key(key_path)
        if participant["participant_id"] in known:
            continue
        payload = {**participant, "public_key": keys.public_key_b64(key)}
        batch.append(statements.sign_new("participant.register", payload, operator_key))
        lines.append(
            f"registered {participant['participant_id']} ({participant['role']}), key {key_path}"
        )
    if batch:
        ledger.append_many(batch)
    lines.append(f"ledger size {ledger.tree_size()}; keys in {keys_dir}")
    return lines
