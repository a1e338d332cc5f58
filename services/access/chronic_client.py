"""The access service's client of the chronic service's gRPC API (deadline on every call)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc
import structlog

from emeuse.access.v1.access_events_pb2 import CareSummaryMeasure
from emeuse.chronic.v1 import chronic_service_pb2 as chronic
from emeuse.chronic.v1 import chronic_service_pb2_grpc as chronic_grpc
from emeuse.runtime.auth import bearer
from emeuse.runtime.grpc_tls import PeerChannels
from emeuse.runtime.security import NO_TLS, GrpcTls

if TYPE_CHECKING:
    from emeuse.chronic.v1.chronic_service_pb2_grpc import ChronicServiceAsyncStub

log = structlog.get_logger("emeuse.access.chronic_client")
ATTEMPTS = 2


class ChronicClient:
    def __init__(self, target: str, deadline_seconds: float, tls: GrpcTls = NO_TLS) -> None:
        self.metadata: tuple[tuple[str, str], ...] = ()
        self.tls = tls
        self.target = target
        self.deadline = deadline_seconds
        # Opened on first use, on the worker's running loop, and anew once this service's
        # certificate is renewed.
        self._channels = PeerChannels(tls, grace_s=deadline_seconds)

    def present(self, token: str) -> None:
        """The token this service presents to chronic: read by the runtime, which is built
        after the processor that uses this client, so given once it is."""
        self.metadata = bearer(token)

    def _stub(self) -> ChronicServiceAsyncStub:
        return chronic_grpc.ChronicServiceStub(self._channels.get(self.target))

    async def care_summary(self, patient_pseudonym: str) -> Sequence[CareSummaryMeasure] | None:
        """Latest values of the patient, or None when chronic cannot answer in time."""
        request = chronic.GetPatientSummaryRequest(patient_pseudonym=patient_pseudonym)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = await self._stub().GetPatientSummary(
                    request, timeout=self.deadline, metadata=self.metadata
                )
            except grpc.aio.AioRpcError as exc:
                log.warning("chronic.summary_failed", code=exc.code().name, attempt=attempt)
                continue
            return [
                CareSummaryMeasure(loinc_code=v.loinc_code, value=v.value, unit=v.unit)
                for v in response.latest_values
            ]
        return None

    async def close(self) -> None:
        await self._channels.close()
