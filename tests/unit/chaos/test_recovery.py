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


BROKER_KILL = Fault("broker-kill-9", "broker", at=10.0, wall="")


def test_a_broker_kill_with_only_the_last_sample_after_it_is_recovered_when_caught_up():
    # The checker's clients came back late: the round's last sample is the only one after.
    watching = monitor(Sample(9.5, {TP: 1400}, {TP: 1500}), Sample(40.0, {TP: 1530}, {TP: 1530}))
    assert watching.recovery(BROKER_KILL, [TP]) == 30.0


def test_a_broker_kill_with_only_one_sample_after_it_not_caught_up_is_never_recovered():
    watching = monitor(Sample(40.0, {TP: 1500}, {TP: 1530}))
    assert watching.recovery(BROKER_KILL, [TP]) is None
    assert "partitions behind at the last: 0: committed 1500, end 1530 -> 1530" in (
        watching.why_not_recovered(BROKER_KILL, [TP])
    )


def test_records_arriving_after_the_first_sample_must_be_committed_for_recovery():
    watching = monitor(
        Sample(11.0, {TP: 1500}, {TP: 1500}),
        Sample(12.0, {TP: 1500}, {TP: 1510}),
        Sample(13.0, {TP: 1505}, {TP: 1510}),
        Sample(14.0, {TP: 1510}, {TP: 1510}),
    )
    assert watching.recovery(BROKER_KILL, [TP]) == 3.0
