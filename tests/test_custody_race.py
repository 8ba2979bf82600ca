"""Two processes racing for the same kilograms on PostgreSQL use exactly what is available.

Each round registers a fresh 24,000 kg batch; two processes, both signing as its holder,
wait at a barrier and then append at once: two partial transfers of 15,000 kg, or two
transforms consuming 15,000 kg (exactly one of each pair may succeed, the other gets 409
naming the mass), or two transfers of 12,000 kg (both fit: the lot ends at exactly 0).
The available-mass check runs inside the append transaction, which holds the log-head
lock, so the second writer always sees what the first took.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledger import keys
from ledger.disclosure.sign import sign_statement
from ledger.errors import ConflictError
from tests.conftest import LedgerEnv, make_env
from tests.custody_support import MAKER, SMELTER, available, lot, register_batch, world
from tests.support import race

ROUNDS = 6
WORKERS = ("one", "two")


def round_statement(round_: int, worker: str) -> tuple[str, dict[str, Any]]:
    """What ``worker`` appends in ``round_``; rounds cycle through three races."""
    batch_id = f"R{round_}"
    if round_ % 3 == 0:
        return "custody.transfer", {
            "ns": SMELTER,
            "batch_id": batch_id,
            "recipient_id": MAKER,
            "mass_kg": 15_000,
            "child_batch_id": f"{batch_id}-{worker}",
        }
    if round_ % 3 == 1:
        return "custody.transform", {
            "operation": "remelt",
            "inputs": [{"ns": SMELTER, "batch_id": batch_id, "mass_kg": 15_000}],
            "process": {"electricity": []},
            "outputs": [
                {"batch_id": f"{batch_id}-{worker}", "mass_kg": 14_800, "product_form": "billet"}
            ],
        }
    return "custody.transfer", {
        "ns": SMELTER,
        "batch_id": batch_id,
        "recipient_id": MAKER,
        "mass_kg": 12_000,
        "child_batch_id": f"{batch_id}-{worker}",
    }


def _worker(
    name: str, data_dir: str, database_url: str, key_path: str, barrier: Any, results: Any
) -> None:
    """Child process: its own ledger; per round, wait for the other, then append."""
    from ledger.bootstrap import open_ledger
    from ledger.settings import Settings

    ledger = open_ledger(Settings(data_dir=Path(data_dir), database_url=database_url))
    key = keys.read_private_key(Path(key_path))
    try:
        for round_ in range(ROUNDS):
            kind, payload = round_statement(round_, name)
            signed = sign_statement(kind, payload, key)
            barrier.wait(timeout=60)
            try:
                ledger.append(signed)
                outcome = "ok"
            except ConflictError as error:
                outcome = f"conflict: {error.field}: {error.detail}"
            except Exception as error:  # report anything else to the parent
                outcome = f"error: {type(error).__name__}: {error}"
            results.put((name, round_, outcome))
    finally:
        ledger.engine.dispose()


def run_race(env: LedgerEnv, database_url: str, key_path: Path) -> dict[int, dict[str, str]]:
    data_dir = str(env.settings.data_dir)
    args = {name: (name, data_dir, database_url, str(key_path)) for name in WORKERS}
    return race(_worker, args, ROUNDS)


@pytest.mark.postgres
def test_two_processes_racing_for_the_same_kilograms_use_exactly_what_is_available(
    pg_url: str, tmp_path: Path
) -> None:
    env = make_env(pg_url, tmp_path / "data")
    try:
        world(env)
        for round_ in range(ROUNDS):
            register_batch(env, SMELTER, f"R{round_}")
        key_path = tmp_path / "smelter.pem"
        keys.write_private_key(env.participant_keys[SMELTER], key_path)
        size = env.ledger.tree_size()

        outcomes = run_race(env, pg_url, key_path)

        appended = 0
        for round_ in range(ROUNDS):
            by_worker = outcomes[round_]
            won = [name for name, outcome in by_worker.items() if outcome == "ok"]
            appended += len(won)
            batch_id = f"R{round_}"
            if round_ % 3 == 2:  # 2 x 12,000 of 24,000: both fit, nothing is left
                assert sorted(won) == sorted(WORKERS), by_worker
                assert available(env, SMELTER, batch_id) == 0
                continue
            assert len(won) == 1, (round_, by_worker)
            lost = next(outcome for name, outcome in by_worker.items() if name not in won)
            field = "payload.mass_kg" if round_ % 3 == 0 else "payload.inputs[0].mass_kg"
            assert lost.startswith(f"conflict: statement.{field}: "), lost
            assert "9,000 kg available" in lost
            assert available(env, SMELTER, batch_id) == 9_000
            # the child lot or output is the winner's, in the signer's namespace
            assert lot(env, SMELTER, f"{batch_id}-{won[0]}").mass_kg in (15_000, 14_800)
        assert env.ledger.tree_size() == size + appended
    finally:
        env.ledger.engine.dispose()
