import json

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import ReadingCorrected, ReadingRecorded
from emeuse.runtime.pseudonym import random_pseudonym
from services.chronic.fhir import MAX_BYTES, MAX_ENTRIES, FhirError, readings_from_fhir

PATIENT = random_pseudonym()


def glucose_observation(**overrides):
    """A capillary glucose as a connected meter sends it (FHIR R4, UCUM unit)."""
    observation = {
        "resourceType": "Observation",
        "id": "glu-20261128-0715",
        "identifier": [{"system": "urn:oid:1.2.250.1.999.1", "value": "GM-778812"}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "2339-0",
                    "display": "Glucose [Mass/volume] in Blood",
                }
            ]
        },
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectiveDateTime": "2026-11-28T07:15:00+01:00",
        "valueQuantity": {
            "value": 2.9,
            "unit": "mmol/l",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
        "device": {"reference": "Device/glucometer-12"},
    }
    observation.update(overrides)
    return observation


def test_an_observation_becomes_a_reading_with_its_loinc_code_and_ucum_unit():
    [reading] = readings_from_fhir(json.dumps(glucose_observation()))
    assert reading.patient_pseudonym == PATIENT
    assert (reading.loinc_code, reading.value, reading.unit) == ("2339-0", 2.9, "mmol/L")
    assert reading.device_id == "glucometer-12"
    assert reading.reading_id == "fhir:urn:oid:1.2.250.1.999.1|GM-778812"
    assert reading.measured_at.ToJsonString() == "2026-11-28T06:15:00Z"


def test_a_bundle_gives_one_reading_per_observation():
    weight = glucose_observation(
        id="w-1",
        identifier=[],
        code={"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        valueQuantity={"value": 81.4, "system": "http://unitsofmeasure.org", "code": "kg"},
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": glucose_observation()}, {"resource": weight}],
    }
    readings = readings_from_fhir(json.dumps(bundle))
    assert [(r.loinc_code, r.value) for r in readings] == [("2339-0", 2.9), ("29463-7", 81.4)]
    assert readings[1].reading_id == "fhir:Observation/w-1"


@pytest.mark.parametrize("status", ["corrected", "amended"])
def test_a_corrected_or_amended_observation_becomes_a_correction_of_the_same_reading(status):
    [original] = readings_from_fhir(json.dumps(glucose_observation()))
    fixed = glucose_observation(
        status=status,
        issued="2026-11-28T11:00:00+01:00",
        valueQuantity={"value": 25, "system": "http://unitsofmeasure.org", "code": "mmol/L"},
    )
    [correction] = readings_from_fhir(json.dumps(fixed))
    assert isinstance(original, ReadingRecorded)
    assert isinstance(correction, ReadingCorrected)
    assert correction.reading_id == original.reading_id
    assert (correction.value, correction.unit) == (25, "mmol/L")
    assert correction.measured_at == original.measured_at
    assert correction.corrected_at.ToJsonString() == "2026-11-28T10:00:00Z"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"subject": {"reference": "Patient/184127512345678"}}, "pseudonym"),
        ({"status": "preliminary"}, "only final results"),
        (
            {"code": {"coding": [{"system": "http://snomed.info/sct", "code": "33747003"}]}},
            "no LOINC code",
        ),
        ({"valueQuantity": {"value": 2.9}}, "not a UCUM quantity"),
        # A display text is not a unit: only the UCUM code is read.
        ({"valueQuantity": {"value": 1.1, "unit": "g/l"}}, "display unit 'g/l' is not read"),
        (
            {"valueQuantity": {"value": 1.1, "unit": "g/l", "system": "http://snomed.info/sct"}},
            "not a UCUM quantity",
        ),
        (
            {"valueQuantity": {"value": 1.1, "unit": "g/l", "system": "http://unitsofmeasure.org"}},
            "not a UCUM quantity",
        ),
        ({"effectiveDateTime": "2026-11-28"}, "time zone"),
        ({"valueQuantity": {"value": "lots", "code": "mmol/L"}}, "not valid FHIR R4"),
    ],
)
def test_an_observation_that_cannot_be_read_is_refused_with_the_reason(overrides, reason):
    with pytest.raises(FhirError, match=reason):
        readings_from_fhir(json.dumps(glucose_observation(**overrides)))


def test_a_bundle_with_another_resource_is_refused_whole():
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": glucose_observation()},
            {"resource": {"resourceType": "Patient", "id": "p1"}},
        ],
    }
    with pytest.raises(FhirError, match=r"Bundle.entry\[1\] is not an Observation"):
        readings_from_fhir(json.dumps(bundle))


def test_a_resource_that_is_not_an_observation_is_refused():
    with pytest.raises(FhirError, match="'Patient' is not Observation or Bundle"):
        readings_from_fhir(json.dumps({"resourceType": "Patient"}))


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (
            {"identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "185057800608491"}]},
            r"identifier is refused: reading_id holds a direct identifier \(INS",
        ),
        (
            {"identifier": [{"system": "urn:oid:1.2.250.1.999.1", "value": "185057800608491"}]},
            r"identifier is refused: reading_id holds a direct identifier \(NIR",
        ),
        (
            {"device": {"reference": "Device/jean.dupont@example.fr"}},
            r"device is refused: device_id holds a direct identifier \(e-mail",
        ),
        (
            {"identifier": [{"system": "urn:oid:1.2.250.1.999.1", "value": "Jean Dupont"}]},
            r"identifier is refused: reading_id holds a direct identifier \(name",
        ),
    ],
)
def test_an_observation_naming_a_person_in_an_id_is_refused_without_echoing_it(overrides, named):
    with pytest.raises(FhirError, match=named) as refused:
        readings_from_fhir(json.dumps(glucose_observation(**overrides)))
    for value in ("185057800608491", "jean.dupont@example.fr", "Jean Dupont"):
        assert value not in str(refused.value)


def bundle_of(count):
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": glucose_observation(id=f"glu-{n}", identifier=[])} for n in range(count)
        ],
    }


def test_a_bundle_of_as_many_entries_as_allowed_is_read():
    assert len(readings_from_fhir(json.dumps(bundle_of(MAX_ENTRIES)))) == MAX_ENTRIES


def test_a_bundle_of_more_entries_is_refused_before_it_is_read():
    with pytest.raises(FhirError, match=f"Bundle has {MAX_ENTRIES + 1} entries; at most"):
        readings_from_fhir(json.dumps(bundle_of(MAX_ENTRIES + 1)))


def test_a_resource_over_the_size_limit_is_refused():
    padded = glucose_observation(note=[{"text": "x" * MAX_BYTES}])
    with pytest.raises(FhirError, match=f"bytes; at most {MAX_BYTES}"):
        readings_from_fhir(json.dumps(padded))


def test_json_nested_beyond_reason_is_refused_as_such():
    with pytest.raises(FhirError, match="nested too deeply"):
        readings_from_fhir("[" * 500_000)


def test_an_identifier_too_long_for_a_reading_id_is_refused():
    long_id = glucose_observation(identifier=[{"system": "urn:x", "value": "9" * 200}])
    with pytest.raises(FhirError, match=r"Observation gives a reading whose reading_id is \d+ "):
        readings_from_fhir(json.dumps(long_id))
