"""CoordinationService servicer: a person's timeline from its owner, people at risk from
every instance.

GetPersonTimeline is answered by the instance holding the person's partition (forwarded
there once, for the original caller). ListPeopleAtRisk reads the problems kept on this
instance's partitions and asks each other instance for the same page, then merges: the
people of a territory are spread over every partition.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc

from emeuse.coordination.v1 import coordination_service_pb2 as api
from emeuse.coordination.v1 import coordination_service_pb2_grpc as api_grpc
from emeuse.kernel.router import Router
from emeuse.kernel.tables import Table
from emeuse.runtime.audit import MAX_SUBJECTS
from emeuse.runtime.calls import require_pseudonym
from emeuse.runtime.envelope import territory_from_code
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.paging import page_cursor, page_size, page_token
from emeuse.runtime.roles import COORDINATOR, current_caller, on_behalf_of, patient_refusal
from services.coordination.domain import problems, timeline
from services.coordination.entries import shown
from services.coordination.processing import person_of, territory_of

Rank = tuple[int, int, str]
# Every person of a page is audited, and the audit records at most this many per call.
MAX_PEOPLE_PER_PAGE = MAX_SUBJECTS


def people_page_size(requested: int) -> int:
    if requested > MAX_PEOPLE_PER_PAGE:
        raise ValueError(f"page_size must be 0 to {MAX_PEOPLE_PER_PAGE}")
    return page_size(requested)


def timeline_cursor(token: str) -> tuple[int, str] | None:
    return page_cursor(token, lambda data: (int(data["at"]), str(data["id"])))


def rank_cursor(token: str) -> Rank | None:
    return page_cursor(token, lambda data: (int(data["u"]), int(data["s"]), str(data["p"])))


def person_at_risk(person: str, found: list[problems.Problem]) -> api.PersonAtRisk:
    oldest = min(p.since for p in found)
    out = api.PersonAtRisk(person_pseudonym=person, urgency=problems.urgency(found))
    out.oldest_since.FromMilliseconds(oldest)
    for p in found:
        shown_problem = out.problems.add(
            axis=f"AXIS_{p.axis.upper()}", rule=p.rule, subject_id=p.subject, weight=p.weight
        )
        shown_problem.since.FromMilliseconds(p.since)
    return out


def rank_of(person: api.PersonAtRisk) -> Rank:
    return problems.rank(
        person.urgency, person.oldest_since.ToMilliseconds(), person.person_pseudonym
    )


def people_at_risk(
    kept: list[tuple[str, Any]], territory: str, now: datetime, after: Rank | None
) -> list[api.PersonAtRisk]:
    """The people at risk of `territory` among kept problems, by rank, after the cursor."""
    found = []
    for key, stored in kept:
        if territory_of(key) != territory:
            continue
        still = problems.still_open((problems.from_dict(s) for s in stored), now)
        if not problems.at_risk(still):
            continue
        person = person_at_risk(person_of(key), still)
        if after is None or rank_of(person) > after:
            found.append(person)
    return sorted(found, key=rank_of)


class CoordinationServicer(api_grpc.CoordinationServiceServicer):
    def __init__(self, router: Router, timelines: Table, with_problems: Table) -> None:
        self.router = router
        self.timelines = timelines
        self.with_problems = with_problems

    async def _invalid(self, context: grpc.aio.ServicerContext, exc: ValueError) -> None:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    async def GetPersonTimeline(
        self, request: api.GetPersonTimelineRequest, context: grpc.aio.ServicerContext
    ) -> api.GetPersonTimelineResponse:
        person = request.person_pseudonym
        await require_pseudonym(context, person, "person_pseudonym")
        try:
            size = page_size(request.page_size)
            after = timeline_cursor(request.page_token)
        except ValueError as exc:
            await self._invalid(context, exc)
            raise

        async def local() -> api.GetPersonTimelineResponse:
            kept = self.timelines.get(person) or timeline.empty()
            # A coordinator sees the people of the territory it coordinates; a person with
            # no timeline is refused the same way, so a refusal says nothing of existence.
            refusal = patient_refusal(current_caller(), None, kept["territory"] or None)
            if refusal:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)
            entries, following = timeline.page(timeline.entries(kept), after, size)
            return api.GetPersonTimelineResponse(
                entries=[shown(e) for e in entries],
                next_page_token=(
                    page_token({"at": following[0], "id": following[1]}) if following else ""
                ),
                territory=kept["territory"],
            )

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.CoordinationServiceStub(channel)
            return await stub.GetPersonTimeline(
                request, timeout=deadline, metadata=(*metadata, *on_behalf_of())
            )

        return await self.router.answer(self.timelines, person, context, local, remote)

    async def ListPeopleAtRisk(
        self, request: api.ListPeopleAtRiskRequest, context: grpc.aio.ServicerContext
    ) -> api.ListPeopleAtRiskResponse:
        caller = current_caller()
        scope = caller.territory if caller and caller.role == COORDINATOR else ""
        territory = request.territory or scope
        if scope and territory != scope:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"caller {caller.caller_id if caller else ''} coordinates territory {scope} only",
            )
        try:
            if not territory:
                raise ValueError("territory is required (52, 54 or 55)")
            territory_from_code(territory)
            size = people_page_size(request.page_size)
            after = rank_cursor(request.page_token)
        except ValueError as exc:
            await self._invalid(context, exc)
            raise
        people = people_at_risk(self.with_problems.items(), territory, datetime.now(UTC), after)
        more = len(people) > size
        ask = api.ListPeopleAtRiskRequest(
            territory=territory, page_size=request.page_size, page_token=request.page_token
        )

        def call(channel: Any, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.CoordinationServiceStub(channel)
            return stub.ListPeopleAtRisk(ask, timeout=deadline, metadata=metadata)

        # People live with their partitions, spread over instances: each answers its page.
        for page in await self.router.ask_peers(self.with_problems, context, call):
            people.extend(page.people)
            more = more or bool(page.next_page_token)
        people.sort(key=rank_of)
        shown_people = people[:size]
        more = more or len(people) > size
        token = ""
        if more and shown_people:
            urgency, since, person = rank_of(shown_people[-1])
            token = page_token({"u": urgency, "s": since, "p": person})
        return api.ListPeopleAtRiskResponse(people=shown_people, next_page_token=token)


def register(servicer: CoordinationServicer) -> Registrar:
    def add(server: grpc.aio.Server) -> list[str]:
        api_grpc.add_CoordinationServiceServicer_to_server(servicer, server)
        return [api.DESCRIPTOR.services_by_name["CoordinationService"].full_name]

    return add
