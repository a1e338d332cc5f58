"""Partial aggregates are unsuppressed: behind the real guard, only the evaluation
service's own caller id gets them; any other known caller is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from emeuse.evaluation.v1 import evaluation_service_pb2 as api
from emeuse.evaluation.v1 import evaluation_service_pb2_grpc as api_grpc
from emeuse.runtime.auth import bearer, hash_token
from emeuse.runtime.grpc_server import Guard
from services.evaluation.grpc_api import EvaluationServicer
from tests.unit.evaluation.partitions import CellsHeld, Partitions
from tests.unit.evaluation.scenario import TELE, month_of_events

TOKENS = {"evaluation": "e" * 40, "operator": "o" * 40, "partner-glucomind": "p" * 40}
ASKED = {"experiment_id": TELE, "territory": "55", "from_month": "2026-03", "to_month": "2026-03"}


class Alone:
    """The only instance: no peer to ask."""

    async def ask_peers(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []


def call_as(caller: str, method: str) -> Any:
    """One call to a guarded evaluation server holding every partition; answer or error."""
    state = Partitions()
    for sent in month_of_events():
        state.handle(sent)
    servicer = EvaluationServicer(Alone(), CellsHeld(state, list(range(6))), "evaluation")  # type: ignore[arg-type]

    async def run() -> Any:
        callers = {hash_token(token): name for name, token in TOKENS.items()}
        server = grpc.aio.server(interceptors=[Guard("evaluation", callers)])
        api_grpc.add_EvaluationServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = api_grpc.EvaluationServiceStub(channel)
                request = getattr(api, f"{method}Request")(**ASKED)
                try:
                    return await getattr(stub, method)(
                        request, timeout=10, metadata=bearer(TOKENS[caller])
                    )
                except grpc.aio.AioRpcError as exc:
                    return exc
        finally:
            await server.stop(1)

    return asyncio.run(run())


def test_another_instance_of_the_service_gets_the_unsuppressed_partial_aggregates():
    answer = call_as("evaluation", "GetPartialAggregates")
    assert isinstance(answer, api.GetPartialAggregatesResponse)
    counts = [a.counts.get("chronic.alerts|severity=warning", 0) for a in answer.aggregates]
    assert sum(counts) == 3  # withheld from publication, but the instances need it to add up


def test_an_operator_or_a_partner_asking_for_partial_aggregates_is_refused():
    for caller in ("operator", "partner-glucomind"):
        refused = call_as(caller, "GetPartialAggregates")
        assert isinstance(refused, grpc.aio.AioRpcError), caller
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "GetIndicators" in (refused.details() or "")


def test_the_operator_still_gets_the_published_indicators():
    answer = call_as("operator", "GetIndicators")
    assert isinstance(answer, api.GetIndicatorsResponse)
    shown = {(i.name, i.breakdown): i for i in answer.indicators}
    assert shown[("chronic.alerts", "severity=warning")].suppressed
    assert shown[("chronic.readings", "")].value == 24
