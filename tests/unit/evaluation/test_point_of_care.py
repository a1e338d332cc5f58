"""Point-of-care INR to alert: only alerts raised by a capillary INR result count there."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from google.protobuf.duration_pb2 import Duration

from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, AlertSeverity, ReadingRecorded
from emeuse.registry import ALERT_RAISED, READING_RECORDED
from services.evaluation.domain import cells
from services.evaluation.point_of_care import ALERTS_FIRST, POINT_OF_CARE
from services.evaluation.processing import parse_cell_key
from tests.unit.evaluation.partitions import Partitions
from tests.unit.evaluation.scenario import MARCH, TELE, Sent, completed, person

PATIENT = person("i", 1)


def reading(
    reading_id: str, point_of_care: bool, loinc: str = "34714-6", at: datetime = MARCH
) -> Sent:
    message = ReadingRecorded(
        reading_id=reading_id,
        patient_pseudonym=PATIENT,
        loinc_code=loinc,
        point_of_care=point_of_care,
    )
    return completed(Sent(READING_RECORDED, message, PATIENT, TELE, "55", at))


def alert(alert_id: str, reading_id: str, minutes: int, loinc: str = "6301-6") -> Sent:
    """An alert raised `minutes` after its reading was measured (at MARCH)."""
    delay = Duration()
    delay.FromTimedelta(timedelta(minutes=minutes))
    message = AlertRaised(
        alert_id=alert_id,
        patient_pseudonym=PATIENT,
        severity=AlertSeverity.ALERT_SEVERITY_CRITICAL,
        rule="inr.above_range",
        loinc_code=loinc,
        reading_ids=[reading_id],
        measurement_to_alert=delay,
    )
    raised = MARCH + timedelta(minutes=minutes)
    return completed(Sent(ALERT_RAISED, message, PATIENT, TELE, "55", raised))


def delays(state: Partitions) -> dict[str, float]:
    merged = cells.merge(cell for key, cell in state.cells() if key.endswith("|2026-03"))
    return {
        f.name: f.value
        for f in cells.figures("2026-03", merged, frozenset())
        if f.name.endswith(".observations")
    }


def test_only_the_alert_of_a_capillary_inr_counts_as_point_of_care():
    state = Partitions()
    for sent in (
        reading("capillary-1", point_of_care=True),
        reading("lab-1", point_of_care=False, loinc="6301-6"),
        reading("capillary-glucose", point_of_care=True, loinc="2339-0"),
        alert("a-lab", "lab-1", 30),
        alert("a-capillary", "capillary-1", 240),
        alert("a-glucose", "capillary-glucose", 20, loinc="2339-0"),
    ):
        state.handle(sent)
    assert delays(state) == {
        "chronic.measurement_to_alert.observations": 3,
        "chronic.point_of_care_inr_to_alert.observations": 1,
    }
    # Both named readings are forgotten once their alerts are raised.
    assert not any(p[POINT_OF_CARE] for p in state.committed.values())


def test_a_second_alert_naming_the_same_result_is_not_counted_again_as_point_of_care():
    state = Partitions()
    for sent in (
        reading("capillary-1", point_of_care=True),
        alert("a-1", "capillary-1", 240),
        alert("a-2", "capillary-1", 300),
    ):
        state.handle(sent)
    assert delays(state)["chronic.point_of_care_inr_to_alert.observations"] == 1


def every_figure(state: Partitions) -> dict[tuple[str, str, str], cells.Cell]:
    """Each experiment, territory and period's cell, its partitions merged."""
    parts: dict[tuple[str, str, str], list[cells.Cell]] = defaultdict(list)
    for key, cell in state.cells():
        parts[parse_cell_key(key)].append(cell)
    return {period: cells.merge(held) for period, held in parts.items()}


def test_an_alert_read_before_its_reading_counts_the_same_as_after_it():
    """Reading every topic from the start (a rebuild), alert-raised may come before
    reading-recorded: the kernel orders records within a topic only. The figures must not
    depend on it, in the month's cell and the week's."""
    events = [
        reading("capillary-1", point_of_care=True),
        reading("lab-1", point_of_care=False, loinc="6301-6"),
        alert("a-capillary", "capillary-1", 240),
        alert("a-lab", "lab-1", 30),
        alert("a-again", "capillary-1", 300),  # the same result named again: once only
    ]
    live, rebuilt = Partitions(), Partitions()
    for sent in events:
        live.handle(sent)
    for sent in [*events[2:], *events[:2]]:
        rebuilt.handle(sent)
    assert delays(live) == {
        "chronic.measurement_to_alert.observations": 3,
        "chronic.point_of_care_inr_to_alert.observations": 1,
    }
    assert every_figure(rebuilt) == every_figure(live)
    # Every alert of the rebuild found its reading: none is kept waiting for one.
    assert not any(p[ALERTS_FIRST] or p[POINT_OF_CARE] for p in rebuilt.committed.values())


def test_a_reading_measured_after_the_alert_naming_it_is_not_what_raised_it():
    """An INR alert naming no point-of-care reading kept (a lab's) waits for its reading;
    a capillary result of that id measured hours after the alert did not raise it."""
    state = Partitions()
    state.handle(alert("a-lab", "capillary-1", 30))
    state.handle(reading("capillary-1", point_of_care=True, at=MARCH + timedelta(hours=5)))
    assert delays(state) == {"chronic.measurement_to_alert.observations": 1}


def test_a_copy_of_the_reading_sent_again_is_counted_once_whichever_topic_comes_first():
    """A device sends its capillary result twice (same id, same measured time): live or
    rebuilt, the alert it raised is one point-of-care observation."""
    events = [
        reading("capillary-1", point_of_care=True),
        alert("a-capillary", "capillary-1", 240),
        reading("capillary-1", point_of_care=True),  # the copy, after the alert
    ]
    live, rebuilt = Partitions(), Partitions()
    for sent in events:
        live.handle(sent)
    for sent in [events[1], events[0], events[2]]:
        rebuilt.handle(sent)
    for state in (live, rebuilt):
        assert delays(state)["chronic.point_of_care_inr_to_alert.observations"] == 1
