"""How the simulator puts records on Kafka fast: messages built without JSON parsing (the
same bytes), the platform's lag per consumer group, and what a run says about its pace."""

from __future__ import annotations

import math
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import json_format
from kafka import TopicPartition

from emeuse.registry import READING_RECORDED, by_name
from emeuse.simulate.encode import build
from emeuse.simulate.events import GRPC, KAFKA, Options, SimEvent
from emeuse.simulate.lag import group_lag
from emeuse.simulate.pace import Pace
from emeuse.simulate.partners import PARTNER
from emeuse.simulate.replay import record_id
from emeuse.simulate.run import plan
from emeuse.simulate.send import APIS, PlatformTransport, Tally

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_messages_built_directly_are_the_bytes_json_parsing_gives():
    options = Options(seed=8, scale=0.01, rate=200, duration=10, malformed_rate=0.05)
    run_plan = plan(options, now=START)
    events = [e for stage in run_plan.stages for e in stage] + list(run_plan.live)
    checked = set()
    for event in events:
        if event.raw is not None:
            continue
        if event.via == GRPC:
            service, method = event.target.split("/")
            message_class = getattr(APIS[service][0], f"{method}Request")
        elif event.via == PARTNER:
            message_class = READING_RECORDED.message
        else:
            message_class = by_name(event.target).message
        parsed = json_format.ParseDict(event.message, message_class())
        built = build(message_class, event.message)
        assert built.SerializeToString(deterministic=True) == parsed.SerializeToString(
            deterministic=True
        ), event.kind
        checked.add(event.kind)
    # Readings, home reports, malformed ones, and the enrolments' nested messages.
    assert {"reading", "reading.critical", "malformed.reading", "setup.patient"} <= checked
    assert any(kind.startswith("home.") for kind in checked)


def test_what_direct_building_cannot_take_is_left_to_json_parsing_and_its_errors():
    reading = by_name("emeuse.chronic.reading-recorded.v1").message
    assert math.isnan(build(reading, {"value": "NaN"}).value)
    with pytest.raises(json_format.ParseError):
        build(reading, {"no_such_field": 1})


def test_lag_is_what_each_group_has_not_committed_of_its_partitions():
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    lag = group_lag(
        {"emeuse-chronic": {a: 90, b: 100}, "emeuse-home": {a: 100}, "emeuse-access": {}},
        {a: 100, b: 130},
    )
    assert lag.per_group == {"emeuse-chronic": 40, "emeuse-home": 0}
    assert lag.total == 40
    assert "chronic 40" in lag.describe()


def test_a_run_says_whether_it_kept_the_rate_and_what_held_it_back():
    kept = Pace(50_000, 5_000, 10.05, 4.5, 0.0)
    assert "sustained" in kept.limit()
    assert "5,000/s asked" in kept.describe() and "90 us of CPU per event" in kept.describe()
    broker = Pace(50_000, 5_000, 20.0, 4.5, 9.0)
    assert "broker" in broker.limit()
    cpu = Pace(50_000, 5_000, 20.0, 19.0, 0.0)
    assert "this process's CPU" in cpu.limit() and "~2,632/s" in cpu.limit()
    machine = Pace(50_000, 5_000, 20.0, 4.0, 0.0)
    assert "the machine" in machine.limit() and "20% of a core" in machine.limit()


def test_a_record_id_is_the_uuid5_of_its_event_id():
    for event_id in ("sim-1-20261207090000-0", "sim-42-20261207090000-123456", "visité-7"):
        event = SimEvent("reading", KAFKA, READING_RECORDED.name, "55", "", START, event_id)
        expected = uuid.uuid5(uuid.NAMESPACE_URL, f"emeuse-simulate:{event_id}")
        assert record_id(event) == str(expected)


class Records:
    """The records' producer, as a fake: what was added."""

    waited_s = 0.0

    def __init__(self) -> None:
        self.added: list[tuple[str, bytes]] = []

    def add(self, topic, key, value, headers, tag) -> None:
        self.added.append((topic, key))

    def send_lingering(self) -> None:
        pass

    def flush(self, timeout: float = 30) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def unanswering_prevention():
    """A prevention service that takes OptOut calls and answers none until the test ends."""
    release = threading.Event()

    def hang(request: bytes, context: grpc.ServicerContext) -> bytes:
        release.wait(30)
        return b""

    server = grpc.server(ThreadPoolExecutor(max_workers=40))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "emeuse.prevention.v1.PreventionService",
                {"OptOut": grpc.unary_unary_rpc_method_handler(hang)},
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    release.set()
    server.stop(grace=None)


def test_calls_the_platform_is_slow_to_answer_never_hold_back_the_records(unanswering_prevention):
    records = Records()
    transport = PlatformTransport(
        "127.0.0.1:1", {"prevention": unanswering_prevention}, (), "simulation", producer=records
    )
    tally = Tally()
    try:
        began = time.monotonic()
        # More calls than may be in flight (32), each person's own, none answered.
        for n in range(40):
            transport.send(opt_out(f"psn-{n:032d}"), tally.done)
        for n in range(100):
            transport.send(a_reading(n), tally.done)
        assert time.monotonic() - began < 1.0
        assert len(records.added) == 100
    finally:
        transport.close()


def opt_out(person: str) -> SimEvent:
    message = {"person_pseudonym": person, "opt_out_id": person}
    return SimEvent(
        "prevention.opted_out", GRPC, "prevention/OptOut", "55", person, START, person, message
    )


def a_reading(n: int) -> SimEvent:
    patient = "psn-" + "a" * 32
    message = {
        "reading_id": f"r-{n}",
        "patient_pseudonym": patient,
        "loinc_code": "2339-0",
        "value": 120.0,
        "unit": "mg/dL",
        "measured_at": "2026-12-07T09:00:00Z",
    }
    return SimEvent(
        "reading", KAFKA, READING_RECORDED.name, "55", patient, START, f"r-{n}", message
    )


def test_a_partner_reading_the_sdk_refuses_is_a_failure_of_the_run_not_its_end():
    partner = Records()
    transport = PlatformTransport("127.0.0.1:1", {}, (), "simulation", producer=Records())
    transport.partner_producers["sim-glucometer"] = partner
    tally = Tally()
    try:
        # A reading id whose digits read as a NIR with a valid key (2 55 08 55 123 456 key).
        refused = replace(
            a_reading(0), via=PARTNER, target="sim-glucometer", kind="partner.reading"
        )
        refused.message["reading_id"] = "sim-1-2550855123456" + f"{97 - 2550855123456 % 97:02d}"
        for event in (refused, replace(a_reading(1), via=PARTNER, target="sim-glucometer")):
            tally.started()
            transport.send(event, tally.done)
    finally:
        transport.close()
    assert tally.failed["partner.reading"] == 1
    assert any("NIR" in reason for reason in tally.reasons)
    assert len(partner.added) == 1  # the next reading went


class SlowPrevention:
    """Prevention's stub, as a fake: its first call is slow to be made (until `let_go`), each
    call's answer is OK."""

    def __init__(self) -> None:
        self.making, self.let_go = threading.Event(), threading.Event()
        self.made: list[str] = []

    @property
    def OptOut(self) -> SlowPrevention:
        return self

    def future(self, request, timeout, metadata) -> Answered:
        if not self.made:
            self.making.set()
            self.let_go.wait(10)
        self.made.append(request.person_pseudonym)
        return Answered()


class Answered:
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.OK

    def add_done_callback(self, callback) -> None:
        callback(self)


def slow_transport(
    tally: Tally, calls: int, **waits: float
) -> tuple[PlatformTransport, SlowPrevention]:
    transport = PlatformTransport("127.0.0.1:1", {}, (), "simulation", producer=Records(), **waits)
    prevention = transport.stubs["prevention"] = SlowPrevention()
    for n in range(calls):
        tally.started()
        transport.send(opt_out(f"psn-{n:032d}"), tally.done)
    assert prevention.making.wait(5)  # the first call is being made, the others wait
    return transport, prevention


def test_calls_not_made_within_the_flush_wait_are_failures_of_the_run():
    tally = Tally()
    transport, prevention = slow_transport(tally, 3, calls_made_within_s=0.2)
    try:
        transport.flush()
        assert tally.failed["prevention.opted_out"] == 2
        assert tally.reasons == {"prevention/OptOut not made in 0.2 s": 2}
        prevention.let_go.set()
        transport.flush()
        assert tally.sent["prevention.opted_out"] == 1 and tally.pending == 0
        assert len(prevention.made) == 1  # the failed calls are not made after all
    finally:
        prevention.let_go.set()
        transport.close()


def test_calls_still_waiting_when_the_transport_closes_are_answered_not_sent():
    tally = Tally()
    transport, prevention = slow_transport(tally, 3, closing_within_s=0.2)
    try:
        transport.close()
        assert tally.failed["prevention.opted_out"] == 2
        assert tally.reasons == {"prevention/OptOut not sent: closing": 2}
    finally:
        prevention.let_go.set()
    transport.caller.join(5)
    assert not transport.caller.is_alive()  # let go, the calls' thread ended
    assert tally.sent["prevention.opted_out"] == 1 and tally.pending == 0


class BehindPrevention:
    """Prevention's stub, as a fake: the first answer to each call is "accepted but not
    applied yet" (the service is behind on its inputs), the next is OK."""

    def __init__(self) -> None:
        self.made: list[str] = []

    @property
    def OptOut(self) -> BehindPrevention:
        return self

    def future(self, request, timeout, metadata) -> Answer:
        self.made.append(request.person_pseudonym)
        if self.made.count(self.made[-1]) == 1:
            return Answer(grpc.StatusCode.DEADLINE_EXCEEDED, "accepted but not applied yet; x")
        return Answer(grpc.StatusCode.OK, "")


class Answer:
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def add_done_callback(self, callback) -> None:
        callback(self)


def test_a_call_taken_but_not_applied_yet_is_asked_again_and_counts_once(monkeypatch):
    monkeypatch.setattr("emeuse.simulate.send.ASK_AGAIN_AFTER_S", (0.01, 0.01))
    tally = Tally()
    transport = PlatformTransport("127.0.0.1:1", {}, (), "simulation", producer=Records())
    prevention = transport.stubs["prevention"] = BehindPrevention()
    try:
        tally.started()
        transport.send(opt_out("psn-" + "a" * 32), tally.done)
        transport.flush()
        deadline = time.monotonic() + 5
        while tally.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tally.sent["prevention.opted_out"] == 1 and not tally.failed
        assert prevention.made == ["psn-" + "a" * 32] * 2
        assert transport.calls_asked_again == 1
    finally:
        transport.close()
