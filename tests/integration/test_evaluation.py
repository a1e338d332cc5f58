"""Evaluation end to end on the real broker: a known month of events on the platform's
topics, counted by two instances of the service, answered by GetIndicators with small
cells withheld."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pyarrow.parquet as pq
import pytest

from emeuse.evaluation.v1 import evaluation_service_pb2 as api
from emeuse.evaluation.v1 import evaluation_service_pb2_grpc as api_grpc
from emeuse.registry import ALERT_RAISED, CONSULTATION_REQUESTED, INCIDENT_RAISED, PARTITIONS
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import expected_partition
from services.evaluation.domain.histogram import PRECISION
from tests.integration.harness import Bus, Platform
from tests.unit.evaluation.scenario import (
    BASELINE,
    EXPECTED,
    TELE,
    envelope_of,
    month_of_events,
    shown_as,
)

# Topics other services act on (access books a request, raises one for an alert or a fall):
# left out, so what the test sends is all there is to count, whatever else runs.
ACTED_ON = {ALERT_RAISED, CONSULTATION_REQUESTED, INCIDENT_RAISED}
FROM_THOSE = (
    "chronic.alerts",
    "chronic.monitoring_gaps",
    "chronic.measurement_to_alert",
    "chronic.point_of_care_inr_to_alert",
    "access.requests|",
    "home.incidents",
    "home.missed_visits",
    # What a flagged request asked for is on the request, not sent here.
    "access.requests_flagged_unmet|profession=",
    "access.requests_flagged_unmet|modality=",
    "access.requests_flagged_unmet|commune=",
    # So is the profession telling a booking's teleconsultation from télésoin.
    "access.bookings|care=",
)


@pytest.fixture
def evaluation(bootstrap: str, tmp_path: Path) -> Iterator[Platform]:
    platform = Platform(bootstrap, tmp_path)
    app_id = f"emeuse-evaluation-{uuid.uuid4().hex[:8]}"
    try:
        for name in ("evaluation-1", "evaluation-2"):
            platform.services[name] = platform.new_process("evaluation", name, app_id=app_id)
            platform.services[name].start()
        for process in platform.services.values():
            process.wait_serving()
        yield platform
    finally:
        platform.stop_all()


def indicators(
    platform: Platform,
    experiment: str,
    territory: str,
    period: api.Period.ValueType = api.Period.PERIOD_MONTH,
    months: tuple[str, str] = ("2026-01", "2026-12"),
) -> dict[tuple[str, str, str], api.Indicator]:
    request = api.GetIndicatorsRequest(
        experiment_id=experiment,
        territory=territory,
        from_month=months[0],
        to_month=months[1],
        period=period,
    )
    with grpc.insecure_channel(platform.services["evaluation-1"].grpc_target) as channel:
        answer = api_grpc.EvaluationServiceStub(channel).GetIndicators(
            request, timeout=20, metadata=platform.auth
        )
    return {(i.week or i.month, i.name, i.breakdown): i for i in answer.indicators}


def expected_of_fed(where: tuple[str, str, str]) -> dict[tuple[str, str], float]:
    return {
        (name, breakdown): value
        for (name, breakdown), value in EXPECTED[where].items()
        if not f"{name}|{breakdown}".startswith(FROM_THOSE)
    }


def test_a_known_month_gives_the_hand_counted_indicators_with_small_cells_withheld(
    evaluation: Platform, bus: Bus
):
    run = uuid.uuid4().hex[:8]
    sent = [s for s in month_of_events() if s.spec not in ACTED_ON]
    for event in sent:
        envelope = envelope_of(event, f"{event.experiment}-{run}")
        bus.send(
            event.spec.name,
            event.key.encode(),
            event.message.SerializeToString(),
            env.to_headers(envelope),
            # Consents are keyed by patient, partner and purpose, partitioned by patient.
            partition=expected_partition(event.partition_key, PARTITIONS),
        )

    where = (TELE, "55", "2026-03")
    march = expected_of_fed(where)
    counts = {
        k: v
        for k, v in march.items()
        if shown_as(where, *k, v) and not k[0].endswith((".median", ".p90"))
    }
    deadline = time.monotonic() + 60
    while True:
        shown = indicators(evaluation, f"{TELE}-{run}", "55")
        got = {k: shown[("2026-03", *k)].value for k in counts if ("2026-03", *k) in shown}
        # The last events sent are February's readings.
        if got == counts and ("2026-02", "chronic.readings", "") in shown:
            break
        assert time.monotonic() < deadline, f"after 60 s, {got} is not {counts}"
        time.sleep(1)

    for (name, breakdown), value in march.items():
        indicator = shown[("2026-03", name, breakdown)]
        if not shown_as(where, name, breakdown, value):
            assert (indicator.value, indicator.suppressed) == (0, True), (name, breakdown)
        elif name.endswith((".median", ".p90")):
            assert indicator.value == pytest.approx(value, rel=PRECISION), name
        else:
            assert (indicator.value, indicator.suppressed) == (value, False), (name, breakdown)
    # 15 - 12 would give the 3 failed messages away: the 12 delivered are withheld too.
    assert shown[("2026-03", "prevention.messages", "outcome=delivered")].suppressed
    # The indicators added for issue 14, from the live service.
    assert shown[("2026-03", "access.wait_to_consultation.median", "")].value == pytest.approx(
        5 * 7200, rel=PRECISION
    )
    assert shown[("2026-03", "prevention.people_engaged", "")].value == 10
    assert shown[("2026-03", "partners.consents", "")].value == 13
    # The 15 remote first bookings' trips avoided, one way, in km (a mean of 12 km).
    avoided = shown[("2026-03", "access.distance_avoided.km", "")]
    assert (avoided.value, avoided.unit, avoided.suppressed) == (180.0, "km", False)
    assert shown[("2026-03", "access.distance_avoided.observations", "")].value == 15
    # What the partners' feeds were given (the gateway's event-shared records): 15
    # deliveries; carelink-est's 3 withheld, and glucomind's 12 with them (15 - 12).
    assert shown[("2026-03", "partners.events_consumed", "")].value == 15
    assert shown[("2026-03", "partners.events_consumed", "partner=carelink-est")].suppressed
    assert shown[("2026-03", "partners.events_consumed", "partner=glucomind")].suppressed
    assert {key for key in shown if key[0] == "2026-03"} == {("2026-03", *key) for key in march}
    # The month before is its own cell, too small to publish.
    assert shown[("2026-02", "chronic.readings", "")].suppressed

    # The same days week by week: March's events fall on Tuesday 10 March (ISO week 11);
    # February's (the 20th, week 8) are in no week touching March.
    weekly = indicators(
        evaluation, f"{TELE}-{run}", "55", api.Period.PERIOD_WEEK, ("2026-03", "2026-03")
    )
    assert {period for period, _, _ in weekly} == {"2026-W11"}
    assert weekly[("2026-W11", "chronic.readings", "")].value == 24
    assert weekly[("2026-W11", "prevention.messages", "outcome=delivered")].suppressed

    # The instances' unsuppressed partial figures are theirs alone (they added up above).
    partial = api.GetPartialAggregatesRequest(
        experiment_id=f"{TELE}-{run}", territory="55", from_month="2026-03", to_month="2026-03"
    )
    target = evaluation.services["evaluation-2"].grpc_target
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as refused:
        api_grpc.EvaluationServiceStub(channel).GetPartialAggregates(
            partial, timeout=20, metadata=evaluation.auth
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

    elsewhere = indicators(evaluation, f"{TELE}-{run}", "54")
    assert elsewhere[("2026-03", "chronic.patients_monitored", "")].value == 10
    baseline = indicators(evaluation, f"{BASELINE}-{run}", "55")
    assert baseline[("2026-03", "chronic.readings", "")].value == 10
    assert baseline[("2026-03", "chronic.patients_monitored", "")].suppressed

    # The operator's report, from the same live service.
    out = evaluation.workdir / "report"
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "emeuse.cli.main",
            "evaluate",
            "--experiment",
            f"{TELE}-{run}",
            "--territory",
            "55",
            "--territory",
            "54",
            "--from",
            "2026-01",
            "--to",
            "2026-03",
            "--baseline",
            f"{BASELINE}-{run}",
            "--out",
            str(out),
            "--grpc",
            evaluation.services["evaluation-2"].grpc_target,
            "--token-file",
            str(evaluation.secrets / "operator.token"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert report.returncode == 0, report.stderr
    table = (out / "indicators.csv").read_text(encoding="utf-8")
    assert f"{TELE}-{run},55,2026-03,chronic,chronic.readings,,count,24,no" in table
    assert f"{TELE}-{run},54,2026-03,chronic,chronic.patients_monitored,,persons,10,no" in table
    assert "psn-" not in table
    assert f"{BASELINE}-{run},55,2026-03,chronic,chronic.readings,,count,10,no" in table
    # The readings of 55 against its baseline's, and of 54 (no baseline there): a plot.
    assert (out / "plots" / "baseline" / "chronic.readings.png").read_bytes()[:4] == b"\x89PNG"
    parquet = pq.read_table(out / "indicators.parquet").to_pylist()
    assert len(parquet) == table.count("\n") - 1
    assert {
        "territory": "54",
        "month": "2026-03",
        "indicator": "chronic.patients_monitored",
        "value": 10.0,
        "suppressed": False,
    }.items() <= next(
        r
        for r in parquet
        if r["territory"] == "54" and r["indicator"] == "chronic.patients_monitored"
    ).items()
    assert not any(isinstance(v, str) and "psn-" in v for r in parquet for v in r.values())


def answers(platform: Platform, service: str, experiment: str, territory: str, period: Any) -> list:
    """GetIndicators of one instance, as comparable tuples, March 2026 or its weeks."""
    request = api.GetIndicatorsRequest(
        experiment_id=experiment,
        territory=territory,
        from_month="2026-01",
        to_month="2026-03",
        period=period,
    )
    with grpc.insecure_channel(platform.services[service].grpc_target) as channel:
        answer = api_grpc.EvaluationServiceStub(channel).GetIndicators(
            request, timeout=20, metadata=platform.auth
        )
    return [
        (i.month, i.week, i.name, i.breakdown, i.unit, i.value, i.suppressed)
        for i in answer.indicators
    ]


def test_rebuilding_from_the_topics_from_scratch_gives_the_live_figures(
    evaluation: Platform, bus: Bus
):
    run = uuid.uuid4().hex[:8]
    for event in (s for s in month_of_events() if s.spec not in ACTED_ON):
        bus.send(
            event.spec.name,
            event.key.encode(),
            event.message.SerializeToString(),
            env.to_headers(envelope_of(event, f"{event.experiment}-{run}")),
            partition=expected_partition(event.partition_key, PARTITIONS),
        )
    cells = [(TELE, "55"), (TELE, "54"), (BASELINE, "55"), (BASELINE, "52")]
    periods = (api.Period.PERIOD_MONTH, api.Period.PERIOD_WEEK)

    # The live pair first counts the territory 52 as counted by hand.
    where = (BASELINE, "52", "2026-03")
    fed = expected_of_fed(where)
    deadline = time.monotonic() + 60
    while True:
        shown = indicators(evaluation, f"{BASELINE}-{run}", "52")
        if {k[1:] for k in shown if k[0] == "2026-03"} == set(fed) and shown[
            ("2026-03", "prevention.people_reached", "")
        ].value == 10:
            break
        assert time.monotonic() < deadline, "territory 52 not counted after 60 s"
        time.sleep(1)
    for (name, breakdown), value in fed.items():
        indicator = shown[("2026-03", name, breakdown)]
        if not shown_as(where, name, breakdown, value):
            assert (indicator.value, indicator.suppressed) == (0, True), (name, breakdown)
        elif name.endswith((".median", ".p90")):
            assert indicator.value == pytest.approx(value, rel=PRECISION), name
        else:
            assert (indicator.value, indicator.suppressed) == (value, False), (name, breakdown)

    def everything(service: str) -> dict:
        return {
            (e, t, p): answers(evaluation, service, f"{e}-{run}", t, p)
            for e, t in cells
            for p in periods
        }

    # The live answers, once two readings a second apart agree (every event counted).
    live = everything("evaluation-1")
    deadline = time.monotonic() + 60
    while (settled := everything("evaluation-1")) != live or not all(live.values()):
        assert time.monotonic() < deadline, "the live figures did not settle in 60 s"
        live = settled
        time.sleep(1)

    # A new instance under a new app id: no state, no changelog, its group reads every
    # topic from the beginning, and holds every partition itself.
    rebuilt = evaluation.new_process(
        "evaluation", "evaluation-rebuilt", app_id=f"emeuse-evaluation-rebuilt-{run}"
    )
    evaluation.services["evaluation-rebuilt"] = rebuilt
    rebuilt.start()
    rebuilt.wait_serving()
    deadline = time.monotonic() + 120
    while (again := everything("evaluation-rebuilt")) != live:
        assert time.monotonic() < deadline, (
            "rebuilt from the topics, the figures differ from the live ones: "
            + repr({k: (len(v), len(live[k])) for k, v in again.items() if v != live[k]})
        )
        time.sleep(2)
    # Figures, not just shapes: the rebuilt instance answers the hand-counted March.
    march = {
        (i[2], i[3]): i for i in again[(TELE, "55", api.Period.PERIOD_MONTH)] if i[0] == "2026-03"
    }
    assert march[("chronic.readings", "")][5:] == (24, False)
