"""Figures of a service's state summed over the partitions this instance holds, for gauges.

Each partition's figures are counted from its whole committed state when it is opened here
(a PartitionHook's `opened`), changed by what each batch changes once it commits (the
handlers' deltas, or a part of the partition counted again, through `Tx.on_commit`), and
dropped when the partition is let go. So an
instance that restarts, or takes partitions over in a rebalance, shows at once what it
holds, and the sum over the instances is the platform's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Figures = dict[str, int]


def difference(before: Mapping[str, int], after: Mapping[str, int]) -> Figures:
    """What turns `before` into `after`, figure by figure (zeros left out)."""
    names = set(before) | set(after)
    changed = {name: after.get(name, 0) - before.get(name, 0) for name in names}
    return {name: value for name, value in changed.items() if value}


def total(each: Iterable[Mapping[str, int]]) -> Figures:
    summed: Figures = {}
    for figures in each:
        for name, value in figures.items():
            summed[name] = summed.get(name, 0) + value
    return summed


class PartitionSums:
    """Figures by partition held. Changed on the event loop, read by the scrape's thread:
    a reader takes copies, never iterates a dict being changed."""

    def __init__(self) -> None:
        self._held: dict[int, Figures] = {}

    def opened(self, partition: int, figures: Mapping[str, int]) -> None:
        self._held[partition] = dict(figures)

    def closed(self, partition: int) -> None:
        self._held.pop(partition, None)

    def add(self, partition: int, delta: Mapping[str, int]) -> None:
        """A committed change of a held partition; nothing for one not held (let go
        since: its next owner counts it from its state)."""
        held = self._held.get(partition)
        if held is None:
            return
        changed = dict(held)
        for name, value in delta.items():
            changed[name] = changed.get(name, 0) + value
        self._held[partition] = changed

    def recounted(self, partition: int, figures: Mapping[str, int]) -> None:
        """Some figures of a held partition counted again from its committed state (one
        territory's, say): they replace what it had for them; nothing for one not held."""
        held = self._held.get(partition)
        if held is None:
            return
        self._held[partition] = {**held, **figures}

    def value(self, name: str) -> float:
        return self.values(name)[0]

    def values(self, *names: str) -> tuple[float, ...]:
        """Figures read together, from the same partitions' figures (a ratio of two never
        mixes a figure before a change with one after it)."""
        held = list(self._held.values())
        return tuple(float(sum(figures.get(name, 0) for figures in held)) for name in names)

    def partitions(self) -> set[int]:
        return set(self._held)
