"""Prevention use cases: plain functions, protobuf in, the person's new state and the facts
to publish out. The person's partition task is their single writer: every input about a person
(enrolment, preferences, opt-outs, programmes, receipts, timer steps, other axes' facts)
goes through one of these functions, one at a time.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, MonitoringProgramme
from emeuse.prevention.v1.prevention_events_pb2 import (
    DeliveryReceiptReported,
    DeliveryStatus,
    MessageCancelled,
    MessageDeliveryRequested,
    MessageScheduled,
    OptOutRecorded,
    PersonActionRequested,
    PersonEnrolled,
    PreferencesUpdated,
    Programme,
    ProgrammeEnded,
    ProgrammeEndReason,
    ProgrammeStarted,
)
from emeuse.registry import MESSAGE_CANCELLED, MESSAGE_DELIVERY_REQUESTED, MESSAGE_SCHEDULED
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import CODE_OF_TERRITORY, timestamp
from emeuse.runtime.events import Fact
from services.prevention.domain.campaign import PAUSED, RUNNING, CampaignDef
from services.prevention.domain.channels import choose_channel, known_channels
from services.prevention.domain.person import (
    CANCELLED,
    DELIVERED,
    FAILED,
    OPENED,
    SCHEDULED,
    SENT,
    Message,
    OptOutDone,
    PersonState,
    Profile,
    ProgrammeState,
    Reach,
)
from services.prevention.domain.programmes import BY_NAME, check_age_band, programmes_for
from services.prevention.domain.timelines import (
    DIABETES_EDUCATION,
    PARENTAL_COACHING,
    PREGNANCY,
    Step,
    check_born_on,
    check_due_date,
    diabetes_series,
    parenting_timeline,
    passed,
    pregnancy_timeline,
)
from services.prevention.domain.timing import QuietHours, after_quiet_hours, cap_allows_at

NAMESPACE = uuid.UUID("9d2a6c13-3f8b-4a71-b0e4-5e7f2c1d0055")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
# Template ids and parameters are codes: never a name, never free text.
CODE = re.compile(r"^[a-z0-9][a-z0-9._:+-]{0,63}$")
PROGRAMME_NAMES = {
    Programme.PROGRAMME_PREGNANCY: PREGNANCY,
    Programme.PROGRAMME_PARENTAL_COACHING: PARENTAL_COACHING,
    Programme.PROGRAMME_DIABETES_EDUCATION: DIABETES_EDUCATION,
}
PROGRAMME_OF_NAME = {name: value for value, name in PROGRAMME_NAMES.items()}
FOLLOW_UP = "consultation.follow_up"
DIABETES_ATTRIBUTE = "chronic.diabetes"


@dataclass(frozen=True)
class Delays:
    """Configured delays (config.py): reminders after enrolment, consultation follow-ups."""

    reminder: timedelta = timedelta(days=7)
    follow_up: timedelta = timedelta(days=7)


@dataclass
class Outcome:
    """What an input did: the new state, the facts to publish, a label, and what to count
    as (event, campaign, programme, territory) for the metrics."""

    state: PersonState
    facts: list[Fact] = field(default_factory=list)
    outcome: str = ""
    counts: list[tuple[str, str, str, str]] = field(default_factory=list)

    def count(self, event: str, message: Message) -> None:
        self.counts.append((event, message.campaign_id, message.programme, message.territory))


def derived_id(*parts: str) -> str:
    """An id derived from what caused it: handled twice, it is the same id."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def _day(stamp_set: bool, moment: datetime) -> date | None:
    return moment.date() if stamp_set else None


# -- checks shared with the gRPC API ----------------------------------------------------


def check_quiet_hours(start: int, end: int) -> QuietHours:
    try:
        return QuietHours(start, end)
    except ValueError as exc:
        raise InvalidEventError(str(exc)) from None


def check_language(language: str) -> str:
    if language and not LANGUAGE.fullmatch(language):
        raise InvalidEventError("language must be a language tag such as fr or de")
    return language or "fr"


def check_enrolment(enrolment: PersonEnrolled) -> Profile:
    """The profile an enrolment sets; InvalidEventError says what is wrong."""
    try:
        check_age_band(enrolment.age_band_from, enrolment.age_band_to)
    except ValueError as exc:
        raise InvalidEventError(str(exc)) from None
    territory = CODE_OF_TERRITORY.get(enrolment.territory, "")
    quiet = check_quiet_hours(enrolment.quiet_hours.start_minute, enrolment.quiet_hours.end_minute)
    return Profile(
        age_from=enrolment.age_band_from,
        age_to=enrolment.age_band_to,
        territory=territory,
        channels=known_channels(enrolment.allowed_channels),
        quiet_start=quiet.start_minute,
        quiet_end=quiet.end_minute,
        language=check_language(enrolment.language),
        enrolled_at=datetime.now(UTC),
    )


def check_channels(channels: list[str]) -> list[str]:
    known = known_channels(channels)
    if len(known) != len(channels):
        raise InvalidEventError("channels must be app, sms or email, each once")
    return known


class NotEligibleError(InvalidEventError):
    """The person's enrolment does not admit them to the programme."""


def check_eligible(programme: Programme.ValueType, state: PersonState) -> None:
    """Whether the enrolled person may start the programme: anyone enrolled for pregnancy
    and parental coaching; the diabetes education series only for a person monitored for
    diabetes (a chronic DIABETES care plan), who gets it by themself and may start it again
    after it ended."""
    if state.profile is None:
        raise NotEligibleError("the person is not enrolled; enrol them first")
    if (
        programme == Programme.PROGRAMME_DIABETES_EDUCATION
        and DIABETES_ATTRIBUTE not in state.attributes
    ):
        raise NotEligibleError(
            "the diabetes education series is for a person monitored for diabetes "
            "(a chronic DIABETES care plan); this person is not"
        )


def check_programme_start(start: ProgrammeStarted, now: datetime) -> None:
    try:
        if start.programme == Programme.PROGRAMME_PREGNANCY:
            if not start.HasField("expected_due_date"):
                raise InvalidEventError("a pregnancy needs its expected_due_date")
            check_due_date(start.expected_due_date.ToDatetime().date(), now.date())
        elif start.programme == Programme.PROGRAMME_PARENTAL_COACHING:
            if not start.HasField("child_born_on"):
                raise InvalidEventError("parental coaching needs child_born_on")
            check_born_on(start.child_born_on.ToDatetime().date(), now.date())
        elif start.programme != Programme.PROGRAMME_DIABETES_EDUCATION:
            raise InvalidEventError("programme must be set")
    except ValueError as exc:
        raise InvalidEventError(str(exc)) from None


def check_code(value: str, what: str) -> None:
    if not CODE.fullmatch(value):
        raise InvalidEventError(f"{what} must be a code (lowercase letters, digits, . _ : + -)")


# -- facts --------------------------------------------------------------------------------


def scheduled_fact(person: str, message: Message) -> Fact:
    event = MessageScheduled(
        message_id=message.message_id,
        person_pseudonym=person,
        campaign_id=message.campaign_id,
        programme=message.programme,
        step=message.step,
        template_id=message.template_id,
        parameters=message.parameters,
        language=message.language,
        channel=message.channel,
        due_at=timestamp(message.due_at),
    )
    return Fact(
        MESSAGE_SCHEDULED,
        event,
        derived_id(message.message_id, "scheduled", message.due_at.isoformat()),
    )


def cancel(outcome: Outcome, person: str, message: Message, reason: str, now: datetime) -> None:
    """Cancel a scheduled message: it will not be sent."""
    message.status, message.cancel_reason = CANCELLED, reason
    reach = outcome.state.reach.get(message.campaign_id) if message.campaign_id else None
    if reach is not None and reach.message_id == message.message_id:
        reach.cancelled = True
        reach.opted_out = reach.opted_out or reason == "opted_out"
    event = MessageCancelled(
        message_id=message.message_id,
        person_pseudonym=person,
        reason_code=reason,
        campaign_id=message.campaign_id,
        cancelled_at=timestamp(now),
    )
    outcome.facts.append(Fact(MESSAGE_CANCELLED, event, derived_id(message.message_id, "cancel")))
    outcome.count("cancelled", message)


def schedule(outcome: Outcome, person: str, message: Message) -> None:
    outcome.state.add_message(message)
    outcome.facts.append(scheduled_fact(person, message))
    outcome.count("scheduled", message)


def reschedule(outcome: Outcome, person: str, message: Message, due_at: datetime) -> None:
    message.due_at = due_at
    outcome.facts.append(scheduled_fact(person, message))


def _planned_channel(state: PersonState) -> str:
    """The channel to plan a message on; none for someone who refused everything, so
    nothing is planned for them (enrolment, programmes, follow-ups)."""
    if state.profile is None or state.opted_out_all:
        return ""
    return choose_channel(state.profile.channels, refused=state.opted_out_channels) or ""


# -- enrolment and preferences ------------------------------------------------------------


def enrol(
    enrolment: PersonEnrolled, *, state: PersonState, now: datetime, delays: Delays
) -> Outcome:
    """Enrol (or re-enrol) the person, and plan the national reminders their age band is
    invited to, once each; a known diabetic person starts the education series."""
    profile = check_enrolment(enrolment)
    person = enrolment.person_pseudonym
    state = state.changed()
    if state.profile is not None:
        profile.enrolled_at = state.profile.enrolled_at
    else:
        profile.enrolled_at = now
    state.profile = profile
    outcome = Outcome(state, outcome="enrolled")
    channel = _planned_channel(state)
    for programme in programmes_for(profile.age_from, profile.age_to):
        first = derived_id(person, programme.name, "step_1")
        if first in state.messages:
            continue
        if not channel:
            outcome.outcome = "no_channel"
            continue
        due = now + delays.reminder
        steps = [("step_1", due)]
        at = due
        for index, delay in enumerate(programme.further_steps, start=2):
            at = at + delay
            steps.append((f"step_{index}", at))
        for step, due_at in steps:
            schedule(
                outcome,
                person,
                Message(
                    message_id=derived_id(person, programme.name, step),
                    programme=programme.name,
                    step=step,
                    template_id=programme.template_id,
                    parameters={"step": step},
                    language=profile.language,
                    channel=channel,
                    due_at=due_at,
                    territory=profile.territory,
                ),
            )
    if DIABETES_ATTRIBUTE in state.attributes and DIABETES_EDUCATION not in state.programmes:
        _start(outcome, person, DIABETES_EDUCATION, now, due_date=None, born_on=None)
    return outcome


def update_preferences(change: PreferencesUpdated, *, state: PersonState, now: datetime) -> Outcome:
    if state.has_seen(change.change_id):
        return Outcome(state, outcome="duplicate")
    if state.profile is None:
        raise InvalidEventError("the person is not enrolled; enrol them first")
    channels = check_channels(list(change.allowed_channels))
    consented = check_channels(list(change.consented_channels))
    quiet = (
        check_quiet_hours(change.quiet_hours.start_minute, change.quiet_hours.end_minute)
        if change.HasField("quiet_hours")
        else None
    )
    language = check_language(change.language) if change.language else ""
    state = state.changed()
    state.remember(change.change_id)
    assert state.profile is not None
    if channels:
        state.profile.channels = channels
    if consented:
        # Only an explicit consent lifts an opt-out: a profile written back with the
        # channel in allowed_channels does not.
        state.opted_out_channels = [c for c in state.opted_out_channels if c not in consented]
    if quiet is not None:
        state.profile.quiet_start, state.profile.quiet_end = quiet.start_minute, quiet.end_minute
    if language:
        state.profile.language = language
    outcome = Outcome(state, outcome="updated")
    person = change.person_pseudonym
    for message in state.scheduled():
        if channels and message.channel not in channels:
            _move_or_cancel(outcome, person, message, now)
    return outcome


def _move_or_cancel(outcome: Outcome, person: str, message: Message, now: datetime) -> bool:
    """Plan the message on another allowed channel, or cancel it; True when moved."""
    state = outcome.state
    channel = _planned_channel(state)
    if channel:
        message.channel = channel
        outcome.facts.append(scheduled_fact(person, message))
        return True
    cancel(outcome, person, message, "opted_out", now)
    return False


def opt_out(refusal: OptOutRecorded, *, state: PersonState, now: datetime) -> Outcome:
    """Refuse some channels or everything, at once: scheduled messages move to a channel
    still allowed, or are cancelled."""
    if state.has_seen(refusal.opt_out_id):
        return Outcome(state, outcome="duplicate")
    channels = check_channels(list(refusal.channels))
    before = state
    state = state.changed()
    state.remember(refusal.opt_out_id)
    person = refusal.person_pseudonym
    outcome = Outcome(state, outcome="opted_out_all" if not channels else "opted_out_channels")
    if not channels:
        state.opted_out_all = True
        for message in state.scheduled():
            cancel(outcome, person, message, "opted_out", now)
        for reach in state.reach.values():
            reach.opted_out = True
    else:
        state.opted_out_channels = sorted({*state.opted_out_channels, *channels})
        for message in state.scheduled():
            if message.channel in channels:
                _move_or_cancel(outcome, person, message, now)
    state.record_opt_out(refusal.opt_out_id, opt_out_done(before, state))
    return outcome


def opt_out_done(before: PersonState, after: PersonState) -> OptOutDone:
    """The messages an opt-out cancelled or moved to another channel (what OptOut answers)."""
    waiting = {m.message_id: m for m in before.scheduled()}
    cancelled = sorted(
        m.message_id
        for m in after.messages.values()
        if m.message_id in waiting and m.status == CANCELLED
    )
    moved = sorted(
        m.message_id
        for m in after.scheduled()
        if m.message_id in waiting and m.channel != waiting[m.message_id].channel
    )
    return OptOutDone(cancelled=cancelled, moved=moved)


# -- programmes ---------------------------------------------------------------------------


def _plan_steps(
    outcome: Outcome, person: str, programme: ProgrammeState, steps: list[Step], now: datetime
) -> None:
    """Plan a timeline: new steps scheduled, scheduled steps moved to their new day, steps
    whose day passed (beyond LATE_STEP) dropped, those within it due now. Sent steps stay
    sent."""
    state = outcome.state
    assert state.profile is not None
    channel = _planned_channel(state)
    for step in steps:
        message_id = derived_id(person, programme.programme, str(programme.cycle), step.step)
        existing = state.messages.get(message_id)
        late = passed(step, now)
        due = max(step.due_at, now)
        if existing is None:
            if late or not channel:
                continue
            schedule(
                outcome,
                person,
                Message(
                    message_id=message_id,
                    programme=programme.programme,
                    step=step.step,
                    template_id=step.template_id,
                    parameters={"step": step.step},
                    language=state.profile.language,
                    channel=channel,
                    due_at=due,
                    territory=state.profile.territory,
                ),
            )
        elif (
            existing.status == CANCELLED
            and existing.cancel_reason == "timeline_moved"
            and not late
            and channel
        ):
            # Dropped when the date moved, its day is back ahead (a corrected due date).
            existing.status, existing.cancel_reason, existing.channel = SCHEDULED, "", channel
            reschedule(outcome, person, existing, due)
        elif existing.open and late:
            cancel(outcome, person, existing, "timeline_moved", now)
        elif existing.open and existing.due_at != due:
            reschedule(outcome, person, existing, due)


def _start(
    outcome: Outcome,
    person: str,
    name: str,
    now: datetime,
    *,
    due_date: date | None,
    born_on: date | None,
) -> None:
    state = outcome.state
    current = state.programmes.get(name)
    if current is not None and current.running:
        current.due_date, current.born_on = due_date or current.due_date, born_on or current.born_on
        outcome.outcome = "moved"
    else:
        current = ProgrammeState(
            programme=name,
            cycle=(current.cycle + 1) if current is not None else 1,
            started_at=now,
            due_date=due_date,
            born_on=born_on,
        )
        state.programmes[name] = current
        outcome.outcome = "started"
        outcome.counts.append(("programme_enrolled", "", name, _territory(state)))
    _plan_steps(outcome, person, current, timeline(current), now)


def timeline(programme: ProgrammeState) -> list[Step]:
    """The programme's steps, from its reference date."""
    if programme.programme == PREGNANCY and programme.due_date is not None:
        return pregnancy_timeline(programme.due_date)
    if programme.programme == PARENTAL_COACHING and programme.born_on is not None:
        return parenting_timeline(programme.born_on)
    return diabetes_series(programme.started_at)


def skipped_steps(person: str, state: PersonState, name: str, now: datetime) -> list[str]:
    """The steps of the person's programme whose day passed more than LATE_STEP before
    `now` and that were not sent: they never will be."""
    current = state.programmes.get(name)
    if current is None:
        return []
    skipped = []
    for step in timeline(current):
        message = state.messages.get(
            derived_id(person, current.programme, str(current.cycle), step.step)
        )
        if passed(step, now) and (message is None or message.status == CANCELLED):
            skipped.append(step.step)
    return skipped


def _territory(state: PersonState) -> str:
    return state.profile.territory if state.profile else ""


def start_programme(start: ProgrammeStarted, *, state: PersonState, now: datetime) -> Outcome:
    """Start a programme for a person it admits (check_eligible), or move its timeline when
    its reference date changed."""
    if state.has_seen(start.start_id):
        return Outcome(state, outcome="duplicate")
    check_programme_start(start, now)
    check_eligible(start.programme, state)
    state = state.changed()
    state.remember(start.start_id)
    outcome = Outcome(state)
    _start(
        outcome,
        start.person_pseudonym,
        PROGRAMME_NAMES[start.programme],
        now,
        due_date=_day(start.HasField("expected_due_date"), start.expected_due_date.ToDatetime()),
        born_on=_day(start.HasField("child_born_on"), start.child_born_on.ToDatetime()),
    )
    return outcome


def end_programme(end: ProgrammeEnded, *, state: PersonState, now: datetime) -> Outcome:
    """Stop a programme: its messages not sent are cancelled. A child's arrival ends the
    pregnancy and starts parental coaching."""
    if state.has_seen(end.end_id):
        return Outcome(state, outcome="duplicate")
    name = PROGRAMME_NAMES.get(end.programme)
    if name is None or end.reason == ProgrammeEndReason.PROGRAMME_END_REASON_UNSPECIFIED:
        raise InvalidEventError("programme and reason must be set")
    state = state.changed()
    state.remember(end.end_id)
    current = state.programmes.get(name)
    outcome = Outcome(state, outcome="ended")
    if current is None or not current.running:
        outcome.outcome = "not_running"
        return outcome
    ended_at = end.ended_at.ToDatetime(tzinfo=UTC) if end.HasField("ended_at") else now
    current.ended_at, current.end_reason = ended_at, end.reason
    person = end.person_pseudonym
    for message in state.scheduled():
        if message.programme == name:
            cancel(outcome, person, message, "programme_ended", now)
    if (
        name == PREGNANCY
        and end.reason == ProgrammeEndReason.PROGRAMME_END_REASON_CHILD_BORN
        and state.profile is not None
        and not (
            PARENTAL_COACHING in state.programmes and state.programmes[PARENTAL_COACHING].running
        )
    ):
        started = Outcome(state)
        _start(started, person, PARENTAL_COACHING, now, due_date=None, born_on=ended_at.date())
        outcome.facts += started.facts
        outcome.counts += started.counts
    return outcome


# -- other axes ---------------------------------------------------------------------------


def care_plan_updated(plan: CarePlanUpdated, *, state: PersonState, now: datetime) -> Outcome:
    """A chronic care plan tells which monitoring programme the person is in; a newly
    enrolled diabetic person gets the education series (once)."""
    key = f"care_plan|{plan.care_plan_id}"
    if state.has_seen(key):
        return Outcome(state, outcome="duplicate")
    state = state.changed()
    state.remember(key)
    programme = MonitoringProgramme.Name(plan.programme).removeprefix("MONITORING_PROGRAMME_")
    attribute = f"chronic.{programme.lower()}"
    state.attributes = sorted(
        {*(a for a in state.attributes if not a.startswith("chronic.")), attribute}
    )
    outcome = Outcome(state, outcome="attribute")
    if (
        attribute == DIABETES_ATTRIBUTE
        and state.profile is not None
        and DIABETES_EDUCATION not in state.programmes
    ):
        _start(
            outcome, plan.patient_pseudonym, DIABETES_EDUCATION, now, due_date=None, born_on=None
        )
        outcome.outcome = "diabetes_series"
    return outcome


def follow_up_consultation(
    action: PersonActionRequested, *, state: PersonState, now: datetime, delays: Delays
) -> Outcome:
    """A completed teleconsultation: a follow-up reminder after the configured delay, for a
    person enrolled in prevention who did not refuse everything."""
    if state.has_seen(action.action_id):
        return Outcome(state, outcome="duplicate")
    state = state.changed()
    state.remember(action.action_id)
    outcome = Outcome(state)
    channel = _planned_channel(state)
    if state.profile is None or state.opted_out_all or not channel:
        outcome.outcome = "not_reachable"
        return outcome
    follow_ups = sorted(code for code in action.follow_up_codes if CODE.fullmatch(code))
    schedule(
        outcome,
        action.person_pseudonym,
        Message(
            message_id=derived_id(action.person_pseudonym, FOLLOW_UP, action.booking_id),
            programme=FOLLOW_UP,
            step="after_teleconsultation",
            template_id="reminder.consultation.follow_up",
            parameters={"follow_ups": "+".join(follow_ups) or "none"},
            language=state.profile.language,
            channel=channel,
            due_at=now + delays.follow_up,
            territory=state.profile.territory,
        ),
    )
    outcome.outcome = "scheduled"
    return outcome


# -- campaigns ----------------------------------------------------------------------------


def wants_campaign(state: PersonState, campaign: CampaignDef, now: datetime) -> bool:
    """Whether the person is to be targeted by the campaign (the timer asks only for them)."""
    target = state.as_target()
    if target is None or state.opted_out_all or campaign.campaign_id in state.reach:
        return False
    if not campaign.sends(now) or not _planned_channel(state):
        return False
    return (
        campaign.audience_for(target, state.profile.language if state.profile else "") is not None
    )


def target_campaign(
    action: PersonActionRequested,
    *,
    campaign: CampaignDef | None,
    state: PersonState,
    now: datetime,
) -> Outcome:
    """Target the person: one message, due at the window's start (or now)."""
    if state.has_seen(action.action_id):
        return Outcome(state, outcome="duplicate")
    if campaign is None or not wants_campaign(state, campaign, now):
        return Outcome(state, outcome="not_targeted")
    state = state.changed()
    state.remember(action.action_id)
    profile, target = state.profile, state.as_target()
    assert profile is not None and target is not None
    audience = campaign.audience_for(target, profile.language)
    assert audience is not None
    person = action.person_pseudonym
    message = Message(
        message_id=derived_id(person, "campaign", campaign.campaign_id),
        campaign_id=campaign.campaign_id,
        template_id=audience.template_id,
        parameters=dict(audience.parameters),
        language=audience.language or profile.language,
        channel=_planned_channel(state),
        due_at=max(now, campaign.start_at),
        territory=profile.territory,
    )
    state.reach[campaign.campaign_id] = Reach(
        campaign_id=campaign.campaign_id,
        territory=profile.territory,
        message_id=message.message_id,
    )
    outcome = Outcome(state, outcome="targeted")
    outcome.count("targeted", message)
    schedule(outcome, person, message)
    return outcome


# -- sending and receipts -----------------------------------------------------------------


def send_message(
    action: PersonActionRequested,
    *,
    campaign: CampaignDef | None,
    state: PersonState,
    now: datetime,
) -> Outcome:
    """A message is due: check, at this moment, everything that could stop it (enrolment,
    opt-outs, the campaign's status and window, quiet hours, the frequency cap), then hand
    it to the delivery partners, or plan it again, or cancel it."""
    if state.has_seen(action.action_id):
        return Outcome(state, outcome="duplicate")
    message = state.messages.get(action.message_id)
    if message is None or not message.open or message.due_at > now:
        return Outcome(state, outcome="not_due")
    if message.campaign_id and campaign is None:
        # Not known yet (the campaign log is still being read after a restart): never a
        # reason to cancel. Not remembered: the same step is asked again later.
        return Outcome(state, outcome="campaign_unknown")
    if message.campaign_id and campaign is not None and campaign.status_at(now) == PAUSED:
        # Not remembered: the same step is asked again once the campaign is resumed.
        return Outcome(state, outcome="paused")
    state = state.changed()
    state.remember(action.action_id)
    message = state.messages[action.message_id]
    person = action.person_pseudonym
    outcome = Outcome(state)
    profile = state.profile
    if profile is None:
        cancel(outcome, person, message, "not_enrolled", now)
        outcome.outcome = "cancelled"
        return outcome
    if state.opted_out_all:
        cancel(outcome, person, message, "opted_out", now)
        outcome.outcome = "cancelled"
        return outcome
    if _programme_over(state, person, message):
        cancel(outcome, person, message, "programme_ended", now)
        outcome.outcome = "cancelled"
        return outcome
    quiet = [profile.quiet]
    if message.campaign_id:
        assert campaign is not None
        if campaign.status_at(now) != RUNNING:
            reason = "window_closed" if now >= campaign.end_at else "campaign_finished"
            cancel(outcome, person, message, reason, now)
            outcome.outcome = "cancelled"
            return outcome
        target = state.as_target()
        if target is None or not campaign.reaches(target):
            # Moved, or no longer in the age band or attributes targeted: checked again now.
            cancel(outcome, person, message, "out_of_segment", now)
            outcome.outcome = "cancelled"
            return outcome
        quiet.append(QuietHours(campaign.quiet_start, campaign.quiet_end))
    refused = state.opted_out_channels
    channel = (
        message.channel
        if message.channel in profile.channels and message.channel not in refused
        else choose_channel(profile.channels, refused=refused, tried=message.channels_tried)
    )
    if not channel:
        cancel(outcome, person, message, "opted_out" if refused else "no_channel", now)
        outcome.outcome = "cancelled"
        return outcome
    allowed_at = after_quiet_hours(now, quiet)
    reason = "quiet_hours"
    if message.campaign_id and campaign is not None and allowed_at == now:
        capped = cap_allows_at(
            state.campaign_sends, now, campaign.cap_max, timedelta(seconds=campaign.cap_per_s)
        )
        if capped is not None:
            allowed_at, reason = after_quiet_hours(capped, quiet), "frequency_cap"
    if allowed_at > now:
        if campaign is not None and message.campaign_id and allowed_at >= campaign.end_at:
            cancel(
                outcome,
                person,
                message,
                reason if reason == "frequency_cap" else "window_closed",
                now,
            )
            outcome.outcome = "cancelled"
        else:
            reschedule(outcome, person, message, allowed_at)
            outcome.outcome = reason
        return outcome
    message.status, message.sent_on, message.sent_at = SENT, channel, now
    message.channel = channel
    message.attempts += 1
    message.channels_tried = [*message.channels_tried, channel]
    if message.campaign_id:
        state.sent_campaign_message(now)
        reach = state.reach.get(message.campaign_id)
        if reach is not None:
            reach.sent = True
    delivery = MessageDeliveryRequested(
        message_id=message.message_id,
        person_pseudonym=person,
        channel=channel,
        template_id=message.template_id,
        parameters=message.parameters,
        language=message.language,
        attempt=message.attempts,
        campaign_id=message.campaign_id,
        programme=message.programme,
        requested_at=timestamp(now),
    )
    outcome.facts.append(
        Fact(
            MESSAGE_DELIVERY_REQUESTED,
            delivery,
            derived_id(message.message_id, "delivery", str(message.attempts)),
        )
    )
    outcome.count("sent", message)
    outcome.outcome = "sent"
    if message.attempts == 1:
        next_round(outcome, person, message)
    return outcome


def _programme_over(state: PersonState, person: str, message: Message) -> bool:
    """Whether the message belongs to a programme (pregnancy, coaching, diabetes) that is
    no longer running for it: ended, or started again as a new cycle."""
    if message.programme not in PROGRAMME_OF_NAME:
        return False
    current = state.programmes.get(message.programme)
    if current is None or not current.running:
        return True
    mine = derived_id(person, current.programme, str(current.cycle), message.step)
    return mine != message.message_id


def next_round(
    outcome: Outcome, person: str, message: Message, due_at: datetime | None = None
) -> None:
    """Screening comes back: the round after `message`'s, `every` after it (or at `due_at`:
    after a screening done), while the age band is invited."""
    programme = BY_NAME.get(message.programme)
    profile = outcome.state.profile
    if programme is None or programme.every is None or profile is None:
        return
    next_due = due_at or message.due_at + programme.every
    years_later = (next_due - profile.enrolled_at).days // 365
    if not programme.invites(profile.age_from, profile.age_to, years_later):
        return  # the band may be past the programme's ages by then
    number = int(message.step.removeprefix("step_") or "1") + 1 if message.step else 2
    step = f"step_{number}"
    message_id = derived_id(person, programme.name, step)
    if message_id in outcome.state.messages:
        return
    schedule(
        outcome,
        person,
        Message(
            message_id=message_id,
            programme=programme.name,
            step=step,
            template_id=programme.template_id,
            parameters={"step": step},
            language=profile.language,
            channel=message.channel,
            due_at=next_due,
            territory=profile.territory,
        ),
    )


def record_receipt(
    receipt: DeliveryReceiptReported, *, state: PersonState, now: datetime
) -> Outcome:
    """A partner's receipt: delivered, opened, clicked move the message on (a receipt seen
    twice counts once); a failure of its latest attempt tries another allowed channel."""
    key = f"receipt|{receipt.receipt_id}"
    if state.has_seen(key):
        return Outcome(state, outcome="duplicate")
    if receipt.status == DeliveryStatus.DELIVERY_STATUS_UNSPECIFIED:
        raise InvalidEventError("receipt status must be set")
    message = state.messages.get(receipt.message_id)
    if message is None or message.attempts == 0:
        raise InvalidEventError("no message with this id was sent to the person")
    # A partner that omits the attempt reports on the latest one.
    attempt = receipt.attempt or message.attempts
    twin = f"receipt|{receipt.message_id}|{attempt}|{receipt.status}"
    if state.has_seen(twin):
        return Outcome(state, outcome="duplicate")
    state = state.changed()
    state.remember(key, twin)
    message = state.messages[receipt.message_id]
    reach = state.reach.get(message.campaign_id) if message.campaign_id else None
    if reach is not None and reach.message_id != message.message_id:
        reach = None
    outcome = Outcome(state)
    status = receipt.status
    if status in (DeliveryStatus.DELIVERY_STATUS_FAILED, DeliveryStatus.DELIVERY_STATUS_BOUNCED):
        if attempt != message.attempts or message.status != SENT:
            outcome.outcome = "stale_failure"
            return outcome
        profile = state.profile
        over = _programme_over(state, receipt.person_pseudonym, message)
        channel = (
            choose_channel(
                profile.channels, refused=state.opted_out_channels, tried=message.channels_tried
            )
            if profile is not None and not state.opted_out_all and not over
            else None
        )
        outcome.count("failed", message)
        if over:
            # Its programme ended (a pregnancy over): never sent again on another channel.
            message.status, message.cancel_reason = FAILED, "programme_ended"
            outcome.outcome = "failed"
        elif channel:
            message.status, message.channel = SCHEDULED, channel
            reschedule(outcome, receipt.person_pseudonym, message, now)
            outcome.outcome = "retry"
        else:
            # Only a code is kept: a partner's free text may carry an address or a name.
            code = receipt.failure_code
            message.status = FAILED
            message.cancel_reason = code if code and CODE.fullmatch(code) else "undeliverable"
            if reach is not None:
                reach.failed = True
            outcome.outcome = "failed"
        return outcome
    opened = status in (
        DeliveryStatus.DELIVERY_STATUS_OPENED,
        DeliveryStatus.DELIVERY_STATUS_CLICKED,
    )
    if opened:
        message.status = OPENED
    elif message.status != OPENED:
        message.status = DELIVERED
    if reach is not None:
        first_delivery = not reach.delivered
        reach.delivered = True
        if first_delivery:
            outcome.count("delivered", message)
        if opened and not reach.opened:
            reach.opened = True
            outcome.count("opened", message)
        if status == DeliveryStatus.DELIVERY_STATUS_CLICKED and not reach.clicked:
            reach.clicked = True
            outcome.count("clicked", message)
    else:
        outcome.count(DeliveryStatus.Name(status).removeprefix("DELIVERY_STATUS_").lower(), message)
    outcome.outcome = DeliveryStatus.Name(status).removeprefix("DELIVERY_STATUS_").lower()
    return outcome
