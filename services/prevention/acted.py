"""A person's action on a reminder read back (PreventionActionRecorded: a screening done, a
dose given, from RecordPreventionAction or a partner's back end through the gateway): the
reminders of its series it makes pointless are not sent (domain.actions.answered).

An action for someone not enrolled is kept in their state, not set aside: it is a valid
fact (the gateway does not check enrolment, and a lab's report may be read before the
enrolment it follows, the topics being read side by side), and it answers the reminders
their enrolment plans later.
"""

from __future__ import annotations

from datetime import UTC, datetime

from emeuse.prevention.v1.prevention_events_pb2 import PreventionActionRecorded
from services.prevention.domain.actions import answered, check_action, check_done_by, doses
from services.prevention.domain.person import ActionTaken, PersonState
from services.prevention.domain.programmes import BY_NAME
from services.prevention.handlers import Outcome, cancel, next_round

ACTED_ON = "acted_on"


def record_action(
    action: PreventionActionRecorded, *, state: PersonState, now: datetime, recorded: datetime
) -> Outcome:
    """Keep the action and cancel the reminders it answers. One that answers no reminder
    series, or said done after it was recorded (`recorded`, the event's own time, so a
    replay decides the same), raises ActionError: a dead letter with the reason."""
    key = f"action|{action.action_id}"
    if state.has_seen(key):
        # Recorded again under another event id (a partner's retry): counted once.
        return Outcome(state, outcome="duplicate")
    check_action(action)
    check_done_by(action, recorded)
    state = state.changed()
    state.remember(key)
    taken = ActionTaken(
        action_id=action.action_id,
        series=action.programme,
        acted_at=action.acted_at.ToDatetime(tzinfo=UTC),
    )
    state.record_action(taken, now)
    outcome = Outcome(state, outcome="kept_not_enrolled")
    if state.profile is not None:
        answer(outcome, action.person_pseudonym, taken, now)
    return outcome


def answer(outcome: Outcome, person: str, taken: ActionTaken, now: datetime) -> None:
    """Cancel the reminders `taken` answers (`acted_on`); a screening's series goes on with
    the round after it, an interval after the screening (not after the reminder)."""
    state = outcome.state
    # Every dose read so far, not those before this one: doses may be read out of order.
    dose = doses(taken.series, (a.acted_at for a in state.actions if a.series == taken.series))
    stopped = answered(taken.series, taken.acted_at, dose, state.messages.values(), now)
    for message in stopped:
        cancel(outcome, person, message, ACTED_ON, now)
    outcome.outcome = "answered" if stopped else "acted"
    every = BY_NAME[taken.series].every
    if stopped and every is not None:
        last = max(stopped, key=lambda m: int(m.step.removeprefix("step_") or "1"))
        next_round(outcome, person, last, due_at=taken.acted_at + every)


def answer_kept(outcome: Outcome, person: str, now: datetime) -> None:
    """After an enrolment: the actions kept answer the reminders it planned."""
    label = outcome.outcome
    for taken in list(outcome.state.actions):
        answer(outcome, person, taken, now)
    outcome.outcome = label
