"""What the prevention service measures, beside the kernel's own metrics."""

from __future__ import annotations

from prometheus_client import Counter

MESSAGES = Counter(
    "emeuse_prevention_messages_total",
    "Messages by what happened (targeted, scheduled, sent, delivered, opened, clicked, "
    "failed, cancelled), campaign or programme, and territory.",
    ["event", "campaign", "programme", "territory"],
)
OPT_OUTS = Counter(
    "emeuse_prevention_opt_outs_total",
    "Opt-outs, from everything or from channels, by territory.",
    ["scope", "territory"],
)
PROGRAMME_ENROLMENTS = Counter(
    "emeuse_prevention_programme_enrolments_total",
    "People who started a programme, by programme and territory.",
    ["programme", "territory"],
)
INPUTS = Counter(
    "emeuse_prevention_inputs_total",
    "Person inputs and timer steps handled, by topic (or timer) and outcome.",
    ["input", "outcome"],
)


def count(counts: list[tuple[str, str, str, str]]) -> None:
    """Count what an outcome did: (event, campaign, programme, territory) each."""
    for what, campaign, programme, territory in counts:
        if what == "programme_enrolled":
            PROGRAMME_ENROLMENTS.labels(programme, territory).inc()
        else:
            MESSAGES.labels(what, campaign, programme, territory).inc()
