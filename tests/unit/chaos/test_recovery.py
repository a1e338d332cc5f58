"""Recovery times from the monitor's samples (tests/chaos/round.py)."""

from __future__ import annotations

from kafka import TopicPartition

from tests.chaos.faults import Fault
from tests.chaos.round import Monitor, Sample

TP = TopicPartition("emeuse.access.consultation-requested.v1", 0)


def monitor(*samples: Sample) -> Monitor:
    watching = Monitor(None, "group", [TP])  # type: ignore[arg-type]
    watching.samples = list(samples)
    return watching


def test_a_poison_record_passed_before_the_only_sample_after_it_is_recovered():
    # Set aside within half a second, the round's last fault: one sample after it.
    fault = Fault("poison-header", "", at=10.0, wall="", poison=(TP, 1502))
    watching = monitor(Sample(9.5, {TP: 1502}, {TP: 1503}), Sample(10.5, {TP: 1503}, {TP: 1503}))
    assert watching.recovery(fault, [TP]) == 0.5


def test_a_poison_record_never_passed_is_never_recovered():
    fault = Fault("poison-header", "", at=10.0, wall="", poison=(TP, 1502))
    watching = monitor(Sample(10.5, {TP: 1502}, {TP: 1503}), Sample(11.0, {TP: 1502}, {TP: 1503}))
    assert watching.recovery(fault, [TP]) is None
