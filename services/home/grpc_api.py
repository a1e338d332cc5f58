"""HomeService servicer: reads the resident's home state from the table."""

from __future__ import annotations

from typing import Any

import grpc
from faust.types import TableT

from emeuse.home.v1 import home_service_pb2 as api
from emeuse.home.v1 import home_service_pb2_grpc as api_grpc
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.routing import Router
from emeuse.runtime.service import require_pseudonym
from services.home.domain.home import HomeState


class HomeServicer(api_grpc.HomeServiceServicer):
    def __init__(self, router: Router, homes: TableT) -> None:
        self.router = router
        self.homes = homes

    async def GetHomeStatus(
        self, request: api.GetHomeStatusRequest, context: grpc.aio.ServicerContext
    ) -> api.GetHomeStatusResponse:
        resident = request.resident_pseudonym
        await require_pseudonym(context, resident, "resident_pseudonym")

        async def local() -> api.GetHomeStatusResponse:
            return status(resident, self.homes.get(resident))

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.HomeServiceStub(channel)
            return await stub.GetHomeStatus(request, timeout=deadline, metadata=metadata)

        return await self.router.answer(self.homes, resident, context, local, remote)


def status(resident: str, state_json: dict[str, Any] | None) -> api.GetHomeStatusResponse:
    """The home's status; a resident never heard of gets an empty one, not an error."""
    state = HomeState.from_json(state_json or {})
    response = api.GetHomeStatusResponse(
        resident_pseudonym=resident,
        sensor_events=state.sensor_events,
        incident_ids=state.incident_ids,
    )
    if state.last_activity_at is not None:
        response.last_activity_at.CopyFrom(timestamp(state.last_activity_at))
    return response


def register(servicer: HomeServicer) -> Registrar:
    def add(server: grpc.aio.Server) -> list[str]:
        api_grpc.add_HomeServiceServicer_to_server(servicer, server)
        return [api.DESCRIPTOR.services_by_name["HomeService"].full_name]

    return add
