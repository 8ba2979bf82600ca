"""Helpers for the custody tests: a small world of smelters and manufacturers, and short
ways to sign custody statements as them."""

from __future__ import annotations

from typing import Any

from ledger.grading import load_shipped_rulesets
from ledger.grading.reads import facts_of_batch
from ledger.log import Appended
from ledger.storage.custody import CustodyRepository
from ledger.storage.db import read_session
from ledger.storage.grading import GradingRepository
from ledger.storage.tables import LotRow
from tests.conftest import LedgerEnv
from tests.grading_support import grant
from tests.support import demo_batch, uncertified

SMELTER = "yn-smelter"
RECYCLER = "gd-recycler"
MAKER = "maker"
BUYER = "buyer"
CENTRE = "centre"
AUDITOR = "auditor"

NO_PROCESS: dict[str, Any] = {"electricity": []}


def world(env: LedgerEnv) -> LedgerEnv:
    """Two smelters, two manufacturers and an auditor, registered."""
    env.register(SMELTER, "smelter")
    env.register(RECYCLER, "smelter", region="CN-GD")
    env.register(MAKER, "manufacturer", region="CN-GD")
    env.register(BUYER, "manufacturer", region="CN-CQ")
    env.register(AUDITOR, "auditor")
    return env


def register_batch(
    env: LedgerEnv,
    smelter: str,
    batch_id: str,
    template: str = "YN-2025-0001",
    certified: bool = False,
    **changes: Any,
) -> Appended:
    """A demo batch re-owned by ``smelter``; certificates removed unless ``certified``
    (a certificate can be claimed once, and templates are registered many times)."""
    payload = demo_batch(template, smelter, batch_id)
    if not certified:
        payload = uncertified(payload)
    for name, value in changes.items():
        if value is None:
            del payload[name]
        else:
            payload[name] = value
    return env.append("batch.register", payload, env.participant_keys[smelter])


def transfer(
    env: LedgerEnv,
    signer: str,
    ns: str,
    batch_id: str,
    to: str,
    mass_kg: int | None = None,
    child: str | None = None,
) -> Appended:
    payload: dict[str, Any] = {"ns": ns, "batch_id": batch_id, "recipient_id": to}
    if mass_kg is not None:
        payload["mass_kg"] = mass_kg
    if child is not None:
        payload["child_batch_id"] = child
    return env.append("custody.transfer", payload, env.participant_keys[signer])


def split(env: LedgerEnv, signer: str, ns: str, batch_id: str, **children: int) -> Appended:
    payload = {
        "ns": ns,
        "batch_id": batch_id,
        "children": [{"batch_id": name, "mass_kg": kg} for name, kg in children.items()],
    }
    return env.append("custody.split", payload, env.participant_keys[signer])


def transform_payload(
    inputs: list[tuple[str, str, int]],
    outputs: list[tuple[str, int]],
    external: list[dict[str, Any]] | None = None,
    process: dict[str, Any] | None = None,
    operation: str = "remelt",
    product_form: str = "billet",
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "operation": operation,
        "inputs": [{"ns": ns, "batch_id": lot, "mass_kg": kg} for ns, lot, kg in inputs],
        "process": process or NO_PROCESS,
        "outputs": [
            {"batch_id": lot, "mass_kg": kg, "product_form": product_form} for lot, kg in outputs
        ],
    }
    if external:
        payload["external_inputs"] = external
    return payload


def transform(
    env: LedgerEnv,
    signer: str,
    inputs: list[tuple[str, str, int]],
    outputs: list[tuple[str, int]],
    **options: Any,
) -> Appended:
    payload = transform_payload(inputs, outputs, **options)
    return env.append("custody.transform", payload, env.participant_keys[signer])


def lot(env: LedgerEnv, ns: str, batch_id: str) -> LotRow:
    with read_session(env.ledger.engine) as session:
        row = CustodyRepository(session).lot(ns, batch_id)
    assert row is not None, f"no lot {ns}/{batch_id}"
    return row


def available(env: LedgerEnv, ns: str, batch_id: str) -> int:
    return lot(env, ns, batch_id).available_kg


def holder(env: LedgerEnv, ns: str, batch_id: str) -> str:
    return lot(env, ns, batch_id).holder_id


def grade(env: LedgerEnv, smelter: str, batch_id: str, ruleset_id: str, name: str) -> Appended:
    """Issue a grade by CENTRE (registered, accredited and publishing on first use)."""
    if CENTRE not in env.participant_keys:
        env.register(CENTRE, "evaluation_centre")
        grant(env, CENTRE)
    shipped = next(doc for doc in load_shipped_rulesets() if doc["ruleset_id"] == ruleset_id)
    with read_session(env.ledger.engine) as session:
        published = GradingRepository(session).ruleset(ruleset_id, shipped["version"])
    if published is None:
        env.append("ruleset.publish", shipped, env.participant_keys[CENTRE])
    payload = {
        "smelter_id": smelter,
        "batch_id": batch_id,
        "ruleset_id": ruleset_id,
        "ruleset_version": shipped["version"],
        "grade": name,
        "facts": facts_of_batch(
            env.ledger.engine, smelter, batch_id, ruleset_id, shipped["version"]
        ),
    }
    return env.append("grade.issue", payload, env.participant_keys[CENTRE])
