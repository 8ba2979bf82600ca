"""The grade status note: the log's signed word on whether a grade was revoked.

Inclusion proofs show that records exist; they cannot show that a record does not.
"Not revoked as of tree size N" is therefore a claim the log signs, with its
checkpoint key, as a C2SP signed note whose text cannot be mistaken for a
checkpoint (its second line is not a tree size)::

    alu-ledger grade status v1
    origin <log origin>
    grade <grade record index>
    size <tree size of the bundle's checkpoint>
    revoked <revocation record index> | active

A log that signs "active" while a revocation sits below that size has signed a
provable lie: the revocation record and its inclusion proof contradict the note.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import ProofError

HEADER = "alu-ledger grade status v1"


@dataclass(frozen=True)
class GradeStatus:
    origin: str
    grade_index: int
    tree_size: int
    revoked_index: int | None

    def text(self) -> str:
        state = "active" if self.revoked_index is None else f"revoked {self.revoked_index}"
        return (
            f"{HEADER}\norigin {self.origin}\ngrade {self.grade_index}\n"
            f"size {self.tree_size}\n{state}\n"
        )

    @classmethod
    def parse(cls, text: str) -> GradeStatus:
        lines = text.split("\n")
        if len(lines) != 6 or lines[0] != HEADER or lines[5] != "":
            raise ProofError("not a grade status note", field="status")
        origin = _value(lines[1], "origin")
        grade_index = int(_value(lines[2], "grade", digits=True))
        tree_size = int(_value(lines[3], "size", digits=True))
        revoked = None if lines[4] == "active" else int(_value(lines[4], "revoked", digits=True))
        return cls(origin, grade_index, tree_size, revoked)


def _value(line: str, name: str, digits: bool = False) -> str:
    label, _, value = line.partition(" ")
    if label != name or not value or (digits and not value.isdigit()):
        raise ProofError(f"status note line {line!r} is not '{name} <value>'", field="status")
    return value
