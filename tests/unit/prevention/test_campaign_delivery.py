"""Campaign messages from targeting to receipts: only approved campaigns send, opt-outs
win at once, quiet hours and the frequency cap are kept, failures try another channel,
and a receipt seen twice counts once."""

from datetime import timedelta

from emeuse.prevention.v1.prevention_events_pb2 import DeliveryStatus, MessageDeliveryRequested
from emeuse.registry import MESSAGE_CANCELLED, MESSAGE_DELIVERY_REQUESTED
from services.prevention.domain.campaign import DRAFT, PAUSED
from services.prevention.domain.person import PersonState
from services.prevention.grpc_api import add_reach
from services.prevention.handlers import (
    Outcome,
    opt_out,
    record_receipt,
    send_message,
    target_campaign,
    wants_campaign,
)
from tests.unit.prevention.people import NOW, campaign, enrolled, receipt, send, target
from tests.unit.prevention.people import opt_out as refusal

HPV = campaign()


def targeted(**kwargs: object) -> tuple[str, PersonState, str]:
    person, state = enrolled(**kwargs)
    outcome = target_campaign(target(person), campaign=HPV, state=state, now=NOW)
    assert outcome.outcome == "targeted"
    return person, outcome.state, state_message(outcome)


def state_message(outcome: Outcome) -> str:
    return outcome.state.reach[HPV.campaign_id].message_id


def deliveries(outcome: Outcome) -> list[MessageDeliveryRequested]:
    return [f.message for f in outcome.facts if f.spec is MESSAGE_DELIVERY_REQUESTED]  # type: ignore[misc]


def test_a_matching_person_is_targeted_once_with_one_message() -> None:
    person, state, message_id = targeted()
    assert state.messages[message_id].template_id == "campaign.hpv.teen"
    again = target_campaign(target(person), campaign=HPV, state=state, now=NOW)
    assert again.outcome == "not_targeted"
    assert again.facts == []


def test_people_outside_the_segment_are_not_targeted() -> None:
    for kwargs in ({"band": (30, 34)}, {"territory": 54}):
        _, state = enrolled(**kwargs)  # type: ignore[arg-type]
        assert not wants_campaign(state, HPV, NOW)


def test_a_draft_or_paused_campaign_targets_nobody() -> None:
    person, state = enrolled()
    for status in (DRAFT, PAUSED):
        draft = campaign(status=status)
        assert not wants_campaign(state, draft, NOW)
        outcome = target_campaign(target(person), campaign=draft, state=state, now=NOW)
        assert outcome.facts == []


def test_a_due_message_of_a_running_campaign_is_handed_to_the_partners() -> None:
    person, state, message_id = targeted()
    outcome = send_message(send(person, message_id), campaign=HPV, state=state, now=NOW)
    [delivery] = deliveries(outcome)
    assert (delivery.channel, delivery.attempt, delivery.template_id) == (
        "app",
        1,
        "campaign.hpv.teen",
    )
    assert outcome.state.reach[HPV.campaign_id].sent


def test_a_message_of_a_campaign_paused_after_targeting_waits() -> None:
    person, state, message_id = targeted()
    outcome = send_message(
        send(person, message_id), campaign=campaign(status=PAUSED), state=state, now=NOW
    )
    assert outcome.outcome == "paused"
    assert deliveries(outcome) == []
    assert outcome.state.messages[message_id].open


def test_a_message_of_a_finished_campaign_is_cancelled() -> None:
    person, state, message_id = targeted()
    outcome = send_message(
        send(person, message_id), campaign=campaign(status="finished"), state=state, now=NOW
    )
    assert deliveries(outcome) == []
    assert outcome.state.messages[message_id].cancel_reason == "campaign_finished"


def test_an_opt_out_from_everything_cancels_scheduled_messages_at_once() -> None:
    person, state, message_id = targeted()
    refused = opt_out(refusal(person), state=state, now=NOW)
    assert [f.spec for f in refused.facts] == [MESSAGE_CANCELLED]
    assert refused.state.messages[message_id].cancel_reason == "opted_out"
    sent = send_message(send(person, message_id), campaign=HPV, state=refused.state, now=NOW)
    assert deliveries(sent) == []
    counts: dict[str, dict[str, int]] = {}
    add_reach(counts, refused.state.reach[HPV.campaign_id].model_dump())
    assert counts["55"]["opted_out"] == 1 and counts["55"]["sent"] == 0


def test_an_opt_out_of_the_planned_channel_moves_the_message_to_another_allowed_one() -> None:
    person, state, message_id = targeted(channels=("app", "sms"))
    refused = opt_out(refusal(person, "app"), state=state, now=NOW)
    assert refused.state.messages[message_id].channel == "sms"
    [delivery] = deliveries(
        send_message(send(person, message_id), campaign=HPV, state=refused.state, now=NOW)
    )
    assert delivery.channel == "sms"


def test_an_opt_out_of_the_only_channel_cancels() -> None:
    person, state, message_id = targeted(channels=("sms",))
    refused = opt_out(refusal(person, "sms"), state=state, now=NOW)
    assert refused.state.messages[message_id].status == "cancelled"


def test_a_message_due_in_the_person_s_quiet_hours_is_planned_for_their_end() -> None:
    # NOW is 10:00 in Paris; quiet 09:00-12:00.
    person, state, message_id = targeted(quiet=(9 * 60, 12 * 60))
    outcome = send_message(send(person, message_id), campaign=HPV, state=state, now=NOW)
    assert deliveries(outcome) == []
    assert outcome.outcome == "quiet_hours"
    assert outcome.state.messages[message_id].due_at == NOW + timedelta(hours=2)


def test_the_campaign_s_quiet_hours_hold_too() -> None:
    person, state, message_id = targeted()
    quiet = campaign(quiet_start=9 * 60, quiet_end=11 * 60)
    outcome = send_message(send(person, message_id), campaign=quiet, state=state, now=NOW)
    assert outcome.state.messages[message_id].due_at == NOW + timedelta(hours=1)


def test_the_frequency_cap_holds_a_message_until_the_period_allows_it() -> None:
    person, state, message_id = targeted()
    state.campaign_sends = [NOW - timedelta(days=2)]
    capped = campaign(cap_max=1, cap_per_s=7 * 86400)
    outcome = send_message(send(person, message_id), campaign=capped, state=state, now=NOW)
    assert outcome.outcome == "frequency_cap"
    assert outcome.state.messages[message_id].due_at == NOW + timedelta(days=5)


def test_a_message_the_cap_pushes_past_the_campaign_s_end_is_cancelled() -> None:
    person, state, message_id = targeted()
    state.campaign_sends = [NOW - timedelta(days=2)]
    capped = campaign(cap_max=1, cap_per_s=7 * 86400, end_at=NOW + timedelta(days=3))
    outcome = send_message(send(person, message_id), campaign=capped, state=state, now=NOW)
    assert outcome.state.messages[message_id].cancel_reason == "frequency_cap"


def sent_message(**kwargs: object) -> tuple[str, PersonState, str]:
    person, state, message_id = targeted(**kwargs)
    outcome = send_message(send(person, message_id), campaign=HPV, state=state, now=NOW)
    return person, outcome.state, message_id


def test_receipts_move_the_message_and_the_reach_and_count_once() -> None:
    person, state, message_id = sent_message()
    delivered = receipt(person, message_id, DeliveryStatus.DELIVERY_STATUS_DELIVERED)
    first = record_receipt(delivered, state=state, now=NOW)
    twice = record_receipt(delivered, state=first.state, now=NOW)
    assert first.counts and twice.counts == [] and twice.outcome == "duplicate"
    opened = record_receipt(
        receipt(person, message_id, DeliveryStatus.DELIVERY_STATUS_OPENED),
        state=twice.state,
        now=NOW,
    )
    # A partner re-sending the same event under a new receipt id counts once too.
    opened_again = record_receipt(
        receipt(person, message_id, DeliveryStatus.DELIVERY_STATUS_OPENED),
        state=opened.state,
        now=NOW,
    )
    assert opened_again.outcome == "duplicate"
    reach = opened_again.state.reach[HPV.campaign_id]
    assert (reach.sent, reach.delivered, reach.opened, reach.clicked) == (True, True, True, False)
    assert opened_again.state.messages[message_id].status == "opened"


def test_a_failed_delivery_is_tried_again_on_another_allowed_channel() -> None:
    person, state, message_id = sent_message(channels=("app", "sms"))
    failed = record_receipt(
        receipt(person, message_id, DeliveryStatus.DELIVERY_STATUS_BOUNCED), state=state, now=NOW
    )
    assert failed.outcome == "retry"
    retried = send_message(send(person, message_id), campaign=HPV, state=failed.state, now=NOW)
    [delivery] = deliveries(retried)
    assert (delivery.channel, delivery.attempt) == ("sms", 2)


def test_a_delivery_failing_on_every_allowed_channel_is_failed() -> None:
    person, state, message_id = sent_message(channels=("app",))
    failed = record_receipt(
        receipt(person, message_id, DeliveryStatus.DELIVERY_STATUS_FAILED), state=state, now=NOW
    )
    assert failed.outcome == "failed"
    assert failed.state.reach[HPV.campaign_id].failed


def test_a_failure_of_an_older_attempt_changes_nothing() -> None:
    person, state, message_id = sent_message(channels=("app", "sms"))
    first = record_receipt(
        receipt(person, message_id, DeliveryStatus.DELIVERY_STATUS_FAILED), state=state, now=NOW
    )
    retried = send_message(send(person, message_id), campaign=HPV, state=first.state, now=NOW)
    late = record_receipt(
        receipt(person, message_id, DeliveryStatus.DELIVERY_STATUS_BOUNCED, attempt=1),
        state=retried.state,
        now=NOW,
    )
    assert late.outcome in ("stale_failure", "duplicate")
    assert late.state.messages[message_id].status == "sent"


def test_failure_receipts_without_an_attempt_still_move_to_the_next_channel() -> None:
    person, state, message_id = targeted(channels=("app", "sms", "email"))
    state = send_message(send(person, message_id), campaign=HPV, state=state, now=NOW).state
    tried: list[str] = []
    for expected in ("retry", "retry", "failed"):
        failed = record_receipt(
            receipt(person, message_id, DeliveryStatus.DELIVERY_STATUS_FAILED, attempt=0),
            state=state,
            now=NOW,
        )
        assert failed.outcome == expected
        state = failed.state
        if expected == "retry":
            state = send_message(send(person, message_id), campaign=HPV, state=state, now=NOW).state
    tried = state.messages[message_id].channels_tried
    assert tried == ["app", "sms", "email"]
    assert state.messages[message_id].status == "failed"


def test_a_failure_code_that_is_not_a_code_is_not_kept() -> None:
    person, state, message_id = targeted(channels=("email",))
    state = send_message(send(person, message_id), campaign=HPV, state=state, now=NOW).state
    bounced = receipt(person, message_id, DeliveryStatus.DELIVERY_STATUS_BOUNCED)
    bounced.failure_code = "550 jean.dupont@example.fr unknown"
    outcome = record_receipt(bounced, state=state, now=NOW)
    assert outcome.state.messages[message_id].cancel_reason == "undeliverable"
    coded = receipt(person, message_id, DeliveryStatus.DELIVERY_STATUS_BOUNCED)
    coded.failure_code = "smtp.550"
    assert (
        record_receipt(coded, state=state, now=NOW).state.messages[message_id].cancel_reason
        == "smtp.550"
    )


def test_a_person_no_longer_in_the_segment_at_send_time_is_not_sent_the_message() -> None:
    person, state, message_id = targeted()
    assert state.profile is not None
    state.profile.territory = "54"  # moved out of the Meuse since being targeted
    outcome = send_message(send(person, message_id), campaign=HPV, state=state, now=NOW)
    assert outcome.outcome == "cancelled"
    assert outcome.state.messages[message_id].cancel_reason == "out_of_segment"
    assert deliveries(outcome) == []


def test_an_opt_out_keeps_what_it_did_for_a_retried_call() -> None:
    person, state, message_id = targeted()
    leaving = refusal(person)
    refused = opt_out(leaving, state=state, now=NOW)
    assert refused.state.opt_outs[leaving.opt_out_id].cancelled == [message_id]
    assert refused.state.opt_outs[leaving.opt_out_id].moved == []
    again = opt_out(leaving, state=refused.state, now=NOW)
    assert again.outcome == "duplicate" and again.state.opt_outs == refused.state.opt_outs
