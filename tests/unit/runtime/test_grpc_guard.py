"""The guard around every call, on a real in-process gRPC server with a servicer that
fails on purpose: each failure gets a documented status and is counted."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from aiokafka.errors import KafkaConnectionError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.chronic.v1 import chronic_service_pb2_grpc as api_grpc
from emeuse.runtime.auth import bearer, hash_token
from emeuse.runtime.envelope import EnvelopeError
from emeuse.runtime.grpc_server import Guard
from emeuse.runtime.limits import MAX_REQUEST_BYTES

TOKEN = "t" * 40
SERVICE = "guard-test"
RECORD = "/emeuse.chronic.v1.ChronicService/RecordReading"
AUTH = bearer(TOKEN)
SECRET = "psn-the-payload-never-logged"


class Failing(api_grpc.ChronicServiceServicer):
    """RecordReading does what the reading's device_id says."""

    async def RecordReading(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        match request.reading.device_id:
            case "slow":
                await asyncio.sleep(5)
            case "recursion":
                raise RecursionError(f"maximum recursion depth exceeded near {SECRET}")
            case "territory":
                raise EnvelopeError("envelope has no programme territory (52, 54 or 55)")
            case "bus":
                raise KafkaConnectionError()
            case "refused":
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not enrolled")
        return api.RecordReadingResponse(event_id="e1")


def request(device_id: str, reading_id: str) -> api.RecordReadingRequest:
    sent = api.RecordReadingRequest(territory="55")
    sent.reading.device_id, sent.reading.reading_id = device_id, reading_id
    return sent


def call(device_id: str, reading_id: str = "r1", metadata: Any = AUTH) -> grpc.RpcError | Any:
    """One RecordReading call to Failing behind the guard; its response or its error."""
    return served(
        lambda channel: api_grpc.ChronicServiceStub(channel).RecordReading(
            request(device_id, reading_id), timeout=10, metadata=metadata
        )
    )


def served(make_call: Callable[[grpc.aio.Channel], Awaitable[Any]]) -> Any:
    """Serve Failing behind the guard (0.3 s deadline) and make one call."""

    async def run() -> Any:
        server = grpc.aio.server(
            interceptors=[Guard(SERVICE, {hash_token(TOKEN): "operator"}, lambda method: 0.3)]
        )
        api_grpc.add_ChronicServiceServicer_to_server(Failing(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                try:
                    return await make_call(channel)
                except grpc.aio.AioRpcError as exc:
                    return exc
        finally:
            await server.stop(1)  # lets the call finish counting

    return asyncio.run(run())


def counted(code: str, caller: str) -> float:
    labels = {"service": SERVICE, "method": RECORD, "code": code, "caller": caller}
    return REGISTRY.get_sample_value("emeuse_grpc_requests_total", labels) or 0.0


def counts(code: str, caller: str) -> Callable[[], float]:
    before = counted(code, caller)
    return lambda: counted(code, caller) - before


def test_an_answered_call_is_counted_for_its_caller():
    answered = counts("OK", "operator")
    assert call("fine").event_id == "e1"
    assert answered() == 1


def timed(le: str | None = None) -> float:
    """Calls timed (within `le` seconds, when given)."""
    labels = {"service": SERVICE, "method": RECORD}
    name = "emeuse_grpc_request_seconds_count"
    if le is not None:
        labels["le"], name = le, "emeuse_grpc_request_seconds_bucket"
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_call_is_timed_refusals_and_failures_included():
    before, quick_before = timed(), timed("0.25")
    assert call("fine").event_id == "e1"
    assert call("fine", metadata=()).code() == grpc.StatusCode.UNAUTHENTICATED
    assert call("slow").code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert timed() - before == 3
    # The slow call was cut at the server's 0.3 s deadline: the only one over 0.25 s.
    assert timed("0.25") - quick_before == 2


@pytest.mark.parametrize(
    "metadata, reason",
    [
        ((), "no token"),
        ((("authorization", "Basic abc"),), "malformed authorization"),
        (bearer("w" * 40), "unknown token"),
    ],
)
def test_every_refused_call_is_counted_and_logged_without_its_token(metadata, reason):
    refused = counts("UNAUTHENTICATED", "unknown")
    with capture_logs() as logs:
        error = call("fine", metadata=metadata)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert refused() == 1
    [warning] = [e for e in logs if e["event"] == "grpc.unauthenticated"]
    assert warning["reason"] == reason and warning["method"] == RECORD
    assert "w" * 40 not in str(logs)


def test_a_field_over_its_bound_is_refused_by_name_before_the_handler():
    refused = counts("INVALID_ARGUMENT", "operator")
    error = call("slow", reading_id="r" * 2_000_000)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "reading.reading_id is 2000000 characters long; at most 128"
    assert refused() == 1


def test_a_call_past_the_servers_deadline_is_cancelled():
    late = counts("DEADLINE_EXCEEDED", "operator")
    error = call("slow")
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert error.details() == "not answered within the server's deadline of 0.3 s"
    assert late() == 1


def test_an_unexpected_failure_is_internal_with_an_error_id_and_no_detail():
    failed = counts("INTERNAL", "operator")
    with capture_logs() as logs:
        error = call("recursion")
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "Recursion" not in error.details() and SECRET not in error.details()
    [logged] = [e for e in logs if e["event"] == "grpc.failed"]
    assert error.details() == f"internal error {logged['error_id']}; the service logged it"
    assert logged["error"] == "RecursionError" and logged["method"] == RECORD
    assert "test_grpc_guard.py" in logged["where"]
    assert SECRET not in str(logs)
    assert failed() == 1


def test_an_invalid_event_the_handler_did_not_catch_is_an_invalid_argument():
    error = call("territory")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "envelope has no programme territory (52, 54 or 55)"


def test_a_bus_failure_is_unavailable():
    error = call("bus")
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == "the event bus is unavailable; try again shortly"


def test_a_status_the_handler_chose_is_kept():
    refused = counts("FAILED_PRECONDITION", "operator")
    error = call("refused")
    assert (error.code(), error.details()) == (grpc.StatusCode.FAILED_PRECONDITION, "not enrolled")
    assert refused() == 1


def test_a_request_over_the_size_limit_is_refused_unparsed_and_counted():
    refused = counts("RESOURCE_EXHAUSTED", "operator")
    error = call("fine", reading_id="r" * 3_000_000)
    size = request("fine", "r" * 3_000_000).ByteSize()
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == f"the request is {size} bytes; at most {MAX_REQUEST_BYTES}"
    assert refused() == 1


def test_an_oversized_request_without_a_token_is_refused_as_unauthenticated():
    refused = counts("UNAUTHENTICATED", "unknown")
    error = call("fine", reading_id="r" * 3_000_000, metadata=())
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert refused() == 1


def test_bytes_that_are_not_the_methods_message_are_an_invalid_argument():
    error = served(
        lambda channel: channel.unary_unary(RECORD)(b"\xff\xff\xff", timeout=10, metadata=AUTH)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "the request is not the method's message"


def test_the_request_size_bound_is_the_guards_setting():
    async def run() -> Any:
        guard = Guard(SERVICE, {hash_token(TOKEN): "operator"}, max_request_bytes=50)
        server = grpc.aio.server(interceptors=[guard])
        api_grpc.add_ChronicServiceServicer_to_server(Failing(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = api_grpc.ChronicServiceStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.RecordReading(request("fine", "r" * 100), timeout=10, metadata=AUTH)
                return refused.value
        finally:
            await server.stop(1)

    error = asyncio.run(run())
    size = request("fine", "r" * 100).ByteSize()
    assert size < MAX_REQUEST_BYTES  # within the default bound, over the one given
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == f"the request is {size} bytes; at most 50"


class Counting(Failing):
    """Failing, counting the calls its RecordReading was run for."""

    def __init__(self) -> None:
        self.handled = 0

    async def RecordReading(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.handled += 1
        return await super().RecordReading(request, context)


async def _guarded_server(
    servicer: Any, max_in_flight: int, deadline: float = 5.0
) -> tuple[grpc.aio.Server, int]:
    guard = Guard(
        SERVICE,
        {hash_token(TOKEN): "operator"},
        lambda method: deadline,
        max_in_flight=max_in_flight,
    )
    server = grpc.aio.server(interceptors=[guard])
    api_grpc.add_ChronicServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


def test_a_call_over_the_in_flight_bound_is_refused_at_once_and_counted():
    refused = counts("RESOURCE_EXHAUSTED", "operator")

    async def run() -> tuple[Any, float, Any, Any, int]:
        servicer = Counting()
        server, port = await _guarded_server(servicer, max_in_flight=2)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = api_grpc.ChronicServiceStub(channel)
                slow = [
                    asyncio.ensure_future(
                        stub.RecordReading(request("slow", f"r{i}"), timeout=10, metadata=AUTH)
                    )
                    for i in range(2)
                ]
                while servicer.handled < 2:
                    await asyncio.sleep(0.01)
                started = asyncio.get_running_loop().time()
                try:
                    third: Any = await stub.RecordReading(
                        request("fine", "r3"), timeout=10, metadata=AUTH
                    )
                except grpc.aio.AioRpcError as exc:
                    third = exc
                waited = asyncio.get_running_loop().time() - started
                # Health checks are never refused, busy or not.
                health_answer = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
                for call_ in slow:
                    call_.cancel()
                # Once a slot is free again, calls are answered.
                await asyncio.gather(*slow, return_exceptions=True)
                await asyncio.sleep(0.1)
                after = await stub.RecordReading(request("fine", "r4"), timeout=10, metadata=AUTH)
                return third, waited, health_answer, after, servicer.handled
        finally:
            await server.stop(1)

    third, waited, health_answer, after, handled = asyncio.run(run())
    assert third.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert handled == 3  # the two slow calls and the last one: never the refused one
    assert "try again shortly" in third.details()
    assert waited < 1.0  # refused at once, not after the slow calls
    assert refused() == 1
    assert health_answer.status == health_answer.SERVING
    assert after.event_id == "e1"
