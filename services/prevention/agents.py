"""Prevention agents: thin loops from the enrolment topic to handlers and out to the bus."""

from __future__ import annotations

from datetime import UTC, datetime

import faust
import structlog
from faust.types import TableT
from prometheus_client import Counter

from emeuse.registry import PERSON_ENROLLED, REMINDER_SCHEDULED
from emeuse.runtime.bus import Event
from emeuse.runtime.service import Runtime
from services.prevention import handlers
from services.prevention.domain.schedule import PersonSchedule

log = structlog.get_logger("emeuse.prevention")
REMINDERS = Counter(
    "emeuse_prevention_reminders_total",
    "Reminders considered, by programme and outcome.",
    ["programme", "outcome"],
)


def start_agents(rt: Runtime, schedules: TableT) -> None:
    async def enrol_person(event: Event) -> None:
        enrolment = event.message
        person = enrolment.person_pseudonym
        outcome = handlers.schedule_reminders(
            enrolment,
            enrolled_at=event.envelope.occurred_at.ToDatetime(tzinfo=UTC),
            schedule=PersonSchedule.from_json(schedules[person]),
        )
        for programme, result in outcome.outcomes:
            REMINDERS.labels(programme, result).inc()
        unsent = sum(1 for _, result in outcome.outcomes if result == "no_channel")
        if unsent:
            log.info("reminder.no_channel", reminders_unsent=unsent)
        for reminder in outcome.reminders:
            await rt.bus.publish(
                REMINDER_SCHEDULED,
                reminder,
                key=person,
                subject_pseudonym=person,
                occurred_at=datetime.now(UTC),
                cause=event.envelope,
                event_id=reminder.reminder_id,
            )
            log.info("reminder.scheduled", reminder_id=reminder.reminder_id)
        schedules[person] = outcome.schedule.to_json()

    @rt.app.agent(rt.bus.topic(PERSON_ENROLLED), name="enrol_people")
    async def enrol_people(records: faust.StreamT) -> None:
        await rt.bus.process(records, PERSON_ENROLLED, enrol_person)
