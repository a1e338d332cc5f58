"""ChronicService servicer: reads the patient's state from the tables."""

from __future__ import annotations

from typing import Any

import grpc
from faust.types import TableT

from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.chronic.v1 import chronic_service_pb2_grpc as api_grpc
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.routing import Router
from emeuse.runtime.service import require_pseudonym
from services.chronic.domain.monitoring import PatientState


class ChronicServicer(api_grpc.ChronicServiceServicer):
    def __init__(self, router: Router, care_plans: TableT, states: TableT) -> None:
        self.router = router
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
