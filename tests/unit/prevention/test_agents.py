"""What the prevention agents ask for and how they publish: campaign work waits for the
campaign log, an unknown campaign never cancels a message, a broker failure retries the
whole input."""

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.prevention.v1.prevention_events_pb2 import PersonAction
from emeuse.runtime.bus import RetryableError
from services.prevention.agents import due_actions, publish_facts
from services.prevention.campaigns import Directory, to_message
from services.prevention.domain.campaign import PAUSED
from services.prevention.domain.person import SCHEDULED
from services.prevention.handlers import opt_out, send_message, target_campaign
from tests.unit.prevention.people import NOW, campaign, enrolled, send, target
from tests.unit.prevention.people import opt_out as refusal

HPV = campaign()


def targeted() -> tuple[str, object, str]:
    person, state = enrolled()
    outcome = target_campaign(target(person), campaign=HPV, state=state, now=NOW)
    return person, outcome.state, outcome.state.reach[HPV.campaign_id].message_id


def loaded(*campaigns: object) -> Directory:
    directory = Directory()
    for c in campaigns:
        assert directory.apply(to_message(c).SerializeToString())  # type: ignore[arg-type]
    directory.ready.set()
    return directory


def test_a_campaign_unknown_at_send_time_is_asked_again_later_never_cancelled() -> None:
    person, state, message_id = targeted()
    action = send(person, message_id)
    outcome = send_message(action, campaign=None, state=state, now=NOW)  # type: ignore[arg-type]
    assert outcome.outcome == "campaign_unknown"
    assert outcome.facts == []
    assert outcome.state.messages[message_id].status == SCHEDULED
    # Not remembered: once the campaign is known, the same step sends.
    later = send_message(action, campaign=HPV, state=outcome.state, now=NOW)
    assert later.outcome == "sent"


def test_the_timer_asks_for_no_campaign_work_before_the_campaign_log_is_read() -> None:
    person, state, message_id = targeted()
    waiting = Directory()
    waiting.apply(to_message(HPV).SerializeToString())  # read, but not caught up yet
    assert due_actions(person, state, waiting, NOW) == []  # type: ignore[arg-type]
    ready = loaded(HPV)
    asked = due_actions(person, state, ready, NOW)  # type: ignore[arg-type]
    assert [(a.action, a.message_id) for a in asked] == [
        (PersonAction.PERSON_ACTION_SEND_MESSAGE, message_id)
    ]


def test_the_timer_skips_messages_of_unknown_or_paused_campaigns_but_not_programmes() -> None:
    person, state, _ = targeted()
    assert due_actions(person, state, loaded(), NOW) == []  # type: ignore[arg-type]
    paused = campaign(version=3, status=PAUSED, approved_by="s")
    assert due_actions(person, state, loaded(paused), NOW) == []  # type: ignore[arg-type]
    older, older_state = enrolled(band=(50, 54))
    due = [m for m in older_state.scheduled()]
    asked = due_actions(older, older_state, Directory(), due[0].due_at)
    assert {a.message_id for a in asked} >= {due[0].message_id}


class FailingBus:
    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, *args: object, **kwargs: object) -> None:
        self.calls += 1
        raise KafkaConnectionError()


def test_a_broker_failure_while_publishing_an_opt_out_retries_the_whole_input() -> None:
    person, state, _ = targeted()
    refused = refusal(person)
    outcome = opt_out(refused, state=state, now=NOW)  # type: ignore[arg-type]
    assert outcome.facts
    bus = FailingBus()
    with pytest.raises(RetryableError):
        asyncio.run(publish_facts(bus, person, outcome, EventEnvelope()))  # type: ignore[arg-type]
    # Handled again from the state before it, the same events under the same ids.
    again = opt_out(refused, state=state, now=NOW)  # type: ignore[arg-type]
    assert [f.event_id for f in again.facts] == [f.event_id for f in outcome.facts]
