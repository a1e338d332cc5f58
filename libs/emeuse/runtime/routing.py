"""Answering a gRPC read from the instance that owns the key's table partition.

faust tables are partitioned: with several instances, only the one assigned the key's
partition holds it. The app's canonical_url is the instance's gRPC address, so faust's
router (`key_store`) names the owner; a call for a key held elsewhere is forwarded there
once (a metadata flag stops loops).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import faust
import grpc
from aiokafka.partitioner import murmur2
from faust.types import TableT
from yarl import URL

from emeuse.runtime.auth import bearer

FORWARDED = "x-emeuse-forwarded"
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

    async def answer(
        self,
        table: TableT,
        key: str,
        context: grpc.aio.ServicerContext,
        local: Callable[[], Awaitable[Response]],
        remote: Callable[[grpc.aio.Channel, float, Any], Awaitable[Response]],
    ) -> Response:
        """Answer from the local table or forward the call to the key's owner."""
        metadata = dict(context.invocation_metadata() or ())
        owner = None if metadata.get(FORWARDED) else self.owner(table, key)
        if owner is None:
            return await local()
        channel = self._channels.get(owner)
        if channel is None:
            channel = self._channels[owner] = grpc.aio.insecure_channel(owner)
        try:
            # The caller was authenticated here; the owner is called as this service.
            return await remote(channel, self.deadline, ((FORWARDED, "1"), *bearer(self.token)))
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), f"owner {owner} of the key: {exc.details()}")
            raise

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
