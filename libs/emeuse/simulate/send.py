"""Putting simulated events on the platform: gRPC calls and Kafka records, as a care
team's tool and a device would, or into a file of JSON lines (`--dry-run`).

Both transports answer through `done(kind, error)`: error is None when the call or record
was accepted, else a short reason (a status code, an exception's name).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol, cast

import grpc
from google.protobuf import json_format

from emeuse.access.v1 import access_service_pb2, access_service_pb2_grpc
from emeuse.chronic.v1 import chronic_service_pb2, chronic_service_pb2_grpc
from emeuse.cli.errors import CliError
from emeuse.home.v1 import home_service_pb2, home_service_pb2_grpc
from emeuse.partner.inbound import PublishError, inbound_record
from emeuse.partner.settings import connection_from_properties
from emeuse.partners.v1 import gateway_service_pb2, gateway_service_pb2_grpc
from emeuse.prevention.v1 import prevention_service_pb2, prevention_service_pb2_grpc
from emeuse.registry import READING_RECORDED, TopicSpec, by_name
from emeuse.runtime import envelope as env
from emeuse.runtime.grpc_tls import open_channel
from emeuse.runtime.kafka_clients import client_options
from emeuse.runtime.security import NO_TLS, PLAINTEXT, GrpcTls, KafkaLogin
from emeuse.simulate.batches import BatchProducer, Headers
from emeuse.simulate.encode import build
from emeuse.simulate.events import GRPC, SimEvent, rfc3339
from emeuse.simulate.partners import PARTNER, register
from emeuse.simulate.replay import record_id
from emeuse.simulate.turns import Turns

SOURCE = "emeuse/simulate"
Done = Callable[[str, str | None], None]

# service -> (module of request messages, stub)
APIS: dict[str, tuple[Any, Callable[[grpc.Channel], Any]]] = {
    "chronic": (chronic_service_pb2, chronic_service_pb2_grpc.ChronicServiceStub),
    "home": (home_service_pb2, home_service_pb2_grpc.HomeServiceStub),
    "prevention": (prevention_service_pb2, prevention_service_pb2_grpc.PreventionServiceStub),
    "access": (access_service_pb2, access_service_pb2_grpc.AccessServiceStub),
    "gateway": (gateway_service_pb2, gateway_service_pb2_grpc.PartnerGatewayServiceStub),
}
DEFAULT_TARGETS = {
    "prevention": "127.0.0.1:50051",
    "chronic": "127.0.0.1:50052",
    "access": "127.0.0.1:50053",
    "home": "127.0.0.1:50054",
    "gateway": "127.0.0.1:50055",
}
# A simulation run twice with the same seed meets its own enrolments: not an error.
ALREADY = (grpc.StatusCode.ALREADY_EXISTS,)
# A service behind on its inputs answers a write it took but has not applied yet with
# DEADLINE_EXCEEDED and "ask again" (emeuse.runtime.calls): the same call carries the same
# event id, so it is asked again, after these waits, and applied once.
ASK_AGAIN_AFTER_S = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
NOT_APPLIED_YET = "accepted but not applied yet"


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

    def count(self, kind: str, times: int = 1) -> None:
        """Something that happened without a call or a record (an alert left unanswered)."""
        with self.lock:
            self.sent[kind] += times

    def fail(self, kind: str, reason: str, times: int = 1) -> None:
        """Something seen that should not have happened (a partner fed without consent)."""
        with self.lock:
            self.failed[kind] += times
            self.reasons[reason] += times

    def done(self, kind: str, error: str | None) -> None:
        with self.lock:
            self.pending -= 1
            if error is None:
                self.sent[kind] += 1
            else:
                self.failed[kind] += 1
                self.reasons[error] += 1


class Transport(Protocol):
    @property
    def waited_s(self) -> float:
        """Time spent blocked waiting for the platform to take more."""

    def send(self, event: SimEvent, done: Done) -> None: ...

    def idle(self) -> None:
        """Nothing to send for a while: send what waits."""

    def register_partners(self, partner_ids: list[str]) -> None:
        """Have the partners registered (and their settings files at hand)."""

    def flush(self) -> None: ...

    def close(self) -> None: ...


class FileTransport:
    """--dry-run: one JSON line per event, nothing sent."""

    waited_s = 0.0

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def send(self, event: SimEvent, done: Done) -> None:
        self.out.write(event.to_json() + "\n")
        done(event.kind, None)

    def idle(self) -> None:
        pass

    def register_partners(self, partner_ids: list[str]) -> None:
        pass

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
        partner_bootstrap: str = "127.0.0.1:9094",
        partner_secrets: Path = Path(".local/secrets/partners"),
        tls: GrpcTls = NO_TLS,
        login: KafkaLogin = PLAINTEXT,
        baseline: str = "",
        producer: BatchProducer | None = None,
        calls_made_within_s: float = 60.0,
        closing_within_s: float = 5.0,
    ) -> None:
        """`experiment`: what the records belong to unless one says otherwise; `baseline`,
        when the run rolls it out per territory, the experiment before it (rollout.py);
        `producer`: the records' (a fake in tests), by default one on `bootstrap`;
        `calls_made_within_s`: how long `flush` waits for the calls handed to be made,
        `closing_within_s` how long `close` waits for the calls' thread to end."""
        self.calls_made_within_s, self.closing_within_s = calls_made_within_s, closing_within_s
        self.auth, self.experiment, self.baseline = auth, experiment, baseline
        self.bootstrap, self.partner_bootstrap = bootstrap, partner_bootstrap
        self.partner_secrets = partner_secrets
        # partner id -> a producer with the partner's own credential (its settings file)
        self.partner_producers: dict[str, BatchProducer] = {}
        self.channels = {service: open_channel(t, tls) for service, t in targets.items()}
        self.stubs = {s: APIS[s][1](channel) for s, channel in self.channels.items()}
        self.producer = producer or BatchProducer(
            self._delivered, bootstrap_servers=bootstrap.split(","), **client_options(login)
        )
        # (topic, territory, experiment) -> the headers every record of theirs shares
        self.headers: dict[tuple[str, str, str], Headers] = {}
        self.subjects: set[str] = set()
        self.specs: dict[str, TopicSpec] = {}
        self.recorded = (0.0, b"")  # (monotonic second, ce_recordedtime) of the last record
        # Bounds the gRPC calls in flight: a service answers once its handler applied them.
        self.in_flight = threading.BoundedSemaphore(32)
        self.calls_waited_s = 0.0
        # Calls a service took but had not applied yet, asked again (ASK_AGAIN_AFTER_S).
        self.calls_asked_again = 0
        self.turns: Turns[tuple[SimEvent, Done]] = Turns()
        # Calls are made from a thread of their own, in the order they come: a platform slow
        # to answer holds them back, never the records (the devices do not wait for it).
        self.calls: queue.SimpleQueue[tuple[SimEvent, Done] | threading.Event | None] = (
            queue.SimpleQueue()
        )
        self.caller = threading.Thread(target=self._make_calls, name="grpc-calls", daemon=True)
        self.caller.start()

    def send(self, event: SimEvent, done: Done) -> None:
        if event.via == GRPC:
            self._call(event, done)
        elif event.via == PARTNER:
            self._partner_record(event, done)
        else:
            self._record(event, done)

    def register_partners(self, partner_ids: list[str]) -> None:
        register(
            partner_ids,
            self.bootstrap,
            self.partner_bootstrap,
            self.partner_secrets,
            [self.experiment, *([self.baseline] if self.baseline else [])],
        )

    def _partner_record(self, event: SimEvent, done: Done) -> None:
        """A reading of the partner's device, made as the partner SDK makes it
        (`inbound_record`), sent on its inbound topic with its credential."""
        partner_id = event.target
        producer = self.partner_producers.get(partner_id)
        if producer is None:
            settings = self.partner_secrets / f"{partner_id}.properties"
            try:
                connection = connection_from_properties(settings)
            except (OSError, ValueError) as exc:
                raise CliError(f"partner {partner_id}'s settings: {exc}") from None
            producer = BatchProducer(
                self._delivered, client_id=f"partner-{partner_id}", **connection.client_options()
            )
            self.partner_producers[partner_id] = producer
        try:
            record = inbound_record(
                partner_id,
                build(READING_RECORDED.message, event.message),
                territory=event.territory,
                experiment_id=event.experiment or self.experiment,
                occurred_at=event.at,
                event_id=record_id(event),
            )
        except PublishError as exc:
            # What the SDK refuses, a partner's app cannot send: a failure of the run, named,
            # not its end (an id whose digits read as a NIR with a valid key is refused).
            done(event.kind, f"partner SDK refused it: {exc}")
            return
        producer.add(
            record.topic, record.key or b"", record.value, record.headers, (done, event.kind)
        )

    def _call(self, event: SimEvent, done: Done) -> None:
        self.calls.put((event, done))

    def _make_calls(self) -> None:
        while (item := self.calls.get()) is not None:
            if isinstance(item, threading.Event):  # `flush`: every call before it is made
                item.set()
                continue
            event, done = item
            if not self.turns.take(event.subject, (event, done)):
                continue  # after the person's call in flight (turns.py)
            if not self.in_flight.acquire(blocking=False):
                began = time.monotonic()
                self.in_flight.acquire()
                self.calls_waited_s += time.monotonic() - began
            self._start_call(event, done)

    def _start_call(self, event: SimEvent, done: Done, asked: int = 0) -> None:
        """Make the call, holding a slot of in_flight; its answer hands the slot to the
        person's next call, if one waits, else gives it back. A call the service took but
        has not applied yet is asked again, keeping the slot (the person's next call waits)."""
        try:
            service, method = event.target.split("/")
            request = json_format.ParseDict(
                event.message, getattr(APIS[service][0], f"{method}Request")()
            )
            future = getattr(self.stubs[service], method).future(
                request, timeout=60, metadata=self.auth
            )
        except Exception as exc:  # a call that cannot be made failed; the person goes on
            done(event.kind, f"{event.target} not sent: {type(exc).__name__}")
            self._after(event)
            return

        def answered(call: Any) -> None:
            code = call.code()
            if (
                code == grpc.StatusCode.DEADLINE_EXCEEDED
                and NOT_APPLIED_YET in (call.details() or "")
                and asked < len(ASK_AGAIN_AFTER_S)
            ):
                self.calls_asked_again += 1
                again = threading.Timer(
                    ASK_AGAIN_AFTER_S[asked], self._start_call, (event, done, asked + 1)
                )
                again.daemon = True
                again.start()
                return
            try:
                if code == grpc.StatusCode.OK or code in ALREADY:
                    done(event.kind, None)
                else:
                    done(event.kind, f"{event.target} {code.name}: {call.details()}")
            finally:  # whatever `done` does, the person's next call goes
                self._after(event)

        future.add_done_callback(answered)

    def _after(self, event: SimEvent) -> None:
        following = self.turns.answered(event.subject)
        if following is None:
            self.in_flight.release()
        else:
            self._start_call(*following)

    def _record(self, event: SimEvent, done: Done) -> None:
        spec = self.specs.get(event.target)
        if spec is None:
            spec = self.specs[event.target] = by_name(event.target)
        if event.raw is not None:
            value = event.raw
        else:
            value = build(spec.message, event.message).SerializeToString()
        # The same simulated event always has the same id: a duplicate is one.
        event_id = record_id(event)
        experiment = event.experiment or self.experiment
        shared = self.headers.get((spec.name, event.territory, experiment))
        if shared is None or event.subject not in self.subjects:
            shared = self._shared_headers(spec, event, event_id)
        headers = [
            *shared,
            (env.H_ID, event_id.encode()),
            (env.H_CORRELATION, event_id.encode()),
            (env.H_TIME, rfc3339(event.at).encode()),
            (env.H_RECORDED, self._recorded_at()),
        ]
        if event.subject:
            headers.append((env.H_SUBJECT, event.subject.encode()))
        key = event.subject.encode()
        self.producer.add(spec.name, key, value, headers, (done, event.kind))

    def _recorded_at(self) -> bytes:
        """Now, as ce_recordedtime: read from the clock at most once a millisecond (at 5,000
        records/s, formatting it for each record was as dear as building its headers)."""
        now = time.monotonic()
        if now - self.recorded[0] >= 0.001:
            self.recorded = (now, rfc3339(datetime.now(UTC)).encode())
        return self.recorded[1]

    def _shared_headers(self, spec: TopicSpec, event: SimEvent, event_id: str) -> Headers:
        """What the envelope of a record of this topic, territory and experiment always holds:
        built and validated once by the runtime's envelope (as is each new subject's pseudonym)."""
        experiment = event.experiment or self.experiment
        envelope = env.new_envelope(
            event_type=spec.type_name,
            source=SOURCE,
            subject_pseudonym=event.subject,
            territory=env.territory_from_code(event.territory),
            experiment_id=experiment,
            schema_version=spec.schema_version,
            occurred_at=event.at,
            event_id=event_id,
        )
        self.subjects.add(event.subject)
        varying = {env.H_ID, env.H_CORRELATION, env.H_TIME, env.H_RECORDED, env.H_SUBJECT}
        shared = [(k, v) for k, v in env.to_headers(envelope) if k not in varying]
        self.headers[spec.name, event.territory, experiment] = shared
        return shared

    @staticmethod
    def _delivered(tags: Counter[Hashable], error: str | None) -> None:
        for tag, count in tags.items():
            done, kind = cast(tuple[Done, str], tag)
            for _ in range(count):
                done(kind, error)

    @property
    def waited_s(self) -> float:
        """Time the records waited for the broker (the calls wait on their own thread)."""
        producers = (self.producer, *self.partner_producers.values())
        return sum(p.waited_s for p in producers)

    def idle(self) -> None:
        for producer in (self.producer, *self.partner_producers.values()):
            producer.send_lingering()

    def flush(self) -> None:
        """Every record delivered, and every call handed so far made (their answers come
        when they come, as before the calls had a thread of their own); a call still not
        made after `calls_made_within_s` (the platform held the 32 in flight) is a failure."""
        made = threading.Event()
        self.calls.put(made)
        for producer in (self.producer, *self.partner_producers.values()):
            producer.flush(timeout=30)
        if not made.wait(timeout=self.calls_made_within_s):
            # Counted as failures now, never made later: the run's summary is printed next.
            self._drop_calls(f"not made in {self.calls_made_within_s:g} s", until=made)

    def close(self) -> None:
        for producer in (self.producer, *self.partner_producers.values()):
            producer.close()
        self.calls.put(None)
        self.caller.join(timeout=self.closing_within_s)
        if self.caller.is_alive():  # held by a platform slow to answer: what waits is not sent
            self._drop_calls("not sent: closing")
            self.calls.put(None)  # the thread ends once it is let go
        for channel in self.channels.values():
            channel.close()

    def _drop_calls(self, reason: str, until: threading.Event | None = None) -> None:
        """Each call still queued (up to `until`) answered `done(kind, "<target> <reason>")`,
        so the tally's pending and failed stay true; the calls' thread takes what it has."""
        while True:
            try:
                item = self.calls.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, threading.Event):
                item.set()
                if item is until:
                    return
            elif item is not None:
                event, done = item
                done(event.kind, f"{event.target} {reason}")
