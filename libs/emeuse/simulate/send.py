"""Putting simulated events on the platform: gRPC calls and Kafka records, as a care
team's tool and a device would, or into a file of JSON lines (`--dry-run`).

Both transports answer through `done(kind, error)`: error is None when the call or record
was accepted, else a short reason (a status code, an exception's name).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import grpc
from google.protobuf import json_format
from kafka import KafkaProducer

from emeuse.access.v1 import access_service_pb2, access_service_pb2_grpc
from emeuse.chronic.v1 import chronic_service_pb2, chronic_service_pb2_grpc
from emeuse.home.v1 import home_service_pb2, home_service_pb2_grpc
from emeuse.prevention.v1 import prevention_service_pb2, prevention_service_pb2_grpc
from emeuse.registry import by_name
from emeuse.runtime import envelope as env
from emeuse.runtime.grpc_tls import open_channel
from emeuse.runtime.kafka_clients import client_options
from emeuse.runtime.security import NO_TLS, PLAINTEXT, GrpcTls, KafkaLogin
from emeuse.simulate.events import GRPC, SimEvent

SOURCE = "emeuse/simulate"
Done = Callable[[str, str | None], None]

# service -> (module of request messages, stub)
APIS: dict[str, tuple[Any, Callable[[grpc.Channel], Any]]] = {
    "chronic": (chronic_service_pb2, chronic_service_pb2_grpc.ChronicServiceStub),
    "home": (home_service_pb2, home_service_pb2_grpc.HomeServiceStub),
    "prevention": (prevention_service_pb2, prevention_service_pb2_grpc.PreventionServiceStub),
    "access": (access_service_pb2, access_service_pb2_grpc.AccessServiceStub),
}
DEFAULT_TARGETS = {
    "prevention": "127.0.0.1:50051",
    "chronic": "127.0.0.1:50052",
    "access": "127.0.0.1:50053",
    "home": "127.0.0.1:50054",
}
# A simulation run twice with the same seed meets its own enrolments: not an error.
ALREADY = (grpc.StatusCode.ALREADY_EXISTS,)


@dataclass
class Tally:
    """Events sent and failed per kind, from any thread."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    pending: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self) -> None:
        with self.lock:
            self.pending += 1

    def count(self, kind: str) -> None:
        """Something that happened without a call or a record (an alert left unanswered)."""
        with self.lock:
            self.sent[kind] += 1

    def done(self, kind: str, error: str | None) -> None:
        with self.lock:
            self.pending -= 1
            if error is None:
                self.sent[kind] += 1
            else:
                self.failed[kind] += 1
                self.reasons[error] += 1


class Transport(Protocol):
    def send(self, event: SimEvent, done: Done) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class FileTransport:
    """--dry-run: one JSON line per event, nothing sent."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def send(self, event: SimEvent, done: Done) -> None:
        self.out.write(event.to_json() + "\n")
        done(event.kind, None)

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        self.flush()


class PlatformTransport:
    """gRPC calls with the caller's token, and Kafka records with the platform's headers."""

    def __init__(
        self,
        bootstrap: str,
        targets: dict[str, str],
        auth: tuple[tuple[str, str], ...],
        experiment: str,
        tls: GrpcTls = NO_TLS,
        login: KafkaLogin = PLAINTEXT,
    ) -> None:
        self.auth, self.experiment = auth, experiment
        self.channels = {service: open_channel(t, tls) for service, t in targets.items()}
        self.stubs = {s: APIS[s][1](channel) for s, channel in self.channels.items()}
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap.split(","),
            client_id="emeuse-simulate",
            linger_ms=20,
            **client_options(login),
        )
        # Bounds the gRPC calls in flight: a service answers once its handler applied them.
        self.in_flight = threading.BoundedSemaphore(32)

    def send(self, event: SimEvent, done: Done) -> None:
        if event.via == GRPC:
            self._call(event, done)
        else:
            self._record(event, done)

    def _call(self, event: SimEvent, done: Done) -> None:
        service, method = event.target.split("/")
        request = json_format.ParseDict(
            event.message, getattr(APIS[service][0], f"{method}Request")()
        )
        self.in_flight.acquire()
        future = getattr(self.stubs[service], method).future(
            request, timeout=60, metadata=self.auth
        )

        def answered(call: Any) -> None:
            self.in_flight.release()
            code = call.code()
            if code == grpc.StatusCode.OK or code in ALREADY:
                done(event.kind, None)
            else:
                done(event.kind, f"{event.target} {code.name}: {call.details()}")

        future.add_done_callback(answered)

    def _record(self, event: SimEvent, done: Done) -> None:
        spec = by_name(event.target)
        if event.raw is not None:
            value = event.raw
        else:
            value = json_format.ParseDict(event.message, spec.message()).SerializeToString()
        envelope = env.new_envelope(
            event_type=spec.type_name,
            source=SOURCE,
            subject_pseudonym=event.subject,
            territory=env.territory_from_code(event.territory),
            experiment_id=self.experiment,
            schema_version=spec.schema_version,
            occurred_at=event.at,
            # The same simulated event always has the same id: a duplicate is one.
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"emeuse-simulate:{event.event_id}")),
        )
        future = self.producer.send(
            spec.name, key=event.subject.encode(), value=value, headers=env.to_headers(envelope)
        )
        future.add_callback(lambda _: done(event.kind, None))
        future.add_errback(lambda exc: done(event.kind, type(exc).__name__))

    def flush(self) -> None:
        self.producer.flush(timeout=30)

    def close(self) -> None:
        self.flush()
        self.producer.close(timeout=10)
        for channel in self.channels.values():
            channel.close()
