"""A person's steps in time: campaign work waits for the campaign log, an unknown or paused
campaign never cancels a message, the next step's deadline follows the state and the
directory, and a firing takes what is due in one transaction."""

import asyncio
from datetime import timedelta
from typing import Any

from emeuse.kernel.outputs import Origin
from emeuse.kernel.tx import Tx
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.prevention.v1.prevention_events_pb2 import PersonAction
from emeuse.registry import (
    MESSAGE_DELIVERY_REQUESTED,
    MESSAGE_SCHEDULED,
    PERSON_ENROLLED,
    dead_letter_topic,
)
from emeuse.runtime import envelope as env
from emeuse.runtime.envelope import H_ID
from emeuse.runtime.events import Event
from emeuse.runtime.pseudonym import random_pseudonym
from services.prevention.campaigns import Directory, to_message
from services.prevention.domain.campaign import PAUSED
from services.prevention.domain.person import SCHEDULED, SENT, PersonState
from services.prevention.handlers import send_message, target_campaign
from services.prevention.processing import STATES, enrol, take_due_steps
from services.prevention.steps import due_actions, next_step_at
from tests.unit.prevention.people import (
    DELAYS,
    NOW,
    campaign,
    enrolled,
    enrolment,
    send,
    target,
)

HPV = campaign()


def targeted() -> tuple[str, Any, str]:
    person, state = enrolled()
    outcome = target_campaign(target(person), campaign=HPV, state=state, now=NOW)
    return person, outcome.state, outcome.state.reach[HPV.campaign_id].message_id


def loaded(*campaigns: object) -> Directory:
    directory = Directory()
    for c in campaigns:
        assert directory.apply(to_message(c).SerializeToString())  # type: ignore[arg-type]
    directory.ready.set()
    return directory


def transaction(person: str, state: PersonState) -> Tx:
    stored = {(STATES, person): state.to_json()}
    tx = Tx(
        0,
        Origin("prevention", "emeuse/prevention", "exp-test"),
        dead_letter_topic("prevention"),
        lambda table, key: stored.get((table, key)),
        lambda table, key: 0,
    )
    tx.now = NOW
    return tx


def test_a_campaign_unknown_at_send_time_is_asked_again_later_never_cancelled() -> None:
    person, state, message_id = targeted()
    action = send(person, message_id)
    outcome = send_message(action, campaign=None, state=state, now=NOW)
    assert outcome.outcome == "campaign_unknown"
    assert outcome.facts == []
    assert outcome.state.messages[message_id].status == SCHEDULED
    # Not remembered: once the campaign is known, the same step sends.
    later = send_message(action, campaign=HPV, state=outcome.state, now=NOW)
    assert later.outcome == "sent"


def test_no_campaign_work_is_due_before_the_campaign_log_is_read() -> None:
    person, state, message_id = targeted()
    waiting = Directory()
    waiting.apply(to_message(HPV).SerializeToString())  # read, but not caught up yet
    assert due_actions(person, state, waiting, NOW) == []
    assert next_step_at(state, waiting, NOW) is None
    ready = loaded(HPV)
    asked = due_actions(person, state, ready, NOW)
    assert [(a.action, a.message_id) for a in asked] == [
        (PersonAction.PERSON_ACTION_SEND_MESSAGE, message_id)
    ]
    assert next_step_at(state, ready, NOW) == NOW


def test_messages_of_unknown_or_paused_campaigns_wait_but_not_programmes() -> None:
    person, state, _ = targeted()
    assert due_actions(person, state, loaded(), NOW) == []
    paused = campaign(version=3, status=PAUSED, approved_by="s")
    assert due_actions(person, state, loaded(paused), NOW) == []
    assert next_step_at(state, loaded(paused), NOW) is None
    older, older_state = enrolled(band=(50, 54))
    due = [m for m in older_state.scheduled()]
    asked = due_actions(older, older_state, Directory(), due[0].due_at)
    assert {a.message_id for a in asked} >= {due[0].message_id}
    assert next_step_at(older_state, Directory(), NOW) == min(m.due_at for m in due)


def test_a_person_a_running_campaign_wants_is_due_now_and_a_later_one_at_its_start() -> None:
    person, state = enrolled()
    assert next_step_at(state, loaded(), NOW) is None
    assert next_step_at(state, loaded(HPV), NOW) == NOW
    later = campaign(start_at=NOW + timedelta(hours=2))
    targeted_later = target_campaign(target(person), campaign=later, state=state, now=NOW)
    assert next_step_at(targeted_later.state, loaded(later), NOW) == NOW + timedelta(hours=2)


def test_a_firing_targets_and_sends_at_once_in_its_transaction() -> None:
    person, state = enrolled()
    tx = transaction(person, state)
    asyncio.run(take_due_steps(person, tx, directory=loaded(HPV), delays=DELAYS))
    topics = [out.topic for out in tx.outputs]
    assert topics == [MESSAGE_SCHEDULED.name, MESSAGE_DELIVERY_REQUESTED.name]
    after = PersonState.from_json(tx.get(STATES, person))
    [message] = [m for m in after.messages.values() if m.campaign_id == HPV.campaign_id]
    assert message.status == SENT
    assert after.reach[HPV.campaign_id].sent
    # Fired again (a retry after an abort reads the committed state): the same ids.
    again = transaction(person, state)
    asyncio.run(take_due_steps(person, again, directory=loaded(HPV), delays=DELAYS))
    assert event_ids(tx) and event_ids(again) == event_ids(tx)


def event_ids(tx: Tx) -> list[bytes]:
    return [value for out in tx.outputs for name, value in out.headers if name == H_ID]


def test_a_firing_with_nothing_due_changes_nothing() -> None:
    person, state, _ = targeted()
    tx = transaction(person, state)
    asyncio.run(take_due_steps(person, tx, directory=loaded(), delays=DELAYS))
    assert tx.empty


def test_what_a_firing_sends_is_in_the_experiment_the_person_was_enrolled_in() -> None:
    """A timer has no event to inherit an experiment from: the enrolment's is used (kept on
    the profile by processing.enrol), so the evaluation counts it with the person's."""
    person = random_pseudonym()
    envelope = env.new_envelope(
        event_type=PERSON_ENROLLED.type_name,
        source="emeuse/prevention",
        subject_pseudonym=person,
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="prevention-meuse",
        schema_version="v1",
        occurred_at=NOW,
    )
    enrolling = Event(envelope, enrolment(person), person, PERSON_ENROLLED.name, 0, 0)
    state = enrol(enrolling, PersonState(), NOW, delays=DELAYS).state
    tx = transaction(person, state)  # the service's own experiment is exp-test
    asyncio.run(take_due_steps(person, tx, directory=loaded(HPV), delays=DELAYS))
    assert tx.outputs
    assert {env.from_headers(out.headers).experiment_id for out in tx.outputs} == {
        "prevention-meuse"
    }
