"""How fast a run went against what was asked, and what held it back when it fell short."""

from __future__ import annotations

from dataclasses import dataclass

KEPT_UP = 0.97  # achieved at least this share of the asked rate: the rate was sustained


@dataclass(frozen=True)
class Pace:
    events: int
    asked_per_s: float
    elapsed_s: float  # wall time from the first live event to the last one delivered
    process_cpu_s: float  # CPU time of the whole process meanwhile (every thread)
    waited_s: float  # time spent blocked on the broker (batches in flight at the limit)

    @property
    def achieved_per_s(self) -> float:
        return self.events / max(self.elapsed_s, 1e-9)

    @property
    def cpu_us_per_event(self) -> float:
        return self.process_cpu_s / max(self.events, 1) * 1e6

    def describe(self) -> str:
        head = (
            f"live events: {self.events:,} in {self.elapsed_s:.1f} s, "
            f"{self.achieved_per_s:,.0f}/s achieved of {self.asked_per_s:,.0f}/s asked; "
            f"{self.cpu_us_per_event:,.0f} us of CPU per event"
        )
        return f"{head}\n{self.limit()}"

    def limit(self) -> str:
        """What set the pace: the rate asked, the broker, this process's CPU, or the machine."""
        share = self.process_cpu_s / max(self.elapsed_s, 1e-9)
        ceiling = 1e6 / max(self.cpu_us_per_event, 1e-9)
        if self.achieved_per_s >= KEPT_UP * self.asked_per_s:
            return f"rate sustained (one free core would allow ~{ceiling:,.0f}/s at this cost)"
        if self.waited_s > 0.25 * self.elapsed_s:
            return (
                f"limited by the broker: {self.waited_s:.1f} s of {self.elapsed_s:.1f} s "
                "waiting for batches in flight to be acknowledged"
            )
        if share >= 0.85:
            return (
                f"limited by this process's CPU ({share:.0%} of a core; Python sends from one "
                f"thread): at most ~{ceiling:,.0f}/s at this cost; run several processes with "
                "different --seed values to go beyond"
            )
        return (
            f"limited by the machine: the process had only {share:.0%} of a core (other "
            f"processes compete for the CPU); with a free core ~{ceiling:,.0f}/s at this cost"
        )
