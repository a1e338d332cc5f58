"""Prevention agents: thin loops from input topics to handlers and out to the bus.

`serve_people` is the single writer of each person's state: enrolments, preferences,
opt-outs, programmes, delivery receipts, chronic care plans and the service's own steps
arrive on one channel of person-keyed topics and are handled one at a time, so an opt-out
and a due message never interleave. `follow_consultations` re-keys access's completed
consultations (keyed by territory) by person. A timer targets campaigns and sends what is
due, for the people this instance holds, by asking the person's agent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import faust
import structlog
from aiokafka.errors import KafkaError
from faust.types import TableT
from prometheus_client import Counter

from emeuse.access.v1.access_events_pb2 import ConsultationStatus, FollowUp
from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.prevention.v1.prevention_events_pb2 import (
    OptOutRecorded,
    PersonAction,
    PersonActionRequested,
)
from emeuse.registry import (
    CARE_PLAN_UPDATED,
    CONSULTATION_STATUS_CHANGED,
    DELIVERY_RECEIPT_REPORTED,
    OPT_OUT_RECORDED,
    PERSON_ACTION_REQUESTED,
    PERSON_ENROLLED,
    PREFERENCES_UPDATED,
    PROGRAMME_ENDED,
    PROGRAMME_STARTED,
)
from emeuse.runtime.bus import Bus, Event, Handler, RetryableError
from emeuse.runtime.envelope import CODE_OF_TERRITORY, territory_from_code, timestamp
from emeuse.runtime.parsed import ParsedValues
from emeuse.runtime.pseudonym import is_pseudonym
from emeuse.runtime.service import Runtime
from emeuse.runtime.timers import AskedSteps
from services.prevention import handlers
from services.prevention.campaigns import Directory
from services.prevention.domain.campaign import PAUSED
from services.prevention.domain.person import PersonState
from services.prevention.handlers import Delays, Outcome, derived_id
from services.prevention.topics import PERSON_INPUTS

log = structlog.get_logger("emeuse.prevention")
MESSAGES = Counter(
    "emeuse_prevention_messages_total",
    "Messages by what happened (targeted, scheduled, sent, delivered, opened, clicked, "
    "failed, cancelled), campaign or programme, and territory.",
    ["event", "campaign", "programme", "territory"],
)
OPT_OUTS = Counter(
    "emeuse_prevention_opt_outs_total",
    "Opt-outs, from everything or from channels, by territory.",
    ["scope", "territory"],
)
PROGRAMME_ENROLMENTS = Counter(
    "emeuse_prevention_programme_enrolments_total",
    "People who started a programme, by programme and territory.",
    ["programme", "territory"],
)
INPUTS = Counter(
    "emeuse_prevention_inputs_total",
    "Person inputs handled, by topic and outcome.",
    ["input", "outcome"],
)
TIMER_ERRORS = Counter(
    "emeuse_prevention_timer_errors_total",
    "Timer steps that could not be asked for (asked again next round), by error type.",
    ["error"],
)
TIMER_INTERVAL_S = 1.0
REASK_AFTER_S = 10.0
# The marker of an input applied, for gRPC writes waiting for their event.
APPLIED = "event|{}"


def applied_key(event_id: str) -> str:
    return APPLIED.format(event_id)


def _territory(event: Event) -> str:
    return CODE_OF_TERRITORY.get(event.envelope.territory, "")


async def publish_facts(bus: Bus, person: str, outcome: Outcome, cause: EventEnvelope) -> None:
    """Publish an input's facts, before its state is written. A broker failure is retried
    with the whole input (handled again from the state before it, so its facts go out again
    under the same ids): an opt-out is never dead-lettered for a broker hiccup."""
    for fact in outcome.facts:
        try:
            await bus.publish(
                fact.spec,
                fact.message,
                key=person,
                subject_pseudonym=person,
                occurred_at=datetime.now(UTC),
                cause=cause,
                event_id=fact.event_id,
            )
        except (KafkaError, TimeoutError) as exc:
            raise RetryableError(f"publishing {fact.spec.name}: {type(exc).__name__}") from exc
        log.info(
            fact.spec.name.split(".")[2].replace("-", "."),
            message_id=getattr(fact.message, "message_id", ""),
        )


def due_actions(
    person: str, state: PersonState, directory: Directory, now: datetime
) -> list[PersonActionRequested]:
    """What the timer asks the person's agent for: the messages due, the campaigns to
    target. Campaign work waits until the campaign log is read (directory.ready), and a
    message of a campaign not known (or paused) is not asked for."""
    if state.profile is None or not state.profile.territory:
        return []
    ready = directory.ready.is_set()
    wanted: list[PersonActionRequested] = []
    for message in state.scheduled():
        if message.due_at > now:
            continue
        if message.campaign_id:
            campaign = directory.get(message.campaign_id) if ready else None
            if campaign is None or campaign.status_at(now) == PAUSED:
                continue
        wanted.append(
            PersonActionRequested(
                action_id=derived_id(
                    message.message_id,
                    "send",
                    str(message.attempts),
                    message.due_at.isoformat(),
                ),
                person_pseudonym=person,
                action=PersonAction.PERSON_ACTION_SEND_MESSAGE,
                message_id=message.message_id,
                requested_at=timestamp(now),
            )
        )
    for campaign in directory.active(now) if ready else []:
        if handlers.wants_campaign(state, campaign, now):
            wanted.append(
                PersonActionRequested(
                    action_id=derived_id(person, campaign.campaign_id, "target"),
                    person_pseudonym=person,
                    action=PersonAction.PERSON_ACTION_TARGET_CAMPAIGN,
                    campaign_id=campaign.campaign_id,
                    requested_at=timestamp(now),
                )
            )
    return wanted


def start_agents(rt: Runtime, states: TableT, directory: Directory, delays: Delays) -> None:
    def person_input(
        handle: Callable[[Event, PersonState, datetime], Outcome],
    ) -> Handler:
        async def on_input(event: Event) -> None:
            person = event.key or ""
            state = PersonState.from_json(states.get(person))
            input_name = event.topic.split(".")[2]
            if state.has_seen(applied_key(event.envelope.event_id)):
                # Delivered again (a replay after a rebalance or a crash): its facts went out
                # before it was marked applied. Applied again, an old enrolment replayed after
                # a later change would undo that change, which is skipped as already seen.
                INPUTS.labels(input_name, "redelivered").inc()
                log.info("person.input", input=input_name, outcome="redelivered")
                return
            outcome = handle(event, state, datetime.now(UTC))
            outcome.state.remember(applied_key(event.envelope.event_id))
            INPUTS.labels(input_name, outcome.outcome).inc()
            log.info("person.input", input=input_name, outcome=outcome.outcome)
            await publish_facts(rt.bus, person, outcome, event.envelope)
            for what, campaign, programme, territory in outcome.counts:
                if what == "programme_enrolled":
                    PROGRAMME_ENROLMENTS.labels(programme, territory).inc()
                else:
                    MESSAGES.labels(what, campaign, programme, territory).inc()
            states[person] = outcome.state.to_json()

        return on_input

    def enrol(event: Event, state: PersonState, now: datetime) -> Outcome:
        enrolment = event.message
        if not enrolment.territory:
            enrolment.territory = event.envelope.territory
        return handlers.enrol(enrolment, state=state, now=now, delays=delays)

    def opt_out(event: Event, state: PersonState, now: datetime) -> Outcome:
        refusal: OptOutRecorded = event.message
        outcome = handlers.opt_out(refusal, state=state, now=now)
        if outcome.outcome != "duplicate":
            scope = "channels" if refusal.channels else "all"
            OPT_OUTS.labels(scope, _territory(event)).inc()
        return outcome

    def act(event: Event, state: PersonState, now: datetime) -> Outcome:
        action: PersonActionRequested = event.message
        # Until the campaign log is read, no campaign is known: campaign work waits (the
        # handlers take an unknown campaign as "later", never as finished).
        ready = directory.ready.is_set()
        if action.action == PersonAction.PERSON_ACTION_TARGET_CAMPAIGN:
            campaign = directory.get(action.campaign_id) if ready else None
            return handlers.target_campaign(action, campaign=campaign, state=state, now=now)
        if action.action == PersonAction.PERSON_ACTION_SEND_MESSAGE:
            message = state.messages.get(action.message_id)
            campaign = directory.get(message.campaign_id) if message and ready else None
            return handlers.send_message(action, campaign=campaign, state=state, now=now)
        if action.action == PersonAction.PERSON_ACTION_FOLLOW_UP_CONSULTATION:
            return handlers.follow_up_consultation(action, state=state, now=now, delays=delays)
        raise handlers.InvalidEventError("action must be set")

    on_inputs = {
        PERSON_ENROLLED: person_input(enrol),
        PREFERENCES_UPDATED: person_input(
            lambda e, s, now: handlers.update_preferences(e.message, state=s, now=now)
        ),
        OPT_OUT_RECORDED: person_input(opt_out),
        PROGRAMME_STARTED: person_input(
            lambda e, s, now: handlers.start_programme(e.message, state=s, now=now)
        ),
        PROGRAMME_ENDED: person_input(
            lambda e, s, now: handlers.end_programme(e.message, state=s, now=now)
        ),
        PERSON_ACTION_REQUESTED: person_input(act),
        DELIVERY_RECEIPT_REPORTED: person_input(
            lambda e, s, now: handlers.record_receipt(e.message, state=s, now=now)
        ),
        CARE_PLAN_UPDATED: person_input(
            lambda e, s, now: handlers.care_plan_updated(e.message, state=s, now=now)
        ),
    }
    assert set(on_inputs) == set(PERSON_INPUTS)

    @rt.app.agent(rt.bus.topics(*PERSON_INPUTS), name="serve_people")
    async def serve_people(records: faust.StreamT) -> None:
        await rt.bus.process_each(records, on_inputs)

    async def follow_consultation(event: Event) -> None:
        change = event.message
        if change.status != ConsultationStatus.CONSULTATION_STATUS_COMPLETED:
            return
        if not is_pseudonym(change.patient_pseudonym):
            return
        person = change.patient_pseudonym
        action = PersonActionRequested(
            action_id=derived_id(change.booking_id, "follow_up"),
            person_pseudonym=person,
            action=PersonAction.PERSON_ACTION_FOLLOW_UP_CONSULTATION,
            booking_id=change.booking_id,
            follow_up_codes=[
                FollowUp.Name(f).removeprefix("FOLLOW_UP_").lower() for f in change.follow_ups
            ],
            requested_at=timestamp(datetime.now(UTC)),
        )
        await rt.bus.publish(
            PERSON_ACTION_REQUESTED,
            action,
            key=person,
            subject_pseudonym=person,
            occurred_at=datetime.now(UTC),
            cause=event.envelope,
            event_id=action.action_id,
        )
        log.info("consultation.follow_up_asked", action_id=action.action_id)

    @rt.app.agent(rt.bus.topic(CONSULTATION_STATUS_CHANGED), name="follow_consultations")
    async def follow_consultations(records: faust.StreamT) -> None:
        await rt.bus.process(records, CONSULTATION_STATUS_CHANGED, follow_consultation)

    asked = AskedSteps(REASK_AFTER_S)

    async def ask(person: str, state: PersonState, action: PersonActionRequested) -> None:
        assert state.profile is not None
        await rt.bus.publish(
            PERSON_ACTION_REQUESTED,
            action,
            key=person,
            subject_pseudonym=person,
            occurred_at=datetime.now(UTC),
            territory=territory_from_code(state.profile.territory),
            event_id=action.action_id,
        )

    # The timer only reads: each person's state is parsed once per change, not each second.
    parsed_states = ParsedValues(PersonState.from_json)

    async def ask_due_steps(person: str, now: datetime, clock: float) -> None:
        state = parsed_states.get(person, states.get(person))
        for action in due_actions(person, state, directory, now):
            if asked.recently_asked(action.action_id, clock):
                continue
            asked.mark(action.action_id, clock)
            await ask(person, state, action)

    @rt.app.timer(interval=TIMER_INTERVAL_S, name="prevention.fire_due_steps")
    async def fire_due_steps() -> None:
        """Ask each held person's agent for the messages due and the campaigns to target."""
        now, clock = datetime.now(UTC), time.monotonic()
        held = [
            person
            for person in list(states.keys())
            if rt.router.holds(PERSON_ENROLLED.name, PERSON_ENROLLED.partitions, person)
        ]
        parsed_states.retain(held)
        for person in held:
            try:
                await ask_due_steps(person, now, clock)
            except Exception as exc:  # one person's trouble (a broker blip) never stops the timer
                TIMER_ERRORS.labels(type(exc).__name__).inc()
                log.error("timer.failed", error=type(exc).__name__)
        asked.forget_old(clock)
