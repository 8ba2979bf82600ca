"""Registry policies that depend on who registers: data in
``schemas/certificates/registry-policies.json``, with their sources.

Today one: I-REC issuance for plants in China ended with electricity produced in 2024
(the I-TRACK Foundation's announcement of 2024-09-13), so a Chinese smelter's I-REC for
later production is refused. The 24-month validity window applies to everyone and is
checked with the payload (``payload.py``).
"""

from __future__ import annotations

from typing import Final

from ledger.batches.payload import POLICIES_PATH, BatchRegistration, month_span
from ledger.errors import InvalidError
from ledger.resources import load_json

COUNTRY_LIMITS: Final = "country_limits"


def check_registry_policies(reg: BatchRegistration, country: str) -> None:
    """Refuse a certificate its registry would not issue for a plant in ``country``."""
    schemes = load_json(POLICIES_PATH)["schemes"]
    for index, source in enumerate(reg.electricity):
        cert = source.certificate
        limit = None if cert is None else schemes.get(cert.scheme, {}).get(COUNTRY_LIMITS, {})
        last = (limit or {}).get(country, {}).get("last_production_month")
        if cert is None or last is None:
            continue
        for produced in cert.production_months:
            if month_span(produced)[0] > month_span(last)[1]:
                raise InvalidError(
                    f"{cert.scheme} certificates are issued for plants in {country} only for"
                    f" electricity produced up to {last}; this one was produced in {produced}"
                    " (registry-policies.json)",
                    field=f"payload.electricity[{index}].certificate.vintage",
                )
