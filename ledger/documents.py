"""``document.attest``: a participant anchors an off-ledger document by its digest.

Evidence (verification reports, certificates, contracts) stays off the ledger; its
SHA-256 on the ledger proves later that the file shown is the one attested then.
"""

from __future__ import annotations

import re

from ledger import payloads
from ledger.kinds import AppendContext, Author, StatementKind
from ledger.statements import Statement

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MEDIA_TYPE_RE = re.compile(r"^[a-z]+/[a-zA-Z0-9.+-]+$")


class AttestDocument(StatementKind):
    name = "document.attest"

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> None:
        payload = statement.payload
        payloads.exact_fields(payload, ("sha256", "media_type"), ("title", "subject"))
        payloads.matching(payload, "sha256", SHA256_RE, "64 lowercase hex digits")
        payloads.matching(payload, "media_type", MEDIA_TYPE_RE, "a media type like application/pdf")
        for name in ("title", "subject"):
            if name in payload:
                payloads.text(payload, name)
