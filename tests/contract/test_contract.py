"""The contract partners rely on: generated code matches proto/, every topic's message
round-trips, and the headers follow the CloudEvents Kafka binding."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf import descriptor_pb2

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import TOPICS
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import decode

ROOT = Path(__file__).resolve().parents[2]


def test_committed_generated_code_is_what_make_proto_writes():
    done = subprocess.run(
        [str(ROOT / "scripts/proto.sh"), "check"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr


def test_every_topic_message_round_trips_through_the_kernels_decoder():
    for spec in TOPICS:
        message = spec.message()
        for name in spec.required:
            field = message.DESCRIPTOR.fields_by_name[name]
            if field.message_type is not None:
                getattr(message, name).SetInParent()
            elif field.enum_type is not None or field.type != field.TYPE_STRING:
                setattr(message, name, 1)
            else:
                setattr(message, name, "x")
        assert decode(spec, message.SerializeToString()) == message, spec.name


def test_every_event_lives_in_a_versioned_emeuse_package():
    for spec in TOPICS:
        assert re.fullmatch(r"emeuse\.[a-z]+\.v[0-9]+\.[A-Z][A-Za-z]+", spec.type_name), (
            spec.type_name
        )


def test_events_are_named_as_past_facts():
    for spec in TOPICS:
        name = spec.message.DESCRIPTOR.name
        # Past participles: regular (-ed), and the irregular ones the contract uses.
        assert re.search(r"(ed|Raised|Withdrawn)$", name) or name.endswith("Lettered"), name


def test_header_names_follow_the_cloudevents_kafka_binding():
    envelope = env.new_envelope(
        event_type="emeuse.chronic.v1.AlertRaised",
        source="emeuse/chronic",
        subject_pseudonym="",
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="x",
        schema_version="v1",
        occurred_at=datetime.now(UTC),
        cause=EventEnvelope(event_id="c", correlation_id="c"),
    )
    names = [name for name, _ in env.to_headers(envelope)]
    assert "content-type" in names
    # Extension attribute names: lowercase letters and digits only, after the ce_ prefix.
    assert all(re.fullmatch(r"ce_[a-z0-9]+", name) for name in names if name != "content-type")


def test_no_event_field_is_named_like_an_identity():
    forbidden = re.compile(r"(^|_)(name|ins|nir|address|phone|email|birth)(_|$)")
    for spec in TOPICS:
        proto = descriptor_pb2.FileDescriptorProto()
        spec.message.DESCRIPTOR.file.CopyToProto(proto)
        for message in proto.message_type:
            for field in message.field:
                assert not forbidden.search(field.name), f"{message.name}.{field.name}"
