"""The data the ledger ships, read through this one loader.

JSON Schemas, rule sets and factor tables (the repository's ``schemas/``) and the demo data
(``scripts/demo/``) ship inside the package as ``ledger/_data/schemas`` and
``ledger/_data/demo``: in a source checkout those are symbolic links to the two folders, in
a built wheel copies of them (``pyproject.toml``, package data). Every read goes through
``importlib.resources``, so an installed wheel, an editable install and a checkout behave
the same, and nothing looks for files beside the source tree.

Domain numbers live in those files, not in code, so that an evaluation centre can replace
them by publishing a new version. Data files write every decimal as a string.
"""

from __future__ import annotations

import functools
import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Final

DATA: Final[Traversable] = files("ledger") / "_data"
SCHEMAS: Final[Traversable] = DATA / "schemas"
DEMO: Final[Traversable] = DATA / "demo"


def _no_float(text: str) -> Any:
    """Data files write every decimal as a string; a bare float is a mistake in the file."""
    raise ValueError(f"floating-point number {text} in a data file: write it as a string")


def _at(root: Traversable, relative_path: str) -> Traversable:
    resource = root
    for part in relative_path.split("/"):
        resource = resource / part
    return resource


@functools.cache
def load_json(relative_path: str) -> Any:
    """``schemas/<relative_path>``, read once; callers must not mutate the result."""
    return json.loads(
        _at(SCHEMAS, relative_path).read_text(encoding="utf-8"), parse_float=_no_float
    )


@functools.cache
def schema_names(folder: str, suffix: str = ".json") -> tuple[str, ...]:
    """The names of the files in ``schemas/<folder>`` ending in ``suffix``, sorted (listed
    once per process)."""
    entries = _at(SCHEMAS, folder).iterdir()
    return tuple(sorted(e.name for e in entries if e.is_file() and e.name.endswith(suffix)))


def load_demo_json(name: str) -> Any:
    """``scripts/demo/<name>``, parsed afresh on every call: callers may change it."""
    return json.loads(_at(DEMO, name).read_text(encoding="utf-8"))
