"""What the prevention service handles; the kernel runs it (emeuse.kernel).

Every input about a person (enrolment, preferences, opt-outs, programmes, receipts, chronic
care plans, requested actions, actions on reminders) is keyed by the person's pseudonym,
so a person's inputs are handled one at a time, in order, each exactly once: an opt-out
and a due message never interleave. Access's completed consultations are keyed by
territory: each becomes a follow-up action on the person's partition. The messages due and
the campaigns to target are a timer: each person's next step is kept in a due-index and
taken, when it comes, in a transaction with the state that records it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import structlog

from emeuse.access.v1.access_events_pb2 import ConsultationStatus, FollowUp
from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.kernel.declare import Handler, Lookup, Processor, TableSpec, Timer
from emeuse.kernel.tx import Tx
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
    PREVENTION_ACTION_RECORDED,
    PROGRAMME_ENDED,
    PROGRAMME_STARTED,
    TopicSpec,
)
from emeuse.runtime.envelope import CODE_OF_TERRITORY, territory_from_code, timestamp
from emeuse.runtime.events import Event
from emeuse.runtime.pseudonym import is_pseudonym
from services.prevention import acted, handlers
from services.prevention.campaigns import Directory
from services.prevention.domain.person import PersonState
from services.prevention.handlers import Delays, Outcome, derived_id
from services.prevention.metrics import INPUTS, OPT_OUTS, count
from services.prevention.steps import act, due_actions, next_step_at
from services.prevention.topics import PERSON_INPUTS

log = structlog.get_logger("emeuse.prevention")
STATES = "person_to_state"
STEPS = "person-steps"
# Steps taken in one firing: a campaign targeted whose window is open is sent at once.
ROUNDS = 3
# The marker of an input applied, for gRPC writes waiting for their event.
APPLIED = "event|{}"
Rule = Callable[[Event, PersonState, datetime], Outcome]


def applied_key(event_id: str) -> str:
    return APPLIED.format(event_id)


def record(
    tx: Tx,
    person: str,
    outcome: Outcome,
    *,
    cause: EventEnvelope | None,
    territory: str = "",
    experiment: str = "",
) -> None:
    """An outcome's facts into the transaction, counted, and the person's new state. A fact
    with a cause is in its cause's territory and experiment; a timer's, in the person's."""
    for fact in outcome.facts:
        tx.publish(
            fact.spec,
            fact.message,
            key=person,
            subject_pseudonym=person,
            occurred_at=tx.now,
            cause=cause,
            territory=None if cause is not None else territory_from_code(territory),
            experiment_id=None if cause is not None else (experiment or None),
            event_id=fact.event_id,
        )
        log.info(
            fact.spec.name.split(".")[2].replace("-", "."),
            message_id=getattr(fact.message, "message_id", ""),
        )
    tx.on_commit.append(partial(count, outcome.counts))
    tx.put(STATES, person, outcome.state.to_json())


async def serve_person(event: Event, tx: Tx, *, rule: Rule) -> None:
    """Apply one person input, once: `rule` gives the new state and the facts."""
    person = event.key or ""
    state = PersonState.from_json(tx.get(STATES, person))
    input_name = event.topic.split(".")[2]
    if state.has_seen(applied_key(event.envelope.event_id)):
        # The same event published again (a writer's retry, a replay): applied again, an
        # old enrolment would undo a later change, which is skipped as already seen.
        tx.count(INPUTS.labels(input_name, "redelivered"))
        log.info("person.input", input=input_name, outcome="redelivered")
        return
    outcome = rule(event, state, tx.now)
    outcome.state.remember(applied_key(event.envelope.event_id))
    tx.count(INPUTS.labels(input_name, outcome.outcome))
    log.info("person.input", input=input_name, outcome=outcome.outcome)
    record(tx, person, outcome, cause=event.envelope)


def enrol(event: Event, state: PersonState, now: datetime, *, delays: Delays) -> Outcome:
    enrolment = event.message
    if not enrolment.territory:
        enrolment.territory = event.envelope.territory
    outcome = handlers.enrol(enrolment, state=state, now=now, delays=delays)
    if outcome.state.profile is not None:
        outcome.state.profile.enrolled_by = event.envelope.event_id
        outcome.state.profile.experiment = event.envelope.experiment_id
        # A screening or dose recorded before the enrolment answers what it plans.
        acted.answer_kept(outcome, enrolment.person_pseudonym, now)
    return outcome


def opt_out(event: Event, state: PersonState, now: datetime) -> Outcome:
    refusal: OptOutRecorded = event.message
    outcome = handlers.opt_out(refusal, state=state, now=now)
    if outcome.outcome != "duplicate":
        scope = "channels" if refusal.channels else "all"
        OPT_OUTS.labels(scope, CODE_OF_TERRITORY.get(event.envelope.territory, "")).inc()
    return outcome


def requested(
    event: Event, state: PersonState, now: datetime, *, directory: Directory, delays: Delays
) -> Outcome:
    return act(event.message, state=state, now=now, directory=directory, delays=delays)


def update_preferences(event: Event, state: PersonState, now: datetime) -> Outcome:
    return handlers.update_preferences(event.message, state=state, now=now)


def start_programme(event: Event, state: PersonState, now: datetime) -> Outcome:
    return handlers.start_programme(event.message, state=state, now=now)


def end_programme(event: Event, state: PersonState, now: datetime) -> Outcome:
    return handlers.end_programme(event.message, state=state, now=now)


def record_receipt(event: Event, state: PersonState, now: datetime) -> Outcome:
    return handlers.record_receipt(event.message, state=state, now=now)


def care_plan_updated(event: Event, state: PersonState, now: datetime) -> Outcome:
    return handlers.care_plan_updated(event.message, state=state, now=now)


def action_recorded(event: Event, state: PersonState, now: datetime) -> Outcome:
    envelope = event.envelope
    # When the bus took it: checked against that, a replay decides as the first reading.
    stamp = envelope.recorded_at if envelope.HasField("recorded_at") else envelope.occurred_at
    return acted.record_action(
        event.message, state=state, now=now, recorded=stamp.ToDatetime(tzinfo=UTC)
    )


async def follow_consultation(event: Event, tx: Tx) -> None:
    """A completed consultation (keyed by territory) becomes a follow-up action on the
    person's own partition, published in this transaction."""
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
        requested_at=timestamp(tx.now),
    )
    tx.publish(
        PERSON_ACTION_REQUESTED,
        action,
        key=person,
        subject_pseudonym=person,
        occurred_at=tx.now,
        cause=event.envelope,
        event_id=action.action_id,
    )
    log.info("consultation.follow_up_asked", action_id=action.action_id)


def person_next_step(
    person: str, lookup: Lookup, now: datetime, *, directory: Directory
) -> datetime | None:
    return next_step_at(PersonState.from_json(lookup(STATES)), directory, now)


async def take_due_steps(person: str, tx: Tx, *, directory: Directory, delays: Delays) -> None:
    """Take every step due now, in one transaction with the state that records it; a
    campaign just targeted whose window is open sends in the same firing."""
    for _ in range(ROUNDS):
        state = PersonState.from_json(tx.get(STATES, person))
        actions = due_actions(person, state, directory, tx.now)
        progressed = False
        for action in actions:
            outcome = act(action, state=state, now=tx.now, directory=directory, delays=delays)
            tx.count(INPUTS.labels("timer", outcome.outcome))
            log.info("person.step", outcome=outcome.outcome)
            if outcome.state is state:
                continue  # nothing changed (paused, not due, already taken)
            assert state.profile is not None
            profile = state.profile
            record(
                tx,
                person,
                outcome,
                cause=None,
                territory=profile.territory,
                experiment=profile.experiment,
            )
            state, progressed = outcome.state, True
        if not progressed:
            return


def processor(directory: Directory, delays: Delays) -> Processor:
    """The service's declaration, given the campaign directory and configured delays."""
    rules: dict[TopicSpec, Rule] = {
        PERSON_ENROLLED: partial(enrol, delays=delays),
        PREFERENCES_UPDATED: update_preferences,
        OPT_OUT_RECORDED: opt_out,
        PROGRAMME_STARTED: start_programme,
        PROGRAMME_ENDED: end_programme,
        PERSON_ACTION_REQUESTED: partial(requested, directory=directory, delays=delays),
        DELIVERY_RECEIPT_REPORTED: record_receipt,
        CARE_PLAN_UPDATED: care_plan_updated,
        PREVENTION_ACTION_RECORDED: action_recorded,
    }
    assert set(rules) == set(PERSON_INPUTS)
    inputs: dict[TopicSpec, Handler] = {
        spec: partial(serve_person, rule=rule) for spec, rule in rules.items()
    }
    inputs[CONSULTATION_STATUS_CHANGED] = follow_consultation
    return Processor(
        service="prevention",
        inputs=inputs,
        tables=(
            TableSpec(
                STATES,
                "Profile, opt-outs, programmes, messages and campaign reach (domain.person).",
            ),
        ),
        timers=(
            Timer(
                STEPS,
                (STATES,),
                partial(person_next_step, directory=directory),
                partial(take_due_steps, directory=directory, delays=delays),
                outside=True,  # the campaign directory
            ),
        ),
    )
