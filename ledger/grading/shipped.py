"""The example rule sets shipped with the project, as raw ``ruleset.publish`` payloads.

They live as JSON in ``schemas/rulesets/`` rather than in code so that an
evaluation centre can read, copy and replace them, and so that each file carries
its source next to its thresholds. The demo loader signs and publishes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledger.grading.schema import SCHEMAS_DIR

SHIPPED_DIR = SCHEMAS_DIR / "rulesets"


def shipped_ruleset_paths() -> list[Path]:
    """The shipped files, in file-name order so that loading is deterministic."""
    return sorted(SHIPPED_DIR.glob("*.json"))


def load_shipped_rulesets() -> list[dict[str, Any]]:
    """Every shipped rule set as the payload dict a ``ruleset.publish`` statement carries.

    Fresh dicts on every call: callers may sign or mutate them freely.
    """
    payloads = []
    for path in shipped_ruleset_paths():
        with path.open(encoding="utf-8") as handle:
            payloads.append(json.load(handle))
    return payloads
