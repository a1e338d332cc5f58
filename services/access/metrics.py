"""What the access service measures, beside the kernel's own metrics."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from prometheus_client import Counter, Gauge, Histogram

from emeuse.access.v1.access_events_pb2 import SlotBooked, Urgency
from emeuse.kernel.sums import PartitionSums
from services.access import figures
from services.access.domain.agenda import URGENCIES
from services.access.scheduling import Agenda, Result

REQUESTS = Counter(
    "emeuse_access_requests_total",
    "Requests by urgency, territory and what became of them "
    "(received, booked, flagged, cancelled, rebooked, completed, no_show, withdrawn).",
    ["urgency", "territory", "outcome"],
)
REQUEST_TO_BOOKING = Histogram(
    "emeuse_access_request_to_booking_seconds",
    "Time from a request to its booking.",
    ["urgency"],
    buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800),
)
REQUEST_TO_CONSULTATION = Histogram(
    "emeuse_access_request_to_consultation_seconds",
    "Time from a request to the start of its consultation.",
    ["urgency"],
    buckets=(300, 900, 3600, 7200, 14400, 43200, 86400, 259200, 604800, 1209600),
)
SLOT_UTILISATION = Gauge(
    "emeuse_access_slot_utilisation",
    "Booked over published slots not started yet, per territory (0 to 1), on the partitions "
    "this instance holds (0 elsewhere: max instances).",
    ["territory"],
)
UNMET_REQUESTS = Gauge(
    "emeuse_access_unmet_requests",
    "Requests waiting past their urgency's booking delay, per territory and urgency, on the "
    "partitions this instance holds (sum instances).",
    ["territory", "urgency"],
)
WAITING_REQUESTS = Gauge(
    "emeuse_access_waiting_requests",
    "Requests waiting for a slot, per territory and urgency, on the partitions this instance "
    "holds (sum instances).",
    ["territory", "urgency"],
)
# The agenda gauges' figures per partition held: counted from the stored agendas when a
# partition is opened here (processing's partition hook), counted again for a territory
# shortly after its agenda changes (processing's agenda-gauges timer).
HELD = PartitionSums()


def urgency_name(value: int) -> str:
    return Urgency.Name(value).removeprefix("URGENCY_").lower()  # type: ignore[arg-type]


def count(agenda: Agenda, result: Result) -> list[Callable[[], None]]:
    """What a change of the agenda counts (first bookings, and its observations), read now
    and applied when its batch commits (Tx.on_commit): later changes in the same batch
    must not change what this one counted."""
    updates: list[Callable[[], None]] = []
    for fact in result.facts:
        booked = agenda.request(getattr(fact.message, "request_id", ""))
        if isinstance(fact.message, SlotBooked) and booked and booked.bookings_made == 1:
            # A request's first booking only: a reschedule or rebooking is not a new one.
            urgency = urgency_name(booked.urgency)
            updates.append(
                partial(REQUEST_TO_BOOKING.labels(urgency).observe, fact.message.waited.ToSeconds())
            )
            updates.append(REQUESTS.labels(urgency, agenda.territory, "booked").inc)
    for seen in result.observations:
        urgency = urgency_name(seen.urgency)
        updates.append(REQUESTS.labels(urgency, agenda.territory, seen.what).inc)
        if seen.what == "consulted":
            updates.append(partial(REQUEST_TO_CONSULTATION.labels(urgency).observe, seen.seconds))
    return updates


def utilisation(territory: str) -> float:
    booked, upcoming = HELD.values(
        figures.booked_slots(territory), figures.upcoming_slots(territory)
    )
    return booked / upcoming if upcoming else 0.0


def watch(territories: tuple[str, ...]) -> None:
    """Have the gauges read the figures of the partitions held."""
    for territory in territories:
        SLOT_UTILISATION.labels(territory).set_function(partial(utilisation, territory))
        for urgency in URGENCIES:
            WAITING_REQUESTS.labels(territory, urgency_name(urgency)).set_function(
                partial(HELD.value, figures.waiting(territory, urgency))
            )
            UNMET_REQUESTS.labels(territory, urgency_name(urgency)).set_function(
                partial(HELD.value, figures.unmet(territory, urgency))
            )
