"""ChronicService servicer: reads the patient's state from the tables."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import grpc
from aiokafka.errors import KafkaError
from faust.types import TableT

from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.chronic.v1 import chronic_service_pb2_grpc as api_grpc
from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import READING_RECORDED
from emeuse.runtime.bus import Bus
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import EXPERIMENT_ID, timestamp
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.routing import Router
from emeuse.runtime.service import require_pseudonym
from services.chronic.care_plan import plan_of
from services.chronic.domain.monitoring import PatientState
from services.chronic.fhir import FhirError, readings_from_fhir
from services.chronic.handlers import reading_from_device


class ChronicServicer(api_grpc.ChronicServiceServicer):
    def __init__(self, router: Router, bus: Bus, care_plans: TableT, states: TableT) -> None:
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
            return summary(patient, self.care_plans.get(patient), self.states.get(patient))

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.ChronicServiceStub(channel)
            return await stub.GetPatientSummary(request, timeout=deadline, metadata=metadata)

        return await self.router.answer(self.states, patient, context, local, remote)

    async def GetCarePlan(
        self, request: api.GetCarePlanRequest, context: grpc.aio.ServicerContext
    ) -> api.GetCarePlanResponse:
        patient = request.patient_pseudonym
        await require_pseudonym(context, patient, "patient_pseudonym")

        async def local() -> api.GetCarePlanResponse:
            plan = plan_of(self.care_plans.get(patient))
            if plan is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, "no care plan for this patient")
            return api.GetCarePlanResponse(care_plan=plan)

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.ChronicServiceStub(channel)
            return await stub.GetCarePlan(request, timeout=deadline, metadata=metadata)

        return await self.router.answer(self.care_plans, patient, context, local, remote)

    async def RecordReading(
        self, request: api.RecordReadingRequest, context: grpc.aio.ServicerContext
    ) -> api.RecordReadingResponse:
        [(checked, territory)] = await self._checked(
            context, [request.reading], request.territory, request.experiment_id
        )
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
            readings = readings_from_fhir(request.fhir_json)
        except FhirError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"FHIR: {exc}")
            raise
        # Every Observation is checked before any is published: all or none.
        checked = await self._checked(context, readings, request.territory, request.experiment_id)
        event_ids = await self._publish(context, readings, checked[0][1], request.experiment_id)
        return api.IngestFhirObservationResponse(event_ids=event_ids)

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
        readings: list[ReadingRecorded],
        territory: Territory.ValueType,
        experiment: str,
    ) -> list[str]:
        event_ids = []
        for reading in readings:
            try:
                # Published as sent (units included): consumers normalise, as this service does.
                envelope = await self.bus.publish(
                    READING_RECORDED,
                    reading,
                    key=reading.patient_pseudonym,
                    subject_pseudonym=reading.patient_pseudonym,
                    occurred_at=reading.measured_at.ToDatetime(tzinfo=UTC),
                    territory=territory,
                    experiment_id=experiment,
                )
            except KafkaError as exc:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"the bus did not take it: {exc}")
                raise
            event_ids.append(envelope.event_id)
        return event_ids


def summary(
    patient: str, plan: dict[str, Any] | None, state_json: dict[str, Any] | None
) -> api.GetPatientSummaryResponse:
    state = PatientState.from_json(state_json or {})
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


def register(servicer: ChronicServicer) -> Registrar:
    def add(server: grpc.aio.Server) -> list[str]:
        api_grpc.add_ChronicServiceServicer_to_server(servicer, server)
        return [api.DESCRIPTOR.services_by_name["ChronicService"].full_name]

    return add
