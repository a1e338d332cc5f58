"""`emeuse evaluate` on a small seeded simulation through the real services: the report a
research unit would read, checked against what is on the bus (counted here, decoded and
checked as every consumer of the platform does), then rebuilt from the topics."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pyarrow.parquet as pq
import pytest
from kafka import KafkaConsumer, TopicPartition

from emeuse.evaluation.v1 import evaluation_service_pb2 as api
from emeuse.evaluation.v1 import evaluation_service_pb2_grpc as api_grpc
from emeuse.prevention.v1.prevention_events_pb2 import DeliveryStatus
from emeuse.registry import (
    ALERT_ACKNOWLEDGED,
    ALERT_ESCALATED,
    CONSULTATION_REQUESTED,
    DELIVERY_RECEIPT_REPORTED,
    EVENT_SHARED,
    INCIDENT_RAISED,
    OPT_OUT_RECORDED,
    READING_RECORDED,
    SLOT_BOOKED,
    TopicSpec,
)
from emeuse.runtime.envelope import CODE_OF_TERRITORY, header_map
from emeuse.runtime.events import Event, read_event
from emeuse.simulate.events import Options
from services.evaluation.domain.cells import SMALL_CELL
from services.evaluation.domain.periods import month_of
from tests.integration.harness import Bus, Platform
from tests.integration.test_simulate import simulate

pytestmark = pytest.mark.usefixtures("line_left_as_found")

DELIVERED = DeliveryStatus.DELIVERY_STATUS_DELIVERED
# Receipts counted in prevention.messages (delivered, failed or bounced).
RECEIPTS_COUNTED = {
    DELIVERED,
    DeliveryStatus.DELIVERY_STATUS_FAILED,
    DeliveryStatus.DELIVERY_STATUS_BOUNCED,
}


def events_of(bootstrap: str, spec: TopicSpec, experiment: str) -> list[Event]:
    """The run's events on the topic, as the services read them (invalid ones, which they
    set aside, left out)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    try:
        partitions = [
            TopicPartition(spec.name, p) for p in consumer.partitions_for_topic(spec.name)
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found: list[Event] = []
        while any(consumer.position(p) < ends[p] for p in partitions):
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    try:
                        event = read_event(spec, record, header_map(record.headers))
                    except Exception:
                        continue
                    if event.envelope.experiment_id == experiment:
                        found.append(event)
        return found
    finally:
        consumer.close()


def counted_from_the_bus(bootstrap: str, experiment: str) -> Counter[tuple[str, str, str]]:
    """Some of the indicators, counted here from the topics: (month, indicator, breakdown)."""
    counts: Counter[tuple[str, str, str]] = Counter()

    def add(event: Event, name: str, breakdown: str = "") -> None:
        assert CODE_OF_TERRITORY[event.envelope.territory] == "55"
        counts[(month_of(event.envelope.occurred_at.ToDatetime(tzinfo=UTC)), name, breakdown)] += 1

    for event in events_of(bootstrap, READING_RECORDED, experiment):
        add(event, "chronic.readings")
        source = event.envelope.source
        if source.startswith("partner/"):
            add(event, "partners.events_published", f"partner={source.removeprefix('partner/')}")
    # What the care teams did and the timers decided: in the patient's experiment.
    for event in events_of(bootstrap, ALERT_ACKNOWLEDGED, experiment):
        add(event, "chronic.time_to_acknowledge.observations")
    for event in events_of(bootstrap, ALERT_ESCALATED, experiment):
        add(event, "chronic.escalations")
    for event in events_of(bootstrap, OPT_OUT_RECORDED, experiment):
        add(event, "prevention.opt_outs")
    for event in events_of(bootstrap, INCIDENT_RAISED, experiment):
        add(event, "home.incidents")
    for event in events_of(bootstrap, CONSULTATION_REQUESTED, experiment):
        add(event, "access.requests")
    for event in events_of(bootstrap, SLOT_BOOKED, experiment):
        if not event.message.rescheduled_from:
            add(event, "access.bookings")
    reached: set[tuple[str, str]] = set()  # (month, person)
    for event in events_of(bootstrap, DELIVERY_RECEIPT_REPORTED, experiment):
        if event.message.status in RECEIPTS_COUNTED:
            add(event, "prevention.messages")
            outcome = "delivered" if event.message.status == DELIVERED else "failed"
            add(event, "prevention.messages", f"outcome={outcome}")
        if event.message.status == DELIVERED:
            month = month_of(event.envelope.occurred_at.ToDatetime(tzinfo=UTC))
            if (month, event.message.person_pseudonym) not in reached:
                reached.add((month, event.message.person_pseudonym))
                add(event, "prevention.people_reached")
    for event in events_of(bootstrap, EVENT_SHARED, experiment):
        for partner in event.message.partner_ids:
            add(event, "partners.events_consumed", f"partner={partner}")
            add(event, "partners.events_consumed")
    return counts


def answers(target: str, auth: Any, experiment: str, months: tuple[str, str], period: Any) -> list:
    request = api.GetIndicatorsRequest(
        experiment_id=experiment,
        territory="55",
        from_month=months[0],
        to_month=months[1],
        period=period,
    )
    with grpc.insecure_channel(target) as channel:
        answer = api_grpc.EvaluationServiceStub(channel).GetIndicators(
            request, timeout=30, metadata=auth
        )
    return [
        (i.month, i.week, i.name, i.breakdown, i.unit, i.value, i.suppressed)
        for i in answer.indicators
    ]


def published_as_counted(shown: list, counted: Counter) -> bool:
    """Whether every figure counted here is what the service answers: the same value when
    shown, withheld when small."""
    by_key = {(s[0], s[2], s[3]): s for s in shown}
    for key, n in counted.items():
        figure = by_key.get(key)
        if figure is None:
            return False
        value, withheld = figure[5], figure[6]
        if n < SMALL_CELL and not withheld:
            return False
        if not withheld and value != n:
            return False
    return True


def test_a_simulated_month_gives_a_report_a_research_unit_can_publish(
    platform: Platform, bus: Bus, tmp_path: Path, simulated_partners_dir: Path
):
    experiment = f"sim-eval-{uuid.uuid4().hex[:8]}"
    options = Options(
        seed=14,
        scale=0.01,
        territories=("55",),
        rate=60,
        duration=6,
        critical_rate=0.2,
        fall_rate=0.1,
        malformed_rate=0.02,
        experiment=experiment,
        acknowledge_within_s=3,
        acknowledged_share=0.5,
        missed_visit_rate=0.5,
        visit_missed_after_s=3,
        opt_out_share=0.1,
        no_show_rate=0.5,
        partner_share=0.6,
    )
    started = datetime.now(UTC)
    simulate(platform, bus, options, simulated_partners_dir, linger_s=6)
    months = (month_of(started), month_of(datetime.now(UTC)))
    live = platform.services["evaluation"]

    # The service has folded the run once what it answers is what the bus holds (services
    # still act on the run for a while: requests for alerts, incidents for sensor events).
    deadline = time.monotonic() + 120
    while True:
        counted = counted_from_the_bus(bus.bootstrap, experiment)
        shown = answers(
            live.grpc_target, platform.auth, experiment, months, api.Period.PERIOD_MONTH
        )
        if published_as_counted(shown, counted):
            break
        assert time.monotonic() < deadline, (
            f"after 120 s the service answers {shown}, not {counted}"
        )
        time.sleep(2)
    # Enough happened for figures to be published and others withheld.
    assert any(n >= SMALL_CELL for n in counted.values()), counted
    assert counted[(months[0], "partners.events_consumed", "")] > 0, counted
    # The care teams' acknowledgements and the escalations are the run's, not the
    # service's own experiment's.
    assert counted[(months[0], "chronic.time_to_acknowledge.observations", "")] > 0, counted
    assert counted[(months[0], "chronic.escalations", "")] > 0, counted
    # The delivery partners' receipts: messages delivered, in the person's experiment.
    assert counted[(months[0], "prevention.messages", "outcome=delivered")] > 0, counted

    out = tmp_path / "report"
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "emeuse.cli.main",
            "evaluate",
            "--experiment",
            experiment,
            "--territory",
            "55",
            "--from",
            months[0],
            "--to",
            months[1],
            "--out",
            str(out),
            "--grpc",
            live.grpc_target,
            "--token-file",
            str(platform.secrets / "operator.token"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert report.returncode == 0, report.stderr
    with (out / "indicators.csv").open(encoding="utf-8") as table:
        rows = list(csv.DictReader(table))
    # Every axis the run simulated has its figures in the table.
    simulated = {"chronic", "access", "home", "partners"} | {k[1].split(".")[0] for k in counted}
    assert {r["axis"] for r in rows} >= simulated
    # The figures counted here are the table's: shown as counted, or withheld and blank.
    for (month, name, breakdown), n in counted.items():
        [row] = [
            r
            for r in rows
            if (r["month"], r["indicator"], r["breakdown"]) == (month, name, breakdown)
        ]
        if row["suppressed"] == "yes":
            assert row["value"] == ""
        else:
            assert n >= SMALL_CELL and float(row["value"]) == n, (row, n)
    # Small cells are withheld: no count from 1 to 9 is shown, and some were withheld.
    assert not [
        r
        for r in rows
        if r["unit"] != "seconds" and r["value"] and 0 < float(r["value"]) < SMALL_CELL
    ]
    assert any(r["suppressed"] == "yes" for r in rows)
    # No one is named in any export, nor any id of the run.
    text = (out / "indicators.csv").read_text(encoding="utf-8")
    parquet = pq.read_table(out / "indicators.parquet").to_pylist()
    assert len(parquet) == len(rows)
    values = [str(v) for r in parquet for v in r.values()]
    assert "psn-" not in text and not any("psn-" in v for v in values)
    # A plot for each total with a figure shown, none empty.
    plots = {p.stem for p in (out / "plots").glob("*.png")}
    shown_totals = {r["indicator"] for r in rows if not r["breakdown"] and r["value"]}
    assert plots == shown_totals, (plots, shown_totals)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in (out / "plots").glob("*.png"))

    # Rebuilt from the topics by a new instance (new app id, no state): the same answers,
    # withheld cells included, by month and by week.
    periods = (api.Period.PERIOD_MONTH, api.Period.PERIOD_WEEK)
    settled = [answers(live.grpc_target, platform.auth, experiment, months, p) for p in periods]
    rebuilt = platform.new_process(
        "evaluation", "evaluation-rebuilt", app_id=f"emeuse-evaluation-{experiment}"
    )
    platform.services["evaluation-rebuilt"] = rebuilt
    rebuilt.start()
    try:
        rebuilt.wait_serving()
        deadline = time.monotonic() + 180
        while True:
            again = [
                answers(rebuilt.grpc_target, platform.auth, experiment, months, p) for p in periods
            ]
            if again == settled:
                break
            now = [answers(live.grpc_target, platform.auth, experiment, months, p) for p in periods]
            # The live service may still fold the run's last events: follow it.
            settled = now
            assert time.monotonic() < deadline, (
                "rebuilt from the topics, the figures differ: "
                f"live only {sorted(set(now[0] + now[1]) - set(again[0] + again[1]))}, "
                f"rebuilt only {sorted(set(again[0] + again[1]) - set(now[0] + now[1]))}"
            )
            time.sleep(2)
    finally:
        rebuilt.stop()
        del platform.services["evaluation-rebuilt"]
