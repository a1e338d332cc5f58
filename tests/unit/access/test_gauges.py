"""The agenda gauges: slot utilisation, requests in line and requests past their delay of
the territories an instance holds, right from the moment it opens their partition (a
restart, a rebalance), then counted again shortly after each burst of changes."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import REGISTRY

from emeuse.registry import AVAILABILITY_PUBLISHED, CONSULTATION_REQUESTED, PRACTITIONER_REGISTERED
from services.access import figures
from services.access.domain.agenda import WAITING
from services.access.metrics import watch
from services.access.processing import change_agenda, set_agenda_gauges
from services.access.scheduling import Agenda, AgendaTables
from services.access.state import NAMES, REQUESTS
from tests.unit.access.meuse import (
    BAR_LE_DUC,
    DELAYS,
    IMMEDIATE,
    SPECIALIST,
    at,
    availability,
    consultation,
    practitioner,
)
from tests.unit.access.test_processing import ON, Partition, event, run


def gauges() -> dict[str, float | None]:
    """The Meuse's gauges as /metrics shows them."""
    shown: dict[str, float | None] = {
        "utilisation": REGISTRY.get_sample_value(
            "emeuse_access_slot_utilisation", {"territory": "55"}
        )
    }
    for urgency in ("immediate", "routine"):
        for name in ("waiting", "unmet"):
            shown[f"{name}:{urgency}"] = REGISTRY.get_sample_value(
                f"emeuse_access_{name}_requests", {"territory": "55", "urgency": urgency}
            )
    return shown


def an_agenda_in_use(meuse: Partition) -> None:
    """A GP with three slots this morning, two of them booked; two urgent requests for a
    cardiologist nobody offers, waiting."""
    tx = meuse.tx()
    changes = [
        (PRACTITIONER_REGISTERED, practitioner("gp-bld", BAR_LE_DUC)),
        (AVAILABILITY_PUBLISHED, availability("gp-bld", at(9), at(10), at(11))),
        (CONSULTATION_REQUESTED, consultation("renewal-1")),
        (CONSULTATION_REQUESTED, consultation("renewal-2")),
        *(
            (
                CONSULTATION_REQUESTED,
                consultation(name, urgency=IMMEDIATE, profession=SPECIALIST, specialty="cardio"),
            )
            for name in ("chest-pain-1", "chest-pain-2")
        ),
    ]
    for spec, message in changes:
        run(lambda spec=spec, message=message: change_agenda(event(spec, message), tx, **ON))
    meuse.commit(tx)


def counted_again(meuse: Partition, now: datetime) -> None:
    """The territory's agenda-gauges timer, fired at `now`."""
    fired = meuse.tx(now=now)
    run(lambda: set_agenda_gauges("55", fired, **ON))
    meuse.commit(fired)


def test_the_gauges_show_the_agenda_once_its_burst_of_changes_is_counted():
    watch(("55",))
    meuse = Partition()
    meuse.open_here()
    an_agenda_in_use(meuse)
    counted_again(meuse, at(8, 20))  # the immediate requests' 15 minutes ran out at 8:15
    assert gauges() == {
        "utilisation": 2 / 3,
        "waiting:immediate": 2,
        "unmet:immediate": 2,
        "waiting:routine": 0,
        "unmet:routine": 0,
    }


def test_an_instance_opening_its_partition_again_shows_what_it_showed_before():
    watch(("55",))
    meuse = Partition()
    meuse.open_here()
    an_agenda_in_use(meuse)
    counted_again(meuse, at(8, 20))
    before = gauges()
    meuse.close_here()  # the instance stops, or another one takes the partition
    assert set(gauges().values()) == {0}
    meuse.open_here(at(8, 25))  # counted from the stored agenda, no new event
    assert gauges() == before


def test_a_partition_opened_before_its_timer_fired_shows_the_changes_already_made():
    watch(("55",))
    meuse = Partition()
    meuse.open_here()
    an_agenda_in_use(meuse)  # the gauges' timer is due 5 s later: the instance stops first
    meuse.close_here()
    meuse.open_here(at(8, 1))
    assert gauges() == {
        "utilisation": 2 / 3,
        "waiting:immediate": 2,
        "unmet:immediate": 0,  # not before 8:15
        "waiting:routine": 0,
        "unmet:routine": 0,
    }


def test_a_partition_is_counted_by_the_agenda_s_own_rules_read_from_its_stored_rows():
    meuse = Partition()
    an_agenda_in_use(meuse)
    stored = meuse.committed
    agenda = Agenda("55", AgendaTables(**{field: stored[name] for field, name in NAMES.items()}))
    now = at(8, 20)
    counted = figures.of_partition(lambda table: stored[table].items(), now, DELAYS)
    assert counted == figures.of_agenda(agenda, now, DELAYS)
    waiting = [r for r in stored[REQUESTS].values() if r["status"] == WAITING]
    assert counted[figures.waiting("55", IMMEDIATE)] == len(waiting) == 2


def test_slots_that_have_started_leave_the_utilisation_at_the_next_count():
    watch(("55",))
    meuse = Partition()
    meuse.open_here()
    an_agenda_in_use(meuse)
    counted_again(meuse, at(8, 20))
    assert gauges()["utilisation"] == 2 / 3
    # 10:30: the 9:00 and 10:00 slots (the two booked) have started; 11:00 is free.
    counted_again(meuse, at(10, 30))
    assert gauges()["utilisation"] == 0
