"""Prevention reads a person's actions on reminders back (PreventionActionRecorded, on the
person's partition): a screening done stops its series' reminders while it is current and
the next round counts from it, a dose given stops its own dose's reminder, another series
and a later dose still go; an action read twice changes nothing, one for someone not
enrolled is kept for their enrolment, one that answers no series is set aside."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest

from emeuse.kernel.tx import Tx
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.prevention.v1.prevention_events_pb2 import (
    MessageCancelled,
    PreventionActionKind,
    PreventionActionRecorded,
)
from emeuse.registry import (
    MESSAGE_CANCELLED,
    MESSAGE_SCHEDULED,
    PERSON_ENROLLED,
    PREVENTION_ACTION_RECORDED,
)
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.events import Event
from emeuse.runtime.pseudonym import random_pseudonym
from services.prevention.campaigns import Directory
from services.prevention.domain.person import CANCELLED, SCHEDULED, SENT, Message, PersonState
from services.prevention.handlers import derived_id, send_message
from services.prevention.processing import STATES, enrol, processor
from services.prevention.steps import due_actions
from services.prevention.topics import PERSON_INPUTS
from tests.unit.prevention.people import DELAYS, NOW, enrolled, enrolment, send
from tests.unit.prevention.test_steps import transaction

SCREENING_DONE = PreventionActionKind.PREVENTION_ACTION_KIND_SCREENING_DONE
VACCINE_GIVEN = PreventionActionKind.PREVENTION_ACTION_KIND_VACCINE_GIVEN
TWO_YEARS = timedelta(days=730)
READ = processor(Directory(), DELAYS).inputs[PREVENTION_ACTION_RECORDED]


def acted(
    person: str, series: str = "screening.colorectal", at: datetime = NOW, **fields: object
) -> PreventionActionRecorded:
    kind = VACCINE_GIVEN if series.startswith("vaccination.") else SCREENING_DONE
    return PreventionActionRecorded(
        action_id=str(fields.pop("action_id", uuid.uuid4())),
        person_pseudonym=person,
        programme=series,
        kind=fields.pop("kind", kind),  # type: ignore[arg-type]
        acted_at=timestamp(at),
    )


def read_back(
    person: str,
    state: PersonState,
    action: PreventionActionRecorded,
    *,
    now: datetime = NOW,
    event_id: str | None = None,
) -> tuple[PersonState, Tx]:
    """The action read from its topic by the person's partition task at `now`."""
    envelope = env.new_envelope(
        event_type=PREVENTION_ACTION_RECORDED.type_name,
        source="emeuse/gateway",
        subject_pseudonym=person,
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="exp-prevention",
        schema_version="v1",
        occurred_at=now,
        recorded_at=now,
        event_id=event_id,
    )
    tx = transaction(person, state)
    tx.now = now
    event = Event(envelope, action, person, PREVENTION_ACTION_RECORDED.name, 0, 0)
    asyncio.run(READ(event, tx))
    return PersonState.from_json(tx.get(STATES, person)), tx


def reminder(person: str, state: PersonState, series: str, step: str = "step_1") -> Message:
    return state.messages[derived_id(person, series, step)]


def cancelled_ids(tx: Tx) -> list[str]:
    return [
        MessageCancelled.FromString(out.value).message_id
        for out in tx.outputs
        if out.topic == MESSAGE_CANCELLED.name
    ]


def test_actions_are_a_person_input_keyed_as_the_persons_other_inputs() -> None:
    assert PREVENTION_ACTION_RECORDED in PERSON_INPUTS
    assert PREVENTION_ACTION_RECORDED.key == PERSON_ENROLLED.key == "person_pseudonym"
    assert PREVENTION_ACTION_RECORDED.partitions == PERSON_ENROLLED.partitions
    assert PREVENTION_ACTION_RECORDED.partition_by is None


def test_a_screening_done_before_its_reminder_is_due_stops_it_and_not_another_series() -> None:
    person, state = enrolled(band=(50, 54))
    first = reminder(person, state, "screening.colorectal")
    assert first.status == SCHEDULED and first.due_at > NOW

    after, tx = read_back(person, state, acted(person))

    stopped = reminder(person, after, "screening.colorectal")
    assert (stopped.status, stopped.cancel_reason) == (CANCELLED, "acted_on")
    assert cancelled_ids(tx) == [first.message_id]
    # Breast screening is another series: its reminder still goes; the stopped one does not.
    assert reminder(person, after, "screening.breast").status == SCHEDULED
    ready = Directory()
    ready.ready.set()
    going = {a.message_id for a in due_actions(person, after, ready, first.due_at)}
    assert going == {reminder(person, after, "screening.breast").message_id}
    # The series goes on: the next round two years after the screening.
    following = reminder(person, after, "screening.colorectal", "step_2")
    assert (following.status, following.due_at) == (SCHEDULED, NOW + TWO_YEARS)
    assert MESSAGE_SCHEDULED.name in [out.topic for out in tx.outputs]


def test_a_screening_after_the_reminder_went_counts_the_next_round_from_the_screening() -> None:
    person, state = enrolled(band=(50, 54))
    first = reminder(person, state, "screening.colorectal")
    sent = send_message(
        send(person, first.message_id), campaign=None, state=state, now=first.due_at
    )
    assert sent.outcome == "sent"
    planned = reminder(person, sent.state, "screening.colorectal", "step_2")
    assert planned.due_at == first.due_at + TWO_YEARS
    screened = first.due_at + timedelta(days=20)

    after, _ = read_back(person, sent.state, acted(person, at=screened), now=screened)

    assert reminder(person, after, "screening.colorectal").status == SENT
    assert reminder(person, after, "screening.colorectal", "step_2").cancel_reason == "acted_on"
    next_round = reminder(person, after, "screening.colorectal", "step_3")
    assert (next_round.status, next_round.due_at) == (SCHEDULED, screened + TWO_YEARS)


def test_a_screening_no_longer_current_answers_no_reminder() -> None:
    person, state = enrolled(band=(50, 54))
    long_ago = NOW - TWO_YEARS - timedelta(days=1)

    after, tx = read_back(person, state, acted(person, at=long_ago))

    assert reminder(person, after, "screening.colorectal").status == SCHEDULED
    assert cancelled_ids(tx) == []


def test_a_first_dose_stops_the_first_dose_reminder_and_the_second_still_goes() -> None:
    person, state = enrolled(band=(11, 14))
    second = reminder(person, state, "vaccination.hpv", "step_2")

    after, _ = read_back(person, state, acted(person, "vaccination.hpv"))

    assert reminder(person, after, "vaccination.hpv").cancel_reason == "acted_on"
    assert reminder(person, after, "vaccination.hpv", "step_2").status == SCHEDULED
    later = NOW + timedelta(days=150)  # the second dose, before its reminder
    assert second.due_at > later
    done, _ = read_back(person, after, acted(person, "vaccination.hpv", at=later), now=later)
    assert reminder(person, done, "vaccination.hpv", "step_2").cancel_reason == "acted_on"


def test_two_doses_read_out_of_order_stop_both_dose_reminders() -> None:
    person, state = enrolled(band=(11, 14))
    first_dose, second_dose = NOW - timedelta(days=200), NOW - timedelta(days=10)

    after, _ = read_back(person, state, acted(person, "vaccination.hpv", at=second_dose))
    done, tx = read_back(person, after, acted(person, "vaccination.hpv", at=first_dose))

    second = reminder(person, done, "vaccination.hpv", "step_2")
    assert (second.status, second.cancel_reason) == (CANCELLED, "acted_on")
    assert cancelled_ids(tx) == [second.message_id]
    assert reminder(person, done, "vaccination.hpv").cancel_reason == "acted_on"


@pytest.mark.parametrize("apart", [timedelta(0), timedelta(days=1), timedelta(days=90)])
def test_one_dose_reported_twice_under_two_action_ids_leaves_the_second_reminder(
    apart: timedelta,
) -> None:
    person, state = enrolled(band=(11, 14))
    # A care team and a pharmacy report the same dose (or a call retried without its id).
    care_team = acted(person, "vaccination.hpv", at=NOW - apart)
    after, _ = read_back(person, state, care_team)
    pharmacy = acted(person, "vaccination.hpv", at=NOW)
    assert pharmacy.action_id != care_team.action_id

    again, tx = read_back(person, after, pharmacy)

    assert reminder(person, again, "vaccination.hpv").cancel_reason == "acted_on"
    assert reminder(person, again, "vaccination.hpv", "step_2").status == SCHEDULED
    assert cancelled_ids(tx) == []


def test_the_same_action_read_again_changes_nothing() -> None:
    person, state = enrolled(band=(50, 54))
    action = acted(person)
    event_id = str(uuid.uuid4())
    after, _ = read_back(person, state, action, event_id=event_id)

    again, tx = read_back(person, after, action, event_id=event_id)
    assert tx.outputs == [] and again == after
    # The same action under another event id (a partner's retry): counted once too.
    retried, tx = read_back(person, after, action)
    assert tx.outputs == []
    assert retried.actions == after.actions and retried.messages == after.messages


def test_an_action_for_someone_not_enrolled_is_kept_and_answers_their_enrolment() -> None:
    person = random_pseudonym()
    kept, tx = read_back(person, PersonState(), acted(person))
    assert tx.outputs == [] and kept.profile is None
    assert [a.series for a in kept.actions] == ["screening.colorectal"]

    envelope = env.new_envelope(
        event_type=PERSON_ENROLLED.type_name,
        source="emeuse/prevention",
        subject_pseudonym=person,
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="exp-prevention",
        schema_version="v1",
        occurred_at=NOW,
    )
    enrolling = Event(
        envelope, enrolment(person, band=(50, 54)), person, PERSON_ENROLLED.name, 0, 0
    )
    outcome = enrol(enrolling, kept, NOW + timedelta(days=1), delays=DELAYS)
    assert outcome.outcome == "enrolled"
    assert reminder(person, outcome.state, "screening.colorectal").cancel_reason == "acted_on"
    assert reminder(person, outcome.state, "screening.breast").status == SCHEDULED
    assert reminder(person, outcome.state, "screening.colorectal", "step_2").due_at == (
        NOW + TWO_YEARS
    )


def test_actions_kept_for_someone_never_enrolled_go_once_older_than_two_years() -> None:
    person = random_pseudonym()
    old, last_year = NOW - TWO_YEARS - timedelta(days=1), NOW - timedelta(days=365)
    kept, _ = read_back(person, PersonState(), acted(person, at=old), now=old)
    breast = acted(person, "screening.breast", at=last_year)
    kept, _ = read_back(person, kept, breast, now=last_year)
    assert [a.series for a in kept.actions] == ["screening.colorectal", "screening.breast"]

    after, _ = read_back(person, kept, acted(person, "vaccination.hpv"))

    # The colorectal screening, done more than two years ago, answers nothing now: dropped.
    assert [a.series for a in after.actions] == ["screening.breast", "vaccination.hpv"]


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (lambda p: acted(p, "vaccination.flu"), "programme must be a reminder series"),
        (lambda p: acted(p, kind=VACCINE_GIVEN), "is answered by SCREENING_DONE"),
        (lambda p: acted(p, at=NOW + timedelta(days=3)), "acted_at is in the future"),
    ],
)
def test_an_action_that_answers_no_reminder_is_set_aside_with_its_reason(
    action: object, reason: str
) -> None:
    person, state = enrolled(band=(50, 54))
    with pytest.raises(InvalidEventError, match=reason):
        read_back(person, state, action(person))  # type: ignore[operator]
