"""Reminders acted on: a screening done or a dose given counts once its person was sent a
reminder of that series no later than it was done, whichever topic is read first."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from emeuse.runtime.codec import InvalidEventError
from services.evaluation.domain import cells
from services.evaluation.reminders import REMINDERS
from tests.unit.evaluation.partitions import Partitions
from tests.unit.evaluation.scenario import MARCH, TELE, Sent, completed, reminders
from tests.unit.evaluation.test_point_of_care import every_figure

ACTED_ON, SENT = "prevention.reminders_acted_on", "prevention.reminders_sent"


def march_counts(state: Partitions) -> dict[tuple[str, str], float]:
    merged = cells.merge(cell for key, cell in state.cells() if key.endswith("|2026-03"))
    return {
        (f.name, f.breakdown): f.value
        for f in cells.figures("2026-03", merged, frozenset())
        if f.name in (ACTED_ON, SENT)
    }


def scenario(when: datetime = MARCH) -> list[Sent]:
    return [completed(sent) for sent in reminders(TELE, "55", when)]


def split(events: list[Sent]) -> tuple[list[Sent], list[Sent]]:
    sent = [e for e in events if e.spec.name.endswith("message-delivery-requested.v1")]
    return sent, [e for e in events if e not in sent]


def test_actions_count_for_people_sent_a_reminder_of_their_series_before_they_acted():
    state = Partitions()
    for sent in scenario():
        state.handle(sent)
    assert march_counts(state) == {
        (SENT, ""): 12,
        (SENT, "reminder=screening.colorectal"): 12,
        (ACTED_ON, ""): 10,
        (ACTED_ON, "reminder=screening.colorectal"): 10,
    }


def test_actions_read_before_their_reminders_count_the_same_as_after_them():
    """Reading every topic from the start (a rebuild), prevention-action-recorded may come
    before message-delivery-requested: the figures, month and week, must not depend on it."""
    reminders_sent, actions = split(scenario())
    live, rebuilt = Partitions(), Partitions()
    for sent in [*reminders_sent, *actions]:
        live.handle(sent)
    for sent in [*actions, *reminders_sent]:
        rebuilt.handle(sent)
    assert march_counts(rebuilt)[(ACTED_ON, "")] == 10
    assert every_figure(rebuilt) == every_figure(live)
    # Live and rebuilt, only the actions no reminder answers are kept waiting.
    for state in (live, rebuilt):
        waiting = [
            action["id"]
            for held in state.committed.values()
            for person in held[REMINDERS].values()
            for action in person["waiting"]
        ]
        assert sorted(waiting) == ["kit-10", "kit-20"]


def test_an_action_counts_in_its_own_month_when_its_reminder_is_read_later():
    """Reminders sent in February, the screenings done in March: the actions are March's
    figure, the reminders February's, in either read order; x10's screening, the day
    before March's reminder, now follows February's and counts too."""
    february, march = split(scenario(MARCH - timedelta(days=20)))[0], split(scenario())[1]
    for order in ([*february, *march], [*march, *february]):
        state = Partitions()
        for sent in order:
            state.handle(sent)
        assert march_counts(state) == {
            (ACTED_ON, ""): 11,
            (ACTED_ON, "reminder=screening.colorectal"): 11,
        }


def test_a_reminder_of_another_series_is_not_acted_on_by_a_screening():
    reminders_sent, actions = split(scenario())
    for sent in reminders_sent:
        if sent.message.programme == "screening.colorectal":  # type: ignore[attr-defined]
            sent.message.programme = "vaccination.hpv"  # type: ignore[attr-defined]
    state = Partitions()
    for sent in [*reminders_sent, *actions]:
        state.handle(sent)
    assert (ACTED_ON, "") not in march_counts(state)
    assert march_counts(state)[(SENT, "reminder=vaccination.hpv")] == 12


def test_an_action_that_answers_no_reminder_is_set_aside_with_its_reason():
    *_, action = scenario()
    action.message.kind = 2  # type: ignore[attr-defined]  # VACCINE_GIVEN, for a screening
    with pytest.raises(
        InvalidEventError, match=r"screening\.colorectal is answered by SCREENING_DONE"
    ):
        Partitions().handle(action)


def test_an_action_said_done_after_it_was_recorded_is_set_aside_live_and_rebuilt_alike():
    *_, action = scenario()
    # Recorded three days after the reminders (its event's time), said done a year later.
    action.message.acted_at.FromDatetime(action.occurred_at + timedelta(days=365))  # type: ignore[attr-defined]
    with pytest.raises(InvalidEventError, match="acted_at is in the future"):
        Partitions().handle(action)
