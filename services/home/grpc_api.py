"""HomeService servicer: reads a home from the table, and turns contacts' and aides'
actions into events for the home's handlers, answering once they have been applied.

A home is its resident's (keyed by the resident's pseudonym): a care-team caller reads it,
acts on its incidents and records its visits when on the care team of its resident, a
coordinator with a territory when the home is enrolled there (runtime/care_teams.py); such
a coordinator also enrols homes in its territory only, and changes the contacts and plans
the visits of the homes enrolled there only."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format

from emeuse.home.v1 import home_service_pb2 as api
from emeuse.home.v1 import home_service_pb2_grpc as api_grpc
from emeuse.home.v1.home_events_pb2 import (
    HomeConfigured,
    IncidentAction,
    IncidentActionRequested,
    IncidentOutcome,
    NotifiedContact,
    VisitEnded,
    VisitPlanned,
    VisitStarted,
)
from emeuse.kernel.edge import Publisher
from emeuse.kernel.router import Router
from emeuse.kernel.tables import Table
from emeuse.registry import (
    HOME_CONFIGURED,
    INCIDENT_ACTION_REQUESTED,
    VISIT_ENDED,
    VISIT_PLANNED,
    VISIT_STARTED,
    TopicSpec,
)
from emeuse.runtime.calls import publish_for_caller, require_pseudonym, until_applied
from emeuse.runtime.care_teams import CareTeams, check_caller
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import EXPERIMENT_ID, EnvelopeError, territory_from_code, timestamp
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.paging import page_cursor, page_size, page_token
from emeuse.runtime.roles import on_behalf_of
from services.home.configuration import check_contact_id, check_home
from services.home.domain.detectors import silent_devices
from services.home.domain.home import (
    ACKNOWLEDGED,
    OPEN,
    RESOLVED,
    HomeState,
    IncidentState,
    VisitState,
)
from services.home.handlers import CLOCK_SKEW
from services.home.incidents import CONTACT_OUTCOMES, INCIDENT_OF_KIND, kind_of

# How long an action waits for the home's handlers to apply it.
APPLY_WAIT_S = 10.0
STATUS = {
    OPEN: api.IncidentStatus.INCIDENT_STATUS_OPEN,
    ACKNOWLEDGED: api.IncidentStatus.INCIDENT_STATUS_ACKNOWLEDGED,
    RESOLVED: api.IncidentStatus.INCIDENT_STATUS_RESOLVED,
}
T = TypeVar("T")


class HomeServicer(api_grpc.HomeServiceServicer):
    def __init__(self, router: Router, bus: Publisher, homes: Table, teams: CareTeams) -> None:
        self.router = router
        self.bus = bus
        self.homes = homes
        self.teams = teams

    def state(self, resident: str) -> HomeState:
        return HomeState.from_json(self.homes.get(resident))

    async def _checked_state(self, context: grpc.aio.ServicerContext, resident: str) -> HomeState:
        """The home's state, once the caller is let act on it (care_teams.check_caller):
        checked before anything is said of the home, its incidents or its visits."""
        state = self.state(resident)
        territory = state.config.territory if state.config else None
        await check_caller(context, self.teams, resident, territory)
        return state

    async def _routed(
        self,
        resident: str,
        context: grpc.aio.ServicerContext,
        request: Any,
        method: str,
        local: Callable[[], Awaitable[T]],
        *,
        waits: bool = False,
        unwrap: Callable[[Any], T] = lambda response: response,
        for_caller: bool = False,
    ) -> T:
        """Answer here if this instance holds the home, else forward the call to the one
        that does (with time to wait for it to be applied when the call changes something);
        `unwrap` takes from the owner's response what `local` returns; `for_caller`: the
        call forwarded names the original caller, whom the owner checks."""

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> T:
            call = getattr(api_grpc.HomeServiceStub(channel), method)
            timeout = deadline + (APPLY_WAIT_S if waits else 0)
            if for_caller:
                metadata = (*metadata, *on_behalf_of())
            return unwrap(await call(request, timeout=timeout, metadata=metadata))

        return await self.router.answer(self.homes, resident, context, local, remote)

    async def GetHomeStatus(
        self, request: api.GetHomeStatusRequest, context: grpc.aio.ServicerContext
    ) -> api.GetHomeStatusResponse:
        resident = request.resident_pseudonym
        await require_pseudonym(context, resident, "resident_pseudonym")

        async def local() -> api.GetHomeStatusResponse:
            stored = self.homes.get(resident)
            config = HomeState.from_json(stored).config
            await check_caller(context, self.teams, resident, config.territory if config else None)
            return status(resident, stored, datetime.now(UTC))

        return await self._routed(
            resident, context, request, "GetHomeStatus", local, for_caller=True
        )

    async def EnrollHome(
        self, request: api.EnrollHomeRequest, context: grpc.aio.ServicerContext
    ) -> api.EnrollHomeResponse:
        home = request.home
        resident = home.resident_pseudonym
        await require_pseudonym(context, resident, "home.resident_pseudonym")
        await _check_territory(context, request.territory, request.experiment_id)
        await _invalid_unless(context, lambda: check_home(home), "home")
        # A coordinator enrols homes in its territory, and changes those enrolled there.
        await check_caller(context, self.teams, resident, request.territory)

        async def local() -> api.EnrollHomeResponse:
            state = self.state(resident)
            if state.config is not None:
                await check_caller(context, self.teams, resident, state.config.territory)
                if _in_force(state, home):
                    # Asked again after a lost answer: the enrolment stands, answered again.
                    return api.EnrollHomeResponse(
                        event_id=state.config.configured_by, version=state.config.version
                    )
                await context.abort(
                    grpc.StatusCode.ALREADY_EXISTS,
                    "home is already enrolled with another configuration; "
                    "change its contacts with UpdateContacts",
                )
            sent = HomeConfigured()
            sent.CopyFrom(home)
            sent.version = 0  # numbered when applied
            event_id = await self._publish(
                context, HOME_CONFIGURED, sent, resident, request.territory, request.experiment_id
            )
            await self._applied(context, resident, lambda s: s.config is not None)
            return api.EnrollHomeResponse(event_id=event_id, version=1)

        return await self._routed(
            resident, context, request, "EnrollHome", local, waits=True, for_caller=True
        )

    async def UpdateContacts(
        self, request: api.UpdateContactsRequest, context: grpc.aio.ServicerContext
    ) -> api.UpdateContactsResponse:
        resident = request.resident_pseudonym
        await require_pseudonym(context, resident, "resident_pseudonym")

        async def local() -> api.UpdateContactsResponse:
            state = await self._checked_state(context, resident)
            if state.config is None:
                await context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION, "home is not enrolled; EnrollHome first"
                )
                raise AssertionError
            home = json_format.ParseDict(state.configured, HomeConfigured())
            del home.contacts[:]
            home.contacts.extend(request.contacts)
            if request.HasField("device_provider"):
                home.device_provider.CopyFrom(request.device_provider)
            if request.HasField("aide_service"):
                home.aide_service.CopyFrom(request.aide_service)
            home.version = 0
            await _invalid_unless(context, lambda: check_home(home), "contacts")
            if _in_force(state, home):
                # Nothing to change (asked again after a lost answer): the answer it had.
                return api.UpdateContactsResponse(
                    event_id=state.config.configured_by, version=state.config.version
                )
            version = state.config.version
            event_id = await self._publish(
                context,
                HOME_CONFIGURED,
                home,
                resident,
                state.config.territory,
                state.config.experiment,
            )
            await self._applied(
                context, resident, lambda s: s.config is not None and s.config.version > version
            )
            return api.UpdateContactsResponse(event_id=event_id, version=version + 1)

        return await self._routed(
            resident, context, request, "UpdateContacts", local, waits=True, for_caller=True
        )

    async def ListOpenIncidents(
        self, request: api.ListOpenIncidentsRequest, context: grpc.aio.ServicerContext
    ) -> api.ListOpenIncidentsResponse:
        try:
            size = page_size(request.page_size)
            cursor = _cursor(request.page_token)
            if request.territory:
                territory_from_code(request.territory)
            if request.kind and request.kind not in INCIDENT_OF_KIND:
                raise ValueError("kind is not an incident kind")
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        views = [
            incident_view(resident, incident)
            for resident, stored in self.homes.items()
            for incident in HomeState.from_json(stored).incidents.values()
            if incident.is_open
            and (not request.territory or incident.territory == request.territory)
            and (not request.kind or kind_of(incident) == request.kind)
            and (cursor is None or _order(incident) < cursor)
        ]
        more = False
        # Incidents live with their homes, spread over instances: ask each the same page.
        for page in await self.router.ask_peers(
            self.homes,
            context,
            lambda channel, deadline, metadata: api_grpc.HomeServiceStub(channel).ListOpenIncidents(
                request, timeout=deadline, metadata=metadata
            ),
        ):
            views.extend(page.incidents)
            more = more or bool(page.next_page_token)
        views.sort(key=lambda v: (v.raised_at.ToDatetime(tzinfo=UTC), v.incident_id), reverse=True)
        page_views = views[:size]
        token = ""
        if (len(views) > size or more) and page_views:
            last = page_views[-1]
            token = _token(last.raised_at.ToDatetime(tzinfo=UTC), last.incident_id)
        return api.ListOpenIncidentsResponse(incidents=page_views, next_page_token=token)

    async def AcknowledgeIncident(
        self, request: api.AcknowledgeIncidentRequest, context: grpc.aio.ServicerContext
    ) -> api.AcknowledgeIncidentResponse:
        action = IncidentActionRequested(
            action=IncidentAction.INCIDENT_ACTION_ACKNOWLEDGE,
            incident_id=request.incident_id,
            contact_id=request.contact_id,
        )
        incident = await self._act(
            request,
            context,
            action,
            settled=lambda i: i.status != OPEN,
            holds=lambda i: i.status == ACKNOWLEDGED and i.acknowledged_by == request.contact_id,
            method="AcknowledgeIncident",
        )
        return api.AcknowledgeIncidentResponse(incident=incident)

    async def ResolveIncident(
        self, request: api.ResolveIncidentRequest, context: grpc.aio.ServicerContext
    ) -> api.ResolveIncidentResponse:
        if request.outcome not in CONTACT_OUTCOMES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "outcome must be FALSE_ALARM, HANDLED_AT_HOME or SENT_TO_HOSPITAL",
            )
        action = IncidentActionRequested(
            action=IncidentAction.INCIDENT_ACTION_RESOLVE,
            incident_id=request.incident_id,
            contact_id=request.contact_id,
            outcome=request.outcome,
            injury=request.injury,
        )
        incident = await self._act(
            request,
            context,
            action,
            settled=lambda i: i.status == RESOLVED,
            holds=lambda i: (
                i.status == RESOLVED
                and i.outcome == request.outcome
                and i.injury == request.injury
                and i.resolved_by == request.contact_id
            ),
            method="ResolveIncident",
        )
        return api.ResolveIncidentResponse(incident=incident)

    async def _act(
        self,
        request: api.AcknowledgeIncidentRequest | api.ResolveIncidentRequest,
        context: grpc.aio.ServicerContext,
        action: IncidentActionRequested,
        *,
        settled: Callable[[IncidentState], bool],
        holds: Callable[[IncidentState], bool],
        method: str,
    ) -> api.Incident:
        """Ask for the change to the incident, and answer once it has.

        `settled`: the incident can no longer take the action (done by this call or not);
        `holds`: it holds what was asked. A call that is settled without holding it (the
        incident was cleared, resolved otherwise, taken by another contact) is
        FAILED_PRECONDITION: an OK always means the incident holds what was asked."""
        resident = request.resident_pseudonym
        await require_pseudonym(context, resident, "resident_pseudonym")

        async def local() -> api.Incident:
            state = await self._checked_state(context, resident)
            incident = state.incidents.get(request.incident_id)
            if state.config is None or incident is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, "no such incident for this home")
                raise AssertionError
            if not incident.in_chain(request.contact_id):
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "contact_id is not in the incident's escalation chain",
                )
            if holds(incident):
                return incident_view(resident, incident)  # already done: the call is idempotent
            if settled(incident):
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, _why_not(incident))
            action.action_id = str(uuid.uuid4())
            action.resident_pseudonym = resident
            action.requested_at.FromDatetime(datetime.now(UTC))
            await self._publish(
                context,
                INCIDENT_ACTION_REQUESTED,
                action,
                resident,
                state.config.territory,
                state.config.experiment,
            )
            done = await self._applied(
                context,
                resident,
                lambda s: (i := s.incidents.get(request.incident_id)) is None or settled(i),
            )
            after = done.incidents.get(request.incident_id)
            if after is None or not holds(after):
                # Crossed by another change (the service cleared it, another contact acted).
                await context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    _why_not(after) if after else "the incident is no longer kept",
                )
                raise AssertionError
            return incident_view(resident, after)

        return await self._routed(
            resident,
            context,
            request,
            method,
            local,
            waits=True,
            unwrap=lambda r: r.incident,
            for_caller=True,
        )

    async def PlanVisit(
        self, request: api.PlanVisitRequest, context: grpc.aio.ServicerContext
    ) -> api.PlanVisitResponse:
        resident = request.resident_pseudonym
        await require_pseudonym(context, resident, "resident_pseudonym")
        await _invalid_unless(context, lambda: check_contact_id(request.aide_id, "aide_id"), "")
        if not request.HasField("planned_start"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "planned_start is required")
        if request.planned_duration.ToTimedelta() <= timedelta(0):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "planned_duration must be positive"
            )
        if request.missed_after.ToTimedelta() < timedelta(0):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "missed_after must be positive")
        if request.visit_id:
            await _invalid_unless(
                context, lambda: check_contact_id(request.visit_id, "visit_id"), ""
            )

        async def local() -> api.PlanVisitResponse:
            await self._checked_state(context, resident)
            state = await self._enrolled(context, resident)
            assert state.config is not None
            if state.config.aide_service is None:
                await context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "home has no aide service; set one with UpdateContacts",
                )
            visit_id = request.visit_id or f"visit-{uuid.uuid4()}"
            known = state.visits.get(visit_id)
            if known is not None:
                if _same_visit(known, request):
                    # Asked again after a lost answer: the visit it planned.
                    return api.PlanVisitResponse(visit=visit_view(known))
                await context.abort(
                    grpc.StatusCode.ALREADY_EXISTS, "visit_id is already another planned visit"
                )
            planned = VisitPlanned(
                visit_id=visit_id,
                resident_pseudonym=resident,
                aide_id=request.aide_id,
                planned_start=request.planned_start,
                planned_duration=request.planned_duration,
                missed_after=request.missed_after,
            )
            await self._publish(
                context,
                VISIT_PLANNED,
                planned,
                resident,
                state.config.territory,
                state.config.experiment,
            )
            done = await self._applied(context, resident, lambda s: visit_id in s.visits)
            return api.PlanVisitResponse(visit=visit_view(done.visits[visit_id]))

        return await self._routed(
            resident, context, request, "PlanVisit", local, waits=True, for_caller=True
        )

    async def CheckIn(
        self, request: api.CheckInRequest, context: grpc.aio.ServicerContext
    ) -> api.CheckInResponse:
        visit = await self._visit_step(request, context, checking_in=True)
        return api.CheckInResponse(visit=visit)

    async def CheckOut(
        self, request: api.CheckOutRequest, context: grpc.aio.ServicerContext
    ) -> api.CheckOutResponse:
        visit = await self._visit_step(request, context, checking_in=False)
        return api.CheckOutResponse(visit=visit)

    async def _visit_step(
        self,
        request: api.CheckInRequest | api.CheckOutRequest,
        context: grpc.aio.ServicerContext,
        *,
        checking_in: bool,
    ) -> api.Visit:
        resident = request.resident_pseudonym
        await require_pseudonym(context, resident, "resident_pseudonym")
        await _invalid_unless(context, lambda: check_contact_id(request.aide_id, "aide_id"), "")
        await _invalid_unless(context, lambda: check_contact_id(request.visit_id, "visit_id"), "")
        if isinstance(request, api.CheckInRequest):
            given = request.checked_in_at if request.HasField("checked_in_at") else None
        else:
            given = request.checked_out_at if request.HasField("checked_out_at") else None
        now = datetime.now(UTC)
        at = given.ToDatetime(tzinfo=UTC) if given is not None else now
        if at > now + CLOCK_SKEW:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the time is in the future")

        def done(visit: VisitState) -> bool:
            return (visit.checked_in_at if checking_in else visit.checked_out_at) is not None

        async def local() -> api.Visit:
            await self._checked_state(context, resident)
            state = await self._enrolled(context, resident)
            assert state.config is not None
            visit = state.visits.get(request.visit_id)
            if visit is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, "no such visit for this home")
                raise AssertionError
            if done(visit):
                return visit_view(visit)  # already recorded: the call is idempotent
            event: VisitStarted | VisitEnded
            if checking_in:
                event = VisitStarted(
                    visit_id=visit.visit_id,
                    resident_pseudonym=resident,
                    aide_id=request.aide_id,
                    checked_in_at=timestamp(at),
                )
                spec = VISIT_STARTED
            else:
                if visit.checked_in_at is None:
                    await context.abort(
                        grpc.StatusCode.FAILED_PRECONDITION, "the visit was never checked in"
                    )
                    raise AssertionError
                if at < visit.checked_in_at:
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT, "checked_out_at is before the check-in"
                    )
                event = VisitEnded(
                    visit_id=visit.visit_id,
                    resident_pseudonym=resident,
                    aide_id=request.aide_id,
                    checked_out_at=timestamp(at),
                )
                spec = VISIT_ENDED
            await self._publish(
                context, spec, event, resident, state.config.territory, state.config.experiment
            )
            after = await self._applied(
                context,
                resident,
                lambda s: (v := s.visits.get(request.visit_id)) is not None and done(v),
            )
            return visit_view(after.visits[request.visit_id])

        method = "CheckIn" if checking_in else "CheckOut"
        return await self._routed(
            resident,
            context,
            request,
            method,
            local,
            waits=True,
            unwrap=lambda r: r.visit,
            for_caller=True,
        )

    async def _enrolled(self, context: grpc.aio.ServicerContext, resident: str) -> HomeState:
        state = self.state(resident)
        if state.config is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "home is not enrolled; EnrollHome first"
            )
        return state

    async def _applied(
        self,
        context: grpc.aio.ServicerContext,
        resident: str,
        applied: Callable[[HomeState], bool],
    ) -> HomeState:
        def settled() -> HomeState | None:
            state = self.state(resident)
            return state if applied(state) else None

        return await until_applied(context, settled, APPLY_WAIT_S, "GetHomeStatus shows when it is")

    async def _publish(
        self,
        context: grpc.aio.ServicerContext,
        spec: TopicSpec,
        message: Any,
        resident: str,
        territory: str,
        experiment: str | None = None,
    ) -> str:
        return await publish_for_caller(
            context,
            self.bus,
            spec,
            message,
            key=resident,
            subject=resident,
            territory=territory_from_code(territory),
            experiment=experiment,
        )


async def _check_territory(context: grpc.aio.ServicerContext, code: str, experiment: str) -> None:
    try:
        territory_from_code(code)
    except EnvelopeError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    if not EXPERIMENT_ID.fullmatch(experiment):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, "experiment_id is not an experiment id"
        )


async def _invalid_unless(
    context: grpc.aio.ServicerContext, check: Callable[[], None], what: str
) -> None:
    try:
        check()
    except InvalidEventError as exc:
        prefix = f"{what}: " if what else ""
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{prefix}{exc}")


def _why_not(incident: IncidentState) -> str:
    """Why an incident cannot take a contact's action (ids only, never names)."""
    if incident.status == RESOLVED:
        outcome = IncidentOutcome.Name(incident.outcome).removeprefix("INCIDENT_OUTCOME_")  # type: ignore[arg-type]
        return (
            f"the incident is already resolved ({outcome} by {incident.resolved_by}"
            f"{', injury' if incident.injury else ''})"
        )
    return f"the incident is already acknowledged by {incident.acknowledged_by}"


def _notified(incident: IncidentState) -> list[NotifiedContact]:
    return [
        NotifiedContact(contact_id=s.contact_id, role=s.role, step=i)  # type: ignore[arg-type]
        for i, s in enumerate(incident.notified)
    ]


def _in_force(state: HomeState, home: HomeConfigured) -> bool:
    """Whether `home` is the configuration in force (its version aside)."""
    if state.config is None or not state.config.configured_by:
        return False
    current = json_format.ParseDict(state.configured, HomeConfigured())
    asked = HomeConfigured()
    asked.CopyFrom(home)
    current.version = asked.version = 0
    return current == asked


def _same_visit(visit: VisitState, request: api.PlanVisitRequest) -> bool:
    return (
        visit.aide_id == request.aide_id
        and visit.planned_start == request.planned_start.ToDatetime(tzinfo=UTC)
        and visit.planned_duration_s == request.planned_duration.ToTimedelta().total_seconds()
    )


def _status(incident: IncidentState) -> api.IncidentStatus.ValueType:
    """Where it stands; an open incident whose chain has run out says so (and whether
    the SAMU was told), since no further step will come by itself."""
    if incident.chain_exhausted:
        if incident.with_samu:
            return api.IncidentStatus.INCIDENT_STATUS_ESCALATED_TO_SAMU
        return api.IncidentStatus.INCIDENT_STATUS_CHAIN_EXHAUSTED
    return STATUS[incident.status]


def incident_view(resident: str, incident: IncidentState) -> api.Incident:
    view = api.Incident(
        incident_id=incident.incident_id,
        resident_pseudonym=resident,
        territory=incident.territory,
        kind=kind_of(incident),
        status=_status(incident),
        reason=incident.reason,
        occurred_at=timestamp(incident.occurred_at),
        raised_at=timestamp(incident.raised_at),
        notified=_notified(incident),
        acknowledged_by=incident.acknowledged_by,
        outcome=incident.outcome,  # type: ignore[arg-type]
        injury=incident.injury,
        resolved_by=incident.resolved_by,
        sensor_event_ids=incident.sensor_event_ids,
        device_id=incident.device_id,
        visit_id=incident.visit_id,
    )
    if incident.acknowledged_at:
        view.acknowledged_at.CopyFrom(timestamp(incident.acknowledged_at))
    if incident.resolved_at:
        view.resolved_at.CopyFrom(timestamp(incident.resolved_at))
    if incident.next_escalation_at:
        view.next_escalation_at.CopyFrom(timestamp(incident.next_escalation_at))
    return view


def visit_view(visit: VisitState) -> api.Visit:
    if visit.checked_out_at is not None:
        status = api.VisitStatus.VISIT_STATUS_DONE
    elif visit.checked_in_at is not None:
        status = api.VisitStatus.VISIT_STATUS_IN_PROGRESS
    elif visit.incident_id:
        status = api.VisitStatus.VISIT_STATUS_MISSED
    else:
        status = api.VisitStatus.VISIT_STATUS_PLANNED
    view = api.Visit(
        visit_id=visit.visit_id,
        aide_id=visit.aide_id,
        status=status,
        planned_start=timestamp(visit.planned_start),
        incident_id=visit.incident_id,
    )
    view.planned_duration.FromTimedelta(timedelta(seconds=visit.planned_duration_s))
    view.lateness.FromTimedelta(visit.lateness)
    if visit.checked_in_at:
        view.checked_in_at.CopyFrom(timestamp(visit.checked_in_at))
    if visit.checked_out_at:
        view.checked_out_at.CopyFrom(timestamp(visit.checked_out_at))
    if visit.duration is not None:
        view.duration.FromTimedelta(visit.duration)
    return view


def status(
    resident: str, state_json: dict[str, Any] | None, now: datetime
) -> api.GetHomeStatusResponse:
    """The home's status; a resident never heard of gets an empty one, not an error."""
    state = HomeState.from_json(state_json)
    config = state.config
    open_incidents = sorted(
        (i for i in state.incidents.values() if i.is_open), key=_order, reverse=True
    )
    response = api.GetHomeStatusResponse(
        resident_pseudonym=resident,
        sensor_events=state.sensor_events,
        incident_ids=state.incident_ids,
        enrolled=config is not None,
        territory=config.territory if config else "",
        open_incidents=[incident_view(resident, i) for i in open_incidents],
        visits=[
            visit_view(v) for v in sorted(state.visits.values(), key=lambda v: v.planned_start)
        ],
    )
    if state.last_activity_at is not None:
        response.last_activity_at.CopyFrom(timestamp(state.last_activity_at))
    if config is None:
        return response
    response.configuration.CopyFrom(json_format.ParseDict(state.configured, HomeConfigured()))
    silent = {device_id for device_id, _ in silent_devices(config, state, now)}
    for device_id, kind in sorted(config.devices.items()):
        device = response.devices.add(device_id=device_id, kind=kind, offline=device_id in silent)
        seen = state.devices.get(device_id)
        if seen and seen.last_seen_at:
            device.last_seen_at.CopyFrom(timestamp(seen.last_seen_at))
        if seen and seen.battery_percent is not None:
            device.battery_percent = seen.battery_percent
    return response


def _order(incident: IncidentState) -> tuple[datetime, str]:
    return incident.raised_at, incident.incident_id


def _token(raised_at: datetime, incident_id: str) -> str:
    return page_token({"raised_at": raised_at.isoformat(), "incident_id": incident_id})


def _cursor(token: str) -> tuple[datetime, str] | None:
    """The (raised_at, incident_id) a page token continues after; ValueError if not one."""
    return page_cursor(
        token, lambda data: (datetime.fromisoformat(data["raised_at"]), str(data["incident_id"]))
    )


def register(servicer: HomeServicer) -> Registrar:
    def add(server: grpc.aio.Server) -> list[str]:
        api_grpc.add_HomeServiceServicer_to_server(servicer, server)
        return [api.DESCRIPTOR.services_by_name["HomeService"].full_name]

    return add
