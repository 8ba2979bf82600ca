"""Custody payloads: parsed into frozen dataclasses, refused with the field at fault.

The shapes are defined once, in ``schemas/custody/custody.schema.json`` (one definition
per kind); this module checks a payload against the definition of its kind, then the
rules that relate fields of the payload to each other (ids not repeated, outputs not
heavier than inputs). Rules that need the ledger's state (who holds a lot, how much of
it is available) belong to the kinds (``kinds.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from jsonschema.protocols import Validator

from ledger.batches.schema_check import check_against_schema, reject_floats
from ledger.errors import InvalidError, MalformedError
from ledger.json_schema import make_validator
from ledger.resources import load_json

SCHEMA_PATH: Final = "custody/custody.schema.json"

TRANSFER: Final = "custody.transfer"
ACCEPT: Final = "custody.accept"
CANCEL: Final = "custody.cancel"
SPLIT: Final = "custody.split"
TRANSFORM: Final = "custody.transform"
POLICY: Final = "custody.policy"
CUSTODY_KINDS: Final = (TRANSFER, ACCEPT, CANCEL, SPLIT, TRANSFORM, POLICY)

SCRAP_PRE: Final = "pre_consumer_scrap"
SCRAP_POST: Final = "post_consumer_scrap"
PRIMARY: Final = "primary_unregistered"


@dataclass(frozen=True)
class LotRef:
    """A lot by namespace and id; a registered batch is ``(smelter_id, batch_id)``."""

    ns: str
    batch_id: str

    def __str__(self) -> str:
        return f"{self.ns}/{self.batch_id}"


@dataclass(frozen=True)
class TransferPayload:
    lot: LotRef
    recipient_id: str
    mass_kg: int | None
    child_batch_id: str | None

    @property
    def partial(self) -> bool:
        """A partial transfer hands over a new child lot rather than the lot itself."""
        return self.child_batch_id is not None


@dataclass(frozen=True)
class ChildLot:
    batch_id: str
    mass_kg: int


@dataclass(frozen=True)
class SplitPayload:
    lot: LotRef
    children: tuple[ChildLot, ...]


@dataclass(frozen=True)
class LotInput:
    lot: LotRef
    mass_kg: int


@dataclass(frozen=True)
class ExternalInput:
    type: str
    mass_kg: int
    kg_co2e_per_t: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class ElectricityUse:
    type: str
    kwh: int
    grid_region: str | None = None


@dataclass(frozen=True)
class FuelBurnt:
    fuel: str
    amount: Decimal
    unit: str


@dataclass(frozen=True)
class Process:
    """What the operation itself used and emitted, for all its outputs together."""

    electricity: tuple[ElectricityUse, ...] = ()
    fuels: tuple[FuelBurnt, ...] = ()
    direct_emissions_kg_co2e: int = 0


@dataclass(frozen=True)
class Output:
    batch_id: str
    mass_kg: int
    product_form: str


@dataclass(frozen=True)
class TransformPayload:
    operation: str
    inputs: tuple[LotInput, ...]
    external_inputs: tuple[ExternalInput, ...]
    process: Process
    outputs: tuple[Output, ...]

    @property
    def input_kg(self) -> int:
        """All metal charged: lots consumed and external inputs."""
        lots = sum(item.mass_kg for item in self.inputs)
        return lots + sum(item.mass_kg for item in self.external_inputs)

    @property
    def output_kg(self) -> int:
        return sum(item.mass_kg for item in self.outputs)


@functools.cache
def _validator(kind: str) -> Validator:
    document = load_json(SCHEMA_PATH)
    return make_validator(
        {"$schema": document["$schema"], "$defs": document["$defs"], "$ref": f"#/$defs/{kind}"}
    )


def checked(kind: str, payload: Any) -> Mapping[str, Any]:
    """Refuse floats, then anything the kind's schema refuses."""
    if not isinstance(payload, Mapping):
        raise MalformedError("payload must be a JSON object", field="payload")
    reject_floats(payload)
    check_against_schema(payload, _validator(kind))
    return payload


def _ref(item: Mapping[str, Any]) -> LotRef:
    return LotRef(item["ns"], item["batch_id"])


def parse_transfer(payload: Any) -> TransferPayload:
    p = checked(TRANSFER, payload)
    return TransferPayload(_ref(p), p["recipient_id"], p.get("mass_kg"), p.get("child_batch_id"))


def parse_transfer_index(kind: str, payload: Any) -> int:
    """``custody.accept`` and ``custody.cancel`` name a transfer by its record index."""
    index: int = checked(kind, payload)["transfer_index"]
    return index


def parse_split(payload: Any) -> SplitPayload:
    p = checked(SPLIT, payload)
    children = tuple(ChildLot(c["batch_id"], c["mass_kg"]) for c in p["children"])
    _refuse_repeats([c.batch_id for c in children], "payload.children", "batch_id")
    return SplitPayload(_ref(p), children)


def parse_transform(payload: Any) -> TransformPayload:
    p = checked(TRANSFORM, payload)
    process = p["process"]
    parsed = TransformPayload(
        operation=p["operation"],
        inputs=tuple(LotInput(_ref(i), i["mass_kg"]) for i in p["inputs"]),
        external_inputs=tuple(
            ExternalInput(e["type"], e["mass_kg"], e.get("kg_co2e_per_t"), e.get("description"))
            for e in p.get("external_inputs", [])
        ),
        process=Process(
            electricity=tuple(
                ElectricityUse(s["type"], s["kwh"], s.get("grid_region"))
                for s in process["electricity"]
            ),
            fuels=tuple(
                FuelBurnt(f["fuel"], Decimal(f["amount"]), f["unit"])
                for f in process.get("fuels", [])
            ),
            direct_emissions_kg_co2e=process.get("direct_emissions_kg_co2e", 0),
        ),
        outputs=tuple(Output(o["batch_id"], o["mass_kg"], o["product_form"]) for o in p["outputs"]),
    )
    _refuse_repeats([item.lot for item in parsed.inputs], "payload.inputs")
    _refuse_repeats([item.batch_id for item in parsed.outputs], "payload.outputs", "batch_id")
    if parsed.output_kg > parsed.input_kg:
        raise InvalidError(
            f"outputs weigh {parsed.output_kg:,} kg, more than the {parsed.input_kg:,} kg of"
            " metal that went in (lots and external inputs)",
            field="payload.outputs",
        )
    return parsed


def parse_policy(payload: Any) -> bool:
    required: bool = checked(POLICY, payload)["require_acceptance"]
    return required


def _refuse_repeats(values: Sequence[Any], field: str, member: str | None = None) -> None:
    seen: set[Any] = set()
    for position, value in enumerate(values):
        if value in seen:
            where = f"{field}[{position}]" + (f".{member}" if member else "")
            raise InvalidError(f"{value} appears twice; name each once", field=where)
        seen.add(value)
