"""Group assignment: partition p of every input topic to one instance, sticky, with owners.

A partition task handles partition p of all the service's inputs (they are co-partitioned),
so p is assigned whole. An instance keeps the partitions it had when it rejoins; only the
partitions of an instance that joined or left move. Every member's assignment carries the
whole map partition -> owner's gRPC address, so any instance can route a read to the owner.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)


def balance(
    partitions: int, members: Mapping[str, Iterable[int]], order: Iterable[str]
) -> dict[str, list[int]]:
    """Partitions 0..n-1 over members, each with n//m or n//m+1, keeping what each owned."""
    names = list(order)
    if not names:
        return {}
    base, extra = divmod(partitions, len(names))
    quota = {name: base + (1 if i < extra else 0) for i, name in enumerate(names)}
    owned: dict[str, list[int]] = {name: [] for name in names}
    taken: set[int] = set()
    # Keep what members owned, up to their quota (a restarted member gets its own back).
    for name in names:
        for p in sorted(set(members.get(name, ()))):
            if 0 <= p < partitions and p not in taken and len(owned[name]) < quota[name]:
                owned[name].append(p)
                taken.add(p)
    free = [p for p in range(partitions) if p not in taken]
    for name in names:
        while len(owned[name]) < quota[name] and free:
            owned[name].append(free.pop(0))
    return owned


class CoPartitionedAssignor(AbstractPartitionAssignor):
    """One per instance: knows its own address and what it owns."""

    name = "emeuse-copartitioned"
    version = 0

    def __init__(self, address: str) -> None:
        self.address = address
        self.owned: list[int] = []
        self.owners: dict[int, str] = {}

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        user_data = json.dumps({"address": self.address, "owned": self.owned}).encode()
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), user_data)

    def assign(
        self,
        cluster: ClusterMetadata,
        members: Mapping[str, ConsumerProtocolMemberMetadata],
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        topics = sorted({topic for meta in members.values() for topic in meta.subscription})
        counts = [len(cluster.partitions_for_topic(topic) or ()) for topic in topics]
        partitions = min((count for count in counts if count), default=0)
        info = {}
        for member, meta in members.items():
            try:
                info[member] = json.loads(meta.user_data or b"{}")
            except ValueError:
                info[member] = {}
        # Members sorted by address, so the same instances get the same quotas each time.
        order = sorted(members, key=lambda m: (str(info[m].get("address", "")), m))
        owned = balance(partitions, {m: info[m].get("owned", ()) for m in members}, order=order)
        owners = {str(p): str(info[m].get("address", "")) for m, ps in owned.items() for p in ps}
        user_data = json.dumps({"owners": owners}).encode()
        return {
            member: ConsumerProtocolMemberAssignment(
                self.version,
                [
                    ConsumerProtocolMemberAssignment.Assignment(
                        topic, sorted(owned.get(member, []))
                    )
                    for topic in topics
                ],
                user_data,
            )
            for member in members
        }

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        self.owned = sorted({tp.partition for tp in assignment.partitions()})
        try:
            owners = json.loads(assignment.user_data or b"{}").get("owners", {})
        except ValueError:
            owners = {}
        self.owners = {int(p): address for p, address in owners.items()}
