"""What ``scripts/bench.py`` reports for 1 and 16 submitters, and for the 16 clients'
proofs beside log-key: they run in alternating rounds, the ratio reported is the median
round's (with that round's rates), and every round is kept beside it."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "scripts"))
    return importlib.import_module("bench")


def test_the_ratio_reported_is_the_median_rounds(bench: ModuleType) -> None:
    rates = [(100.0, 500.0), (100.0, 700.0), (90.0, 540.0), (100.0, 800.0), (100.0, 400.0)]
    assert len(rates) == bench.SUBMITTER_ROUNDS  # ratios 5, 7, 6, 8 and 4
    figures: dict = {"log_key_1": {"per_s": 4000.0}}
    for round_, (one, sixteen) in enumerate(rates):
        figures[f"submitters_1_round_{round_}"] = {"per_s": one}
        figures[f"submitters_16_round_{round_}"] = {"per_s": sixteen}
    reported = bench.submitter_figures(figures)
    assert reported["submitters_16_over_1"] == 6.0
    assert reported["submitters_1"] == {"per_s": 90.0}
    assert reported["submitters_16"] == {"per_s": 540.0}
    assert [r["ratio"] for r in reported["submitters_rounds"]] == [5.0, 7.0, 6.0, 8.0, 4.0]
    assert figures == {"log_key_1": {"per_s": 4000.0}}  # the rounds are taken out


def test_each_proofs_ratio_is_the_median_rounds_against_that_rounds_log_key(
    bench: ModuleType,
) -> None:
    log_key = [4000.0, 2000.0, 3000.0, 5000.0, 1000.0]
    working_set = [2800.0, 1500.0, 1500.0, 4500.0, 900.0]  # 0.7, 0.75, 0.5, 0.9, 0.9
    spread = [2000.0, 1600.0, 1800.0, 2000.0, 300.0]  # 0.5, 0.8, 0.6, 0.4, 0.3
    assert len(log_key) == bench.PROOF_ROUNDS
    figures: dict = {"log_key_16": {"per_s": 5000.0}}
    for round_ in range(bench.PROOF_ROUNDS):
        figures[f"log_key_16_round_{round_}"] = {"per_s": log_key[round_]}
        figures[f"inclusion_proofs_16_round_{round_}"] = {"per_s": working_set[round_]}
        figures[f"inclusion_proofs_spread_16_round_{round_}"] = {
            "per_s": spread[round_],
            "p99_ms": 9,
        }
    reported = bench.proof_figures(figures)
    assert reported["inclusion_proofs_16"] == {
        "per_s": 1500.0,
        "log_key_per_s": 2000.0,
        "ratio_to_log_key": 0.75,
    }
    assert reported["inclusion_proofs_spread_16"] == {
        "per_s": 2000.0,
        "p99_ms": 9,
        "log_key_per_s": 4000.0,
        "ratio_to_log_key": 0.5,
    }
    ratios = [r["ratio"] for r in reported["inclusion_proofs_spread_16_rounds"]]
    assert ratios == [0.5, 0.8, 0.6, 0.4, 0.3]
    ratios = [r["ratio"] for r in reported["inclusion_proofs_16_rounds"]]
    assert ratios == [0.7, 0.75, 0.5, 0.9, 0.9]
    assert figures == {"log_key_16": {"per_s": 5000.0}}  # the rounds are taken out


def test_spread_proofs_ask_about_records_across_the_whole_log(bench: ModuleType) -> None:
    size = 1_000_000
    working_set = bench.inclusion_paths(size, bench.PROOF_WORKING_SET)
    spread = bench.inclusion_paths(size, bench.PROOF_SPREAD)

    def indexes(paths: list[str]) -> set[int]:
        return {int(path.split("/")[-1].split("?")[0]) for path in paths}

    assert all(path.endswith(f"?tree_size={size}") for path in working_set + spread)
    assert all(0 <= index < size for index in indexes(spread))
    # The working set fits the node cache; the spread's lower nodes cannot.
    assert len(indexes(working_set)) <= bench.PROOF_WORKING_SET
    assert len(indexes(spread)) > 30 * bench.PROOF_WORKING_SET
    assert max(indexes(spread)) > size * 0.9 and min(indexes(spread)) < size * 0.1


def test_every_step_the_plan_runs_is_reported_beside_its_reference(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger import keys

    def measure(plan: list[dict]) -> dict:
        # log-key (kept alive) answers 1,000/s, every other step 600/s.
        return {
            step["name"]: {
                "clients": step["clients"],
                "per_s": 1000.0 if step["name"].startswith("log_key_1") else 600.0,
            }
            for step in plan
        }

    monkeypatch.setattr(bench._httpload, "measure", measure)
    figures = bench.http_figures("http://ledger.test", 10_000, [7], keys.generate(), 1.0)
    assert not [name for name in figures if "_round_" in name]
    for name in [*bench.BESIDE_LOG_KEY, "inclusion_proofs_16", "inclusion_proofs_spread_16"]:
        assert figures[name]["ratio_to_log_key"] == 0.6, name
    assert figures["submitters_16_over_1"] == 1.0
    assert len(figures["inclusion_proofs_16_rounds"]) == bench.PROOF_ROUNDS
    assert len(figures["submitters_rounds"]) == bench.SUBMITTER_ROUNDS
