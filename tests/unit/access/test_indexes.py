"""The scheduler's indexes: matching reads a request's candidates, never the territory,
and books exactly what a scan of the territory would."""

import random
from datetime import timedelta
from types import MappingProxyType

from services.access import scheduling
from services.access.domain.agenda import BOOKED, RequestState
from services.access.domain.matching import best_slot
from services.access.indexes import need_of_request
from services.access.scheduling import Agenda, earliest_match, location
from tests.unit.access.meuse import (
    BAR_LE_DUC,
    CANCEL,
    COMMERCY,
    COORDINATORS,
    DELAYS,
    IMMEDIATE,
    NOW,
    ROUTINE,
    SAME_DAY,
    SECOND_LINE,
    SPECIALIST,
    VERDUN,
    WITHIN_7_DAYS,
    Meuse,
    action,
    at,
    availability,
    consultation,
    given,
    practitioner,
)


class NoScan(dict):
    """A table that refuses to be listed: matching must find its rows by key."""

    def items(self):
        raise AssertionError("the territory's table was scanned")


def test_matching_a_request_reads_its_need_not_the_territory():
    meuse = Meuse()
    for n in range(5):
        meuse.register(practitioner(f"card-{n}", VERDUN, profession=SPECIALIST, specialty="card"))
        meuse.publish(availability(f"card-{n}", at(9 + n), at(14 + n)))
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.publish(availability("gp-bld", at(10)))
    meuse.ask(consultation("first"))  # the indexes are built on first touch
    tables = meuse.tables
    for name in ("practitioners", "slots", "requests", "bookings", "places", "indexes"):
        setattr(tables, name, NoScan(getattr(tables, name)))
    agenda = Agenda("55", tables)
    result = scheduling.request_consultation(
        agenda, consultation("card-patient", profession=SPECIALIST, specialty="card"), NOW
    )
    assert given(result) == {"card-patient": "card-0-1130-0900"}
    again = scheduling.publish_availability(agenda, availability("card-4", at(20)), NOW)
    assert again.outcome == "slots_added_1"


def test_an_agenda_kept_before_the_indexes_existed_is_matched_as_before():
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.register(practitioner("gp-ver", VERDUN))
    meuse.publish(availability("gp-bld", at(11)))
    meuse.publish(availability("gp-ver", at(10)))
    meuse.register(practitioner("derm", COMMERCY, profession=SPECIALIST, specialty="derm"))
    meuse.ask(consultation("derm-waiting", profession=SPECIALIST, specialty="derm"))
    meuse.tables.indexes.clear()  # as stored by a scheduler that kept no indexes
    meuse.agenda = Agenda("55", meuse.tables)
    assert given(meuse.ask(consultation("gp-patient"))) == {"gp-patient": "gp-ver-1130-1000"}
    assert given(meuse.publish(availability("derm", at(15)))) == {"derm-waiting": "derm-1130-1500"}


def test_a_practitioner_registered_again_in_another_specialty_takes_their_slots_along():
    meuse = Meuse()
    meuse.register(practitioner("doc", VERDUN, profession=SPECIALIST, specialty="card"))
    meuse.publish(availability("doc", at(10), at(11)))
    meuse.register(practitioner("doc", VERDUN, profession=SPECIALIST, specialty="derm"))
    card = meuse.ask(consultation("card-patient", profession=SPECIALIST, specialty="card"))
    assert given(card) == {}
    derm = meuse.ask(consultation("derm-patient", profession=SPECIALIST, specialty="derm"))
    assert given(derm) == {"derm-patient": "doc-1130-1000"}


def test_the_index_books_what_a_scan_of_the_territory_would():
    rng = random.Random(12)
    meuse = Meuse()
    specialties = ("card", "derm")
    doctors = []
    for n in range(12):
        doc = f"doc-{n}"
        meuse.register(
            practitioner(
                doc,
                rng.choice((BAR_LE_DUC, VERDUN, COMMERCY)),
                profession=SPECIALIST,
                specialty=rng.choice(specialties),
                care_line=SECOND_LINE if n % 4 == 0 else 1,
                active=n % 5 != 0,
            )
        )
        starts = sorted({at(8, 30) + timedelta(minutes=30 * rng.randrange(80)) for _ in range(6)})
        meuse.publish(availability(doc, *starts))
        doctors.append(doc)
    urgencies = (IMMEDIATE, SAME_DAY, WITHIN_7_DAYS, ROUTINE)
    matched = 0
    for n in range(60):
        message = consultation(
            f"r-{n}",
            profession=SPECIALIST,
            specialty=rng.choice(specialties),
            urgency=rng.choice(urgencies),
            requested_at=NOW - timedelta(minutes=n),
        )
        asked = RequestState(
            request_id=message.request_id,
            patient=message.patient_pseudonym,
            urgency=message.urgency,
            profession=message.profession,
            specialty=message.specialty,
            place=location(message.place),
            requested_at=NOW - timedelta(minutes=n),
            received_at=NOW,
        )
        scanned = best_slot(asked, meuse.agenda.practitioners(), meuse.agenda.free_slots(NOW), NOW)
        assert earliest_match(meuse.agenda, asked, NOW) == scanned
        matched += scanned is not None
        meuse.ask(message)
        state = meuse.agenda.request(message.request_id)
        assert state is not None and (state.status == BOOKED) == (scanned is not None)
        if state.status == BOOKED and n % 3 == 0:  # given up, to be rebooked elsewhere
            meuse.act(action(CANCEL, f"cancel-{n}", booking_id=state.booking_id, rebook=True))
    assert 0 < matched < 60
    assert {need_of_request(r) for r in meuse.agenda.waiting()} <= {
        (SPECIALIST, s) for s in specialties
    }


class SharedValues(dict):
    """The indexes table as the kernel hands it out: every reader gets the stored object
    itself (state.CODECS), read only here, so a change in place would raise."""

    def get(self, key, default=None):
        value = super().get(key, default)
        return MappingProxyType(value) if isinstance(value, dict) else value


def test_the_indexes_replace_their_values_and_never_change_one_in_place():
    meuse = Meuse()
    meuse.tables.indexes = SharedValues(meuse.tables.indexes)
    meuse.agenda = Agenda("55", meuse.tables)
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.register(practitioner("card-vdn", VERDUN, profession=SPECIALIST, specialty="card"))
    meuse.publish(availability("gp-bld", at(10), at(11)))
    for name in ("first", "second", "third"):
        meuse.ask(consultation(name, urgency=IMMEDIATE, requested_at=NOW))
    meuse.ask(consultation("card-patient", profession=SPECIALIST, specialty="card"))
    assert set(given(meuse.ask(consultation("fourth")))) <= {"fourth"}
    line = dict(meuse.tables.indexes.get("55|line:1:") or {})
    # A flag changes no index: the line stored is the very object it was.
    stored = dict.get(meuse.tables.indexes, "55|line:1:")
    due = scheduling.delay_due("55", "third", NOW + timedelta(hours=3))
    flagged = scheduling.apply_action(
        meuse.agenda, due, NOW + timedelta(hours=3), delays=DELAYS, coordinators=COORDINATORS
    )
    assert flagged.outcome != "unknown_request"
    assert dict.get(meuse.tables.indexes, "55|line:1:") is stored
    # A request joining the line replaces it; the object readers hold stays as it was.
    meuse.ask(consultation("fifth", urgency=IMMEDIATE, requested_at=NOW))
    joined = dict.get(meuse.tables.indexes, "55|line:1:")
    assert joined is not stored and set(joined) == set(line) | {"fifth"}
    assert dict(stored) == line
    meuse.agenda.indexes.drop_started(need_of_request(meuse.agenda.request("first")), ["x"])
