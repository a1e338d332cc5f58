"""AccessService servicer: reads a patient's requests from the table."""

from __future__ import annotations

from typing import Any

import grpc
from faust.types import TableT

from emeuse.access.v1 import access_service_pb2 as api
from emeuse.access.v1 import access_service_pb2_grpc as api_grpc
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.routing import Router
from emeuse.runtime.service import require_pseudonym
from services.access.handlers import requests_of


class AccessServicer(api_grpc.AccessServiceServicer):
    def __init__(self, router: Router, requests: TableT) -> None:
        self.router = router
        self.requests = requests

    async def ListPatientRequests(
        self, request: api.ListPatientRequestsRequest, context: grpc.aio.ServicerContext
    ) -> api.ListPatientRequestsResponse:
        patient = request.patient_pseudonym
        await require_pseudonym(context, patient, "patient_pseudonym")

        async def local() -> api.ListPatientRequestsResponse:
            return api.ListPatientRequestsResponse(requests=requests_of(self.requests.get(patient)))

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.AccessServiceStub(channel)
            return await stub.ListPatientRequests(request, timeout=deadline, metadata=metadata)

        return await self.router.answer(self.requests, patient, context, local, remote)


def register(servicer: AccessServicer) -> Registrar:
    def add(server: grpc.aio.Server) -> list[str]:
        api_grpc.add_AccessServiceServicer_to_server(servicer, server)
        return [api.DESCRIPTOR.services_by_name["AccessService"].full_name]

    return add
