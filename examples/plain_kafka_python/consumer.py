"""Read a partner's feed with plain kafka-python: route by ce_type, decode, commit by hand.

    python -m examples.plain_kafka_python.consumer --partner-id glucoflow \
        --config .local/secrets/partners/glucoflow.properties

For a partner who does not want the SDK (emeuse.partner). What the SDK adds on top:
retries with backoff, the dead-letter topic, metrics and JSON logs (docs/partners.md).
Each line printed is one event's ids, never its payload or the patient's pseudonym.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from google.protobuf.message import DecodeError, Message
from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition

from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, ReadingRecorded

# The generated classes of the types this partner reads, by their ce_type (full name).
TYPES: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls for cls in (ReadingRecorded, AlertRaised)
}


def read_properties(path: Path) -> dict[str, str]:
    """The connection file operations give (`emeuse partner add`): key=value lines."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def connection(args: argparse.Namespace) -> dict[str, Any]:
    if not args.config:
        return {"bootstrap_servers": args.bootstrap.split(",")}
    props = read_properties(Path(args.config))
    options: dict[str, Any] = {
        "bootstrap_servers": props["bootstrap.servers"].split(","),
        "security_protocol": props.get("security.protocol", "PLAINTEXT"),
    }
    if options["security_protocol"].startswith("SASL_"):
        options |= {
            "sasl_mechanism": props.get("sasl.mechanism", "SCRAM-SHA-512"),
            "sasl_plain_username": props["sasl.username"],
            "sasl_plain_password": props["sasl.password"],
        }
    if options["security_protocol"] == "SASL_SSL":
        # The broker's certificate is checked against the CA the file names (the platform's).
        options["ssl_cafile"] = props.get("ssl.ca.location")
    return options


def handle(type_name: str, message: Message) -> str:
    """The partner's business: here, one id worth printing per event."""
    if isinstance(message, ReadingRecorded):
        return message.reading_id
    if isinstance(message, AlertRaised):
        return message.alert_id
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.plain_kafka_python.consumer")
    parser.add_argument("--partner-id", default=os.environ.get("EMEUSE_PARTNER_ID"))
    parser.add_argument("--config", default=os.environ.get("EMEUSE_PARTNER_CONFIG"))
    parser.add_argument(
        "--bootstrap", default=os.environ.get("EMEUSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    parser.add_argument("--max-events", type=int, help="stop after N events (demos, tests)")
    args = parser.parse_args(argv)
    if not args.partner_id:
        parser.error("give --partner-id or set EMEUSE_PARTNER_ID")

    # Names of the partner's topic and group (emeuse.partners.feed_topic and friends).
    feed = f"emeuse-partner.{args.partner_id}.feed"
    consumer = KafkaConsumer(
        feed,
        group_id=f"emeuse-partner.{args.partner_id}.plain",
        enable_auto_commit=False,  # commit only what was handled: at-least-once
        auto_offset_reset="earliest",
        # The gateway writes feeds in transactions: never read what an abort threw away.
        isolation_level="read_committed",
        **connection(args),
    )
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    seen = 0
    try:
        while not stopping and (args.max_events is None or seen < args.max_events):
            done: dict[TopicPartition, OffsetAndMetadata] = {}
            for tp, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    headers = dict(record.headers or [])
                    type_name = headers.get("ce_type", b"").decode(errors="replace")
                    cls = TYPES.get(type_name)
                    outcome = "skipped"  # a type this partner does not read
                    entity = ""
                    if cls is not None:
                        try:
                            entity = handle(type_name, cls.FromString(record.value or b""))
                            outcome = "handled"
                        except DecodeError:
                            outcome = "undecodable"  # the SDK would dead-letter it
                    event_id = headers.get("ce_id", b"").decode(errors="replace")
                    print(
                        json.dumps(
                            {
                                "time": time.time(),
                                "outcome": outcome,
                                "type": type_name,
                                "event_id": event_id,
                                "id": entity,
                                "partition": record.partition,
                                "offset": record.offset,
                            }
                        ),
                        flush=True,
                    )
                    seen += 1
                    done[tp] = OffsetAndMetadata(record.offset + 1, None, -1)
            if done:
                consumer.commit(done)
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
