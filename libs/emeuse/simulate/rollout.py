"""Experiments rolled out per territory, as the programme does: by default first in Meuse
(55), the pilot, then in Haute-Marne (52) and Meurthe-et-Moselle (54) from a date.

`Options.rollout` is the order, step by step (`--rollout 55,52+54`, the default: 55, then 52
and 54 together); the first step has the experiment from the start, each later one from its
date (`--rollout-at`, once per later step, or once for them all). Before its date an event
of a later step's territory belongs to the baseline experiment (the territory's usual care,
`--baseline-experiment`), from it on to the run's `--experiment`. The dates are simulated
ones: they fall among the times the events say (with `--speed`, days before the run), so
one run holds both sides of each, which `emeuse evaluate --baseline` compares.
"""

from __future__ import annotations

from datetime import datetime

from emeuse.simulate.events import Options

TERRITORIES = ("55", "52", "54")
DEFAULT_ORDER = "55,52+54"


class RolloutError(ValueError):
    """An order that does not name each territory once."""


def parse_order(text: str) -> tuple[str, ...]:
    """`55,52+54` -> ("55", "52+54"): the steps, each the territories reached together."""
    steps = tuple(step.strip() for step in text.split(","))
    codes = [code for step in steps for code in step.split("+")]
    if sorted(codes) != sorted(TERRITORIES):
        raise RolloutError(
            f"--rollout {text!r} must name 55, 52 and 54 once each, in the order the experiment "
            "reaches them: steps separated by commas, territories reached together by + "
            f"(default {DEFAULT_ORDER})"
        )
    return steps


def reached_at(options: Options, territory: str) -> datetime | None:
    """When the experiment reaches `territory`: None when it has it from the start."""
    if options.rollout_at is None:
        return None
    step = next(n for n, codes in enumerate(options.rollout) if territory in codes.split("+"))
    if step == 0:
        return None
    dates = (options.rollout_at, *options.rollout_then)
    return dates[min(step, len(dates)) - 1]


def experiment_of(options: Options, territory: str, at: datetime) -> str:
    """The experiment an event of `territory` that happened at `at` belongs to."""
    since = reached_at(options, territory)
    if since is None or at >= since:
        return options.experiment
    return options.baseline_experiment


def marked(options: Options, territory: str, at: datetime) -> str:
    """SimEvent.experiment for such an event: "" when it is the run's own (the default)."""
    experiment = experiment_of(options, territory, at)
    return "" if experiment == options.experiment else experiment
