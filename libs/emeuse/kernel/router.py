"""Answering a gRPC call from the instance that owns the key's partition.

Every instance knows the owner of each partition from the group assignment (assignor.py);
a call for a key held elsewhere is forwarded there once (a metadata flag stops loops).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from emeuse.runtime.auth import bearer
from emeuse.runtime.grpc_tls import PeerChannels

if TYPE_CHECKING:
    from emeuse.kernel.engine import Kernel
    from emeuse.kernel.tables import Table

FORWARDED = "x-emeuse-forwarded"
# An unreachable owner is asked again this many times, this far apart (a rebalance).
OWNER_ATTEMPTS, OWNER_RETRY_S = 10, 1.0
# A call for a partition being recovered here waits for it this long at most.
READY_WAIT_S = 10.0
Response = TypeVar("Response")


class Router:
    def __init__(self, kernel: Kernel, deadline_seconds: float, token: str) -> None:
        self.kernel = kernel
        self.token = token
        self.deadline = deadline_seconds
        # Opened anew once the service's certificate is renewed (grpc_tls.PeerChannels).
        self._channels = PeerChannels(kernel.settings.grpc_tls, grace_s=deadline_seconds)

    def owner(self, table: Table, key: str) -> str | None:
        return self.kernel.owner_of(table.name, key)

    def holds(self, table: Table, key: str) -> bool:
        return table.partition_of(key) in self.kernel.tasks

    def channel(self, address: str) -> grpc.aio.Channel:
        return self._channels.get(address)

    def forward_metadata(self) -> tuple[tuple[str, str], ...]:
        # The caller was authenticated here; the owner is called as this service.
        return ((FORWARDED, "1"), *bearer(self.token))

    @staticmethod
    def is_forwarded(context: grpc.aio.ServicerContext) -> bool:
        return bool(dict(context.invocation_metadata() or ()).get(FORWARDED))

    async def answer(
        self,
        table: Table,
        key: str,
        context: grpc.aio.ServicerContext,
        local: Callable[[], Awaitable[Response]],
        remote: Callable[[grpc.aio.Channel, float, Any], Awaitable[Response]],
    ) -> Response:
        """Answer from the local table or forward the call to the key's owner."""
        for attempt in range(OWNER_ATTEMPTS):
            owner = None if self.is_forwarded(context) else self.owner(table, key)
            if owner is None:
                task = self.kernel.tasks.get(table.partition_of(key))
                if task is not None and not task.ready.is_set():
                    await asyncio.wait_for(task.ready.wait(), READY_WAIT_S)
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
        table: Table,
        context: grpc.aio.ServicerContext,
        call: Callable[[grpc.aio.Channel, float, Any], Awaitable[Response]],
        *,
        timeout: float | None = None,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> list[Response]:
        """The same call answered by every other instance (for lists and sums over keys
        spread across instances); none when this call was itself forwarded."""
        if self.is_forwarded(context):
            return []
        answers: dict[str, Response] = {}
        for attempt in range(OWNER_ATTEMPTS):
            unreachable = False
            for peer in self.kernel.peers():
                if peer in answers:
                    continue
                try:
                    answers[peer] = await call(
                        self.channel(peer),
                        timeout or self.deadline,
                        (*self.forward_metadata(), *metadata),
                    )
                except grpc.aio.AioRpcError as exc:
                    # A peer that just stopped (a static member: its partitions stay its own
                    # until the session times out): the next rebalance names their owner.
                    if exc.code() == grpc.StatusCode.UNAVAILABLE and attempt + 1 < OWNER_ATTEMPTS:
                        unreachable = True
                        continue
                    await context.abort(exc.code(), f"instance {peer}: {exc.details()}")
                    raise
            if not unreachable:
                break
            await asyncio.sleep(OWNER_RETRY_S)
        return list(answers.values())

    async def close(self) -> None:
        await self._channels.close()
