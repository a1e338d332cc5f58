import pytest
from google.protobuf import json_format

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.pseudonym import random_pseudonym
from services.chronic.care_plan import bands_of, plan_of, record_care_plan

PATIENT = random_pseudonym()


def a_plan(**overrides):
    data = {
        "patient_pseudonym": PATIENT,
        "care_plan_id": "cp-diabete-1",
        "programme": "MONITORING_PROGRAMME_DIABETES",
        "thresholds": [
            {
                "loinc_code": "2339-0",
                "unit": "mmol/L",
                "low": 3.9,
                "high": 13.9,
                "critical_low": 3.0,
                "critical_high": 22.2,
                "expected_every": "43200s",
            }
        ],
        "care_team": [
            {"member_id": "gp-0042", "role": "CARE_ROLE_GP", "escalation_rank": 1},
            {"member_id": "ide-0107", "role": "CARE_ROLE_NURSE", "escalation_rank": 2},
        ],
        "acknowledge_within": "1800s",
    }
    data.update(overrides)
    return json_format.ParseDict(data, CarePlanUpdated())


def test_enrolment_is_version_1_and_each_change_adds_one():
    first = record_care_plan(a_plan(), previous=None)
    second = record_care_plan(a_plan(care_plan_id="cp-diabete-2"), previous=first)
    assert (first["version"], second["version"]) == (1, 2)
    assert plan_of(second).version == 2
    assert plan_of(second).care_plan_id == "cp-diabete-2"


def test_the_plan_in_force_keeps_thresholds_in_the_canonical_unit():
    stored = record_care_plan(a_plan(), previous=None)
    [band] = plan_of(stored).thresholds
    assert band.unit == "mg/dL"
    assert band.low == pytest.approx(70.3, abs=0.1)
    assert bands_of(stored)["2339-0"]["unit"] == "mg/dL"
    assert [m.member_id for m in plan_of(stored).care_team] == ["gp-0042", "ide-0107"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"programme": "MONITORING_PROGRAMME_UNSPECIFIED"}, "no monitoring programme"),
        ({"thresholds": []}, "monitors no measure"),
        (
            {
                "thresholds": [
                    {
                        "loinc_code": "2339-0",
                        "unit": "mg/dL",
                        "low": 70,
                        "high": 250,
                        "critical_low": 54,
                        "critical_high": 400,
                    }
                ]
            },
            "no expected_every",
        ),
        ({"care_team": []}, "no care team"),
        (
            {
                "care_team": [
                    {"member_id": "gp-1", "role": "CARE_ROLE_GP", "escalation_rank": 1},
                    {"member_id": "ide-2", "role": "CARE_ROLE_NURSE", "escalation_rank": 1},
                ]
            },
            "distinct",
        ),
        ({"acknowledge_within": "0s"}, "acknowledge_within"),
    ],
)
def test_a_plan_that_cannot_protect_the_patient_is_refused(overrides, reason):
    with pytest.raises(InvalidEventError, match=reason):
        record_care_plan(a_plan(**overrides), previous=None)


def test_no_stored_plan_is_no_plan():
    assert plan_of(None) is None
    assert bands_of(None) == {}
