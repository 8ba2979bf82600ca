"""The ``batch.register`` payload: parsed into frozen dataclasses, refused with a reason.

``parse_registration`` is the single gate: floats are refused first (they do not survive
canonical JSON), then the JSON Schema in ``schemas/batch/batch.register.schema.json`` checks
the shape, then the rules below check what a schema cannot express (metal balance,
electricity per tonne, certificate amounts). Each refusal names the field as a dotted
``payload...`` path. The limits are data in ``schemas/batch/rules.json``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

from jsonschema.protocols import Validator

from ledger.batches.schema_check import check_payload
from ledger.batches.serials import SerialRange, legacy_range, serial_range, single_serial
from ledger.errors import InvalidError, MalformedError
from ledger.json_schema import make_validator, validate
from ledger.resources import load_json

SCHEMA_PATH: Final = "batch/batch.register.schema.json"
LEGACY_SCHEMA_PATH: Final = "batch/batch.register.v1.schema.json"
RULES_PATH: Final = "batch/rules.json"

RENEWABLE_TYPES: Final = frozenset({"hydro", "wind", "solar"})
"""Source types whose electricity is renewable by nature (counted apart when uncertified)."""

CERTIFIABLE_TYPES: Final = frozenset({"grid", "hydro", "wind", "solar", "other"})
"""Source types a renewable-energy certificate can back: not fossil or nuclear own power."""

SERIAL_SCHEMES: Final = frozenset({"GEC", "I-REC"})
"""Schemes whose certificates are one MWh each and may be claimed as serial ranges."""

CONTRACT_SCHEMES: Final = frozenset({"PPA", "green_power_trade"})
"""Contracts: they prove renewable attributes only through the GEC serials they carried."""

POLICIES_PATH: Final = "certificates/registry-policies.json"

KWH_PER_MWH: Final = 1000


@dataclass(frozen=True)
class ProductionPeriod:
    """Inclusive calendar dates over which the batch was produced."""

    start: date
    end: date


@dataclass(frozen=True)
class BatchReference:
    """A ledger batch (by smelter and batch id) and the kilograms of it used here."""

    smelter_id: str
    batch_id: str
    mass_kg: int


@dataclass(frozen=True)
class LotValues:
    """What the ledger states about a lot named as purchased primary metal: its footprint
    (market-based), the electricity behind each tonne of its metal and the certified share
    of it, and the green-power share of its primary metal."""

    kg_co2e_per_t: int
    electricity_kwh_per_t: Decimal
    renewable_share: Decimal
    primary_share: Decimal
    primary_green_share: Decimal


@dataclass(frozen=True)
class MetalInputs:
    """Metal charged into the batch, kilograms."""

    own_electrolysis_kg: int
    purchased_primary_kg: int
    pre_consumer_scrap_kg: int
    post_consumer_scrap_kg: int
    purchased_primary_batches: tuple[BatchReference, ...] = ()

    @property
    def primary_kg(self) -> int:
        """Primary metal, own and purchased."""
        return self.own_electrolysis_kg + self.purchased_primary_kg

    @property
    def scrap_kg(self) -> int:
        """Recycled metal, pre- and post-consumer."""
        return self.pre_consumer_scrap_kg + self.post_consumer_scrap_kg

    @property
    def total_kg(self) -> int:
        """All metal charged."""
        return self.primary_kg + self.scrap_kg


@dataclass(frozen=True)
class Certificate:
    """A certificate or contract backing a source as renewable, and what this batch claims.

    ``serials`` is set for GEC codes and I-REC serial ranges (one MWh per serial);
    ``gec_serials`` for a PPA or green power trade: the GECs the contract carried, through
    which alone it proves renewable attributes (NDRC/MoF/NEA 2023 No. 1044).
    """

    scheme: str
    mwh: Decimal
    vintage: str | None
    id: str | None = None
    first_id: str | None = None
    last_id: str | None = None
    total_mwh: Decimal | None = None
    serials: SerialRange | None = None
    gec_serials: tuple[SerialRange, ...] = ()
    #: Read as before method 2, which counted every certificate and contract as proof.
    legacy: bool = False

    @property
    def claimed_kwh(self) -> int:
        """What this batch claims, in kWh (mwh has at most 3 decimals)."""
        return int(self.mwh * KWH_PER_MWH)

    @property
    def total_kwh(self) -> int:
        """Face value in kWh: one MWh per serial, else total_mwh."""
        if self.serials is not None:
            return self.serials.count * KWH_PER_MWH
        if self.gec_serials:
            return sum(r.count for r in self.gec_serials) * KWH_PER_MWH
        return int((self.total_mwh or self.mwh) * KWH_PER_MWH)

    @property
    def proves_attributes(self) -> bool:
        """Whether the claim proves renewable electricity (market-based accounting):
        GEC and I-REC certificates do; a contract only through the GECs it carried."""
        return self.legacy or self.scheme in SERIAL_SCHEMES or bool(self.gec_serials)

    @property
    def production_months(self) -> tuple[str, ...]:
        """When the certified electricity was produced (YYYY-MM, or YYYY when only the year
        is known): from the codes for GEC, else the declared vintage."""
        if self.serials is not None and self.serials.production_month:
            return (self.serials.production_month,)
        months = tuple(r.production_month for r in self.gec_serials if r.production_month)
        if months:
            return months
        return () if self.vintage is None else (self.vintage,)

    @property
    def label(self) -> str:
        """How messages name the certificate: ``PPA:ABC-1`` or ``GEC <first>..<last>``."""
        if self.serials is not None:
            return f"{self.scheme} {self.serials.describe()}"
        return f"{self.scheme}:{self.id}"


@dataclass(frozen=True)
class AlloyingAddition:
    """An alloying element added to the batch, kilograms per tonne of batch."""

    element: str
    kg_per_t: Decimal


@dataclass(frozen=True)
class ElectricitySource:
    """Electricity from one source for the batch."""

    type: str
    kwh: int
    grid_region: str | None = None
    certificate: Certificate | None = None
    metering_evidence: str | None = None

    @property
    def certified_kwh(self) -> int:
        """kWh backed by a certificate that proves renewable attributes: min(kwh, claimed)."""
        if self.certificate is None or not self.certificate.proves_attributes:
            return 0
        return min(self.kwh, self.certificate.claimed_kwh)

    @property
    def uncertified_kwh(self) -> int:
        """kWh not backed by a certificate."""
        return self.kwh - self.certified_kwh


@dataclass(frozen=True)
class FuelUse:
    """Fuel burnt per tonne of batch."""

    fuel: str
    amount: Decimal
    unit: str


@dataclass(frozen=True)
class ActivityData:
    """Footprint activity data; potroom items per t of own-electrolysis metal, rest per t batch."""

    ac_power_kwh_per_t: int | None = None
    net_anode_consumption_kg_per_t: int | None = None
    anode_sulphur_pct: Decimal | None = None
    anode_ash_pct: Decimal | None = None
    anode_effect_minutes_per_cell_day: Decimal | None = None
    cell_technology: str | None = None
    fuels: tuple[FuelUse, ...] = ()
    limestone_kg_per_t: int | None = None
    purchased_heat_gj_per_t: Decimal | None = None
    alumina_kg_per_t: int | None = None
    alloying_additions: tuple[AlloyingAddition, ...] | None = None


@dataclass(frozen=True)
class Verification:
    """Third-party verification of a declared footprint."""

    verifier: str
    report_reference: str


@dataclass(frozen=True)
class DeclaredFootprint:
    """The footprint the smelter declares, and how it was computed."""

    kg_co2e_per_t: int
    boundary: str
    method_standard: str
    gwp_set: str
    recycled_content_method: str
    verification: Verification | None = None


@dataclass(frozen=True)
class Evidence:
    """A document backing the statement, by SHA-256."""

    sha256: str
    media_type: str
    description: str | None = None


@dataclass(frozen=True)
class BatchRegistration:
    """A parsed, checked ``batch.register`` payload."""

    batch_id: str
    smelter_id: str
    product_form: str
    alloy: str
    mass_kg: int
    production_period: ProductionPeriod
    site: str
    route: str
    metal_inputs: MetalInputs
    electricity: tuple[ElectricitySource, ...]
    declared_footprint: DeclaredFootprint
    potline: str | None = None
    activity_data: ActivityData | None = None
    evidence: tuple[Evidence, ...] = ()

    @property
    def total_kwh(self) -> int:
        """Electricity of all sources, kWh."""
        return sum(source.kwh for source in self.electricity)

    @property
    def alloying_kg(self) -> Decimal:
        """Kilograms of alloying elements in the whole batch (0 when none are stated)."""
        additions = self.activity_data.alloying_additions if self.activity_data else None
        return sum((a.kg_per_t for a in additions or ()), Decimal(0)) * self.mass_kg / 1000


@dataclass(frozen=True)
class BatchRules:
    """Plausibility limits from ``schemas/batch/rules.json`` and the certificate registry
    policies of ``schemas/certificates/registry-policies.json``."""

    version: str
    casting_loss_tolerance: Decimal
    min_electrolysis_ac_kwh_per_t: Decimal
    validity_months: dict[str, int]
    unalloyed_patterns: tuple[re.Pattern[str], ...]


@functools.cache
def load_batch_rules() -> BatchRules:
    """The limits in force; validated against their own schema on first use."""
    data = load_json(RULES_PATH)
    validate(make_validator(load_json("batch/rules.schema.json")), data)
    schemes = load_json(POLICIES_PATH)["schemes"]
    return BatchRules(
        version=data["version"],
        casting_loss_tolerance=Decimal(data["casting_loss_tolerance"]["value"]),
        min_electrolysis_ac_kwh_per_t=Decimal(data["min_electrolysis_ac_kwh_per_t"]["value"]),
        validity_months={
            scheme: int(policy["validity_months"])
            for scheme, policy in schemes.items()
            if "validity_months" in policy
        },
        unalloyed_patterns=tuple(
            re.compile(pattern) for pattern in data["unalloyed_designations"]["patterns"]
        ),
    )


@functools.cache
def payload_validator(legacy: bool = False) -> Validator:
    """The compiled payload schema (the pre-method-2 one with ``legacy``)."""
    return make_validator(load_json(LEGACY_SCHEMA_PATH if legacy else SCHEMA_PATH))


def is_alloyed(reg: BatchRegistration) -> bool:
    """Whether the batch is an alloy (its alloying additions weigh on its footprint): an
    alloy ingot, or any designation that is not unalloyed aluminium (rules.json)."""
    if reg.product_form == "alloy_ingot":
        return True
    patterns = load_batch_rules().unalloyed_patterns
    return not any(pattern.fullmatch(reg.alloy) for pattern in patterns)


def parse_registration(
    payload: Mapping[str, Any], *, legacy: bool = False, rules: bool = True
) -> BatchRegistration:
    """Check a ``batch.register`` payload and return it as dataclasses.

    Raises MalformedError for a wrong shape (float, missing or unknown field, bad format)
    and InvalidError for a broken domain rule, each with ``field`` = ``payload...`` path.
    ``legacy``: read it as ledgers did before footprint method 2 (the v1 schema, GEC codes
    split 17 + 15, vintages as declared, no registry windows), only to re-verify
    certificates issued then; nothing new is accepted so. ``rules`` False checks the shape
    only: for reading back the public part of a recorded payload (checked when appended),
    whose confidential members are missing.
    """
    if not isinstance(payload, Mapping):
        raise MalformedError("payload must be a JSON object", field="payload")
    check_payload(payload, payload_validator(legacy))
    registration = _build(payload, legacy)
    if rules:
        limits = load_batch_rules()
        for check in _LEGACY_RULES if legacy else _RULES:
            check(registration, limits)
    return registration


# --- building dataclasses from a schema-valid payload -------------------------------------


def _build(p: Mapping[str, Any], legacy: bool = False) -> BatchRegistration:
    period = p["production_period"]
    activity = p.get("activity_data")
    return BatchRegistration(
        batch_id=p["batch_id"],
        smelter_id=p["smelter_id"],
        product_form=p["product_form"],
        alloy=p["alloy"],
        mass_kg=p["mass_kg"],
        production_period=ProductionPeriod(
            date.fromisoformat(period["start"]), date.fromisoformat(period["end"])
        ),
        site=p["site"],
        potline=p.get("potline"),
        route=p["route"],
        metal_inputs=_build_inputs(p["metal_inputs"]),
        electricity=tuple(_build_source(s, i, legacy) for i, s in enumerate(p["electricity"])),
        activity_data=None if activity is None else _build_activity(activity),
        declared_footprint=_build_declared(p["declared_footprint"]),
        evidence=tuple(
            Evidence(e["sha256"], e["media_type"], e.get("description"))
            for e in p.get("evidence", [])
        ),
    )


def _build_inputs(m: Mapping[str, Any]) -> MetalInputs:
    return MetalInputs(
        own_electrolysis_kg=m["own_electrolysis_kg"],
        purchased_primary_kg=m["purchased_primary_kg"],
        pre_consumer_scrap_kg=m["pre_consumer_scrap_kg"],
        post_consumer_scrap_kg=m["post_consumer_scrap_kg"],
        purchased_primary_batches=tuple(
            BatchReference(b["smelter_id"], b["batch_id"], b["mass_kg"])
            for b in m.get("purchased_primary_batches", [])
        ),
    )


def _build_source(s: Mapping[str, Any], index: int, legacy: bool) -> ElectricitySource:
    cert = s.get("certificate")
    field = f"payload.electricity[{index}].certificate"
    return ElectricitySource(
        type=s["type"],
        kwh=s["kwh"],
        grid_region=s.get("grid_region"),
        certificate=None if cert is None else _build_certificate(cert, field, legacy),
        metering_evidence=s.get("metering_evidence"),
    )


def _build_certificate(c: Mapping[str, Any], field: str, legacy: bool = False) -> Certificate:
    """Build a certificate; a serial range that is none raises InvalidError here."""
    scheme = c["scheme"]
    serials: SerialRange | None = None
    if legacy and scheme in SERIAL_SCHEMES and ("first_id" in c or scheme == "GEC"):
        serials = legacy_range(scheme, c.get("first_id") or c["id"], c.get("last_id"), field)
    elif "first_id" in c and scheme in SERIAL_SCHEMES:
        serials = serial_range(scheme, c["first_id"], c["last_id"], field)
    elif scheme == "GEC":
        serials = single_serial(scheme, c["id"], f"{field}.id")
    total = c.get("total_mwh")
    return Certificate(
        scheme=scheme,
        mwh=Decimal(c["mwh"]),
        vintage=c.get("vintage"),
        id=c.get("id"),
        first_id=c.get("first_id"),
        last_id=c.get("last_id"),
        total_mwh=None if total is None else Decimal(total),
        serials=serials,
        gec_serials=tuple(
            serial_range("GEC", r["first_id"], r["last_id"], f"{field}.gec_serials[{n}]")
            for n, r in enumerate(c.get("gec_serials", []))
        ),
        legacy=legacy,
    )


def _build_activity(a: Mapping[str, Any]) -> ActivityData:
    def dec(name: str) -> Decimal | None:
        return None if name not in a else Decimal(a[name])

    return ActivityData(
        ac_power_kwh_per_t=a.get("ac_power_kwh_per_t"),
        net_anode_consumption_kg_per_t=a.get("net_anode_consumption_kg_per_t"),
        anode_sulphur_pct=dec("anode_sulphur_pct"),
        anode_ash_pct=dec("anode_ash_pct"),
        anode_effect_minutes_per_cell_day=dec("anode_effect_minutes_per_cell_day"),
        cell_technology=a.get("cell_technology"),
        fuels=tuple(
            FuelUse(f["fuel"], Decimal(f["amount"]), f["unit"]) for f in a.get("fuels", [])
        ),
        limestone_kg_per_t=a.get("limestone_kg_per_t"),
        purchased_heat_gj_per_t=dec("purchased_heat_gj_per_t"),
        alumina_kg_per_t=a.get("alumina_kg_per_t"),
        alloying_additions=None
        if "alloying_additions" not in a
        else tuple(
            AlloyingAddition(x["element"], Decimal(x["kg_per_t"])) for x in a["alloying_additions"]
        ),
    )


def _build_declared(d: Mapping[str, Any]) -> DeclaredFootprint:
    v = d.get("verification")
    return DeclaredFootprint(
        kg_co2e_per_t=d["kg_co2e_per_t"],
        boundary=d["boundary"],
        method_standard=d["method_standard"],
        gwp_set=d["gwp_set"],
        recycled_content_method=d["recycled_content_method"],
        verification=None if v is None else Verification(v["verifier"], v["report_reference"]),
    )


# --- domain rules ---------------------------------------------------------------------------


def _check_period(reg: BatchRegistration, _rules: BatchRules) -> None:
    """Production runs forward in time."""
    period = reg.production_period
    if period.start > period.end:
        raise InvalidError(
            f"end {period.end} is before start {period.start}; a production period runs forward",
            field="payload.production_period.end",
        )


def _check_metal_balance(reg: BatchRegistration, rules: BatchRules) -> None:
    """Mass out <= metal in (alloying additions included), and the casting loss stays within
    the tolerance."""
    total = reg.metal_inputs.total_kg + reg.alloying_kg
    counted = " with the alloying additions" if reg.alloying_kg else ""
    if total < reg.mass_kg:
        raise InvalidError(
            f"metal_inputs add up to {_kg(total)} kg{counted}, less than the batch mass of"
            f" {reg.mass_kg:,} kg; a batch cannot weigh more than the metal charged into it",
            field="payload.metal_inputs",
        )
    if reg.mass_kg < total * (1 - rules.casting_loss_tolerance):
        loss = (Decimal(total - reg.mass_kg) * 100 / total).quantize(Decimal("0.1"))
        raise InvalidError(
            f"metal_inputs add up to {_kg(total)} kg but the batch weighs {reg.mass_kg:,} kg: a"
            f" casting loss of {loss} % exceeds the tolerance of"
            f" {(rules.casting_loss_tolerance * 100).normalize():f} %",
            field="payload.metal_inputs",
        )


def _kg(value: Decimal | int) -> str:
    """Kilograms for a message: ``24,240`` or ``24,240.5``."""
    number = Decimal(value)
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number.normalize():,f}"


def _check_purchased_batches(reg: BatchRegistration, _rules: BatchRules) -> None:
    """Named source batches: distinct, not this batch, within the purchased primary metal."""
    inputs = reg.metal_inputs
    field = "payload.metal_inputs.purchased_primary_batches"
    seen: set[tuple[str, str]] = set()
    for index, ref in enumerate(inputs.purchased_primary_batches):
        key = (ref.smelter_id, ref.batch_id)
        if key == (reg.smelter_id, reg.batch_id):
            raise InvalidError(
                f"purchased_primary_batches[{index}] names this batch itself",
                field=f"{field}[{index}]",
            )
        if key in seen:
            raise InvalidError(
                f"purchased_primary_batches[{index}] names batch {ref.smelter_id}/"
                f"{ref.batch_id} a second time; list each source batch once",
                field=f"{field}[{index}]",
            )
        seen.add(key)
    named = sum(ref.mass_kg for ref in inputs.purchased_primary_batches)
    if named > inputs.purchased_primary_kg:
        raise InvalidError(
            f"purchased_primary_batches add up to {named:,} kg, more than the"
            f" purchased_primary_kg of {inputs.purchased_primary_kg:,} kg",
            field=field,
        )


def _check_route(reg: BatchRegistration, _rules: BatchRules) -> None:
    """The declared route must follow from the metal inputs."""
    inputs = reg.metal_inputs
    needs = {
        "primary": (inputs.primary_kg > 0, "primary metal (own electrolysis or purchased)"),
        "secondary": (inputs.scrap_kg > 0, "scrap (pre- or post-consumer)"),
        "mixed": (
            inputs.primary_kg > 0 and inputs.scrap_kg > 0,
            "both primary metal and scrap",
        ),
    }
    present, what = needs[reg.route]
    if not present:
        raise InvalidError(
            f"route '{reg.route}' needs {what} in metal_inputs", field="payload.route"
        )


def _check_sources(reg: BatchRegistration, rules: BatchRules) -> None:
    """Per-source rules; grid_region for grid sources is enforced by the schema."""
    documents = {item.sha256 for item in reg.evidence}
    for index, source in enumerate(reg.electricity):
        where = f"payload.electricity[{index}]"
        if source.metering_evidence is not None and source.metering_evidence not in documents:
            raise InvalidError(
                f"metering_evidence {source.metering_evidence} is not one of the batch's evidence"
                " documents; list the meter readings under evidence and reference their sha256",
                field=f"{where}.metering_evidence",
            )
        if source.certificate is not None:
            _check_certificate(reg, source, source.certificate, where, rules)


def _check_certificate(
    reg: BatchRegistration,
    source: ElectricitySource,
    cert: Certificate,
    where: str,
    rules: BatchRules,
) -> None:
    """A certificate backs a renewable-capable source, for no more than it consumed, and
    its electricity was produced within the window its registry allows."""
    field = f"{where}.certificate"
    if source.type not in CERTIFIABLE_TYPES:
        raise InvalidError(
            f"certificate cannot back a {source.type} source: certificates attest renewable"
            " electricity, and this source is not",
            field=field,
        )
    if cert.mwh <= 0:
        raise InvalidError("mwh must be greater than 0", field=f"{field}.mwh")
    _check_certificate_total(cert, field)
    if cert.claimed_kwh > source.kwh:
        raise InvalidError(
            f"mwh {cert.mwh} is more than the {source.kwh:,} kWh this source consumed; a batch"
            " cannot claim more green electricity than it used",
            field=f"{field}.mwh",
        )
    _check_vintage(cert, field)
    _check_production_window(reg, cert, field, rules)


def _check_certificate_total(cert: Certificate, field: str) -> None:
    """Serial claims are whole serials; id claims stay within the face value, which for a
    contract is the number of GECs it carried."""
    if cert.serials is not None:
        count = cert.serials.count
        if cert.mwh != count:
            raise InvalidError(
                f"mwh {cert.mwh} does not match the {count:,} {cert.scheme} certificate(s)"
                f" named; each certificate is 1 MWh and is claimed whole",
                field=f"{field}.mwh",
            )
        if cert.total_mwh is not None and cert.total_mwh != count:
            raise InvalidError(
                f"total_mwh {cert.total_mwh} does not match the {count:,} certificate(s) named",
                field=f"{field}.total_mwh",
            )
        return
    if cert.gec_serials:
        carried = sum(r.count for r in cert.gec_serials)
        if cert.total_mwh is not None and cert.total_mwh != carried:
            raise InvalidError(
                f"total_mwh {cert.total_mwh} is not the {carried:,} MWh of the {carried:,} GECs"
                " the contract carried (gec_serials)",
                field=f"{field}.total_mwh",
            )
        if cert.mwh > carried:
            raise InvalidError(
                f"mwh {cert.mwh} is more than the {carried:,} GECs the contract carried",
                field=f"{field}.mwh",
            )
        return
    if cert.total_mwh is not None and cert.mwh > cert.total_mwh:
        raise InvalidError(
            f"mwh {cert.mwh} is more than the certificate's total_mwh of {cert.total_mwh}",
            field=f"{field}.mwh",
        )


def _check_vintage(cert: Certificate, field: str) -> None:
    """A declared vintage must agree with the production month the GEC codes state."""
    if cert.vintage is None:
        return
    coded = [r.production_month for r in (cert.serials, *cert.gec_serials) if r is not None]
    for month in filter(None, coded):
        if not month.startswith(cert.vintage):
            raise InvalidError(
                f"vintage {cert.vintage} contradicts the certificate code, which states"
                f" production in {month}; leave vintage out for GEC or state {month}",
                field=f"{field}.vintage",
            )


def _check_production_window(
    reg: BatchRegistration, cert: Certificate, field: str, rules: BatchRules
) -> None:
    """Certified electricity was produced before the batch was cast, and recently enough
    that its certificate was still valid (GEC: 24 months, registry-policies.json)."""
    period = reg.production_period
    months = rules.validity_months.get(cert.scheme)
    if months is None and cert.gec_serials:
        months = rules.validity_months["GEC"]
    end = period.end.year * 12 + period.end.month - 1
    start = period.start.year * 12 + period.start.month - 1
    for produced in cert.production_months:
        first, last = month_span(produced)
        if first > end:
            raise InvalidError(
                f"the certified electricity was produced in {produced}, after the production"
                f" period, which ends {period.end}",
                field=f"{field}.vintage",
            )
        if months is not None and last < start - months:
            raise InvalidError(
                f"the certified electricity was produced in {produced}, more than {months}"
                f" months before the production period starts ({period.start}): a"
                f" {cert.scheme} certificate is valid {months} months from production",
                field=f"{field}.vintage",
            )


def month_span(produced: str) -> tuple[int, int]:
    """The months (counted from year 0) a vintage ``YYYY-MM`` or ``YYYY`` covers."""
    year = int(produced[:4])
    if len(produced) > 4:
        month = year * 12 + int(produced[5:7]) - 1
        return month, month
    return year * 12, year * 12 + 11


def _check_electrolysis_power(reg: BatchRegistration, rules: BatchRules) -> None:
    """Own electrolysis needs at least the physical minimum of AC power per tonne."""
    own_kg = reg.metal_inputs.own_electrolysis_kg
    if own_kg == 0:
        return
    activity = reg.activity_data
    stated = None if activity is None else activity.ac_power_kwh_per_t
    if stated is None:
        per_t = Decimal(reg.total_kwh) * 1000 / own_kg
        field, basis = "payload.electricity", "electricity sources per tonne of own electrolysis"
    else:
        per_t = Decimal(stated)
        field, basis = "payload.activity_data.ac_power_kwh_per_t", "ac_power_kwh_per_t"
    minimum = rules.min_electrolysis_ac_kwh_per_t
    if per_t < minimum:
        raise InvalidError(
            f"{basis} is {per_t.quantize(Decimal(1)):,} kWh/t, physically impossible:"
            f" electrolysis needs at least {minimum:,} kWh of AC power per tonne",
            field=field,
        )
    if stated is not None and reg.total_kwh * 1000 < stated * own_kg:
        raise InvalidError(
            f"electricity sources add up to {reg.total_kwh:,} kWh, less than the"
            f" {stated * own_kg // 1000:,} kWh electrolysis alone needs ({stated:,} kWh/t x"
            f" {Decimal(own_kg) / 1000:f} t of own-electrolysis metal)",
            field="payload.electricity",
        )


def _check_activity(reg: BatchRegistration, _rules: BatchRules) -> None:
    """Anodes are mostly carbon: sulphur and ash together stay below 100 %."""
    activity = reg.activity_data
    if activity is None or activity.anode_sulphur_pct is None or activity.anode_ash_pct is None:
        return
    if activity.anode_sulphur_pct + activity.anode_ash_pct >= 100:
        raise InvalidError(
            "anode_ash_pct plus anode_sulphur_pct reach 100 %, leaving no carbon in the anode",
            field="payload.activity_data.anode_ash_pct",
        )


def _check_evidence(reg: BatchRegistration, _rules: BatchRules) -> None:
    """Each document once."""
    seen: set[str] = set()
    for index, item in enumerate(reg.evidence):
        if item.sha256 in seen:
            raise InvalidError(
                f"evidence[{index}] repeats document {item.sha256}; list each document once",
                field=f"payload.evidence[{index}].sha256",
            )
        seen.add(item.sha256)


def _check_sources_legacy(reg: BatchRegistration, _rules: BatchRules) -> None:
    """The certificate rules before method 2: amounts, and no vintage after the period."""
    for index, source in enumerate(reg.electricity):
        cert = source.certificate
        if cert is None:
            continue
        field = f"payload.electricity[{index}].certificate"
        if source.type not in CERTIFIABLE_TYPES or cert.mwh <= 0 or cert.claimed_kwh > source.kwh:
            raise InvalidError("the certificate does not fit its source", field=field)
        _check_certificate_total(cert, field)
        if cert.vintage is not None and month_span(cert.vintage)[0] > (
            reg.production_period.end.year * 12 + reg.production_period.end.month - 1
        ):
            raise InvalidError("vintage is after the production period", field=f"{field}.vintage")


_RULES: Final[Sequence[Callable[[BatchRegistration, BatchRules], None]]] = (
    _check_period,
    _check_metal_balance,
    _check_purchased_batches,
    _check_route,
    _check_sources,
    _check_electrolysis_power,
    _check_activity,
    _check_evidence,
)

_LEGACY_RULES: Final[Sequence[Callable[[BatchRegistration, BatchRules], None]]] = (
    _check_period,
    _check_metal_balance,
    _check_purchased_batches,
    _check_route,
    _check_sources_legacy,
    _check_electrolysis_power,
    _check_activity,
    _check_evidence,
)
