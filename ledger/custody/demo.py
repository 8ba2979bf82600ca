"""Demo custody: a manufacturer buys demo batches, splits, remelts, extrudes and sells on.

The steps live in ``scripts/demo/custody.json``, each ``{signer, kind, payload}``
(an accept names the lot of the transfer it accepts, ``transfer_of``, since the
transfer's record index is only known once it is on the ledger). They run after the
demo batches are registered. Loading is idempotent: a step whose effect is already on
the ledger (its child lot or output exists, its transfer was made, its policy is set)
is skipped.
"""

from __future__ import annotations

from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.custody.payloads import ACCEPT, POLICY, SPLIT, TRANSFER, TRANSFORM
from ledger.disclosure.sign import sign_statement
from ledger.log import Ledger
from ledger.resources import load_demo_json
from ledger.storage.custody import CustodyRepository
from ledger.storage.db import read_session

PAST: Final = {"remelt": "remelted", "cast": "cast", "roll": "rolled", "extrude": "extruded"}


def load_custody_demo(ledger: Ledger, participant_keys: dict[str, Ed25519PrivateKey]) -> list[str]:
    """Append every demo custody step not yet on the ledger, in order; describe each."""
    steps = load_demo_json("custody.json")["steps"]
    return load_custody_steps(ledger, steps, participant_keys)


def load_custody_steps(
    ledger: Ledger, steps: list[dict[str, Any]], participant_keys: dict[str, Ed25519PrivateKey]
) -> list[str]:
    """Append each ``{signer, kind, payload}`` step not yet on the ledger; describe each."""
    lines = []
    for step in steps:
        payload = _payload_to_append(ledger, step)
        if payload is None:
            continue
        key = participant_keys[step["signer"]]
        appended = ledger.append(sign_statement(step["kind"], payload, key))
        described = _describe(step["signer"], step["kind"], payload)
        lines.append(f"custody: {described} (record {appended.index})")
    return lines


def _payload_to_append(ledger: Ledger, step: dict[str, Any]) -> dict[str, Any] | None:
    """The step's payload, or None when the ledger already shows its effect."""
    kind, signer = step["kind"], step["signer"]
    with read_session(ledger.engine) as session:
        custody = CustodyRepository(session)
        if kind == ACCEPT:
            target = step["transfer_of"]
            lot = custody.lot(target["ns"], target["batch_id"])
            if lot is None or lot.pending_index is None or lot.pending_to != signer:
                return None
            return {"transfer_index": lot.pending_index}
        payload = step["payload"]
        if kind == POLICY:
            policy = custody.policy(signer)
            done = policy is not None and policy.require_acceptance == payload["require_acceptance"]
        elif kind == TRANSFER and "child_batch_id" in payload:
            done = custody.lot_exists(signer, payload["child_batch_id"])
        elif kind == TRANSFER:
            lot = custody.lot(payload["ns"], payload["batch_id"])
            done = lot is not None and any(
                row.from_id == signer and row.to_id == payload["recipient_id"]
                for row in custody.transfers_of(lot.id)
            )
        elif kind == SPLIT:
            done = custody.lot_exists(signer, payload["children"][0]["batch_id"])
        elif kind == TRANSFORM:
            done = custody.lot_exists(signer, payload["outputs"][0]["batch_id"])
        else:
            raise ValueError(f"custody demo step of unknown kind {kind}")
    return None if done else payload


def _describe(signer: str, kind: str, payload: dict[str, Any]) -> str:
    if kind == POLICY:
        waits = "wait" if payload["require_acceptance"] else "do not wait"
        return f"{signer}: transfers to it {waits} for its acceptance"
    if kind == ACCEPT:
        return f"{signer} accepted the transfer at record {payload['transfer_index']}"
    if kind == TRANSFER:
        what = f"{payload['ns']}/{payload['batch_id']}"
        if "child_batch_id" in payload:
            what = f"{payload['mass_kg']:,} kg of {what} as {signer}/{payload['child_batch_id']}"
        return f"{signer} transferred {what} to {payload['recipient_id']}"
    if kind == SPLIT:
        children = ", ".join(child["batch_id"] for child in payload["children"])
        return f"{signer} split {payload['ns']}/{payload['batch_id']} into {children}"
    outputs = ", ".join(f"{signer}/{output['batch_id']}" for output in payload["outputs"])
    return f"{signer} {PAST[payload['operation']]} lots into {outputs}"
