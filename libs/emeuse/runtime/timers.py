"""What a service's timer already asked its agents for.

A timer finds steps due (an escalation, a gap, a flag) in the tables every round and asks
the key's agent for each as an event; the agent applies a step once (its id is derived),
so asking twice is harmless but noisy. A step still due is asked again only after
`reask_after` seconds (the agent may simply not have handled the first ask yet).
"""

from __future__ import annotations

# Entries older than this many re-ask windows are forgotten.
KEPT_WINDOWS = 10


class AskedSteps:
    def __init__(self, reask_after: float) -> None:
        self.reask_after = reask_after
        self._asked_at: dict[str, float] = {}

    def recently_asked(self, step_id: str, clock: float) -> bool:
        return clock - self._asked_at.get(step_id, -self.reask_after) < self.reask_after

    def mark(self, step_id: str, clock: float) -> None:
        self._asked_at[step_id] = clock

    def forget_old(self, clock: float) -> None:
        for step_id, at in list(self._asked_at.items()):
            if clock - at > KEPT_WINDOWS * self.reask_after:
                del self._asked_at[step_id]
