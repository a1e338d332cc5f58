"""Prevention on the real broker: campaigns reach exactly the people they target and only
once approved, an opt-out stops a scheduled message, receipts feed the stats, and other
axes' facts (a diabetes care plan, a completed teleconsultation) trigger prevention,
and programmes start only for those eligible, with each step on its week of amenorrhoea;
an action on a reminder (a screening done, a dose given) stops the reminders it answers.

Each test targets an age band and territory of its own, so campaigns of one test never
reach the people of another; assertions are about the people each test enrolled.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf import json_format

from emeuse.access.v1.access_events_pb2 import ConsultationStatus, ConsultationStatusChanged
from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.prevention.v1 import prevention_service_pb2 as api
from emeuse.prevention.v1 import prevention_service_pb2_grpc as api_grpc
from emeuse.prevention.v1.prevention_events_pb2 import (
    CampaignStatus,
    CampaignUpdated,
    DeliveryReceiptReported,
    DeliveryStatus,
    PersonEnrolled,
    PreventionActionKind,
    PreventionActionRecorded,
    Programme,
    ProgrammeEndReason,
)
from emeuse.registry import (
    CARE_PLAN_UPDATED,
    CONSULTATION_STATUS_CHANGED,
    DELIVERY_RECEIPT_REPORTED,
    MESSAGE_CANCELLED,
    MESSAGE_DELIVERY_REQUESTED,
    MESSAGE_SCHEDULED,
    PERSON_ENROLLED,
    PREVENTION_ACTION_RECORDED,
)
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import headers_for, plan_json, record
from tests.integration.harness import Bus, Client, Platform, metric

PARIS = ZoneInfo("Europe/Paris")
MEUSE, HAUTE_MARNE, MEURTHE = (
    Territory.TERRITORY_MEUSE,
    Territory.TERRITORY_HAUTE_MARNE,
    Territory.TERRITORY_MEURTHE_ET_MOSELLE,
)


def prevention(platform: Platform) -> Client:
    return Client(
        platform.services["prevention"].grpc_target, api_grpc.PreventionServiceStub, platform.auth
    )


def enrol(
    client: Client, band: tuple[int, int], territory: int, channels: tuple[str, ...] = ("app",)
) -> str:
    person = random_pseudonym()
    client.EnrollPerson(
        api.EnrollPersonRequest(
            person=PersonEnrolled(
                person_pseudonym=person,
                age_band_from=band[0],
                age_band_to=band[1],
                territory=territory,  # type: ignore[arg-type]
                allowed_channels=channels,
            ),
            experiment_id="exp-prevention",
        )
    )
    return person


def create_campaign(
    client: Client,
    ages: tuple[int, int],
    territories: list[int],
    *,
    attributes: tuple[str, ...] = (),
    start_in: timedelta = timedelta(0),
) -> str:
    campaign = CampaignUpdated(
        campaign_id=f"cmp-{uuid.uuid4().hex[:12]}",
        label_code="integration-test",
        created_by="staff-designer",
        experiment_id="exp-prevention",
    )
    campaign.segment.age_from, campaign.segment.age_to = ages
    campaign.segment.territories.extend(territories)  # type: ignore[arg-type]
    campaign.segment.attributes.extend(attributes)
    campaign.messages.add(template_id="campaign.integration", parameters={"topic": "test"})
    now = datetime.now(UTC)
    campaign.start_at.FromDatetime(now + start_in)
    campaign.end_at.FromDatetime(now + timedelta(hours=1))
    created = client.CreateCampaign(api.CreateCampaignRequest(campaign=campaign))
    assert created.campaign.status == CampaignStatus.CAMPAIGN_STATUS_DRAFT
    return str(created.campaign.definition.campaign_id)


def approve(client: Client, campaign_id: str) -> None:
    approved = client.ApproveCampaign(
        api.ApproveCampaignRequest(campaign_id=campaign_id, approver_id="staff-approver")
    )
    assert approved.campaign.definition.approved_by == "staff-approver"


def finish(client: Client, campaign_id: str) -> None:
    client.FinishCampaign(api.FinishCampaignRequest(campaign_id=campaign_id, actor_id="staff-1"))


def of_campaign(campaign_id: str, people: set[str] | None = None) -> Callable[[dict], bool]:
    def matches(shown: dict[str, Any]) -> bool:
        return shown["event"].get("campaign_id") == campaign_id and (
            people is None or shown["key"] in people
        )

    return matches


def until(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def stats(client: Client, campaign_id: str) -> api.GetCampaignStatsResponse:
    return client.GetCampaignStats(api.GetCampaignStatsRequest(campaign_id=campaign_id))


def test_a_campaign_reaches_exactly_the_matching_people(platform: Platform, bus: Bus) -> None:
    client = prevention(platform)
    matching = {enrol(client, (15, 19), MEUSE), enrol(client, (20, 24), MEUSE, ("sms",))}
    others = {
        enrol(client, (15, 19), MEURTHE),  # another territory
        enrol(client, (30, 34), MEUSE),  # older
        enrol(client, (20, 29), MEUSE),  # a band only partly inside the segment
    }
    campaign_id = create_campaign(client, (15, 24), [MEUSE])
    try:
        approve(client, campaign_id)
        sent = bus.wait_for(
            MESSAGE_DELIVERY_REQUESTED.name, of_campaign(campaign_id, matching), count=2
        )
        assert {r["key"] for r in sent} == matching
        assert {r["event"]["template_id"] for r in sent} == {"campaign.integration"}
        everything = bus.all_records(MESSAGE_DELIVERY_REQUESTED.name)
        reached = {r["key"] for r in everything if of_campaign(campaign_id)(r)}
        assert reached & (matching | others) == matching
        # Each matching person once: the campaign's ids derive from person and campaign.
        assert len([r for r in everything if of_campaign(campaign_id, matching)(r)]) == 2
        counts = stats(client, campaign_id).total
        assert (counts.targeted, counts.sent) == (2, 2)
        assert (
            metric(
                platform.services["prevention"].metrics(),
                "emeuse_prevention_messages_total",
                event="sent",
                campaign=campaign_id,
                territory="55",
            )
            == 2
        )
    finally:
        finish(client, campaign_id)


def test_an_enrolment_delivered_again_does_not_undo_a_later_change(
    platform: Platform, bus: Bus
) -> None:
    client = prevention(platform)
    person = enrol(client, (50, 74), Territory.TERRITORY_MEUSE, channels=("app",))
    changed = client.UpdatePreferences(
        api.UpdatePreferencesRequest(person_pseudonym=person, allowed_channels=["sms", "app"])
    )
    assert list(changed.profile.allowed_channels) == ["sms", "app"]
    # The enrolment's record comes again, as after a rebalance or a crash. Applied again,
    # it would bring back the channels it named, and the change (already seen) would not
    # be applied again: the change is kept. The next change is read after it.
    bus.replay(PERSON_ENROLLED.name, person)
    later = client.UpdatePreferences(
        api.UpdatePreferencesRequest(person_pseudonym=person, language="fr")
    )
    assert list(later.profile.allowed_channels) == ["sms", "app"]
    assert later.profile.language == "fr"


def test_an_unapproved_campaign_sends_nothing(platform: Platform, bus: Bus) -> None:
    client = prevention(platform)
    person = enrol(client, (40, 44), HAUTE_MARNE)
    draft = create_campaign(client, (40, 44), [HAUTE_MARNE])
    control = create_campaign(client, (40, 44), [HAUTE_MARNE])
    try:
        approve(client, control)
        # Once the approved one reached the person, the draft was there all along.
        bus.wait_for(MESSAGE_DELIVERY_REQUESTED.name, of_campaign(control, {person}))
        for topic in (MESSAGE_SCHEDULED.name, MESSAGE_DELIVERY_REQUESTED.name):
            assert not [r for r in bus.all_records(topic, idle_seconds=1) if of_campaign(draft)(r)]
        assert stats(client, draft).total.targeted == 0
        status = client.GetCampaign(api.GetCampaignRequest(campaign_id=draft)).campaign.status
        assert status == CampaignStatus.CAMPAIGN_STATUS_DRAFT
        with pytest.raises(grpc.RpcError) as refused:
            client.ApproveCampaign(
                api.ApproveCampaignRequest(campaign_id=draft, approver_id="staff-designer")
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        finish(client, draft)
        finish(client, control)


def test_an_opt_out_between_scheduling_and_sending_stops_the_message(
    platform: Platform, bus: Bus
) -> None:
    client = prevention(platform)
    leaving, staying = enrol(client, (45, 49), HAUTE_MARNE), enrol(client, (45, 49), HAUTE_MARNE)
    campaign_id = create_campaign(client, (45, 49), [HAUTE_MARNE], start_in=timedelta(seconds=6))
    try:
        approve(client, campaign_id)
        [scheduled] = bus.wait_for(MESSAGE_SCHEDULED.name, of_campaign(campaign_id, {leaving}))
        leave = api.OptOutRequest(
            person_pseudonym=leaving, reason_code="person.request", opt_out_id="leaving-1"
        )
        opted_out = client.OptOut(leave)
        assert list(opted_out.cancelled_message_ids) == [scheduled["event"]["message_id"]]
        # Asked again after a lost answer: the first answer, nothing applied twice.
        assert client.OptOut(leave) == opted_out
        # The window opens: the other person's message goes, the one who left gets nothing.
        bus.wait_for(MESSAGE_DELIVERY_REQUESTED.name, of_campaign(campaign_id, {staying}))
        delivered = bus.all_records(MESSAGE_DELIVERY_REQUESTED.name, idle_seconds=1)
        assert not [r for r in delivered if of_campaign(campaign_id, {leaving})(r)]
        [cancelled] = bus.wait_for(MESSAGE_CANCELLED.name, of_campaign(campaign_id, {leaving}))
        assert cancelled["event"]["reason_code"] == "opted_out"
        schedule = client.GetPersonSchedule(api.GetPersonScheduleRequest(person_pseudonym=leaving))
        assert schedule.opted_out
        counts = stats(client, campaign_id).total
        assert (counts.targeted, counts.sent, counts.opted_out) == (2, 1, 1)
    finally:
        finish(client, campaign_id)


def receipt(person: str, message_id: str, status: int, attempt: int = 1, receipt_id: str = ""):
    event = DeliveryReceiptReported(
        receipt_id=receipt_id or str(uuid.uuid4()),
        message_id=message_id,
        person_pseudonym=person,
        status=status,  # type: ignore[arg-type]
        attempt=attempt,
    )
    event.reported_at.GetCurrentTime()
    return (
        DELIVERY_RECEIPT_REPORTED.name,
        person.encode(),
        event.SerializeToString(),
        headers_for(DELIVERY_RECEIPT_REPORTED, person, MEURTHE),
    )


def test_receipts_feed_the_stats_and_a_failure_tries_another_channel(
    platform: Platform, bus: Bus
) -> None:
    client = prevention(platform)
    reader, silent, bouncing = (
        enrol(client, (65, 69), MEURTHE),
        enrol(client, (65, 69), MEURTHE),
        enrol(client, (65, 69), MEURTHE, ("sms", "app")),
    )
    people = {reader, silent, bouncing}
    campaign_id = create_campaign(client, (65, 69), [MEURTHE])
    try:
        approve(client, campaign_id)
        sent = bus.wait_for(
            MESSAGE_DELIVERY_REQUESTED.name, of_campaign(campaign_id, people), count=3
        )
        message = {r["key"]: r["event"]["message_id"] for r in sent}
        delivered = receipt(reader, message[reader], DeliveryStatus.DELIVERY_STATUS_DELIVERED)
        bus.send(*delivered)
        bus.send(*delivered)  # the same receipt twice counts once
        bus.send(*receipt(reader, message[reader], DeliveryStatus.DELIVERY_STATUS_OPENED))
        bus.send(*receipt(silent, message[silent], DeliveryStatus.DELIVERY_STATUS_DELIVERED))
        bus.send(*receipt(bouncing, message[bouncing], DeliveryStatus.DELIVERY_STATUS_BOUNCED))
        [retry] = bus.wait_for(
            MESSAGE_DELIVERY_REQUESTED.name,
            lambda r: r["key"] == bouncing and r["event"].get("attempt") == 2,
        )
        assert retry["event"]["channel"] == "app"

        def counted() -> api.CampaignCounts | None:
            total = stats(client, campaign_id).total
            return total if (total.delivered, total.opened) == (2, 1) else None

        total = until(counted)
        assert total is not None
        assert (total.targeted, total.sent, total.delivered, total.opened, total.failed) == (
            3,
            3,
            2,
            1,
            0,
        )
        [share] = stats(client, campaign_id).by_territory
        assert share.territory == MEURTHE and share.counts.targeted == 3
        bus.send(*receipt(bouncing, message[bouncing], DeliveryStatus.DELIVERY_STATUS_DELIVERED, 2))
        assert until(lambda: stats(client, campaign_id).total.delivered == 3)
    finally:
        finish(client, campaign_id)


def test_a_person_monitored_for_diabetes_gets_the_series_and_diabetic_campaigns(
    platform: Platform, bus: Bus
) -> None:
    client = prevention(platform)
    diabetic, other = enrol(client, (70, 74), MEUSE), enrol(client, (70, 74), MEUSE)
    plan = json_format.ParseDict(
        plan_json(
            diabetic,
            f"cp-{uuid.uuid4().hex[:8]}",
            "DIABETES",
            {"loinc_code": "2339-0", "unit": "mg/dL", "low": 70, "high": 250},
        ),
        CarePlanUpdated(),
    )
    bus.send(*record(CARE_PLAN_UPDATED, plan, diabetic))
    series = bus.wait_for(
        MESSAGE_SCHEDULED.name,
        lambda r: r["key"] == diabetic and r["event"].get("programme") == "diabetes_education",
        count=6,
    )
    assert "education.diabetes.welcome" in {r["event"]["template_id"] for r in series}
    campaign_id = create_campaign(client, (70, 74), [MEUSE], attributes=("chronic.diabetes",))
    try:
        approve(client, campaign_id)
        bus.wait_for(MESSAGE_DELIVERY_REQUESTED.name, of_campaign(campaign_id, {diabetic}))
        assert stats(client, campaign_id).total.targeted == 1
        reached = bus.all_records(MESSAGE_DELIVERY_REQUESTED.name, idle_seconds=1)
        assert not [r for r in reached if of_campaign(campaign_id, {other})(r)]
    finally:
        finish(client, campaign_id)


def test_a_completed_teleconsultation_schedules_a_follow_up_reminder(
    platform: Platform, bus: Bus
) -> None:
    client = prevention(platform)
    patient = enrol(client, (55, 59), HAUTE_MARNE, ("sms",))
    completed = ConsultationStatusChanged(
        booking_id=f"booking-{uuid.uuid4()}",
        territory="52",
        patient_pseudonym=patient,
        practitioner_id="pract-1",
        status=ConsultationStatus.CONSULTATION_STATUS_COMPLETED,
        follow_ups=[1, 3],  # type: ignore[list-item]
    )
    completed.changed_at.GetCurrentTime()
    headers = headers_for(CONSULTATION_STATUS_CHANGED, patient, HAUTE_MARNE)
    bus.send(CONSULTATION_STATUS_CHANGED.name, b"52", completed.SerializeToString(), headers)
    [follow_up] = bus.wait_for(
        MESSAGE_SCHEDULED.name,
        lambda r: r["key"] == patient and r["event"].get("programme") == "consultation.follow_up",
    )
    assert follow_up["event"]["parameters"] == {
        "follow_ups": "prescription_issued+report_available"
    }
    assert follow_up["event"]["channel"] == "sms"


def test_the_diabetes_series_is_refused_to_a_person_not_monitored_for_diabetes(
    platform: Platform,
) -> None:
    client = prevention(platform)
    person = enrol(client, (60, 64), MEURTHE)
    with pytest.raises(grpc.RpcError) as refused:
        client.StartProgramme(
            api.StartProgrammeRequest(
                person_pseudonym=person, programme=Programme.PROGRAMME_DIABETES_EDUCATION
            )
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "monitored for diabetes" in (refused.value.details() or "")
    schedule = client.GetPersonSchedule(api.GetPersonScheduleRequest(person_pseudonym=person))
    assert not [m for m in schedule.messages if m.message.programme == "diabetes_education"]
    assert not schedule.programmes


def test_a_pregnancy_started_mid_way_lands_each_step_on_its_week_and_names_those_skipped(
    platform: Platform,
) -> None:
    client = prevention(platform)
    person = enrol(client, (30, 34), MEUSE)
    today = datetime.now(PARIS).date()
    # Today is 17 SA + 3: the term (41 SA + 0) is 24 weeks - 3 days ahead.
    last_period = today - timedelta(days=17 * 7 + 3)
    due = last_period + timedelta(days=41 * 7)
    request = api.StartProgrammeRequest(
        person_pseudonym=person, programme=Programme.PROGRAMME_PREGNANCY
    )
    request.expected_due_date.FromDatetime(datetime.combine(due, datetime.min.time()))
    started = client.StartProgramme(request)
    assert list(started.skipped_steps) == ["week_12", "week_16"]
    weeks = {}
    for message in started.scheduled:
        local = message.due_at.ToDatetime(tzinfo=UTC).astimezone(PARIS)
        weeks[message.step] = (local.date() - last_period).days / 7
    assert weeks == {step: float(step.removeprefix("week_")) for step in weeks}
    assert set(weeks) == {"week_20", "week_22", "week_28", "week_32", "week_36", "week_39"}


def test_every_write_asked_again_after_a_lost_answer_answers_as_the_first_time(platform):
    """Each write sent twice, as a client does when the first answer was lost."""
    client = prevention(platform)

    def twice(call, request):
        first = call(request, timeout=30)
        assert call(request, timeout=30) == first, call
        return first

    person = random_pseudonym()
    twice(
        client.EnrollPerson,
        api.EnrollPersonRequest(
            person=PersonEnrolled(
                person_pseudonym=person,
                age_band_from=25,
                age_band_to=29,
                territory=MEUSE,
                allowed_channels=["app"],
            ),
            experiment_id="exp-prevention",
        ),
    )
    twice(
        client.UpdatePreferences,
        api.UpdatePreferencesRequest(person_pseudonym=person, allowed_channels=["app", "sms"]),
    )
    start = api.StartProgrammeRequest(
        person_pseudonym=person, programme=Programme.PROGRAMME_PREGNANCY
    )
    start.expected_due_date.FromDatetime(datetime.now(UTC) + timedelta(days=200))
    assert twice(client.StartProgramme, start).scheduled
    ended = twice(
        client.EndProgramme,
        api.EndProgrammeRequest(
            person_pseudonym=person,
            programme=Programme.PROGRAMME_PREGNANCY,
            reason=ProgrammeEndReason.PROGRAMME_END_REASON_WITHDRAWN,
        ),
    )
    assert ended.cancelled_message_ids  # the steps not sent

    campaign = CampaignUpdated(
        campaign_id=f"cmp-{uuid.uuid4().hex[:12]}",
        label_code="integration-test",
        created_by="staff-designer",
        experiment_id="exp-prevention",
    )
    campaign.segment.age_from, campaign.segment.age_to = 97, 99  # nobody's band here
    campaign.segment.territories.append(MEUSE)
    campaign.messages.add(template_id="campaign.integration", parameters={"topic": "test"})
    campaign.start_at.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    campaign.end_at.FromDatetime(datetime.now(UTC) + timedelta(hours=2))
    campaign_id = campaign.campaign_id
    twice(client.CreateCampaign, api.CreateCampaignRequest(campaign=campaign))
    twice(
        client.ApproveCampaign,
        api.ApproveCampaignRequest(campaign_id=campaign_id, approver_id="staff-approver"),
    )
    for call, request in (
        (client.PauseCampaign, api.PauseCampaignRequest),
        (client.ResumeCampaign, api.ResumeCampaignRequest),
        (client.FinishCampaign, api.FinishCampaignRequest),
    ):
        twice(call, request(campaign_id=campaign_id, actor_id="staff-approver"))
    # Created again with another definition under its id: refused.
    campaign.label_code = "another-label"
    with pytest.raises(grpc.RpcError) as taken:
        client.CreateCampaign(api.CreateCampaignRequest(campaign=campaign))
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_a_screening_done_is_recorded_in_the_persons_territory_and_experiment(
    platform: Platform, bus: Bus
) -> None:
    """RecordPreventionAction on the running service: the action is on its topic, keyed by
    the person, in the territory and experiment of the enrolment; a person not enrolled and
    a dose given for a screening are refused, nothing published for them."""
    client = prevention(platform)
    person = enrol(client, (60, 64), MEURTHE, ("sms",))
    done = client.RecordPreventionAction(
        api.RecordPreventionActionRequest(
            person_pseudonym=person,
            programme="screening.colorectal",
            kind=PreventionActionKind.PREVENTION_ACTION_KIND_SCREENING_DONE,
        )
    )
    [recorded] = bus.wait_for(PREVENTION_ACTION_RECORDED.name, lambda r: r["key"] == person)
    assert recorded["event"]["action_id"] == done.action.action_id
    assert recorded["event"]["kind"] == "PREVENTION_ACTION_KIND_SCREENING_DONE"
    assert recorded["headers"]["ce_territory"] == "54"
    assert recorded["headers"]["ce_experiment"] == "exp-prevention"

    stranger = random_pseudonym()
    refusals = (
        (stranger, PreventionActionKind.PREVENTION_ACTION_KIND_SCREENING_DONE),
        (person, PreventionActionKind.PREVENTION_ACTION_KIND_VACCINE_GIVEN),
    )
    codes = []
    for who, kind in refusals:
        with pytest.raises(grpc.RpcError) as refused:
            client.RecordPreventionAction(
                api.RecordPreventionActionRequest(
                    person_pseudonym=who, programme="screening.colorectal", kind=kind
                )
            )
        codes.append(refused.value.code())
    assert codes == [grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT]
    published = bus.all_records(PREVENTION_ACTION_RECORDED.name)
    assert [r["key"] for r in published if r["key"] in (person, stranger)] == [person]


def reminders(client: Client, person: str) -> dict[tuple[str, str], Any]:
    """The person's screening and vaccination messages by (series, step)."""
    schedule = client.GetPersonSchedule(api.GetPersonScheduleRequest(person_pseudonym=person))
    return {
        (shown.message.programme, shown.message.step): shown
        for shown in schedule.messages
        if shown.message.programme.startswith(("screening.", "vaccination."))
    }


def acted_on(person: str) -> Callable[[dict[str, Any]], bool]:
    """A reminder of the person's cancelled because they acted on it."""
    return lambda r: r["key"] == person and r["event"].get("reason_code") == "acted_on"


def test_an_action_read_back_stops_the_reminder_it_answers_and_no_one_elses(
    platform: Platform, bus: Bus
) -> None:
    """A lab's screening done, published on the topic (twice, as a retry would), stops the
    person's colorectal reminder, not their breast one nor another person's; the next round
    is two years after the screening. A first HPV dose recorded by the API stops the first
    dose's reminder, the second dose's still goes."""
    client = prevention(platform)
    screened = enrol(client, (65, 69), HAUTE_MARNE, ("sms",))
    other = enrol(client, (65, 69), HAUTE_MARNE, ("sms",))
    action = PreventionActionRecorded(
        action_id=f"lab-{uuid.uuid4()}",
        person_pseudonym=screened,
        programme="screening.colorectal",
        kind=PreventionActionKind.PREVENTION_ACTION_KIND_SCREENING_DONE,
    )
    action.acted_at.GetCurrentTime()
    sent = record(PREVENTION_ACTION_RECORDED, action, screened)
    bus.send(*sent)
    bus.send(*sent)  # the same event again: changes nothing

    [cancelled] = bus.wait_for(MESSAGE_CANCELLED.name, acted_on(screened))
    mine = reminders(client, screened)
    stopped = mine[("screening.colorectal", "step_1")]
    assert stopped.status == api.MessageStatus.MESSAGE_STATUS_CANCELLED
    assert stopped.cancel_reason == "acted_on"
    assert stopped.message.message_id == cancelled["event"]["message_id"]
    assert mine[("screening.breast", "step_1")].status == api.MessageStatus.MESSAGE_STATUS_SCHEDULED
    next_round = mine[("screening.colorectal", "step_2")].message.due_at.ToDatetime(tzinfo=UTC)
    assert abs(next_round - (action.acted_at.ToDatetime(tzinfo=UTC) + timedelta(days=730))) < (
        timedelta(seconds=1)
    )
    theirs = reminders(client, other)
    assert theirs[("screening.colorectal", "step_1")].status == (
        api.MessageStatus.MESSAGE_STATUS_SCHEDULED
    )
    # A sentinel after the duplicate, on its topic and key, so read after it (the kernel
    # orders one partition of one topic, not two topics): the person's breast screening.
    # Once it has stopped its reminder, the duplicate has been handled too.
    breast = mine[("screening.breast", "step_1")].message.message_id
    sentinel = PreventionActionRecorded(
        action_id=f"lab-{uuid.uuid4()}",
        person_pseudonym=screened,
        programme="screening.breast",
        kind=PreventionActionKind.PREVENTION_ACTION_KIND_SCREENING_DONE,
    )
    sentinel.acted_at.GetCurrentTime()
    bus.send(*record(PREVENTION_ACTION_RECORDED, sentinel, screened))
    bus.wait_for(MESSAGE_CANCELLED.name, lambda r: r["event"].get("message_id") == breast)
    everyone = bus.all_records(MESSAGE_CANCELLED.name)
    stopped_ids = [
        r["event"]["message_id"] for r in everyone if acted_on(screened)(r) or acted_on(other)(r)
    ]
    assert stopped_ids == [cancelled["event"]["message_id"], breast]

    teen = enrol(client, (11, 12), HAUTE_MARNE, ("sms",))
    client.RecordPreventionAction(
        api.RecordPreventionActionRequest(
            person_pseudonym=teen,
            programme="vaccination.hpv",
            kind=PreventionActionKind.PREVENTION_ACTION_KIND_VACCINE_GIVEN,
        )
    )
    [dose] = bus.wait_for(MESSAGE_CANCELLED.name, acted_on(teen))
    doses = reminders(client, teen)
    assert doses[("vaccination.hpv", "step_1")].message.message_id == dose["event"]["message_id"]
    assert doses[("vaccination.hpv", "step_2")].status == api.MessageStatus.MESSAGE_STATUS_SCHEDULED
