"""The CLI's answers to bad input: one clear line on stderr, a non-zero exit, no traceback.

None of these reaches a broker: they fail on validation first, or (the last one) on a
port where nothing listens.
"""

import json

from aiokafka.errors import KafkaConnectionError

from emeuse.cli.errors import CliError
from emeuse.cli.kafka import kafka_errors
from emeuse.cli.main import main
from emeuse.runtime.pseudonym import random_pseudonym

PATIENT = random_pseudonym()
READING = json.dumps(
    {
        "reading_id": "r-1",
        "patient_pseudonym": PATIENT,
        "loinc_code": "2339-0",
        "value": 52,
        "unit": "mg/dL",
        "measured_at": "2026-11-28T07:00:00Z",
    }
)
PLACE = ["--territory", "55", "--experiment", "exp-1"]


def run(capsys, *argv):
    try:
        status = main(list(argv))
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_clear_line(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("emeuse: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_an_unknown_type_is_refused_with_the_known_ones_listed(capsys):
    status, out, err = run(capsys, "publish", "emeuse.chronic.v1.Nothing", "--json", "{}", *PLACE)
    assert status == 1 and out == ""
    assert_one_clear_line(
        err, "unknown event type 'emeuse.chronic.v1.Nothing'", "emeuse.chronic.v1.ReadingRecorded"
    )


def test_text_that_is_not_json_is_refused(capsys):
    status, _, err = run(
        capsys, "publish", "emeuse.chronic.v1.ReadingRecorded", "--json", "{reading", *PLACE
    )
    assert status == 1
    assert_one_clear_line(err, "--json is not valid JSON")


def test_a_field_of_the_wrong_type_is_named(capsys):
    bad = json.dumps({"reading_id": "r-1", "value": "high"})
    status, _, err = run(
        capsys, "publish", "emeuse.chronic.v1.ReadingRecorded", "--json", bad, *PLACE
    )
    assert status == 1
    assert_one_clear_line(err, "not a valid emeuse.chronic.v1.ReadingRecorded", "value")


def test_an_unknown_field_is_named(capsys):
    bad = json.dumps({"reading_id": "r-1", "patient_name": "Jeanne Dupont"})
    status, _, err = run(
        capsys, "publish", "emeuse.chronic.v1.ReadingRecorded", "--json", bad, *PLACE
    )
    assert status == 1
    assert_one_clear_line(err, "patient_name")


def test_a_missing_required_field_is_named(capsys):
    incomplete = json.dumps(
        {"reading_id": "r-1", "patient_pseudonym": PATIENT, "loinc_code": "2339-0"}
    )
    status, _, err = run(
        capsys, "publish", "emeuse.chronic.v1.ReadingRecorded", "--json", incomplete, *PLACE
    )
    assert status == 1
    assert_one_clear_line(err, "lacks required field(s) unit, measured_at")


def test_a_territory_outside_the_programme_is_refused(capsys):
    status, _, err = run(
        capsys,
        "publish",
        "emeuse.chronic.v1.ReadingRecorded",
        "--json",
        READING,
        "--territory",
        "75",
        "--experiment",
        "exp-1",
    )
    assert status == 1
    assert_one_clear_line(err, "52, 54 or 55")


def test_publishing_without_a_territory_says_how_to_give_one(capsys, monkeypatch):
    monkeypatch.delenv("EMEUSE_TERRITORY", raising=False)
    status, _, err = run(
        capsys,
        "publish",
        "emeuse.chronic.v1.ReadingRecorded",
        "--json",
        READING,
        "--experiment",
        "exp-1",
    )
    assert status == 1
    assert_one_clear_line(err, "--territory", "EMEUSE_TERRITORY")


def test_a_name_as_subject_is_refused(capsys):
    status, _, err = run(
        capsys,
        "publish",
        "emeuse.chronic.v1.ReadingRecorded",
        "--json",
        READING,
        "--subject",
        "Jeanne Dupont",
        *PLACE,
    )
    assert status == 1
    assert_one_clear_line(err, "pseudonym")


def test_a_type_on_several_topics_asks_for_one(capsys):
    status, _, err = run(
        capsys, "publish", "emeuse.platform.v1.MessageDeadLettered", "--json", "{}", *PLACE
    )
    assert status == 1
    assert_one_clear_line(err, "--topic", "emeuse.chronic.dead-letter.v1")


def test_tailing_an_unknown_topic_is_refused(capsys):
    status, _, err = run(capsys, "tail", "emeuse.nowhere.v1")
    assert status == 1
    assert_one_clear_line(err, "unknown topic 'emeuse.nowhere.v1'")


def test_a_malformed_bootstrap_is_refused(capsys):
    status, _, err = run(capsys, "topics", "--bootstrap", "nohostport")
    assert status == 2
    assert_one_clear_line(err, "expected host:port")


def test_a_missing_argument_is_one_line_with_exit_2(capsys):
    status, _, err = run(capsys, "publish", "emeuse.chronic.v1.ReadingRecorded")
    assert status == 2
    assert_one_clear_line(err, "--json")


def test_an_unreachable_broker_is_one_line(capsys):
    status, _, err = run(
        capsys,
        "publish",
        "emeuse.chronic.v1.ReadingRecorded",
        "--json",
        READING,
        *PLACE,
        "--bootstrap",
        "127.0.0.1:1",
    )
    assert status == 1
    assert_one_clear_line(err, "Kafka at 127.0.0.1:1")


def test_the_registry_lists_every_topic_as_json(capsys):
    status, out, _ = run(capsys, "topics", "--json")
    assert status == 0
    topics = [json.loads(line) for line in out.splitlines()]
    reading = next(t for t in topics if t["name"] == "emeuse.chronic.reading-recorded.v1")
    assert reading == {
        "name": "emeuse.chronic.reading-recorded.v1",
        "type": "emeuse.chronic.v1.ReadingRecorded",
        "key": "patient_pseudonym",
        "partitions": 6,
        "cleanup": "delete",
        "retention_days": 30,
        "owner": "chronic",
        "description": reading["description"],
    }


def test_a_name_given_as_experiment_is_refused(capsys):
    status, _, err = run(
        capsys,
        "publish",
        "emeuse.chronic.v1.ReadingRecorded",
        "--json",
        READING,
        "--territory",
        "55",
        "--experiment",
        "Jean Dupont",
    )
    assert status == 1
    assert_one_clear_line(err, "ce_experiment")


def test_json_that_is_not_an_object_is_refused(capsys):
    status, _, err = run(
        capsys, "publish", "emeuse.chronic.v1.ReadingRecorded", "--json", "[1]", *PLACE
    )
    assert status == 1
    assert_one_clear_line(err, "must be a JSON object")


def test_a_bad_replication_factor_in_the_environment_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv("EMEUSE_REPLICATION_FACTOR", "abc")
    status, _, err = run(capsys, "topics", "create", "--bootstrap", "127.0.0.1:1")
    assert status == 2
    assert_one_clear_line(err, "--replication-factor='abc'")


def test_a_raw_read_the_broker_refuses_is_one_clear_line_not_a_traceback():
    # `tail` re-reads a record kafka-python cannot decode with aiokafka: its errors too.
    try:
        with kafka_errors("127.0.0.1:9094"):
            raise KafkaConnectionError("Unable to bootstrap from 127.0.0.1:9094")
    except CliError as exc:
        assert str(exc).startswith("Kafka at 127.0.0.1:9094: KafkaConnectionError")
    else:
        raise AssertionError("no CliError")
