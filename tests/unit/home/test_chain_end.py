"""When the escalation chain has run out (the SAMU told last for a fall), the incident
says so: its status in the API, and the last IncidentEscalated event."""

from datetime import timedelta

from emeuse.home.v1 import home_service_pb2 as api
from emeuse.home.v1.home_events_pb2 import IncidentAction
from services.home.grpc_api import incident_view
from services.home.incidents import apply_action
from tests.unit.home.homes import (
    DAUGHTER,
    RESIDENT,
    SAMU,
    action,
    at,
    enrolled,
    escalated,
    fall,
    feed,
    home,
    raised,
    run,
)

FELL = at("10:00")


def test_a_fall_nobody_answers_is_shown_escalated_to_the_samu_once_the_samu_is_told():
    state, outcomes = feed(enrolled(), fall(FELL))
    [incident] = raised(outcomes)
    incident_id = incident.incident_id
    view = incident_view(RESIDENT, state.incidents[incident_id])
    assert view.status == api.INCIDENT_STATUS_OPEN
    state, outcomes = run(state, FELL + timedelta(minutes=1), FELL + timedelta(minutes=60))
    steps = escalated(outcomes)
    assert [(e.notified.contact_id, e.chain_exhausted) for e in steps][-1] == (SAMU, True)
    assert not any(e.chain_exhausted for e in steps[:-1])
    view = incident_view(RESIDENT, state.incidents[incident_id])
    assert view.status == api.INCIDENT_STATUS_ESCALATED_TO_SAMU
    assert not view.HasField("next_escalation_at")
    # A contact may still take charge: then it is acknowledged like any other.
    taken = apply_action(
        action(
            action=IncidentAction.INCIDENT_ACTION_ACKNOWLEDGE,
            incident_id=incident_id,
            contact_id=DAUGHTER,
        ),
        state=state,
        now=FELL + timedelta(minutes=61),
    ).state
    assert incident_view(RESIDENT, taken.incidents[incident_id]).status == (
        api.INCIDENT_STATUS_ACKNOWLEDGED
    )


def test_a_chain_without_the_samu_that_ran_out_is_shown_exhausted():
    only_daughter = home(
        contacts=[
            {
                "contact_id": DAUGHTER,
                "role": "CONTACT_ROLE_FAMILY_CAREGIVER",
                "acknowledge_within": "600s",
            }
        ]
    )
    state = enrolled(only_daughter)
    # Up at 7:00, no movement all morning: inactivity, told to her daughter alone.
    state, outcomes = run(state, at("07:00"), at("12:00"))
    [incident] = [i for i in raised(outcomes) if i.notified.contact_id == DAUGHTER]
    view = incident_view(RESIDENT, state.incidents[incident.incident_id])
    assert incident.chain_length == 1
    assert view.status == api.INCIDENT_STATUS_CHAIN_EXHAUSTED
