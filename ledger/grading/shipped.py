"""The example rule sets shipped with the project, as raw ``ruleset.publish`` payloads.

They live as JSON in ``schemas/rulesets/`` rather than in code so that an
evaluation centre can read, copy and replace them, and so that each file carries
its source next to its thresholds. The demo loader signs and publishes them.
"""

from __future__ import annotations

import copy
from typing import Any

from ledger.resources import load_json, schema_names

SHIPPED_FOLDER = "rulesets"


def shipped_ruleset_names() -> list[str]:
    """The shipped files, in file-name order so that loading is deterministic."""
    return list(schema_names(SHIPPED_FOLDER))


def load_shipped_rulesets() -> list[dict[str, Any]]:
    """Every shipped rule set as the payload dict a ``ruleset.publish`` statement carries.

    Fresh dicts on every call: callers may sign or mutate them freely.
    """
    names = shipped_ruleset_names()
    return [copy.deepcopy(load_json(f"{SHIPPED_FOLDER}/{name}")) for name in names]
