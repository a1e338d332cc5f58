"""How the simulator puts records on Kafka fast: messages built without JSON parsing (the
same bytes), the platform's lag per consumer group, and what a run says about its pace."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from google.protobuf import json_format
from kafka import TopicPartition

from emeuse.registry import READING_RECORDED, by_name
from emeuse.simulate.encode import build
from emeuse.simulate.events import GRPC, Options
from emeuse.simulate.lag import group_lag
from emeuse.simulate.pace import Pace
from emeuse.simulate.partners import PARTNER
from emeuse.simulate.run import plan
from emeuse.simulate.send import APIS

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
