import pytest
from google.protobuf import json_format

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated
from emeuse.runtime.codec import InvalidEventError
from services.chronic.care_plan import (
    APPLIED_KEPT,
    applied_events,
    check_care_plan,
    is_redelivery,
    plan_in_force,
    plan_of,
    record_care_plan,
)
from services.chronic.domain.plan import HEART_FAILURE
from tests.unit.chronic.plans import (
    COORDINATOR,
    GP,
    NOW,
    NURSE,
    PATIENT,
    diabetes_plan,
    heart_failure_plan,
    in_force,
)


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


def record(plan, previous=None):
    return record_care_plan(plan, previous=previous, territory="55", recorded_at=NOW)


def test_enrolment_is_version_1_and_each_change_adds_one():
    first = record(a_plan())
    second = record(a_plan(care_plan_id="cp-diabete-2"), previous=first)
    assert (first["version"], second["version"]) == (1, 2)
    assert plan_of(second).version == 2
    assert plan_of(second).care_plan_id == "cp-diabete-2"
    assert plan_in_force(second).version == 2


def test_the_plan_in_force_keeps_thresholds_in_the_canonical_unit():
    stored = record(a_plan())
    [band] = plan_of(stored).thresholds
    assert band.unit == "mg/dL"
    assert band.low == pytest.approx(70.3, abs=0.1)
    in_force_band = plan_in_force(stored).bands["2339-0"]
    assert in_force_band.unit == "mg/dL"
    assert in_force_band.critical_low == pytest.approx(54.0, abs=0.1)
    assert [m.member_id for m in plan_of(stored).care_team] == ["gp-0042", "ide-0107"]


def test_without_a_target_range_the_target_is_the_low_high_band():
    band = plan_in_force(record(a_plan())).bands["2339-0"]
    assert (band.target_low, band.target_high) == (band.low, band.high)


def test_a_narrower_target_range_is_kept_in_the_canonical_unit():
    plan = diabetes_plan(unit="mmol/L", target=(4.4, 10.0))
    band = in_force(plan).bands["2339-0"]
    assert band.target_low == pytest.approx(79.3, abs=0.1)
    assert band.target_high == pytest.approx(180.2, abs=0.1)


def test_the_plan_in_force_knows_its_team_territory_delays_and_programme():
    plan = plan_in_force(record(heart_failure_plan()))
    assert plan.programme == HEART_FAILURE
    assert plan.territory == "55"
    assert plan.recorded_at == NOW
    assert plan.acknowledge_within_s == 1800
    assert plan.bands["29463-7"].expected_every_s == 86400
    chain = plan.escalation_chain(prescriber_first=False)
    # The lab validates results; it is never on an alert's escalation chain.
    assert [m.member_id for m in chain] == [GP, NURSE, COORDINATOR]


def test_the_plan_in_force_survives_its_table_form():
    stored = record(a_plan())
    assert plan_in_force(stored) == in_force(a_plan(), recorded_at=NOW)


THRESHOLD = {
    "loinc_code": "2339-0",
    "unit": "mg/dL",
    "low": 70,
    "high": 250,
    "critical_low": 54,
    "critical_high": 400,
    "expected_every": "43200s",
}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"programme": "MONITORING_PROGRAMME_UNSPECIFIED"}, "no monitoring programme"),
        ({"thresholds": []}, "monitors no measure"),
        ({"thresholds": [{**THRESHOLD, "expected_every": "0s"}]}, "no expected_every"),
        (
            {"thresholds": [{**THRESHOLD, "expected_every": "0.5s"}]},
            r"2339-0: expected_every 0.5 s is under the minimum of 1 s",
        ),
        (
            {"thresholds": [{**THRESHOLD, "expected_every": "-60s"}]},
            r"expected_every -60 s is under the minimum of 1 s",
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
        (
            {"care_team": [{"member_id": "lab-1", "role": "CARE_ROLE_LAB", "escalation_rank": 1}]},
            "besides the lab",
        ),
        ({"acknowledge_within": "0s"}, "acknowledge_within"),
        ({"review_within": "-3600s"}, "review_within cannot be negative"),
        (
            {"thresholds": [{**THRESHOLD, "low": 250, "high": 70}]},
            "critical_low <= low <= target_low <= target_high <= high <= critical_high",
        ),
        (
            {"thresholds": [{**THRESHOLD, "target_low": 60, "target_high": 180}]},
            "critical_low <= low <= target_low",
        ),
        ({"thresholds": [THRESHOLD, THRESHOLD]}, "lists 2339-0 twice"),
        ({"thresholds": [{**THRESHOLD, "unit": "%"}]}, "unit '%' cannot be converted"),
    ],
)
def test_a_plan_that_cannot_protect_the_patient_is_refused(overrides, reason):
    with pytest.raises(InvalidEventError, match=reason):
        record(a_plan(**overrides))


@pytest.mark.parametrize(("every", "seconds"), [("1s", 1.0), ("1.5s", 1.5), ("86400s", 86400.0)])
def test_an_expected_every_from_the_minimum_up_is_kept_as_given(every, seconds):
    plan = plan_in_force(record(a_plan(thresholds=[{**THRESHOLD, "expected_every": every}])))
    assert plan is not None
    assert plan.bands["2339-0"].expected_every_s == seconds


def test_glucose_thresholds_in_grams_per_litre_are_kept_in_mg_per_decilitre():
    french = {**THRESHOLD, "unit": "g/L", "low": 0.7, "high": 2.5}
    french.update(critical_low=0.54, critical_high=4.0)
    plan = plan_in_force(record(a_plan(thresholds=[french])))
    assert plan is not None
    band = plan.bands["2339-0"]
    assert band.unit == "mg/dL"
    assert (band.low, band.high, band.critical_low, band.critical_high) == pytest.approx(
        (70, 250, 54, 400)
    )


def test_no_stored_plan_is_no_plan():
    assert plan_of(None) is None
    assert plan_in_force(None) is None


def test_a_negative_review_within_is_refused_before_recording():
    with pytest.raises(InvalidEventError, match="review_within cannot be negative"):
        check_care_plan(a_plan(review_within="-1s"))


@pytest.mark.parametrize(("review_within", "seconds"), [("0s", 4 * 3600), ("7200s", 7200)])
def test_review_within_is_the_plan_s_or_four_hours(review_within, seconds):
    assert plan_in_force(record(a_plan(review_within=review_within))).review_within_s == seconds
    assert plan_in_force(record(a_plan())).review_within_s == 4 * 3600


def test_the_same_care_plan_id_sent_again_is_a_redelivery():
    stored = record(a_plan())
    assert is_redelivery(a_plan(), stored)
    assert not is_redelivery(a_plan(care_plan_id="cp-diabete-2"), stored)
    assert not is_redelivery(a_plan(), None)
    # A plan without an id is never taken for the one in force.
    assert not is_redelivery(a_plan(care_plan_id=""), record(a_plan(care_plan_id="")))


def test_a_plan_event_already_applied_is_a_redelivery_even_after_a_later_plan():
    first = record(a_plan())
    first["applied"] = applied_events(None, "ev-1")
    later = record(a_plan(care_plan_id="cp-diabete-2"), previous=first)
    later["applied"] = applied_events(first, "ev-2")
    # The first plan's record read again: not applied, so the later plan stays in force.
    assert is_redelivery(a_plan(), later, "ev-1")
    # The first plan sent again by its team, as a new event: a change.
    assert not is_redelivery(a_plan(), later, "ev-3")
    ids = None
    for n in range(APPLIED_KEPT + 5):
        ids = applied_events({"applied": ids or []}, f"ev-{n}")
    assert ids is not None and len(ids) == APPLIED_KEPT and ids[-1] == f"ev-{APPLIED_KEPT + 4}"
