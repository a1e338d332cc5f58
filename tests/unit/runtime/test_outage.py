"""While the broker is down, a service logs the outage once with a count, then its end."""

import logging

from emeuse.runtime.outage import BrokerOutageFilter


def failure(at: float, logger: str = "aiokafka.client") -> logging.LogRecord:
    record = logging.LogRecord(
        logger,
        logging.ERROR,
        "client.py",
        435,
        "Unable connect to node with id %s: %s",
        (1, "[Errno 111] Connect call failed"),
        None,
    )
    record.created = at
    return record


class Reports:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, object]]] = []

    def __call__(self, event: str, fields: dict[str, object]) -> None:
        self.lines.append((event, fields))


def outage_of_30_seconds(outages: BrokerOutageFilter, start: float) -> list[logging.LogRecord]:
    """aiokafka retries about 33 times a second: 1,000 failed attempts in 30 s."""
    records = [failure(start + i * 0.03) for i in range(1000)]
    return [record for record in records if outages.filter(record)]


def answer(message: str, at: float, *args: object, logger: str = "aiokafka") -> logging.LogRecord:
    """A line a client logs at INFO when the broker has answered it."""
    record = logging.LogRecord(logger, logging.INFO, "x.py", 1, message, args, None)
    record.created = at
    return record


def test_a_30_second_outage_is_one_line_then_one_line_when_the_broker_answers():
    reports = Reports()
    outages = BrokerOutageFilter(report=reports, silent_s=60, remind_s=60)

    shown = outage_of_30_seconds(outages, start=1000.0)
    outages.tick(now=1000.0 + 30 + 6)
    assert reports.lines == [], "silence is not the broker answering"
    found = answer("Discovered coordinator %s for group %s", 1000.0 + 37, 1, "emeuse-chronic")
    assert not outages.filter(found), "the clients' INFO lines are read, not shown"

    assert [record.getMessage() for record in shown] == ["broker.unreachable"]
    assert "Unable connect to node with id 1" in shown[0].error
    assert [event for event, _ in reports.lines] == ["broker.reachable"]
    fields = reports.lines[0][1]
    assert fields["attempts"] == 1000
    assert fields["down_s"] == 37.0
    assert fields["since"] == "1970-01-01T00:16:40+00:00"
    assert fields["answer"] == "Discovered coordinator 1 for group emeuse-chronic"


def test_the_outage_ends_at_the_first_answer_not_after_a_quiet_while():
    reports = Reports()
    outages = BrokerOutageFilter(report=reports)
    outages.filter(failure(10.0))
    outages.filter(failure(11.0))

    outages.filter(
        answer("Updated metadata: %s", 11.2, "ClusterMetadata(brokers: 1)", logger="kafka.cluster")
    )

    assert [event for event, _ in reports.lines] == ["broker.reachable"]
    assert reports.lines[0][1]["down_s"] == 1.2
    outages.filter(answer("Joined group '%s' (generation %s)", 12.0, "g", 2))
    assert len(reports.lines) == 1, "one line per outage: later answers say nothing"


def test_an_answer_logged_before_the_last_failure_does_not_end_the_outage():
    reports = Reports()
    outages = BrokerOutageFilter(report=reports)
    outages.filter(failure(10.0))
    outages.filter(failure(12.0))

    outages.filter(answer("Successfully synced group %s", 11.0, "g"))

    assert reports.lines == []


def test_a_client_that_stops_failing_without_an_answer_closes_the_outage_unconfirmed():
    reports = Reports()
    outages = BrokerOutageFilter(report=reports, silent_s=60)
    outages.filter(failure(10.0))
    outages.filter(failure(20.0))

    outages.tick(now=70.0)
    assert reports.lines == []
    outages.tick(now=80.0)

    assert [event for event, _ in reports.lines] == ["broker.failures_stopped"]
    assert reports.lines[0][1]["down_s"] == 10.0
    assert [r.getMessage() for r in [failure(100.0)] if outages.filter(r)] == [
        "broker.unreachable"
    ], "a later outage is reported again"


def test_the_clients_info_lines_are_not_shown_and_their_warnings_are():
    outages = BrokerOutageFilter(report=Reports(), shown_level=logging.WARNING)
    info = answer("Subscribed to topic(s): %s", 1.0, "t", logger="aiokafka.consumer")
    warning = logging.LogRecord("kafka.conn", logging.WARNING, "x.py", 1, "odd", (), None)
    ours = logging.LogRecord("emeuse.kernel", logging.INFO, "x.py", 1, "kernel.started", (), None)

    assert [outages.filter(r) for r in (info, warning, ours)] == [False, True, True]


def test_a_long_outage_is_recalled_with_its_count_every_reminder_period():
    outages = BrokerOutageFilter(report=Reports(), remind_s=10)

    shown = outage_of_30_seconds(outages, start=0.0)

    assert [record.getMessage() for record in shown] == [
        "broker.unreachable",
        "broker.still_unreachable",
        "broker.still_unreachable",
    ]
    counts = [record.attempts for record in shown]
    assert counts[0] == 1 and counts[1] > 300 and counts[2] > 2 * 300


def test_a_second_outage_is_reported_again_after_the_broker_answered():
    reports = Reports()
    outages = BrokerOutageFilter(report=reports)

    first = outage_of_30_seconds(outages, start=0.0)
    outages.filter(answer("Discovered coordinator %s for group %s", 31.0, 1, "g"))
    second = outage_of_30_seconds(outages, start=100.0)

    assert len(first) == len(second) == 1
    assert [event for event, _ in reports.lines] == ["broker.reachable"]


def test_other_lines_of_the_kafka_clients_and_our_own_pass_unchanged():
    outages = BrokerOutageFilter(report=Reports())
    outages.filter(failure(0.0))
    ours = logging.LogRecord(
        "emeuse.kernel", logging.ERROR, "x.py", 1, "Unable connect to", (), None
    )
    other = logging.LogRecord("aiokafka", logging.WARNING, "x.py", 1, "Heartbeat failed", (), None)

    assert outages.filter(ours) and ours.getMessage() == "Unable connect to"
    assert outages.filter(other) and other.getMessage() == "Heartbeat failed"


def kafka_line(message: str, at: float, *args: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "aiokafka.consumer.group_coordinator", logging.ERROR, "x.py", 1, message, args, None
    )
    record.created = at
    return record


def test_what_the_clients_say_because_of_an_outage_is_counted_not_shown_while_it_lasts():
    reports = Reports()
    outages = BrokerOutageFilter(report=reports)
    heartbeat = "Heartbeat failed for group %s: coordinator (node 1) is not available"
    coordinator = "Group Coordinator Request failed: %s"

    before = kafka_line(heartbeat, 0.0, "emeuse-chronic")
    first = failure(10.0)
    during = [
        kafka_line(heartbeat, 10.5, "emeuse-chronic"),
        kafka_line(coordinator, 11.0, "NodeNotReadyError: Attempt to send a request to node 1"),
    ]
    shown = [record for record in (before, first, *during) if outages.filter(record)]
    outages.answered("Discovered coordinator 1 for group emeuse-chronic", at=20.0)

    assert shown == [before, first]
    assert reports.lines[0][1]["attempts"] == 2  # the NodeNotReadyError line is an attempt
    assert reports.lines[0][1]["lines_not_shown"] == 2
