"""What a person's action on a reminder must say, whoever reports it: the checks
prevention's API makes, the gateway before a partner's report is admitted, and the
evaluation before it counts one (a screening done answers a screening reminder, a dose
given a vaccination reminder); and which of the person's reminders it makes pointless."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from emeuse.prevention.v1.prevention_events_pb2 import (
    PreventionActionKind,
    PreventionActionRecorded,
)
from emeuse.runtime.codec import InvalidEventError
from services.prevention.domain.person import Message
from services.prevention.domain.programmes import BY_NAME

SCREENING_DONE = PreventionActionKind.PREVENTION_ACTION_KIND_SCREENING_DONE
VACCINE_GIVEN = PreventionActionKind.PREVENTION_ACTION_KIND_VACCINE_GIVEN
# The kind of action that answers each reminder series.
KIND_OF_SERIES = {
    name: VACCINE_GIVEN if name.startswith("vaccination.") else SCREENING_DONE for name in BY_NAME
}


class ActionError(InvalidEventError):
    """An action on a reminder that cannot be one; `kind` names the fault in a word (the
    gateway counts what it refuses by it)."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def check_action(action: PreventionActionRecorded) -> None:
    """Raise ActionError unless the action names a reminder series, the kind of action that
    answers it, and when it was done. Needs no state."""
    expected = KIND_OF_SERIES.get(action.programme)
    if expected is None:
        series = ", ".join(sorted(KIND_OF_SERIES))
        raise ActionError(f"programme must be a reminder series: {series}", kind="series")
    if action.kind != expected:
        raise ActionError(
            f"{action.programme} is answered by "
            f"{PreventionActionKind.Name(expected).removeprefix('PREVENTION_ACTION_KIND_')}",
            kind="kind",
        )
    if not action.HasField("acted_at"):
        raise ActionError("acted_at must say when it was done", kind="acted-at")


# A clock a little ahead at the lab or the pharmacy is not a future action.
CLOCK_SLACK = timedelta(minutes=5)


def check_done_by(action: PreventionActionRecorded, now: datetime) -> None:
    """Raise ActionError for an action said done later than `now` (a call asks when it
    happened; the bus keeps what its producer said)."""
    if action.acted_at.ToDatetime(tzinfo=UTC) > now + CLOCK_SLACK:
        raise ActionError("acted_at is in the future: record an action once done", kind="future")


def doses(series: str, given: Iterable[datetime]) -> int:
    """How many distinct doses of `series` were given at the times `given`, in any order:
    actions closer together than half the spacing of the series' doses are one dose reported
    twice (by a care team and by a pharmacy, or a call retried without its action id)."""
    spacing = BY_NAME[series].further_steps
    same_dose = min(spacing) / 2 if spacing else timedelta.max
    count, dose_at = 0, None
    for at in sorted(given):
        if dose_at is None or at - dose_at >= same_dose:
            count, dose_at = count + 1, at
    return count


def answered(
    series: str, acted_at: datetime, dose: int, reminders: Iterable[Message], now: datetime
) -> list[Message]:
    """The reminders of `series` not sent yet that an action done at `acted_at` makes
    pointless. A screening is current for the programme's interval (two years): it answers
    every reminder of its series due before it lapses, the round's own and one planned
    already for that time, and none once it has lapsed. Doses answer the reminders of their
    ranks (`dose`: the distinct doses recorded, `doses`; n of them answer step_1 to step_n,
    whatever order they were read in), so a first dose leaves the second dose's reminder to
    go. Another series is never answered."""
    programme = BY_NAME[series]
    waiting = [m for m in reminders if m.programme == series and m.open]
    if programme.every is None:
        given = (m for m in waiting if 1 <= step_number(m.step) <= dose)
        return sorted(given, key=lambda m: step_number(m.step))
    lapses = acted_at + programme.every
    if lapses <= now:
        return []
    return sorted((m for m in waiting if m.due_at < lapses), key=lambda m: m.due_at)


def step_number(step: str) -> int:
    """The rank of a reminder step ("step_2": 2); 0 for a step that is not numbered."""
    number = step.removeprefix("step_")
    return int(number) if number.isdigit() else 0
