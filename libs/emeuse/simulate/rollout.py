"""Experiments rolled out per territory, as the programme does: first in Meuse (55), the
pilot, then in Haute-Marne (52) and Meurthe-et-Moselle (54) from a date.

Before that date an event of 52 or 54 belongs to the baseline experiment (the territory's
usual care, `--baseline-experiment`), from it on to the run's `--experiment`; in 55 it
always belongs to the run's. The date is a simulated one: it falls among the times the
events say (with `--speed`, days before the run), so one run holds both sides of it, which
`emeuse evaluate --baseline` compares.
"""

from __future__ import annotations

from datetime import datetime

from emeuse.simulate.events import Options

PILOT = "55"


def experiment_of(options: Options, territory: str, at: datetime) -> str:
    """The experiment an event of `territory` that happened at `at` belongs to."""
    if options.rollout_at is None or territory == PILOT or at >= options.rollout_at:
        return options.experiment
    return options.baseline_experiment


def marked(options: Options, territory: str, at: datetime) -> str:
    """SimEvent.experiment for such an event: "" when it is the run's own (the default)."""
    experiment = experiment_of(options, territory, at)
    return "" if experiment == options.experiment else experiment
