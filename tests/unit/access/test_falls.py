"""A fall at home asks access for a GP: hurt and kept at home, or falling again."""

import pytest

from emeuse.access.v1.access_events_pb2 import Urgency
from emeuse.home.v1.home_events_pb2 import (
    IncidentKind,
    IncidentOutcome,
    IncidentRaised,
    IncidentResolved,
)
from services.access.handlers import request_for_incident
from services.access.scheduling import check_request
from tests.unit.access.meuse import NOW, patient

RESIDENT = patient("resident-stenay")
FALL, PANIC = IncidentKind.INCIDENT_KIND_FALL, IncidentKind.INCIDENT_KIND_PANIC


def resolved(outcome, injury, kind=FALL):
    return IncidentResolved(
        incident_id="inc-1", resident_pseudonym=RESIDENT, outcome=outcome, injury=injury, kind=kind
    )


def test_a_resident_hurt_in_a_fall_and_kept_at_home_sees_a_gp_the_same_day():
    request = request_for_incident(
        resolved(IncidentOutcome.INCIDENT_OUTCOME_HANDLED_AT_HOME, True), territory="55", now=NOW
    )
    assert request is not None
    assert request.urgency == Urgency.URGENCY_SAME_DAY
    assert request.reason_code == "home.fall.injury"
    assert (request.patient_pseudonym, request.cause_id) == (RESIDENT, "inc-1")
    check_request(request)  # the scheduler accepts it as is
    # No place at all: nothing on the bus locates the patient's home.
    assert not request.HasField("place")


@pytest.mark.parametrize(
    ("outcome", "injury", "kind"),
    [
        (IncidentOutcome.INCIDENT_OUTCOME_HANDLED_AT_HOME, False, FALL),
        (IncidentOutcome.INCIDENT_OUTCOME_SENT_TO_HOSPITAL, True, FALL),
        (IncidentOutcome.INCIDENT_OUTCOME_HANDLED_AT_HOME, True, PANIC),
    ],
)
def test_no_request_without_injury_when_hospitalised_or_for_another_incident(outcome, injury, kind):
    assert request_for_incident(resolved(outcome, injury, kind), territory="55", now=NOW) is None


def test_a_second_fall_in_thirty_days_asks_for_a_gp_review_within_a_week():
    def raised(falls):
        return IncidentRaised(
            incident_id=f"inc-{falls}",
            resident_pseudonym=RESIDENT,
            kind=FALL,
            falls_in_last_30_days=falls,
        )

    assert request_for_incident(raised(1), territory="55", now=NOW) is None
    request = request_for_incident(raised(2), territory="55", now=NOW)
    assert request is not None
    assert request.urgency == Urgency.URGENCY_WITHIN_7_DAYS
    assert request.reason_code == "home.fall.repeated"
    # The same incident delivered twice asks once (same request id).
    assert request_for_incident(raised(2), territory="55", now=NOW).request_id == request.request_id
