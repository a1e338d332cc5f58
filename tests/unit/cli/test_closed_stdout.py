"""`emeuse ... | head`: a reader that stops early ends the command quietly, status 0.

The commands run as the shell runs them, in a process of their own whose stdout is a pipe
nobody reads any more: what a user sees is the exit status and stderr.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import TopicPartition

from emeuse.cli.closed_stdout import StdoutClosed, watched
from emeuse.cli.main import build_parser, cmd_tail, main
from emeuse.runtime.auth import add_caller
from tests.unit.cli.test_tail_and_topics import TOPIC, TwoPartitionConsumer


def closed_pipe() -> int:
    """The writing end of a pipe whose reader is gone, as `| head` leaves it."""
    reader, writer = os.pipe()
    os.close(reader)
    return writer


def emeuse_into_closed_pipe(*argv: str) -> subprocess.CompletedProcess[str]:
    writer = closed_pipe()
    try:
        return subprocess.run(
            [sys.executable, "-m", "emeuse.cli.main", *argv],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            timeout=60,
            check=False,
        )
    finally:
        os.close(writer)


def test_callers_list_into_a_closed_reader_ends_quietly_with_status_0(tmp_path: Path):
    # Its lines are printed where file errors are reported: a closed pipe is not one.
    callers = tmp_path / "callers"
    for name in ("chronic", "operator"):
        add_caller(name, callers, tmp_path / f"{name}.token")

    ended = emeuse_into_closed_pipe("callers", "list", "--callers-file", str(callers))

    assert (ended.returncode, ended.stderr) == (0, "")


def test_simulate_into_a_closed_reader_ends_quietly_with_status_0(tmp_path: Path):
    # Its summary is rich's, which on its own exits with status 1 on a closed pipe.
    events = tmp_path / "events.jsonl"

    ended = emeuse_into_closed_pipe(
        "simulate", "--dry-run", str(events), "--scale", "0.001", "--duration", "1"
    )

    assert (ended.returncode, ended.stderr) == (0, "")


def test_topics_into_a_closed_reader_ends_quietly_with_status_0(monkeypatch, capsys):
    writer = closed_pipe()
    monkeypatch.setattr(sys, "stdout", os.fdopen(writer, "w"))

    assert main(["topics", "--json"]) == 0

    assert capsys.readouterr().err == ""


class EndlessConsumer(TwoPartitionConsumer):
    def seek_to_end(self, *partitions: TopicPartition) -> None:
        pass


def test_tail_into_a_closed_reader_stops_reading_and_is_not_a_kafka_error(monkeypatch):
    # tail prints inside its Kafka error handler: the closed reader must get through it.
    monkeypatch.setattr(sys, "stdout", os.fdopen(closed_pipe(), "w"))
    consumer = EndlessConsumer()
    args = build_parser().parse_args(["tail", TOPIC])

    with pytest.raises(StdoutClosed), watched():
        cmd_tail(args, connect=lambda bootstrap: consumer)

    assert consumer.closed


def test_a_command_that_failed_keeps_its_status_when_the_reader_is_found_gone_after_it():
    # What a failed command printed is still buffered when it returns; the closed reader
    # is found by the last flush: the failure is what the shell must see, not 0.
    writer = closed_pipe()
    ended = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from emeuse.cli.closed_stdout import watched\n"
            "def failing():\n"
            "    with watched():\n"
            "        print('a line the reader never takes')\n"
            "        return 3\n"
            "sys.exit(failing())\n",
        ],
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
        # Buffered, as stdout into a pipe is by default (not under PYTHONUNBUFFERED).
        env={
            **{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
            "PYTHONPATH": os.pathsep.join(sys.path),
        },
        timeout=60,
        check=False,
    )
    os.close(writer)
    assert (ended.returncode, ended.stderr) == (3, "")
