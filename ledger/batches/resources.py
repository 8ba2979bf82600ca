"""Loading the data files under ``schemas/`` (JSON Schemas, rule limits, factor tables).

Domain numbers live in those files, not in code, so that an evaluation centre can replace
them by publishing a new version. This module is the only place that reads them.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Final

SCHEMAS_DIR: Final = Path(__file__).resolve().parents[2] / "schemas"


def _no_float(text: str) -> Any:
    """Data files write every decimal as a string; a bare float is a mistake in the file."""
    raise ValueError(f"floating-point number {text} in a data file: write it as a string")


@functools.cache
def load_json(relative_path: str) -> Any:
    """Read ``schemas/<relative_path>`` once; callers must not mutate the result."""
    with (SCHEMAS_DIR / relative_path).open(encoding="utf-8") as fh:
        return json.load(fh, parse_float=_no_float)
