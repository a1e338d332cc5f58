"""The owning service's validity rules, applied to a partner's event before it is admitted.

A partner's event is checked like the platform's own input: an impossible reading (an INR
of 40, an INR in mmol/L) must not reach the platform's topic, from where the gateway would
pass it on to other partners' feeds before the owning service refused it. Only the rules
that need no state are here (a measure's unit and range); those that need the service's
tables (is the patient enrolled, is the device installed) stay the service's own.
The rules are the services' domain functions themselves, imported, never copied.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message

from emeuse.registry import READING_CORRECTED, READING_RECORDED, TopicSpec
from emeuse.runtime.codec import InvalidEventError
from services.chronic.domain.measures import ReadingError, normalise


def _measured(message: Message) -> None:
    # ReadingRecorded and ReadingCorrected: chronic normalises both before any rule.
    normalise(message.loinc_code, message.value, message.unit)  # type: ignore[attr-defined]


RULES: dict[str, Callable[[Message], None]] = {
    READING_RECORDED.type_name: _measured,
    READING_CORRECTED.type_name: _measured,
}


def check_domain_rules(spec: TopicSpec, message: Message) -> None:
    """Raise InvalidEventError, with the owning service's reason, for an event its domain
    rules refuse; events of types without stateless rules pass."""
    rule = RULES.get(spec.type_name)
    if rule is None:
        return
    try:
        rule(message)
    except ReadingError as exc:
        raise InvalidEventError(f"refused by {spec.owner}'s rules: {exc}") from None
