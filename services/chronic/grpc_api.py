"""ChronicService servicer: reads the patient's state from the tables."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import grpc

from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.chronic.v1 import chronic_service_pb2_grpc as api_grpc
from emeuse.chronic.v1.chronic_events_pb2 import (
    AlertAction,
    AlertActionRequested,
    CarePlanUpdated,
    PointOfCareResultReviewed,
    ReadingCorrected,
    ReadingRecorded,
    ReviewDecision,
)
from emeuse.kernel.edge import Publisher
from emeuse.kernel.router import Router
from emeuse.kernel.tables import Table
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import (
    ALERT_ACTION_REQUESTED,
    CARE_PLAN_UPDATED,
    POINT_OF_CARE_REVIEWED,
    READING_CORRECTED,
    READING_RECORDED,
    TopicSpec,
)
from emeuse.runtime.calls import call_event_id, publish_for_caller, require_pseudonym, until_applied
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import (
    EXPERIMENT_ID,
    EnvelopeError,
    territory_from_code,
    timestamp,
)
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.paging import page_cursor, page_size, page_token
from emeuse.runtime.roles import (
    CARE_TEAM,
    COORDINATOR,
    acting_as_refusal,
    current_caller,
    on_behalf_of,
    patient_refusal,
    sees_in_list,
    territory_refusal,
)
from services.chronic.alerts import CARE_TEAM_RESOLUTIONS, SEVERITY, correction_of, gap_due_at
from services.chronic.care_plan import check_care_plan, plan_in_force, plan_of
from services.chronic.domain.monitoring import (
    ACKNOWLEDGED,
    OPEN,
    RESOLVED,
    AlertState,
    PatientState,
)
from services.chronic.domain.plan import ROLE_LAB
from services.chronic.fhir import FhirError, observations_from_fhir
from services.chronic.handlers import as_reading, reading_from_device


class ChronicServicer(api_grpc.ChronicServiceServicer):
    def __init__(self, router: Router, bus: Publisher, care_plans: Table, states: Table) -> None:
        self.router = router
        self.bus = bus
        self.care_plans = care_plans
        self.states = states

    async def GetPatientSummary(
        self, request: api.GetPatientSummaryRequest, context: grpc.aio.ServicerContext
    ) -> api.GetPatientSummaryResponse:
        patient = request.patient_pseudonym
        await require_pseudonym(context, patient, "patient_pseudonym")

        async def local() -> api.GetPatientSummaryResponse:
            await self._may_see(context, patient)
            return summary(patient, self.care_plans.get(patient), self.states.get(patient))

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.ChronicServiceStub(channel)
            return await stub.GetPatientSummary(
                request, timeout=deadline, metadata=(*metadata, *on_behalf_of())
            )

        return await self.router.answer(self.states, patient, context, local, remote)

    async def GetCarePlan(
        self, request: api.GetCarePlanRequest, context: grpc.aio.ServicerContext
    ) -> api.GetCarePlanResponse:
        patient = request.patient_pseudonym
        await require_pseudonym(context, patient, "patient_pseudonym")

        async def local() -> api.GetCarePlanResponse:
            await self._may_see(context, patient)
            stored = self.care_plans.get(patient)
            plan, in_force = plan_of(stored), plan_in_force(stored)
            if plan is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, "no care plan for this patient")
            territory = in_force.territory if in_force else ""
            return api.GetCarePlanResponse(care_plan=plan, territory=territory)

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.ChronicServiceStub(channel)
            return await stub.GetCarePlan(
                request, timeout=deadline, metadata=(*metadata, *on_behalf_of())
            )

        return await self.router.answer(self.care_plans, patient, context, local, remote)

    async def RecordReading(
        self, request: api.RecordReadingRequest, context: grpc.aio.ServicerContext
    ) -> api.RecordReadingResponse:
        [(checked, territory)] = await self._checked(
            context, [request.reading], request.territory, request.experiment_id
        )
        await self._may_record(context, [("", request.reading)], request.territory)
        [event_id] = await self._publish(
            context, [request.reading], territory, request.experiment_id
        )
        return api.RecordReadingResponse(
            event_id=event_id, normalised_value=checked.value, normalised_unit=checked.unit
        )

    async def IngestFhirObservation(
        self, request: api.IngestFhirObservationRequest, context: grpc.aio.ServicerContext
    ) -> api.IngestFhirObservationResponse:
        try:
            observations = observations_from_fhir(request.fhir_json)
        except FhirError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"FHIR: {exc}")
            raise
        readings = [reading for _, reading in observations]
        # Every Observation is checked before any is published: all or none.
        checked = await self._checked(
            context,
            [as_reading(r) if isinstance(r, ReadingCorrected) else r for r in readings],
            request.territory,
            request.experiment_id,
        )
        await self._may_record(context, observations, request.territory)
        event_ids = await self._publish(context, readings, checked[0][1], request.experiment_id)
        return api.IngestFhirObservationResponse(event_ids=event_ids)

    async def EnrollPatient(
        self, request: api.EnrollPatientRequest, context: grpc.aio.ServicerContext
    ) -> api.EnrollPatientResponse:
        event_id, version = await self._change_care_plan(request, context, enrolling=True)
        return api.EnrollPatientResponse(event_id=event_id, version=version)

    async def UpdateCarePlan(
        self, request: api.UpdateCarePlanRequest, context: grpc.aio.ServicerContext
    ) -> api.UpdateCarePlanResponse:
        event_id, version = await self._change_care_plan(request, context, enrolling=False)
        return api.UpdateCarePlanResponse(event_id=event_id, version=version)

    async def _change_care_plan(
        self,
        request: api.EnrollPatientRequest | api.UpdateCarePlanRequest,
        context: grpc.aio.ServicerContext,
        *,
        enrolling: bool,
    ) -> tuple[str, int]:
        """Publish the plan and answer once the patient's handler recorded it."""
        plan = request.care_plan
        patient = plan.patient_pseudonym
        await require_pseudonym(context, patient, "care_plan.patient_pseudonym")
        territory = await _territory(context, request.territory, request.experiment_id)
        try:
            check_care_plan(plan)
        except InvalidEventError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"care plan: {exc}")
        # A coordinator writes plans in its territory, and changes those in force there.
        if refusal := patient_refusal(current_caller(), None, territory):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)
        method = "EnrollPatient" if enrolling else "UpdateCarePlan"

        async def local() -> tuple[str, int]:
            stored = self.care_plans.get(patient)
            if stored or not enrolling:
                await self._may_see(context, patient)
            if plan.care_plan_id and (known := _recorded_version(stored, plan.care_plan_id)):
                # This plan is in force (asked again after a lost answer): the answer it had.
                return _plan_event_id(patient, plan.care_plan_id, known - 1), known
            enrolled = bool(stored)
            if enrolling and enrolled:
                await context.abort(
                    grpc.StatusCode.ALREADY_EXISTS,
                    "patient is already enrolled; change the plan with UpdateCarePlan",
                )
            if not enrolling and not enrolled:
                await context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "patient is not enrolled; EnrollPatient first",
                )
            sent = CarePlanUpdated()
            sent.CopyFrom(plan)
            sent.version = 0  # numbered by the care-plan handler
            if not sent.care_plan_id:
                sent.care_plan_id = str(uuid.uuid4())
            in_force = plan_in_force(stored)
            event_id = await self._publish_one(
                context,
                CARE_PLAN_UPDATED,
                sent,
                patient,
                territory,
                request.experiment_id,
                event_id=_plan_event_id(
                    patient, sent.care_plan_id, in_force.version if in_force else 0
                ),
            )
            recorded = await self._until(
                context, lambda: _recorded_version(self.care_plans.get(patient), sent.care_plan_id)
            )
            return event_id, recorded

        async def remote(
            channel: grpc.aio.Channel, deadline: float, metadata: Any
        ) -> tuple[str, int]:
            call = getattr(api_grpc.ChronicServiceStub(channel), method)
            response = await call(
                request,
                timeout=APPLY_WAIT_S + deadline,
                metadata=(*metadata, *on_behalf_of()),
            )
            return str(response.event_id), int(response.version)

        return await self.router.answer(self.care_plans, patient, context, local, remote)

    async def GetPatientStatus(
        self, request: api.GetPatientStatusRequest, context: grpc.aio.ServicerContext
    ) -> api.GetPatientStatusResponse:
        patient = request.patient_pseudonym
        await require_pseudonym(context, patient, "patient_pseudonym")

        async def local() -> api.GetPatientStatusResponse:
            await self._may_see(context, patient)
            return patient_status(
                patient,
                self.care_plans.get(patient),
                self.states.get(patient),
                datetime.now(UTC),
            )

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.ChronicServiceStub(channel)
            return await stub.GetPatientStatus(
                request, timeout=deadline, metadata=(*metadata, *on_behalf_of())
            )

        return await self.router.answer(self.states, patient, context, local, remote)

    async def ListAlerts(
        self, request: api.ListAlertsRequest, context: grpc.aio.ServicerContext
    ) -> api.ListAlertsResponse:
        try:
            size = page_size(request.page_size)
            cursor = _cursor(request.page_token)
            keep = alert_filter(request)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        if refusal := territory_refusal(current_caller(), request.territory):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)
        visible = self._visible_alerts()
        views = [
            alert_view(patient, alert)
            for patient, stored in self.states.items()
            for alert in PatientState.of(stored).alerts.values()
            if keep(alert)
            and visible(patient, alert)
            and (cursor is None or _order(alert) < cursor)
        ]
        more = False
        # Alerts live with their patients, spread over instances: ask each the same page.
        for page in await self.router.ask_peers(
            self.states,
            context,
            lambda channel, deadline, metadata: api_grpc.ChronicServiceStub(channel).ListAlerts(
                request, timeout=deadline, metadata=metadata
            ),
            # Each instance filters its alerts for the caller, not for this service.
            metadata=on_behalf_of(),
        ):
            views.extend(page.alerts)
            more = more or bool(page.next_page_token)
        views.sort(key=lambda v: (v.raised_at.ToDatetime(tzinfo=UTC), v.alert_id), reverse=True)
        page_views = views[:size]
        if (len(views) > size or more) and page_views:
            last = page_views[-1]
            token = _token(last.raised_at.ToDatetime(tzinfo=UTC), last.alert_id)
        else:
            token = ""
        return api.ListAlertsResponse(alerts=page_views, next_page_token=token)

    async def AcknowledgeAlert(
        self, request: api.AcknowledgeAlertRequest, context: grpc.aio.ServicerContext
    ) -> api.AcknowledgeAlertResponse:
        action = AlertActionRequested(
            action=AlertAction.ALERT_ACTION_ACKNOWLEDGE,
            alert_id=request.alert_id,
            member_id=request.member_id,
        )
        alert = await self._act(
            request, context, action, lambda a: a.status != OPEN, "AcknowledgeAlert"
        )
        return api.AcknowledgeAlertResponse(alert=alert)

    async def ResolveAlert(
        self, request: api.ResolveAlertRequest, context: grpc.aio.ServicerContext
    ) -> api.ResolveAlertResponse:
        if request.resolution not in CARE_TEAM_RESOLUTIONS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "resolution must be HANDLED or FALSE_ALARM"
            )
        action = AlertActionRequested(
            action=AlertAction.ALERT_ACTION_RESOLVE,
            alert_id=request.alert_id,
            member_id=request.member_id,
            resolution=request.resolution,
        )
        alert = await self._act(
            request, context, action, lambda a: a.status == RESOLVED, "ResolveAlert"
        )
        return api.ResolveAlertResponse(alert=alert)

    async def _act(
        self,
        request: api.AcknowledgeAlertRequest | api.ResolveAlertRequest,
        context: grpc.aio.ServicerContext,
        action: AlertActionRequested,
        applied: Callable[[AlertState], bool],
        method: str,
    ) -> api.Alert:
        """Ask the patient's handler to change the alert, and answer once it has."""
        patient = request.patient_pseudonym
        await require_pseudonym(context, patient, "patient_pseudonym")
        refusal = acting_as_refusal(current_caller(), request.member_id)
        if refusal:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)

        async def local() -> api.Alert:
            plan = plan_in_force(self.care_plans.get(patient))
            alert = PatientState.of(self.states.get(patient)).alerts.get(request.alert_id)
            # A coordinator acts on its territory's alerts (where each was raised); an alert
            # unknown is placed by the patient's plan, and with no plan either is refused
            # as one of another territory: nothing said of it.
            caller = current_caller()
            if caller is not None and caller.role == COORDINATOR:
                where = alert.territory if alert else plan.territory if plan else None
                if refusal := patient_refusal(caller, None, where):
                    await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)
            if plan is None or alert is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, "no such alert for this patient")
                raise AssertionError
            member = plan.member(request.member_id)
            if member is None or member.role == ROLE_LAB:
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "member_id is not on the patient's care team (the lab does not act on alerts)",
                )
            if alert.status == RESOLVED and not applied(alert):
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the alert is resolved")
            if applied(alert):
                return alert_view(patient, alert)  # already done: the call is idempotent
            action.action_id = str(uuid.uuid4())
            action.patient_pseudonym = patient
            action.requested_at.FromDatetime(datetime.now(UTC))
            # In the patient's experiment: the acknowledgement or resolution it causes is
            # counted there (the call names none).
            await self._publish_one(
                context,
                ALERT_ACTION_REQUESTED,
                action,
                patient,
                plan.territory,
                experiment=plan.experiment or None,
            )

            def settled() -> AlertState | None:
                now = PatientState.of(self.states.get(patient)).alerts.get(request.alert_id)
                return now if now is not None and (applied(now) or now.status == RESOLVED) else None

            alert = await self._until(context, settled)
            if not applied(alert):
                # Resolved meanwhile (a critical value superseded it): nothing was acknowledged.
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the alert was resolved")
            return alert_view(patient, alert)

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> api.Alert:
            call = getattr(api_grpc.ChronicServiceStub(channel), method)
            response = await call(
                request,
                timeout=APPLY_WAIT_S + deadline,
                metadata=(*metadata, *on_behalf_of()),
            )
            return response.alert

        return await self.router.answer(self.states, patient, context, local, remote)

    def _visible_alerts(self) -> Callable[[str, AlertState], bool]:
        """Which alerts the caller's scope shows: a care-team member, those of the patients
        whose plan names it; a coordinator with a territory, that territory's."""
        caller = current_caller()
        teams: dict[str, list[str] | None] = {}

        def visible(patient: str, alert: AlertState) -> bool:
            if caller is None or caller.role != CARE_TEAM:  # no plan to read
                return sees_in_list(caller, None, alert.territory)
            if patient not in teams:
                plan = plan_in_force(self.care_plans.get(patient))
                teams[patient] = [m.member_id for m in plan.care_team] if plan else None
            return sees_in_list(caller, teams[patient], alert.territory)

        return visible

    async def _may_see(self, context: grpc.aio.ServicerContext, patient: str) -> None:
        """Refuse a care-team member not on the patient's team, or a coordinator of
        another territory (roles.patient_refusal); others pass."""
        if refusal := self._refusal(patient):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)

    def _refusal(self, patient: str) -> str:
        """Why the caller may not see or change `patient`, held here; "" when it may."""
        plan = plan_in_force(self.care_plans.get(patient))
        return patient_refusal(
            current_caller(),
            [m.member_id for m in plan.care_team] if plan else None,
            plan.territory if plan else None,
        )

    async def _may_record(
        self,
        context: grpc.aio.ServicerContext,
        readings: Sequence[tuple[str, ReadingRecorded | ReadingCorrected]],
        territory: str,
    ) -> None:
        """Refuse readings a care-team member or a coordinator records of a patient not
        theirs (the patient's plan in force, as reads are checked), a coordinator's also in
        a territory (the call's) not its own, and a member's in a territory (the call's)
        other than its patient's plan's. The whole call is refused, naming the first
        reading refused by where it came from: a FHIR Bundle is all or none, as its
        validation is. Partners, services and the operator send readings in bulk for any
        patient and are not checked here (the matrix alone)."""
        caller = current_caller()
        if caller is None or caller.role not in (CARE_TEAM, COORDINATOR):
            return
        if caller.role == COORDINATOR:
            if not caller.territory:
                return
            if refusal := patient_refusal(caller, None, territory):
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)
        placed: dict[str, tuple[str, str]] = {}
        for where, reading in readings:
            patient = reading.patient_pseudonym
            if patient not in placed:
                placed[patient] = await self._refusal_at_owner(context, patient)
            refusal, plan_territory = placed[patient]
            code = grpc.StatusCode.PERMISSION_DENIED
            # Asked only once the caller may see the plan, so it says nothing new: the
            # reading's alerts would be raised in, and shown to, the territory it names.
            if not refusal and plan_territory and plan_territory != territory:
                code = grpc.StatusCode.INVALID_ARGUMENT
                refusal = misplaced_reading(territory, plan_territory)
            if refusal:
                if where:
                    refusal = f"{where}: {refusal}; no Observation of the call was recorded"
                await context.abort(code, refusal)

    async def _refusal_at_owner(
        self, context: grpc.aio.ServicerContext, patient: str
    ) -> tuple[str, str]:
        """_refusal and the territory of the plan in force ("" when none, or refused),
        asked of the instance holding the patient's plan; readings themselves are published
        from here (their partition's task applies them wherever it runs)."""

        async def local() -> tuple[str, str]:
            if refusal := self._refusal(patient):
                return refusal, ""
            plan = plan_in_force(self.care_plans.get(patient))
            return "", plan.territory if plan else ""

        async def remote(
            channel: grpc.aio.Channel, deadline: float, metadata: Any
        ) -> tuple[str, str]:
            # The owner answers GetCarePlan for the original caller with the same check:
            # its refusal is this call's. Forwarded, it is not audited again.
            # An owner of an earlier version answers no territory: its readings pass as before.
            stub = api_grpc.ChronicServiceStub(channel)
            try:
                plan = await stub.GetCarePlan(
                    api.GetCarePlanRequest(patient_pseudonym=patient),
                    timeout=deadline,
                    metadata=(*metadata, *on_behalf_of()),
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
                    return exc.details() or "refused by the patient's owner", ""
                raise
            return "", plan.territory

        return await self.router.answer(self.care_plans, patient, context, local, remote)

    async def _until(self, context: grpc.aio.ServicerContext, applied: Callable[[], Any]) -> Any:
        return await until_applied(
            context, applied, APPLY_WAIT_S, "GetPatientStatus shows when it is"
        )

    async def ReviewPointOfCareResult(
        self, request: api.ReviewPointOfCareResultRequest, context: grpc.aio.ServicerContext
    ) -> api.ReviewPointOfCareResultResponse:
        patient = request.patient_pseudonym
        await require_pseudonym(context, patient, "patient_pseudonym")
        if request.decision == ReviewDecision.REVIEW_DECISION_UNSPECIFIED:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "decision must be set")
        if (
            request.decision == ReviewDecision.REVIEW_DECISION_REJECTED
            and not request.rejection_reason
        ):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "a rejection needs a coded rejection_reason"
            )

        async def local() -> api.ReviewPointOfCareResultResponse:
            plan = plan_in_force(self.care_plans.get(patient))
            # The reading may have been recorded a moment ago and not be handled yet.
            loop = asyncio.get_running_loop()
            until = loop.time() + PENDING_WAIT_S
            while self._review_of(patient, request) is None and loop.time() < until:
                await asyncio.sleep(0.05)
            event_id = call_event_id("review", patient, request.reading_id, str(request.decision))
            done = self._review_of(patient, request)
            if done == "same":
                # Asked again after a lost answer: the review stands, answered as the first.
                return api.ReviewPointOfCareResultResponse(event_id=event_id)
            if done == "other":
                await context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "this point-of-care result was already reviewed with another decision",
                )
            if plan is None or done != "pending":
                await context.abort(
                    grpc.StatusCode.NOT_FOUND, "no point-of-care result with this id awaits review"
                )
                raise AssertionError
            reviewer = plan.member(request.reviewer_id)
            if reviewer is None or reviewer.role != ROLE_LAB:
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "reviewer_id is not the medical lab on the patient's care team",
                )
            review = PointOfCareResultReviewed(
                reading_id=request.reading_id,
                patient_pseudonym=patient,
                reviewer_id=request.reviewer_id,
                decision=request.decision,
                rejection_reason=request.rejection_reason,
            )
            review.reviewed_at.FromDatetime(datetime.now(UTC))
            # In the patient's experiment (the call names none): the alert the review
            # releases is published in it, where the evaluation counts it.
            await self._publish_one(
                context,
                POINT_OF_CARE_REVIEWED,
                review,
                patient,
                plan.territory,
                experiment=plan.experiment or None,
                event_id=event_id,
            )
            return api.ReviewPointOfCareResultResponse(event_id=event_id)

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.ChronicServiceStub(channel)
            return await stub.ReviewPointOfCareResult(request, timeout=deadline, metadata=metadata)

        return await self.router.answer(self.states, patient, context, local, remote)

    def _review_of(self, patient: str, request: api.ReviewPointOfCareResultRequest) -> str | None:
        """Where the result stands: "pending" review, reviewed with the "same" decision,
        with an "other" one; None when it is not known (yet)."""
        state = PatientState.of(self.states.get(patient))
        if request.reading_id in state.pending_review:
            return "pending"
        key = f"review|{request.reading_id}"
        if state.has_seen(f"{key}|{request.decision}"):
            return "same"
        return "other" if state.has_seen(key) else None

    async def _publish_one(
        self,
        context: grpc.aio.ServicerContext,
        spec: TopicSpec,
        message: Any,
        patient: str,
        territory: str,
        experiment: str | None = None,
        event_id: str | None = None,
    ) -> str:
        return await publish_for_caller(
            context,
            self.bus,
            spec,
            message,
            key=patient,
            subject=patient,
            territory=territory_from_code(territory),
            experiment=experiment,
            event_id=event_id,
        )

    async def _checked(
        self,
        context: grpc.aio.ServicerContext,
        readings: list[ReadingRecorded],
        territory: str,
        experiment: str,
    ) -> list[tuple[ReadingRecorded, Territory.ValueType]]:
        checked = []
        for index, reading in enumerate(readings):
            try:
                if not EXPERIMENT_ID.fullmatch(experiment):
                    raise InvalidEventError("experiment_id is not an experiment id")
                checked.append(reading_from_device(reading, territory))
            except InvalidEventError as exc:
                where = f"reading {index + 1}: " if len(readings) > 1 else ""
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}{exc}")
                raise
        return checked

    async def _publish(
        self,
        context: grpc.aio.ServicerContext,
        readings: Sequence[ReadingRecorded | ReadingCorrected],
        territory: Territory.ValueType,
        experiment: str,
    ) -> list[str]:
        # Published as sent (units included): consumers normalise, as this service does.
        return [
            await publish_for_caller(
                context,
                self.bus,
                READING_CORRECTED if isinstance(reading, ReadingCorrected) else READING_RECORDED,
                reading,
                key=reading.patient_pseudonym,
                subject=reading.patient_pseudonym,
                territory=territory,
                experiment=experiment,
                occurred_at=_occurred_at(reading),
                event_id=_reading_event_id(reading),
            )
            for reading in readings
        ]


def summary(
    patient: str, plan: dict[str, Any] | None, stored: PatientState | dict[str, Any] | None
) -> api.GetPatientSummaryResponse:
    state = PatientState.of(stored)
    return api.GetPatientSummaryResponse(
        patient_pseudonym=patient,
        has_care_plan=bool(plan),
        latest_values=[
            api.LatestValue(
                loinc_code=loinc,
                value=latest.value,
                unit=latest.unit,
                measured_at=timestamp(latest.measured_at),
            )
            for loinc, latest in sorted(state.latest.items())
        ],
        alerts_raised=state.alerts_raised,
        last_alert_id=state.last_alert_id,
    )


# How long writes wait for the patient's handler to apply them.
APPLY_WAIT_S = 10.0
# How long a review waits for a point-of-care reading just recorded to be handled.
PENDING_WAIT_S = 3.0
STATUS = {
    OPEN: api.AlertStatus.ALERT_STATUS_OPEN,
    ACKNOWLEDGED: api.AlertStatus.ALERT_STATUS_ACKNOWLEDGED,
    RESOLVED: api.AlertStatus.ALERT_STATUS_RESOLVED,
}


async def _territory(context: grpc.aio.ServicerContext, code: str, experiment: str) -> str:
    try:
        territory_from_code(code)
    except EnvelopeError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    if not EXPERIMENT_ID.fullmatch(experiment):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, "experiment_id is not an experiment id"
        )
    return code


def misplaced_reading(territory: str, plan_territory: str) -> str:
    return (
        f"territory {territory} is not the territory of the patient's care plan "
        f"({plan_territory}): send the reading with territory {plan_territory}"
    )


def _occurred_at(reading: ReadingRecorded | ReadingCorrected) -> datetime:
    """A reading happened when measured; a correction when its producer issued it."""
    if isinstance(reading, ReadingRecorded):
        return reading.measured_at.ToDatetime(tzinfo=UTC)
    if reading.HasField("corrected_at"):
        return reading.corrected_at.ToDatetime(tzinfo=UTC)
    return datetime.now(UTC)


def alert_view(patient: str, alert: AlertState) -> api.Alert:
    view = api.Alert(
        alert_id=alert.alert_id,
        patient_pseudonym=patient,
        territory=alert.territory,
        severity=SEVERITY[alert.severity],
        rule=alert.rule,
        reason=alert.reason,
        loinc_code=alert.loinc_code,
        status=STATUS[alert.status],
        raised_at=timestamp(alert.raised_at),
        reading_ids=alert.reading_ids,
        notified_member_ids=[m.member_id for m in alert.notified],
        acknowledged_by=alert.acknowledged_by,
        resolution=alert.resolution,  # type: ignore[arg-type]
    )
    if alert.acknowledged_at:
        view.acknowledged_at.CopyFrom(timestamp(alert.acknowledged_at))
    if alert.resolved_at:
        view.resolved_at.CopyFrom(timestamp(alert.resolved_at))
    if alert.correction is not None:
        view.correction.CopyFrom(correction_of(alert.correction))
    return view


def _plan_event_id(patient: str, care_plan_id: str, after_version: int) -> str:
    """The id of the CarePlanUpdated that puts this plan in force after `after_version`:
    the same call asked again answers it."""
    return call_event_id("care-plan", patient, care_plan_id, str(after_version))


def _reading_event_id(reading: ReadingRecorded | ReadingCorrected) -> str:
    """The id of a reading's (or a correction's) event, from its content: the same one sent
    again (a lost answer) is the same event; other content under its reading_id another."""
    content = hashlib.sha256(reading.SerializeToString(deterministic=True)).hexdigest()
    kind = reading.DESCRIPTOR.name
    return call_event_id(kind, reading.patient_pseudonym, reading.reading_id, content)


def _recorded_version(stored: dict[str, Any] | None, care_plan_id: str) -> int:
    plan = plan_in_force(stored)
    return plan.version if plan is not None and plan.care_plan_id == care_plan_id else 0


def alert_filter(request: api.ListAlertsRequest) -> Callable[[AlertState], bool]:
    """The alerts a ListAlerts request keeps; ValueError for a filter that cannot match."""
    if request.territory:
        territory_from_code(request.territory)
    status = {v: k for k, v in STATUS.items()}.get(request.status)
    severity = {v: k for k, v in SEVERITY.items()}.get(request.severity)

    def keep(alert: AlertState) -> bool:
        return (
            (not request.territory or alert.territory == request.territory)
            and (status is None or alert.status == status)
            and (severity is None or alert.severity == severity)
        )

    return keep


def _order(alert: AlertState) -> tuple[datetime, str]:
    return alert.raised_at, alert.alert_id


def _token(raised_at: datetime, alert_id: str) -> str:
    return page_token({"raised_at": raised_at.isoformat(), "alert_id": alert_id})


def _cursor(token: str) -> tuple[datetime, str] | None:
    """The (raised_at, alert_id) a page token continues after; ValueError if it is not one."""

    def read(data: Any) -> tuple[datetime, str]:
        raised_at = datetime.fromisoformat(data["raised_at"])
        if raised_at.tzinfo is None:
            raise ValueError("naive time")
        return raised_at, str(data["alert_id"])

    return page_cursor(token, read)


def patient_status(
    patient: str,
    stored_plan: dict[str, Any] | None,
    stored: PatientState | dict[str, Any] | None,
    now: datetime,
) -> api.GetPatientStatusResponse:
    plan = plan_in_force(stored_plan)
    state = PatientState.of(stored)
    open_alerts = sorted((a for a in state.alerts.values() if a.is_open), key=_order, reverse=True)
    response = api.GetPatientStatusResponse(
        patient_pseudonym=patient,
        care_plan_version=plan.version if plan else 0,
        latest_values=[
            api.LatestValue(
                loinc_code=loinc,
                value=latest.value,
                unit=latest.unit,
                measured_at=timestamp(latest.measured_at),
            )
            for loinc, latest in sorted(state.latest.items())
        ],
        open_alerts=[alert_view(patient, a) for a in open_alerts],
        pending_review_reading_ids=sorted(state.pending_review),
        not_monitored_loinc_codes=[
            loinc
            for loinc in sorted(state.latest)
            if plan is None or plan.monitored_code(loinc) is None
        ],
    )
    for loinc, band in sorted(plan.bands.items()) if plan else ():
        assert plan is not None
        adherence = response.adherence.add(
            loinc_code=loinc, overdue=gap_due_at(plan, state, loinc) <= now
        )
        adherence.expected_every.FromTimedelta(band.expected_every)
        if loinc in state.last_measured_at:
            adherence.last_measured_at.CopyFrom(timestamp(state.last_measured_at[loinc]))
    return response


def register(servicer: ChronicServicer) -> Registrar:
    def add(server: grpc.aio.Server) -> list[str]:
        api_grpc.add_ChronicServiceServicer_to_server(servicer, server)
        return [api.DESCRIPTOR.services_by_name["ChronicService"].full_name]

    return add
