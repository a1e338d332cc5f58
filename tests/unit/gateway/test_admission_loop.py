"""The inbound loop goes on through a rebalance: a commit the group refuses leaves the batch
to be handled again, without stopping the consumer."""

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.errors import CommitFailedError, IllegalStateError

from emeuse.kernel.outputs import Origin, OutRecord
from emeuse.partners import dead_letter_topic
from emeuse.platform.v1.dead_letter_pb2 import MessageDeadLettered
from services.gateway.admission import admit_batch
from services.gateway.directory import PartnerDirectory
from services.gateway.domain.consent import ConsentBook

TOPIC = "emeuse-partner.glucoflow.inbound"


class Consumer:
    """Gives one record per poll; its commit fails as a rebalance makes it fail."""

    def __init__(self, error: Exception) -> None:
        self.error, self.offset = error, 0

    async def getmany(self, timeout_ms: int) -> dict:
        self.offset += 1
        record = SimpleNamespace(
            topic=TOPIC, partition=0, offset=self.offset, key=b"k", value=b"x", headers=()
        )
        return {(TOPIC, 0): [record]}

    async def commit(self) -> None:
        raise self.error


class Bus:
    settings = SimpleNamespace(service="gateway")
    origin = Origin("gateway", "emeuse/gateway", "exp")

    def __init__(self) -> None:
        self.sent: list[OutRecord] = []

    async def send(self, record: OutRecord) -> None:
        self.sent.append(record)


class Consents:
    async def seen_up_to_now(self, within_s: float) -> None:
        return None

    def book(self, patient: str) -> ConsentBook:
        return ConsentBook()


@pytest.mark.parametrize(
    "error", [IllegalStateError("No partitions assigned"), CommitFailedError("rebalanced")]
)
def test_a_commit_refused_by_a_rebalance_does_not_stop_the_inbound_loop(error):
    consumer, bus = Consumer(error), Bus()

    async def two_polls() -> None:
        for _ in range(2):
            await admit_batch(consumer, bus, PartnerDirectory(), Consents())  # type: ignore[arg-type]

    asyncio.run(two_polls())
    # Both records (no envelope) refused, the second after the first's commit failed.
    assert [r.topic for r in bus.sent] == [dead_letter_topic("glucoflow")] * 2
    letters = [MessageDeadLettered.FromString(r.value) for r in bus.sent]
    assert [x.source_offset for x in letters] == [1, 2]
    assert all(x.reason.startswith("missing header(s) ce_specversion") for x in letters)
