"""The third-party test material in ``tests/third_party`` is what was published: every file
is listed in ``SHA256SUMS`` with its digest, and nothing is there that the list leaves out."""

from __future__ import annotations

import hashlib
from pathlib import Path

THIRD_PARTY = Path(__file__).resolve().parent / "third_party"
UNLISTED = {"SHA256SUMS", "README.md"}  # ours: the list itself and what it says


def listed() -> dict[str, str]:
    lines = (THIRD_PARTY / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split(maxsplit=1) for line in lines)}


def test_every_copied_file_is_unchanged() -> None:
    for name, digest in listed().items():
        data = (THIRD_PARTY / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"{name} differs from its source"


def test_nothing_is_there_that_the_list_leaves_out() -> None:
    present = {
        path.relative_to(THIRD_PARTY).as_posix()
        for path in THIRD_PARTY.rglob("*")
        if path.is_file() and path.relative_to(THIRD_PARTY).as_posix() not in UNLISTED
    }
    assert present == set(listed())


def test_each_copy_keeps_its_licence_beside_it() -> None:
    for folder, licence in (
        ("rfc9162", "LICENSE"),
        ("pact-v3", "pact-LICENSE.md"),
        ("vc-di-eddsa", "LICENSE.md"),
    ):
        assert f"{folder}/{licence}" in listed()
