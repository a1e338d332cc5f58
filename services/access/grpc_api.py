"""AccessService servicer: writes go to the territory's scheduler as events, and answer
once it has applied them; reads come from the territory's tables.

Every call names its territory, so it is answered by the instance that owns the
territory's partition (forwarded there otherwise). ListPatientRequests asks every one.
A care-team caller reads and changes the requests and bookings of its own patients only,
a coordinator with a territory those of its territory (runtime/care_teams.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, cast

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from emeuse.access.v1 import access_service_pb2 as api
from emeuse.access.v1 import access_service_pb2_grpc as api_grpc
from emeuse.access.v1.access_events_pb2 import (
    BookingAction,
    BookingActionRequested,
    ConsultationRequested,
    Place,
    PractitionerRegistered,
    Slot,
)
from emeuse.kernel.edge import Publisher
from emeuse.kernel.router import Router
from emeuse.kernel.tables import Table
from emeuse.registry import (
    AVAILABILITY_PUBLISHED,
    BOOKING_ACTION_REQUESTED,
    CONSULTATION_REQUESTED,
    PLACE_REGISTERED,
    PRACTITIONER_REGISTERED,
    TopicSpec,
)
from emeuse.runtime.calls import publish_for_caller, require_pseudonym, until_applied
from emeuse.runtime.care_teams import CareTeams, check_caller
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import (
    EXPERIMENT_ID,
    TERRITORY_CODES,
    EnvelopeError,
    territory_from_code,
    timestamp,
)
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.paging import page_cursor, page_size, page_token
from emeuse.runtime.roles import CARE_TEAM, COORDINATOR, current_caller, on_behalf_of
from services.access.domain.agenda import BookingState, Location, RequestState, queue_key
from services.access.repeats import (
    availability_in_force,
    place_in_force,
    practitioner_in_force,
)
from services.access.scheduling import (
    COMMUNE,
    Agenda,
    AgendaTables,
    PlaceNotRegistered,
    check_place,
    check_practitioner,
    check_referral,
    check_request,
    check_requested_at,
    derived_id,
    place_from_directory,
    place_message,
    place_registration_id,
    practitioner_state,
    publish_availability,
    request_place,
)
from services.access.state import territory_of

# How long a write waits for the territory's scheduler to apply it.
APPLY_WAIT_S = 10.0
Answer = Any


class AccessServicer(api_grpc.AccessServiceServicer):
    def __init__(
        self, router: Router, bus: Publisher, tables: AgendaTables, teams: CareTeams
    ) -> None:
        self.router = router
        self.bus = bus
        self.tables = tables
        self.teams = teams
        # Any agenda table routes: they all share the territories' partitions.
        self._routing_table = cast(Table, tables.requests)

    # -- plumbing -------------------------------------------------------------------

    async def _territory(self, context: grpc.aio.ServicerContext, code: str) -> str:
        if code not in TERRITORY_CODES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "territory must be a programme département: 52, 54 or 55",
            )
        return code

    async def _routed(
        self,
        territory: str,
        context: grpc.aio.ServicerContext,
        request: Message,
        method: str,
        local: Callable[[Agenda], Any],
        timeout: float = 0.0,
        for_caller: bool = False,
    ) -> Answer:
        """Answer on the territory's owner: `local` there, the same call forwarded otherwise
        (`for_caller`: naming the original caller, whom the owner checks)."""

        async def here() -> Answer:
            return await local(Agenda(territory, self.tables))

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Answer:
            call = getattr(api_grpc.AccessServiceStub(channel), method)
            if for_caller:
                metadata = (*metadata, *on_behalf_of())
            return await call(request, timeout=deadline + timeout, metadata=metadata)

        return await self.router.answer(self._routing_table, territory, context, here, remote)

    async def _publish(
        self,
        context: grpc.aio.ServicerContext,
        spec: TopicSpec,
        message: Message,
        territory: str,
        subject: str = "",
        experiment: str | None = None,
    ) -> str:
        return await publish_for_caller(
            context,
            self.bus,
            spec,
            message,
            key=territory,
            subject=subject,
            territory=territory_from_code(territory),
            experiment=experiment,
        )

    async def _until(self, context: grpc.aio.ServicerContext, applied: Callable[[], Any]) -> Any:
        return await until_applied(context, applied, APPLY_WAIT_S)

    @staticmethod
    async def _experiment(context: grpc.aio.ServicerContext, experiment: str) -> None:
        if not EXPERIMENT_ID.fullmatch(experiment):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "experiment_id is not an experiment id"
            )

    @staticmethod
    async def _checked(context: grpc.aio.ServicerContext, check: Callable[[], None]) -> None:
        try:
            check()
        except (InvalidEventError, EnvelopeError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    @staticmethod
    async def _directory_place(
        context: grpc.aio.ServicerContext, agenda: Agenda, place: Place
    ) -> None:
        """Fill a place named by its place_id alone from the directory, before it is
        published, so the event carries the place it was matched with."""
        try:
            place.CopyFrom(place_from_directory(agenda, place))
        except PlaceNotRegistered as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))

    @staticmethod
    async def _request_place(
        context: grpc.aio.ServicerContext, agenda: Agenda, asked: ConsultationRequested
    ) -> None:
        """A request's place filled in from the directory, as _directory_place; a modality
        the directory place does not host is INVALID_ARGUMENT."""
        try:
            asked.place.CopyFrom(request_place(agenda, asked))
        except PlaceNotRegistered as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except InvalidEventError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    # -- directory ------------------------------------------------------------------

    async def RegisterPractitioner(
        self, request: api.RegisterPractitionerRequest, context: grpc.aio.ServicerContext
    ) -> api.RegisterPractitionerResponse:
        practitioner = request.practitioner
        territory = await self._territory(context, practitioner.territory)
        await self._experiment(context, request.experiment_id)
        await self._checked(context, lambda: check_practitioner(practitioner))

        async def local(agenda: Agenda) -> api.RegisterPractitionerResponse:
            await self._directory_place(context, agenda, practitioner.place)
            if known := practitioner_in_force(agenda, practitioner):
                return api.RegisterPractitionerResponse(event_id=known)
            event_id = await self._publish(
                context,
                PRACTITIONER_REGISTERED,
                practitioner,
                territory,
                experiment=request.experiment_id,
            )
            wanted = _practitioner_json(practitioner)
            await self._until(
                context,
                lambda: (
                    (p := agenda.practitioner(practitioner.practitioner_id)) is not None
                    and p.model_dump(mode="json") == wanted
                ),
            )
            return api.RegisterPractitionerResponse(event_id=event_id)

        return await self._routed(
            territory, context, request, "RegisterPractitioner", local, APPLY_WAIT_S
        )

    async def RegisterPlace(
        self, request: api.RegisterPlaceRequest, context: grpc.aio.ServicerContext
    ) -> api.RegisterPlaceResponse:
        registration = request.registration
        territory = await self._territory(context, registration.territory)
        await self._experiment(context, request.experiment_id)
        await self._checked(context, lambda: check_place(registration))

        async def local(agenda: Agenda) -> api.RegisterPlaceResponse:
            if known := place_in_force(agenda, registration):
                return api.RegisterPlaceResponse(event_id=known)
            event_id = await self._publish(
                context, PLACE_REGISTERED, registration, territory, experiment=request.experiment_id
            )
            # Applied when the scheduler has recorded this event, not when the stored place
            # equals the one sent (see register_place): a later registration of the same
            # place_id may already have replaced it, and that one is answered on its own.
            await self._until(
                context, lambda: agenda.action_outcome(place_registration_id(event_id))
            )
            return api.RegisterPlaceResponse(event_id=event_id)

        return await self._routed(territory, context, request, "RegisterPlace", local, APPLY_WAIT_S)

    async def ListPlaces(
        self, request: api.ListPlacesRequest, context: grpc.aio.ServicerContext
    ) -> api.ListPlacesResponse:
        territory = await self._territory(context, request.territory)
        if request.commune and not COMMUNE.fullmatch(request.commune):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "commune must be an INSEE commune code"
            )
        try:
            size = page_size(request.page_size)
            after = _place_cursor(request.page_token)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise

        async def local(agenda: Agenda) -> api.ListPlacesResponse:
            page, token = place_page(agenda.places(), request.commune, after, size)
            return api.ListPlacesResponse(
                places=[place_message(p) for p in page], next_page_token=token
            )

        return await self._routed(territory, context, request, "ListPlaces", local)

    async def PublishAvailability(
        self, request: api.PublishAvailabilityRequest, context: grpc.aio.ServicerContext
    ) -> api.PublishAvailabilityResponse:
        availability = request.availability
        territory = await self._territory(context, availability.territory)
        await self._experiment(context, request.experiment_id)
        if not availability.slots:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no slot to publish")
        for slot in availability.slots:
            if not slot.HasField("start") or slot.duration.ToSeconds() <= 0:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "every slot needs a start and a duration"
                )
            slot.practitioner_id = slot.practitioner_id or availability.practitioner_id
            if slot.practitioner_id != availability.practitioner_id:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "a slot belongs to the practitioner publishing it",
                )
            # Derived: the same slot published twice is one slot.
            slot.slot_id = slot.slot_id or derived_id(
                availability.practitioner_id, slot.start.ToJsonString()
            )

        async def local(agenda: Agenda) -> api.PublishAvailabilityResponse:
            if agenda.practitioner(availability.practitioner_id) is None:
                await context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "practitioner is not registered in this territory; RegisterPractitioner first",
                )
            if known := availability_in_force(agenda, availability):
                ids = [slot.slot_id for slot in availability.slots]
                return api.PublishAvailabilityResponse(event_id=known, slot_ids=ids)
            # The scheduler's own checks, here first, so the caller hears why.
            trial = Agenda(territory, agenda.tables, staged=True)
            try:
                publish_availability(trial, availability, datetime.now(UTC))
            except InvalidEventError as exc:
                code = (
                    grpc.StatusCode.ALREADY_EXISTS
                    if "already another slot" in str(exc)
                    else grpc.StatusCode.INVALID_ARGUMENT
                )
                await context.abort(code, str(exc))
            event_id = await self._publish(
                context,
                AVAILABILITY_PUBLISHED,
                availability,
                territory,
                experiment=request.experiment_id,
            )
            ids = [slot.slot_id for slot in availability.slots]
            await self._until(context, lambda: all(agenda.slot(i) is not None for i in ids))
            return api.PublishAvailabilityResponse(event_id=event_id, slot_ids=ids)

        return await self._routed(
            territory, context, request, "PublishAvailability", local, APPLY_WAIT_S
        )

    async def GetPractitionerAgenda(
        self, request: api.GetPractitionerAgendaRequest, context: grpc.aio.ServicerContext
    ) -> api.GetPractitionerAgendaResponse:
        territory = await self._territory(context, request.territory)

        async def local(agenda: Agenda) -> api.GetPractitionerAgendaResponse:
            practitioner = agenda.practitioner(request.practitioner_id)
            if practitioner is None:
                await context.abort(
                    grpc.StatusCode.NOT_FOUND, "no such practitioner in this territory"
                )
                raise AssertionError
            since = (
                getattr(request, "from").ToDatetime(tzinfo=UTC)
                if request.HasField("from")
                else None
            )
            until = request.to.ToDatetime(tzinfo=UTC) if request.HasField("to") else None
            slots = sorted(
                (
                    s
                    for s in agenda.slots()
                    if s.practitioner_id == request.practitioner_id
                    and (since is None or s.start >= since)
                    and (until is None or s.start < until)
                ),
                key=lambda s: s.start,
            )
            response = api.GetPractitionerAgendaResponse(
                practitioner=_practitioner_message(agenda, practitioner.model_dump(mode="json")),
                utilisation=(sum(1 for s in slots if not s.free) / len(slots)) if slots else 0.0,
            )
            for slot in slots:
                entry = response.slots.add()
                entry.slot.CopyFrom(
                    Slot(
                        slot_id=slot.slot_id,
                        practitioner_id=slot.practitioner_id,
                        start=timestamp(slot.start),
                        modalities=slot.modalities,  # type: ignore[arg-type]
                    )
                )
                entry.slot.duration.FromSeconds(int(slot.duration_s))
                booking = agenda.booking(slot.booking_id) if slot.booking_id else None
                if booking is not None:
                    entry.booking.CopyFrom(booking_view(territory, booking))
            return response

        return await self._routed(territory, context, request, "GetPractitionerAgenda", local)

    # -- requests -------------------------------------------------------------------

    async def RequestConsultation(
        self, request: api.RequestConsultationRequest, context: grpc.aio.ServicerContext
    ) -> api.RequestConsultationResponse:
        asked = request.request
        territory = await self._territory(context, asked.territory)
        await self._experiment(context, request.experiment_id)
        asked.request_id = asked.request_id or str(uuid.uuid4())
        if not asked.HasField("requested_at"):
            asked.requested_at.FromDatetime(datetime.now(UTC))
        await self._checked(context, lambda: check_request(asked))

        async def local(agenda: Agenda) -> api.RequestConsultationResponse:
            await check_caller(context, self.teams, asked.patient_pseudonym, territory)
            known = agenda.request(asked.request_id)
            if known is not None and known.patient != asked.patient_pseudonym:
                await context.abort(
                    grpc.StatusCode.ALREADY_EXISTS, "request_id is already another request"
                )
            if known is None:
                await self._checked(context, lambda: check_requested_at(asked, datetime.now(UTC)))
                await self._checked(context, lambda: check_referral(agenda, asked))
                await self._request_place(context, agenda, asked)
                await self._publish(
                    context,
                    CONSULTATION_REQUESTED,
                    asked,
                    territory,
                    subject=asked.patient_pseudonym,
                    experiment=request.experiment_id,
                )
            state = await self._until(context, lambda: agenda.request(asked.request_id))
            return api.RequestConsultationResponse(request=request_view(agenda, state))

        return await self._routed(
            territory, context, request, "RequestConsultation", local, APPLY_WAIT_S, for_caller=True
        )

    async def GetRequest(
        self, request: api.GetRequestRequest, context: grpc.aio.ServicerContext
    ) -> api.GetRequestResponse:
        territory = await self._territory(context, request.territory)

        async def local(agenda: Agenda) -> api.GetRequestResponse:
            state = agenda.request(request.request_id)
            # Checked before "not found": a refusal says nothing of the request's existence.
            await check_caller(context, self.teams, state.patient if state else "", territory)
            if state is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, "no such request in this territory")
                raise AssertionError
            return api.GetRequestResponse(request=request_view(agenda, state))

        return await self._routed(territory, context, request, "GetRequest", local, for_caller=True)

    async def ListOpenRequests(
        self, request: api.ListOpenRequestsRequest, context: grpc.aio.ServicerContext
    ) -> api.ListOpenRequestsResponse:
        territory = await self._territory(context, request.territory)
        try:
            size = page_size(request.page_size)
            cursor = _cursor(request.page_token)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise

        async def local(agenda: Agenda) -> api.ListOpenRequestsResponse:
            line = agenda.waiting()
            positions = {r.request_id: i + 1 for i, r in enumerate(line)}
            kept = [
                r
                for r in line
                if (not request.urgency or r.urgency == request.urgency)
                and (not request.flagged_only or r.flagged_at is not None)
                and (cursor is None or _order(r) > cursor)
            ]
            page = kept[:size]
            token = _token(page[-1]) if len(kept) > size else ""
            return api.ListOpenRequestsResponse(
                requests=[request_view(agenda, r, positions[r.request_id]) for r in page],
                next_page_token=token,
            )

        return await self._routed(territory, context, request, "ListOpenRequests", local)

    async def ListPatientRequests(
        self, request: api.ListPatientRequestsRequest, context: grpc.aio.ServicerContext
    ) -> api.ListPatientRequestsResponse:
        patient = request.patient_pseudonym
        await require_pseudonym(context, patient, "patient_pseudonym")
        caller = current_caller()
        if caller is not None and caller.role == CARE_TEAM:
            await check_caller(context, self.teams, patient)
        found: list[api.Request] = []
        # A patient's requests may be in any territory, held by any instance. The others
        # first: a territory whose instance left while they answered is held here after.
        for answer in await self.router.ask_peers(
            self._routing_table,
            context,
            lambda channel, deadline, metadata: api_grpc.AccessServiceStub(
                channel
            ).ListPatientRequests(request, timeout=deadline, metadata=metadata),
        ):
            found += list(answer.consultation_requests)
        # The requests table lists the territories held here, and only those.
        for key, stored in self._routing_table.items():
            if stored.get("patient") == patient:
                agenda = Agenda(territory_of(key), self.tables)
                found.append(request_view(agenda, RequestState.model_validate(stored)))
        if caller is not None and caller.role == COORDINATOR and caller.territory:
            # A coordinator with a territory sees that territory's requests only.
            found = [r for r in found if r.request.territory == caller.territory]
        found.sort(
            key=lambda r: (r.request.requested_at.ToDatetime(tzinfo=UTC), r.request.request_id)
        )
        return api.ListPatientRequestsResponse(consultation_requests=found)

    # -- bookings -------------------------------------------------------------------

    async def _act(
        self,
        context: grpc.aio.ServicerContext,
        request: Message,
        method: str,
        action: BookingActionRequested,
    ) -> api.Booking:
        """Ask the territory's scheduler for the action; answer with the booking it gives."""
        territory = await self._territory(context, action.territory)

        async def local(agenda: Agenda) -> api.Booking:
            outcome = await self._apply(context, agenda, action)
            booking = agenda.booking(str(outcome.get("booking_id")))
            if booking is None:
                await context.abort(grpc.StatusCode.INTERNAL, "booking applied but not found")
                raise AssertionError
            return booking_view(territory, booking)

        response = await self._routed(
            territory, context, request, method, local, APPLY_WAIT_S, for_caller=True
        )
        return response if isinstance(response, api.Booking) else response.booking

    async def _apply(
        self, context: grpc.aio.ServicerContext, agenda: Agenda, action: BookingActionRequested
    ) -> dict[str, Any]:
        """Publish the action to the territory's scheduler and wait for its outcome; a
        refused one aborts the call with the scheduler's code and reason. The caller is
        checked first for the patient of the request or booking acted on (a request or
        booking not found here is refused a care-team caller alike: nothing said of it)."""
        await check_caller(context, self.teams, _patient_of(agenda, action), agenda.territory)
        action.action_id = str(uuid.uuid4())
        action.requested_at.FromDatetime(datetime.now(UTC))
        await self._publish(context, BOOKING_ACTION_REQUESTED, action, agenda.territory)
        outcome: dict[str, Any] = await self._until(
            context, lambda: agenda.action_outcome(action.action_id)
        )
        if not outcome.get("ok"):
            code = getattr(
                grpc.StatusCode, str(outcome.get("code")), grpc.StatusCode.FAILED_PRECONDITION
            )
            await context.abort(code, str(outcome.get("message")))
        return outcome

    async def BookSlot(
        self, request: api.BookSlotRequest, context: grpc.aio.ServicerContext
    ) -> api.BookSlotResponse:
        action = BookingActionRequested(
            territory=request.territory,
            action=BookingAction.BOOKING_ACTION_BOOK_SLOT,
            request_id=request.request_id,
            slot_id=request.slot_id,
            actor_id=request.actor_id,
        )
        return api.BookSlotResponse(booking=await self._act(context, request, "BookSlot", action))

    async def ConfirmBooking(
        self, request: api.ConfirmBookingRequest, context: grpc.aio.ServicerContext
    ) -> api.ConfirmBookingResponse:
        action = BookingActionRequested(
            territory=request.territory,
            action=BookingAction.BOOKING_ACTION_CONFIRM,
            booking_id=request.booking_id,
            actor_id=request.actor_id,
        )
        booking = await self._act(context, request, "ConfirmBooking", action)
        return api.ConfirmBookingResponse(booking=booking)

    async def RescheduleBooking(
        self, request: api.RescheduleBookingRequest, context: grpc.aio.ServicerContext
    ) -> api.RescheduleBookingResponse:
        action = BookingActionRequested(
            territory=request.territory,
            action=BookingAction.BOOKING_ACTION_RESCHEDULE,
            booking_id=request.booking_id,
            slot_id=request.slot_id,
            actor_id=request.actor_id,
        )
        booking = await self._act(context, request, "RescheduleBooking", action)
        return api.RescheduleBookingResponse(booking=booking)

    async def CancelBooking(
        self, request: api.CancelBookingRequest, context: grpc.aio.ServicerContext
    ) -> api.CancelBookingResponse:
        action = BookingActionRequested(
            territory=request.territory,
            action=BookingAction.BOOKING_ACTION_CANCEL,
            booking_id=request.booking_id,
            actor_id=request.actor_id,
            reason_code=request.reason_code,
            rebook=request.rebook,
        )
        booking = await self._act(context, request, "CancelBooking", action)
        return api.CancelBookingResponse(booking=booking)

    async def RecordConsultationOutcome(
        self, request: api.RecordConsultationOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> api.RecordConsultationOutcomeResponse:
        action = BookingActionRequested(
            territory=request.territory,
            action=BookingAction.BOOKING_ACTION_RECORD_OUTCOME,
            booking_id=request.booking_id,
            status=request.status,
            follow_ups=request.follow_ups,
            referral_specialty=request.referral_specialty,
            actor_id=request.actor_id,
        )
        booking = await self._act(context, request, "RecordConsultationOutcome", action)
        return api.RecordConsultationOutcomeResponse(booking=booking)

    async def WithdrawRequest(
        self, request: api.WithdrawRequestRequest, context: grpc.aio.ServicerContext
    ) -> api.WithdrawRequestResponse:
        territory = await self._territory(context, request.territory)
        action = BookingActionRequested(
            territory=territory,
            action=BookingAction.BOOKING_ACTION_WITHDRAW,
            request_id=request.request_id,
            actor_id=request.actor_id,
            reason_code=request.reason_code,
            withdrawal_reason=request.reason,
        )

        async def local(agenda: Agenda) -> api.WithdrawRequestResponse:
            await self._apply(context, agenda, action)
            state = agenda.request(request.request_id)
            if state is None:
                await context.abort(grpc.StatusCode.INTERNAL, "request applied but not found")
                raise AssertionError
            return api.WithdrawRequestResponse(request=request_view(agenda, state))

        return await self._routed(
            territory, context, request, "WithdrawRequest", local, APPLY_WAIT_S, for_caller=True
        )


def _patient_of(agenda: Agenda, action: BookingActionRequested) -> str:
    """The patient of the booking or request an action names; "" if there is none here."""
    if action.booking_id:
        booking = agenda.booking(action.booking_id)
        return booking.patient if booking else ""
    state = agenda.request(action.request_id)
    return state.patient if state else ""


def _practitioner_json(message: PractitionerRegistered) -> dict[str, Any]:
    return practitioner_state(message).model_dump(mode="json")


def _practitioner_message(agenda: Agenda, data: dict[str, Any]) -> PractitionerRegistered:
    place = data["place"]
    return PractitionerRegistered(
        practitioner_id=data["practitioner_id"],
        territory=agenda.territory,
        profession=data["profession"],
        specialty=data["specialty"],
        care_line=data["care_line"],
        modalities=data["modalities"],
        place=Place(
            place_id=place["place_id"],
            kind=place["kind"],
            commune=place["commune"],
            latitude=place["latitude"],
            longitude=place["longitude"],
            modalities=place["modalities"],
        ),
        active=data["active"],
    )


def booking_view(territory: str, booking: BookingState) -> api.Booking:
    return api.Booking(
        booking_id=booking.booking_id,
        request_id=booking.request_id,
        territory=territory,
        patient_pseudonym=booking.patient,
        practitioner_id=booking.practitioner_id,
        slot_id=booking.slot_id,
        start=timestamp(booking.start),
        modality=booking.modality,  # type: ignore[arg-type]
        status=booking.status,  # type: ignore[arg-type]
        follow_ups=booking.follow_ups,  # type: ignore[arg-type]
        booked_at=timestamp(booking.booked_at),
    )


def request_view(agenda: Agenda, state: RequestState, position: int = 0) -> api.Request:
    view = api.Request(
        request=json_format.ParseDict(state.message, ConsultationRequested()),
        status=state.status,  # type: ignore[arg-type]
        flagged=state.flagged_at is not None,
        position=position,
        withdrawal_reason=state.withdrawal_reason,  # type: ignore[arg-type]
    )
    if state.flagged_at is not None:
        view.flagged_at.CopyFrom(timestamp(state.flagged_at))
    booking = agenda.booking(state.booking_id) if state.booking_id else None
    if booking is not None:
        view.booking.CopyFrom(booking_view(agenda.territory, booking))
    return view


def _order(request: RequestState) -> tuple[int, str, str]:
    urgency, at, request_id = queue_key(request)
    return urgency, at.isoformat(), request_id


def _token(request: RequestState) -> str:
    return page_token(list(_order(request)))


def _cursor(token: str) -> tuple[int, str, str] | None:
    def read(data: Any) -> tuple[int, str, str]:
        urgency, at, request_id = data
        datetime.fromisoformat(at)
        return int(urgency), str(at), str(request_id)

    return page_cursor(token, read)


def _place_token(place_id: str) -> str:
    return page_token({"place_id": place_id})


def place_page(
    places: Iterable[Location], commune: str, after: str, size: int
) -> tuple[list[Location], str]:
    """One page of places by place_id, after the cursor `after`, in `commune` if given;
    and the token of the next page ("" on the last)."""
    kept = sorted(
        (p for p in places if (not commune or p.commune == commune) and p.place_id > after),
        key=lambda p: p.place_id,
    )
    page = kept[:size]
    return page, _place_token(page[-1].place_id) if len(kept) > size else ""


def _place_cursor(token: str) -> str:
    """The place_id a page starts after; "" for the first page."""
    return page_cursor(token, lambda data: str(data["place_id"])) or ""


def register(servicer: AccessServicer) -> Registrar:
    def add(server: grpc.aio.Server) -> list[str]:
        api_grpc.add_AccessServiceServicer_to_server(servicer, server)
        return [api.DESCRIPTOR.services_by_name["AccessService"].full_name]

    return add
