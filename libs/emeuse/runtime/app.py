"""The faust app factory: one shape for every service's worker."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import faust
from faust.serializers import codecs
from faust.types import TableT

from emeuse.registry import PARTITIONS, TOPICS
from emeuse.runtime.codec import ProtobufCodec, Utf8Codec
from emeuse.runtime.faust_fixes import keep_queued_records_while_flowing
from emeuse.runtime.settings import ServiceSettings

KEY_CODEC = "emeuse-utf8"


def protobuf_codec_name(type_name: str) -> str:
    return f"protobuf:{type_name}"


def register_codecs() -> None:
    """The UTF-8 key codec, and one faust codec per registry message type, so a consumer
    can declare `value_serializer="protobuf:emeuse.chronic.v1.AlertRaised"`. The platform's
    own agents read raw bytes and decode in the bus, to dead-letter what fails."""
    if KEY_CODEC not in codecs.codecs:
        codecs.register(KEY_CODEC, Utf8Codec())
    for spec in TOPICS:
        name = protobuf_codec_name(spec.type_name)
        if name not in codecs.codecs:
            codecs.register(name, ProtobufCodec(spec.message))


def create_app(settings: ServiceSettings) -> faust.App:
    """A faust app for the service, at-least-once, tables co-partitioned with the registry."""
    register_codecs()
    keep_queued_records_while_flowing()
    datadir = (settings.data_dir / f"{settings.app_id}-{settings.grpc_port}").resolve()
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap],
        store="memory://",
        autodiscover=False,
        # At-least-once: faust's exactly_once mode duplicates and crashes (faust #323, #517).
        processing_guarantee="at_least_once",
        topic_partitions=PARTITIONS,
        topic_replication_factor=settings.replication_factor,
        # Registry topics are created by `emeuse topics create`; only faust's own
        # changelogs are declared by the worker.
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # The default waits for every buffered event on SIGTERM and can hang shutdown.
        stream_wait_empty=False,
        # The gRPC server registered with app.web_server is this worker's "web server";
        # the router's key_store answers with its address, so reads can be routed.
        web_enabled=True,
        canonical_url=f"http://{settings.advertised_host}:{settings.grpc_port}",
        datadir=str(datadir),
        key_serializer=KEY_CODEC,
        value_serializer="raw",
        broker_commit_every=100,
        broker_commit_interval=1.0,
    )


class TableKey(str):
    """A table key: the UTF-8 text of the record key (a pseudonym).

    faust picks a table's changelog key codec from its key type (`_options.serializer`,
    json for a plain str) and ignores a Schema's. A JSON key ('"psn-..."') would hash to
    another partition than the topic's raw key, and the router would send reads to the
    wrong instance; this type makes the changelog key the same bytes as the topic's.
    """

    _options = SimpleNamespace(serializer=KEY_CODEC)

    @classmethod
    def from_data(cls, data: Any, preferred_type: Any = None) -> str:
        return str(data)


def json_table(app: faust.App, name: str, help: str) -> TableT:
    """A table keyed by UTF-8 text (the topics' keys) holding JSON values, default {}."""
    return app.Table(name, default=dict, key_type=TableKey, partitions=PARTITIONS, help=help)
