"""PreventionService servicer: reads the person's schedule from the table."""

from __future__ import annotations

from typing import Any

import grpc
from faust.types import TableT

from emeuse.prevention.v1 import prevention_service_pb2 as api
from emeuse.prevention.v1 import prevention_service_pb2_grpc as api_grpc
from emeuse.prevention.v1.prevention_events_pb2 import ReminderScheduled
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.routing import Router
from emeuse.runtime.service import require_pseudonym
from services.prevention.domain.schedule import PersonSchedule


class PreventionServicer(api_grpc.PreventionServiceServicer):
    def __init__(self, router: Router, schedules: TableT) -> None:
        self.router = router
        self.schedules = schedules

    async def GetPersonSchedule(
        self, request: api.GetPersonScheduleRequest, context: grpc.aio.ServicerContext
    ) -> api.GetPersonScheduleResponse:
        person = request.person_pseudonym
        await require_pseudonym(context, person, "person_pseudonym")

        async def local() -> api.GetPersonScheduleResponse:
            return person_schedule(person, self.schedules.get(person))

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.PreventionServiceStub(channel)
            return await stub.GetPersonSchedule(request, timeout=deadline, metadata=metadata)

        return await self.router.answer(self.schedules, person, context, local, remote)


def person_schedule(
    person: str, schedule_json: dict[str, Any] | None
) -> api.GetPersonScheduleResponse:
    """The person's schedule, reminders by due date; someone never enrolled gets an empty one."""
    schedule = PersonSchedule.from_json(schedule_json or {})
    return api.GetPersonScheduleResponse(
        person_pseudonym=person,
        enrolled=schedule.enrolled,
        reminders=[
            ReminderScheduled(
                reminder_id=reminder.reminder_id,
                person_pseudonym=person,
                programme=reminder.programme,
                channel=reminder.channel,
                due_at=timestamp(reminder.due_at),
            )
            for reminder in schedule.by_due_date()
        ],
    )


def register(servicer: PreventionServicer) -> Registrar:
    def add(server: grpc.aio.Server) -> list[str]:
        api_grpc.add_PreventionServiceServicer_to_server(servicer, server)
        return [api.DESCRIPTOR.services_by_name["PreventionService"].full_name]

    return add
