"""The owning services' validity rules, applied by the gateway on both sides.

Inbound, to a partner's event before it is admitted: an impossible reading (an INR of 40,
an INR in mmol/L) must not reach the platform's topic, and so no service and no feed.
Outbound, to every platform event before it goes to partners' feeds: an event its owning
service will set aside (a reading another producer wrote straight on the topic, a door
event without its state) must not reach a partner before the owner refuses it.
Only the rules that need no state are here (a measure's unit and range, a sensor report's
own consistency, an action on a reminder naming its series and kind); those that need the
service's tables (is the patient enrolled, is the device installed) stay the service's own.
The rules are the services' functions themselves, imported, never copied.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from google.protobuf.message import Message

from emeuse.registry import (
    PREVENTION_ACTION_RECORDED,
    READING_CORRECTED,
    READING_RECORDED,
    SENSOR_EVENT_REPORTED,
    TopicSpec,
)
from emeuse.runtime.codec import InvalidEventError
from services.chronic.domain.measures import ReadingError, normalise
from services.home.domain.reports import ReportError, check_report
from services.prevention.domain.actions import ActionError, check_action, check_done_by


class RuleBroken(InvalidEventError):
    """An event the owning service's rules refuse; `rule` names which in a few words (a
    metric label: bounded, unlike the reason)."""

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


def _measured(message: Message) -> None:
    # ReadingRecorded and ReadingCorrected: chronic normalises both before any rule.
    normalise(message.loinc_code, message.value, message.unit)  # type: ignore[attr-defined]


def _reported(message: Message) -> None:
    check_report(message)  # type: ignore[arg-type]


def _acted(message: Message) -> None:
    check_action(message)  # type: ignore[arg-type]
    check_done_by(message, datetime.now(UTC))  # type: ignore[arg-type]


RULES: dict[str, Callable[[Message], None]] = {
    READING_RECORDED.type_name: _measured,
    READING_CORRECTED.type_name: _measured,
    SENSOR_EVENT_REPORTED.type_name: _reported,
    PREVENTION_ACTION_RECORDED.type_name: _acted,
}


def check_domain_rules(spec: TopicSpec, message: Message) -> None:
    """Raise RuleBroken, with the owning service's reason, for an event its domain rules
    refuse; events of types without stateless rules pass."""
    rule = RULES.get(spec.type_name)
    if rule is None:
        return
    try:
        rule(message)
    except (ReadingError, ReportError, ActionError) as exc:
        raise RuleBroken(
            f"refused by {spec.owner}'s rules: {exc}", rule=f"{spec.owner}:{exc.kind}"
        ) from None
