"""Answering a gRPC read from the instance that owns the key's table partition.

faust tables are partitioned: with several instances, only the one assigned the key's
partition holds it. The app's canonical_url is the instance's gRPC address, so faust's
router (`key_store`) names the owner; a call for a key held elsewhere is forwarded there
once (a metadata flag stops loops).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import faust
import grpc
from aiokafka.partitioner import murmur2
from faust.types import TableT
from yarl import URL

from emeuse.runtime.auth import bearer

FORWARDED = "x-emeuse-forwarded"
# An unreachable owner is asked again this many times, this far apart (a rebalance).
OWNER_ATTEMPTS, OWNER_RETRY_S = 10, 1.0
Response = TypeVar("Response")


class Router:
    def __init__(self, app: faust.App, deadline_seconds: float, token: str) -> None:
        self.app = app
        self.token = token
        self.deadline = deadline_seconds
        self._channels: dict[str, grpc.aio.Channel] = {}

    def owner(self, table: TableT, key: str) -> str | None:
        """gRPC address of the instance holding `key`, or None when it is this one."""
        # Kafka's default partitioner (murmur2), as every producer of the input topics uses;
        # the table's changelog is keyed by the same bytes and has as many partitions.
        partition = (murmur2(key.encode()) & 0x7FFFFFFF) % table.partitions
        changelog = table.changelog_topic.get_topic_name()
        metadata = self.app.router.table_metadata(table.name)
        owners = [url for url, topics in metadata.items() if partition in topics.get(changelog, ())]
        if not owners:
            # No assignment metadata yet (first rebalance): answer locally.
            return None
        url, mine = URL(owners[0]), URL(str(self.app.conf.canonical_url))
        if (url.host, url.port) == (mine.host, mine.port):
            return None
        return f"{url.host}:{url.port}"

    def holds(self, topic: str, partitions: int, key: str) -> bool:
        """Whether this instance is assigned `key`'s partition of `topic` (for timers that
        scan a table: a key of a revoked partition may linger in the memory store)."""
        partition = (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
        return any(
            tp.topic == topic and tp.partition == partition
            for tp in self.app.assignor.assigned_actives()
        )

    def peers(self, table: TableT) -> list[str]:
        """gRPC addresses of the other instances holding partitions of `table`."""
        mine = URL(str(self.app.conf.canonical_url))
        peers = []
        for owner in self.app.router.table_metadata(table.name):
            url = URL(owner)
            if (url.host, url.port) != (mine.host, mine.port):
                peers.append(f"{url.host}:{url.port}")
        return sorted(peers)

    def channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.aio.insecure_channel(address)
        return channel

    def forward_metadata(self) -> tuple[tuple[str, str], ...]:
        # The caller was authenticated here; the owner is called as this service.
        return ((FORWARDED, "1"), *bearer(self.token))

    @staticmethod
    def is_forwarded(context: grpc.aio.ServicerContext) -> bool:
        return bool(dict(context.invocation_metadata() or ()).get(FORWARDED))

    async def answer(
        self,
        table: TableT,
        key: str,
        context: grpc.aio.ServicerContext,
        local: Callable[[], Awaitable[Response]],
        remote: Callable[[grpc.aio.Channel, float, Any], Awaitable[Response]],
    ) -> Response:
        """Answer from the local table or forward the call to the key's owner."""
        for attempt in range(OWNER_ATTEMPTS):
            owner = None if self.is_forwarded(context) else self.owner(table, key)
            if owner is None:
                return await local()
            try:
                return await remote(self.channel(owner), self.deadline, self.forward_metadata())
            except grpc.aio.AioRpcError as exc:
                # An owner that just left: the next rebalance names another; ask again.
                if exc.code() == grpc.StatusCode.UNAVAILABLE and attempt + 1 < OWNER_ATTEMPTS:
                    await asyncio.sleep(OWNER_RETRY_S)
                    continue
                await context.abort(exc.code(), f"owner {owner} of the key: {exc.details()}")
                raise
        raise AssertionError("unreachable")

    async def ask_peers(
        self,
        table: TableT,
        context: grpc.aio.ServicerContext,
        call: Callable[[grpc.aio.Channel, float, Any], Awaitable[Response]],
        *,
        timeout: float | None = None,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> list[Response]:
        """The same call answered by every other instance holding `table` (for lists and
        sums over keys spread across instances); none when this call was itself forwarded,
        since the instance that forwarded it asks them all. A peer's error aborts the call."""
        if self.is_forwarded(context):
            return []
        answers = []
        for peer in self.peers(table):
            try:
                answers.append(
                    await call(
                        self.channel(peer),
                        timeout or self.deadline,
                        (*self.forward_metadata(), *metadata),
                    )
                )
            except grpc.aio.AioRpcError as exc:
                await context.abort(exc.code(), f"instance {peer}: {exc.details()}")
                raise
        return answers

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
