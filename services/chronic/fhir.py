"""HL7 FHIR R4 Observations in: validated with fhir.resources (R4B models, the same
Observation and Bundle as R4), mapped by LOINC code and UCUM unit to ReadingRecorded.

A device or lab that sends FHIR feeds the chronic service without custom code. The
subject must be a platform pseudonym (`Patient/psn-...`): an INS never enters the bus.
An Observation with status `corrected` or `amended` replaces the value sent earlier under
the same id: it becomes a ReadingCorrected. A resource is at most MAX_BYTES of JSON and a
Bundle at most MAX_ENTRIES entries.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from emeuse.chronic.v1.chronic_events_pb2 import ReadingCorrected, ReadingRecorded
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.id_rules import IdentifyingContentError, IdRuleError, check_ids
from emeuse.runtime.limits import out_of_bounds
from emeuse.runtime.pseudonym import is_pseudonym

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CORRECTION_STATUSES = {"amended", "corrected"}
USABLE_STATUSES = {"final", *CORRECTION_STATUSES}
# The reading field each FHIR element becomes, to name the element a refusal is about.
FHIR_ELEMENT_OF = {"reading_id": "identifier", "device_id": "device", "loinc_code": "code"}
READING_NAMESPACE = uuid.UUID("f41b0b5e-0b5e-4c55-8f55-e5e05e000055")
# One resource or Bundle per call: a lab's batch or a device's sync, not a data export
# (8,000 Observations took a minute to publish, blocking the call).
MAX_BYTES = 1024 * 1024
MAX_ENTRIES = 500


class FhirError(ValueError):
    """FHIR input that cannot become readings; the message names the resource and the fault."""


def readings_from_fhir(text: str) -> list[ReadingRecorded | ReadingCorrected]:
    """One reading (or correction) per Observation of a single resource or a Bundle; all or
    nothing."""
    return [reading for _, reading in observations_from_fhir(text)]


def observations_from_fhir(text: str) -> list[tuple[str, ReadingRecorded | ReadingCorrected]]:
    """readings_from_fhir, each reading with the element it came from ("Observation",
    "Bundle.entry[3]"), for a refusal to name it."""
    size = len(text.encode())
    if size > MAX_BYTES:
        raise FhirError(f"the resource is {size} bytes; at most {MAX_BYTES}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FhirError(f"not JSON: {exc}") from None
    except RecursionError:
        raise FhirError("JSON nested too deeply to be a FHIR resource") from None
    if not isinstance(data, dict):
        raise FhirError("expected a FHIR resource (a JSON object)")
    kind = data.get("resourceType")
    if kind == "Observation":
        return [
            ("Observation", _reading(_validated(Observation, data, "Observation"), "Observation"))
        ]
    if kind == "Bundle":
        # Counted before validation: each entry is validated, then published on its own.
        entries = data.get("entry")
        if isinstance(entries, list) and len(entries) > MAX_ENTRIES:
            raise FhirError(f"Bundle has {len(entries)} entries; at most {MAX_ENTRIES}")
        bundle = _validated(Bundle, data, "Bundle")
        readings = []
        for index, entry in enumerate(bundle.entry or []):
            where = f"Bundle.entry[{index}]"
            resource = entry.resource
            if resource is None or resource.get_resource_type() != "Observation":
                raise FhirError(f"{where} is not an Observation")
            readings.append((where, _reading(resource, where)))
        if not readings:
            raise FhirError("Bundle holds no Observation")
        return readings
    raise FhirError(f"resourceType {kind!r} is not Observation or Bundle")


def _validated(model: Any, data: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        raise FhirError(f"{where} is not valid FHIR R4: {path}: {first['msg']}") from None


def _reading(observation: Observation, where: str) -> ReadingRecorded | ReadingCorrected:
    if observation.status not in USABLE_STATUSES:
        raise FhirError(f"{where} has status {observation.status!r}; only final results are read")
    codes = [c.code for c in (observation.code.coding or []) if c.system == LOINC and c.code]
    if not codes:
        raise FhirError(f"{where} has no LOINC code (system {LOINC})")
    quantity = observation.valueQuantity
    if quantity is None or quantity.value is None:
        raise FhirError(f"{where} has no valueQuantity value")
    # The unit is the UCUM code, never the display text: "mg/dl" or "g/l" as printed on a
    # report may name no unit, or another one.
    if quantity.system != UCUM or not quantity.code:
        raise FhirError(
            f"{where} valueQuantity is not a UCUM quantity (system {UCUM} with a code); "
            f"its display unit {quantity.unit!r} is not read"
        )
    unit = quantity.code
    reference = observation.subject.reference if observation.subject else None
    pseudonym = (reference or "").removeprefix("Patient/")
    if not reference or not is_pseudonym(pseudonym):
        raise FhirError(f"{where} subject must be Patient/<platform pseudonym>")
    measured_at = observation.effectiveDateTime or observation.effectiveInstant
    if not isinstance(measured_at, datetime) or measured_at.tzinfo is None:
        raise FhirError(f"{where} needs effectiveDateTime with a time and a time zone")
    device = observation.device.reference if observation.device else None
    reading = ReadingRecorded(
        reading_id=_reading_id(observation, pseudonym, codes[0], measured_at),
        patient_pseudonym=pseudonym,
        loinc_code=codes[0],
        value=float(quantity.value),
        unit=unit,
        measured_at=timestamp(measured_at),
        device_id=(device or "").removeprefix("Device/"),
    )
    # Ids and codes taken from the resource keep the bounds and id rules of the same
    # fields over gRPC.
    problem = out_of_bounds(reading)
    if problem:
        raise FhirError(f"{where} gives a reading whose {problem}")
    try:
        check_ids(reading)
    except (IdentifyingContentError, IdRuleError) as exc:
        element = FHIR_ELEMENT_OF.get(exc.field, exc.field)
        raise FhirError(f"{where}.{element} is refused: {exc}") from None
    if observation.status in CORRECTION_STATUSES:
        return _correction(reading, observation.issued)
    return reading


def _correction(reading: ReadingRecorded, issued: datetime | None) -> ReadingCorrected:
    correction = ReadingCorrected(
        reading_id=reading.reading_id,
        patient_pseudonym=reading.patient_pseudonym,
        loinc_code=reading.loinc_code,
        value=reading.value,
        unit=reading.unit,
        device_id=reading.device_id,
    )
    correction.measured_at.CopyFrom(reading.measured_at)
    if isinstance(issued, datetime) and issued.tzinfo is not None:
        correction.corrected_at.CopyFrom(timestamp(issued))
    return correction


def _reading_id(observation: Observation, patient: str, loinc: str, at: datetime) -> str:
    # The sender's identifier when there is one, so a resend is recognised as a duplicate.
    for identifier in observation.identifier or []:
        if identifier.value:
            return f"fhir:{identifier.system or ''}|{identifier.value}"
    if observation.id:
        return f"fhir:Observation/{observation.id}"
    return str(uuid.uuid5(READING_NAMESPACE, f"{patient}|{loinc}|{at.isoformat()}"))
