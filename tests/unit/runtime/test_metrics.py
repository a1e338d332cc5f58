"""`labelled`: a metric's child looked up once, counting on the metric itself."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from emeuse.runtime.metrics import labelled


def test_the_same_labels_give_the_same_child_and_it_counts_on_its_metric():
    registry = CollectorRegistry()
    readings = Counter(
        "readings_checked_total", "Readings.", ["loinc", "outcome"], registry=registry
    )

    labelled(readings, "2339-0", "normal").inc()
    labelled(readings, "2339-0", "normal").inc()
    labelled(readings, "34714-6", "alert").inc()

    assert labelled(readings, "2339-0", "normal") is readings.labels("2339-0", "normal")
    value = registry.get_sample_value
    assert value("readings_checked_total", {"loinc": "2339-0", "outcome": "normal"}) == 2
    assert value("readings_checked_total", {"loinc": "34714-6", "outcome": "alert"}) == 1


def test_two_metrics_with_the_same_labels_keep_their_own_children():
    registry = CollectorRegistry()
    consumed = Counter("consumed_total", "In.", ["service", "topic"], registry=registry)
    produced = Counter("produced_total", "Out.", ["service", "topic"], registry=registry)

    labelled(consumed, "chronic", "t").inc()

    assert registry.get_sample_value("consumed_total", {"service": "chronic", "topic": "t"}) == 1
    assert labelled(produced, "chronic", "t") is not labelled(consumed, "chronic", "t")
