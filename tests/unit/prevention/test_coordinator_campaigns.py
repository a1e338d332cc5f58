"""A coordinator with a territory creates, approves, pauses, resumes, finishes, reads and
counts only campaigns that target its own territory's people: one for another territory,
or for all three (no territory named), is refused with the words the person checks use,
before anything is published or said of the campaign's status or reach. A coordinator
without a territory, the evaluator and the operator keep what the matrix gives them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import grpc

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.prevention.v1 import prevention_service_pb2 as api
from emeuse.prevention.v1.prevention_events_pb2 import CampaignUpdated
from emeuse.runtime.auth import Caller
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.roles import CURRENT_CALLER
from services.prevention import campaigns as campaign_codec
from services.prevention.campaigns import Directory
from services.prevention.grpc_api import PreventionServicer
from tests.unit.prevention.people import NOW, campaign
from tests.unit.prevention.test_enrol_person_calls import Aborted, Context, Router
from tests.unit.runtime.test_care_teams import followed

COORD_55 = Caller("coord-55", "coordinator", territory="55")
COORD_54 = Caller("coord-54", "coordinator", territory="54")
COORD_ANYWHERE = Caller("coord-all", "coordinator")
OPERATOR = Caller("operator", "operator")
EVALUATOR = Caller("evaluator", "evaluator")
ELSEWHERE = "caller coord-54 coordinates territory 54 only"


class CampaignLog:
    """The campaign log behind the bus: a change published is read into the directory
    at once, as every instance's follower reads it."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.published: list[CampaignUpdated] = []

    async def publish(self, spec: Any, message: Any, **_: Any) -> EventEnvelope:
        self.published.append(message)
        self.directory.apply(message.SerializeToString())
        return EventEnvelope(event_id=str(uuid.uuid4()))


class Alone(Router):
    """The only instance: no peer to count a campaign's reach; counts who asked them."""

    def __init__(self) -> None:
        self.peers_asked = 0

    async def ask_peers(self, *_: Any, **__: Any) -> list[Any]:
        self.peers_asked += 1
        return []


def ask(
    caller: Caller,
    method: str,
    request: Any,
    directory: Directory,
    states: dict[str, Any] | None = None,
    router: Alone | None = None,
) -> tuple[Any, list[Any]]:
    """The answer of `method` asked by `caller` (or the Aborted status), and what it
    published."""
    log = CampaignLog(directory)
    servicer = PreventionServicer(
        router or Alone(),
        log,  # type: ignore[arg-type]
        states or {},  # type: ignore[arg-type]
        directory,
        followed(),
    )
    token = CURRENT_CALLER.set(caller)
    try:
        return asyncio.run(getattr(servicer, method)(request, Context())), log.published
    except Aborted as exc:
        return exc, log.published
    finally:
        CURRENT_CALLER.reset(token)


def draft(*territories: int) -> api.CreateCampaignRequest:
    update = CampaignUpdated(
        campaign_id=f"cmp-{uuid.uuid4().hex[:12]}",
        created_by="staff-designer",
        experiment_id="exp-prevention",
    )
    update.segment.age_from, update.segment.age_to = 11, 19
    update.segment.territories.extend(territories)
    update.messages.add(template_id="campaign.hpv.teen")
    # Far enough ahead that the window is not past when the test runs.
    update.start_at.CopyFrom(timestamp(NOW + timedelta(days=3650)))
    update.end_at.CopyFrom(timestamp(NOW + timedelta(days=3680)))
    return api.CreateCampaignRequest(campaign=update)


def directory_with(*territories: str, status: str = "draft") -> tuple[Directory, str]:
    """A directory holding one campaign for `territories`, as the log gave it."""
    directory = Directory()
    directory.ready.set()
    held = campaign(
        campaign_id=f"cmp-{uuid.uuid4().hex[:12]}",
        status=status,
        # A draft is version 1; a paused campaign was approved, then paused, at least.
        version=1 if status == "draft" else 3,
        approved_by="" if status == "draft" else "staff-approver",
    )
    held = held.model_copy(
        update={"segment": held.segment.model_copy(update={"territories": list(territories)})}
    )
    assert directory.apply(campaign_codec.to_message(held).SerializeToString())
    return directory, held.campaign_id


def ready_directory() -> Directory:
    directory = Directory()
    directory.ready.set()
    return directory


def test_a_coordinator_creates_campaigns_for_its_own_territory_only():
    meuse = draft(Territory.TERRITORY_MEUSE)

    refused, published = ask(COORD_54, "CreateCampaign", meuse, ready_directory())
    assert (refused.code, refused.details) == (grpc.StatusCode.PERMISSION_DENIED, ELSEWHERE)
    assert published == []

    created, published = ask(COORD_55, "CreateCampaign", meuse, ready_directory())
    assert created.campaign.definition.campaign_id == meuse.campaign.campaign_id
    assert len(published) == 1


def test_a_campaign_reaching_another_territory_too_is_not_a_territorial_coordinators():
    both = draft(Territory.TERRITORY_MEUSE, Territory.TERRITORY_MEURTHE_ET_MOSELLE)
    everywhere = draft()  # no territory named: all three

    for request in (both, everywhere):
        refused, published = ask(COORD_54, "CreateCampaign", request, ready_directory())
        assert refused.details == ELSEWHERE and published == []

    for caller in (COORD_ANYWHERE, OPERATOR):
        created, published = ask(caller, "CreateCampaign", everywhere, ready_directory())
        assert not isinstance(created, Aborted), created
        assert len(published) == 1


def test_approving_starts_targeting_only_for_the_campaigns_own_coordinator():
    directory, campaign_id = directory_with("55")
    approve = api.ApproveCampaignRequest(campaign_id=campaign_id, approver_id="staff-approver")

    refused, published = ask(COORD_54, "ApproveCampaign", approve, directory)
    assert refused.details == ELSEWHERE and published == []
    assert directory.get(campaign_id).status == "draft"  # type: ignore[union-attr]

    approved, published = ask(COORD_55, "ApproveCampaign", approve, directory)
    assert approved.campaign.definition.approved_by == "staff-approver"
    assert len(published) == 1


def test_pausing_resuming_and_finishing_another_territorys_campaign_are_refused():
    directory, campaign_id = directory_with("55", status="paused")
    calls = {
        "PauseCampaign": api.PauseCampaignRequest(campaign_id=campaign_id, actor_id="staff-1"),
        "ResumeCampaign": api.ResumeCampaignRequest(campaign_id=campaign_id, actor_id="staff-1"),
        "FinishCampaign": api.FinishCampaignRequest(campaign_id=campaign_id, actor_id="staff-1"),
    }
    for method, request in calls.items():
        # Refused before anything is said: not "already paused", nor its status.
        refused, published = ask(COORD_54, method, request, directory)
        assert (refused.code, refused.details) == (grpc.StatusCode.PERMISSION_DENIED, ELSEWHERE)
        assert published == [], method

    resumed, published = ask(COORD_55, "ResumeCampaign", calls["ResumeCampaign"], directory)
    assert not isinstance(resumed, Aborted), resumed
    assert len(published) == 1


def test_a_campaign_for_all_three_territories_is_steered_by_no_territorial_coordinator():
    directory, campaign_id = directory_with()
    finish = api.FinishCampaignRequest(campaign_id=campaign_id, actor_id="staff-1")

    refused, published = ask(COORD_55, "FinishCampaign", finish, directory)
    assert refused.details == "caller coord-55 coordinates territory 55 only"
    assert published == []

    finished, published = ask(COORD_ANYWHERE, "FinishCampaign", finish, directory)
    assert not isinstance(finished, Aborted), finished
    assert len(published) == 1


def reached(campaign_id: str, territory: str) -> dict[str, Any]:
    """A person's stored state with their share of the campaign's reach (domain.person)."""
    reach = {"campaign_id": campaign_id, "territory": territory, "message_id": "m", "sent": True}
    return {"reach": {campaign_id: reach}}


def test_another_territorys_campaign_is_neither_read_nor_counted_for_a_coordinator():
    directory, campaign_id = directory_with("55")
    states = {"p-1": reached(campaign_id, "55")}
    get = api.GetCampaignRequest(campaign_id=campaign_id)
    stats = api.GetCampaignStatsRequest(campaign_id=campaign_id)

    refused, _ = ask(COORD_54, "GetCampaign", get, directory, states)
    assert (refused.code, refused.details) == (grpc.StatusCode.PERMISSION_DENIED, ELSEWHERE)
    router = Alone()
    refused, _ = ask(COORD_54, "GetCampaignStats", stats, directory, states, router)
    assert (refused.code, refused.details) == (grpc.StatusCode.PERMISSION_DENIED, ELSEWHERE)
    assert router.peers_asked == 0  # refused before any instance counted

    seen, _ = ask(COORD_55, "GetCampaign", get, directory, states)
    assert seen.campaign.definition.campaign_id == campaign_id
    counted, _ = ask(COORD_55, "GetCampaignStats", stats, directory, states)
    assert (counted.total.targeted, counted.total.sent) == (1, 1)


def test_a_campaign_for_all_three_territories_is_read_by_no_territorial_coordinator():
    directory, campaign_id = directory_with()
    get = api.GetCampaignRequest(campaign_id=campaign_id)
    stats = api.GetCampaignStatsRequest(campaign_id=campaign_id)

    for method, request in (("GetCampaign", get), ("GetCampaignStats", stats)):
        refused, _ = ask(COORD_55, method, request, directory)
        assert refused.details == "caller coord-55 coordinates territory 55 only", method
        for caller in (COORD_ANYWHERE, EVALUATOR, OPERATOR):
            answer, _ = ask(caller, method, request, directory)
            assert not isinstance(answer, Aborted), (method, caller, answer)


def test_an_unknown_campaign_is_still_not_found_for_a_territorial_coordinator():
    missing = api.GetCampaignRequest(campaign_id="cmp-nothing-here")

    refused, _ = ask(COORD_54, "GetCampaign", missing, ready_directory())
    assert refused.code == grpc.StatusCode.NOT_FOUND
