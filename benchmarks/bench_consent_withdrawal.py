"""Delay from a patient's consent withdrawal to the gateway applying it, on the real platform.

Run with `make bench`: scripts/bench.sh gives it a broker of its own (127.0.0.1:25092,
controller 25093, partners 25094, fresh data) and stops it after. The benchmark starts
the gateway as a process (tests/integration/harness.py), registers a partner with
`emeuse partner add` granted `ReadingRecorded`, and reads that partner's feed with the
partner's own SCRAM credential, as the start-up would. It stops what it started, pass or
fail. Target (issue 7): p95 under 1 s.

What is measured, for each of N patients (default 100, `--patients`):
1. Consent is granted with the gateway's `RecordConsent`, as the patient's app calls it,
   and a reading of the patient published on Kafka (as a device does) reaches the feed.
2. Readings keep coming: the patient's device publishes one every 20 ms from 0.2 s before
   the withdrawal until 0.3 s after it is acknowledged, while a background device
   publishes readings of all N patients in turn, 50 a second, for the whole run.
3. The withdrawal is `RecordConsent(granted=false)`, one patient at a time. It answers
   once the gateway has applied the change in the table `fan_out` filters with.

- **Delay** (the figure held to the target): from sending the withdrawal request to its
  answer. It includes the gRPC call, the `ConsentChanged` publish, the gateway consuming
  and applying it, and up to 50 ms of the servicer polling its table.
- **Checked from the outside**: no reading whose publication started after the answer may
  be in the partner's feed. One would mean the answer came before the withdrawal was
  applied, and the benchmark fails whatever the delay.
- **Exposure** (reported): how long after the withdrawal was sent a reading published
  then still reached the feed, i.e. the latest such reading's publication minus the
  request's sending (0 when none did). It can only be under the delay. Readings published
  before the withdrawal and handled after it are withheld too, and are not counted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from kafka import TopicPartition

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.cli.kafka_ready import main as kafka_ready
from emeuse.partners import PARTITIONS, feed_topic
from emeuse.partners.v1 import gateway_service_pb2 as api
from emeuse.partners.v1 import gateway_service_pb2_grpc as api_grpc
from emeuse.registry import READING_RECORDED
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import record
from tests.integration.harness import Bus, Client, Platform, emeuse, metric
from tests.integration.test_partner_gateway import consent, reading
from tests.integration.test_partner_security import (
    READING,
    Partner,
    add_partner,
    new_partner_id,
    remove_partner,
)

TARGET_S = 1.0
DEVICE_EVERY_S = 0.02
LEAD_S = 0.2
TAIL_S = 0.3
BACKGROUND_EVERY_S = 0.02


@dataclass(frozen=True)
class Sent:
    patient: str
    reading_id: str
    started: float  # time.monotonic() before the send: the gateway cannot see it earlier


@dataclass(frozen=True)
class Withdrawal:
    patient: str
    sent: float
    answered: float

    @property
    def delay(self) -> float:
        return self.answered - self.sent


class Device:
    """Publishes readings on Kafka as a device does, remembering when each send started."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.sent: list[Sent] = []
        self._lock = threading.Lock()

    def publish(self, patient: str) -> None:
        message = reading(patient)
        started = time.monotonic()
        self.bus.send(*record(READING_RECORDED, message, patient))
        with self._lock:
            self.sent.append(Sent(patient, message.reading_id, started))

    @contextmanager
    def streaming(self, patients: list[str], every: float) -> Iterator[None]:
        """Publish readings of `patients` in turn, one every `every` seconds, meanwhile."""
        stop = threading.Event()

        def run() -> None:
            n = 0
            while not stop.wait(every):
                self.publish(patients[n % len(patients)])
                n += 1

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def read_feed(partner: Partner, wanted: set[str] | None = None, timeout: float = 60) -> set[str]:
    """Reading ids in the partner's feed, read with its credential: once `wanted` are all
    there, or (wanted None) once nothing new came for 3 s."""
    consumer = partner.consumer()
    partitions = [TopicPartition(feed_topic(partner.partner_id), p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen: set[str] = set()
    deadline = last = time.monotonic()
    deadline += timeout
    try:
        while time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=300).values()
            for batch in batches:
                seen |= {ReadingRecorded.FromString(r.value).reading_id for r in batch}
                last = time.monotonic()
            if wanted is not None and wanted <= seen:
                return seen
            if wanted is None and time.monotonic() - last >= 3:
                return seen
    finally:
        consumer.close()
    raise RuntimeError(f"{len((wanted or set()) - seen)} readings missing from the feed")


def withdraw(gateway: Client, partner: Partner, patient: str) -> Withdrawal:
    request = api.RecordConsentRequest(
        patient_pseudonym=patient,
        partner_id=partner.partner_id,
        purpose="remote-monitoring",
        granted=False,
        territory="55",
        experiment_id="integration-tests",
    )
    sent = time.monotonic()
    gateway.RecordConsent(request)
    return Withdrawal(patient, sent, time.monotonic())


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, round(share * len(ordered) + 0.5) - 1)]


def show(name: str, values: list[float]) -> None:
    p50, p95 = percentile(values, 0.50), percentile(values, 0.95)
    print(
        f"{name:34} p50 {p50 * 1000:6.0f} ms   p95 {p95 * 1000:6.0f} ms"
        f"   max {max(values) * 1000:6.0f} ms"
    )


def measure(platform: Platform, bus: Bus, partner: Partner, count: int) -> int:
    gateway = Client(
        platform.services["gateway"].grpc_target, api_grpc.PartnerGatewayServiceStub, platform.auth
    )
    patients = [random_pseudonym() for _ in range(count)]
    device = Device(bus)
    for patient in patients:
        consent(platform, partner, patient, True)
        device.publish(patient)
    read_feed(partner, {s.reading_id for s in device.sent})
    print(f"{count} patients consenting, a reading of each in the feed")

    withdrawals: list[Withdrawal] = []
    with device.streaming(patients, BACKGROUND_EVERY_S):
        for patient in patients:
            with device.streaming([patient], DEVICE_EVERY_S):
                time.sleep(LEAD_S)
                withdrawals.append(withdraw(gateway, partner, patient))
                time.sleep(TAIL_S)
    forwarded = read_feed(partner)

    after: list[Sent] = []
    exposures: list[float] = []
    for w in withdrawals:
        mine = [s for s in device.sent if s.patient == w.patient]
        after += [s for s in mine if s.started > w.answered]
        shared = [s.started - w.sent for s in mine if s.reading_id in forwarded]
        exposures.append(max([d for d in shared if d > 0] or [0.0]))
    late = [s for s in after if s.reading_id in forwarded]
    delays = [w.delay for w in withdrawals]
    print(
        f"{len(device.sent)} readings published, {len(forwarded)} in the partner's feed;"
        f" {len(after)} published after their patient's withdrawal answered,"
        f" {len(late)} of them forwarded"
    )
    show("withdrawal sent -> applied (delay)", delays)
    show("withdrawal sent -> last forwarded", exposures)
    metrics = platform.services["gateway"].metrics()
    changes = metric(metrics, "emeuse_gateway_consent_applied_seconds_count")
    total = metric(metrics, "emeuse_gateway_consent_applied_seconds_sum")
    print(
        f"{'gateway histogram (stamp -> applied)':34} mean {total / changes * 1000:5.0f} ms"
        f" over {changes:.0f} changes"
    )

    failed = 0
    if late:
        print(f"FAIL: {len(late)} readings published after a withdrawal's answer were forwarded")
        failed = 1
    p95 = percentile(delays, 0.95)
    if p95 > TARGET_S:
        print(f"FAIL: p95 delay {p95 * 1000:.0f} ms exceeds the {TARGET_S * 1000:.0f} ms target")
        failed = 1
    else:
        print(f"ok: p95 delay {p95 * 1000:.0f} ms within the {TARGET_S * 1000:.0f} ms target")
    return failed


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds through the `finally` blocks, so the gateway is stopped too.
    sys.exit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("EMEUSE_KAFKA_BOOTSTRAP", "127.0.0.1:25092")
    )
    args = parser.parse_args()
    bootstrap = args.bootstrap
    if kafka_ready(["--bootstrap", bootstrap, "--timeout", "5"]) != 0:
        print(f"no Kafka broker answers on {bootstrap}: run it with `make bench`")
        return 2
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    created = emeuse("topics", "create", bootstrap=bootstrap)
    if created.returncode != 0:
        print(created.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-consent-") as workdir:
        platform = Platform(bootstrap, Path(workdir))
        bus = Bus(bootstrap)
        partner = None
        try:
            platform.start("gateway").wait_serving()
            partner = add_partner(bootstrap, Path(workdir), new_partner_id(), "--read", READING)
            return measure(platform, bus, partner, args.patients)
        finally:
            platform.stop_all()
            if partner is not None:
                remove_partner(bootstrap, partner)
            bus.close()


if __name__ == "__main__":
    sys.exit(main())
