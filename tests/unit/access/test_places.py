"""The place directory: what a place needs to be registered, and requests and
practitioners that name a registered place by its place_id alone."""

from math import nan

import pytest

from emeuse.access.v1.access_events_pb2 import Place, PlaceKind
from emeuse.runtime.codec import InvalidEventError
from services.access import scheduling
from services.access.domain.agenda import BOOKED
from services.access.scheduling import (
    Agenda,
    PlaceNotRegistered,
    check_place,
    place_registration_id,
)
from tests.unit.access.meuse import (
    BAR_LE_DUC,
    COMMERCY,
    NOW,
    NURSE_ASSISTED,
    PHONE,
    TERRITORY,
    VERDUN,
    VIDEO,
    Meuse,
    at,
    availability,
    booked,
    consultation,
    place,
    place_registered,
    practitioner,
)

EHPAD_VERDUN = place(VERDUN, PlaceKind.PLACE_KIND_EHPAD, (NURSE_ASSISTED,), "ehpad-55545")


def only(place_id: str) -> Place:
    return Place(place_id=place_id)


def unlocated(where: Place) -> Place:
    where.latitude = where.longitude = 0.0
    return where


def moved(where: Place, latitude: float) -> Place:
    where.latitude = latitude
    return where


@pytest.fixture
def meuse() -> Meuse:
    """An EHPAD in Verdun hosting nurse-assisted care only; a video-only GP free at 9:00,
    a GP who also does nurse-assisted care free at 10:00."""
    meuse = Meuse()
    meuse.register_place(EHPAD_VERDUN)
    meuse.register(practitioner("gp-video", BAR_LE_DUC, modalities=(VIDEO,)))
    meuse.register(practitioner("gp-nurse", COMMERCY, modalities=(VIDEO, NURSE_ASSISTED)))
    meuse.publish(availability("gp-video", at(9)))
    meuse.publish(availability("gp-nurse", at(10)))
    return meuse


def test_a_request_naming_a_registered_place_alone_gets_a_modality_the_place_hosts(meuse):
    [booking] = booked(meuse.ask(consultation("r-1", where=only("ehpad-55545"))))

    assert booking.practitioner_id == "gp-nurse"
    assert booking.modality == NURSE_ASSISTED
    assert booking.distance_km == pytest.approx(47.0, abs=1.5)  # Commercy to Verdun
    request = meuse.agenda.request("r-1")
    assert request is not None and request.status == BOOKED
    # The request as read back carries the directory's place.
    assert request.message["place"] == {
        "place_id": "ehpad-55545",
        "kind": "PLACE_KIND_EHPAD",
        "commune": "55545",
        "latitude": 49.16,
        "longitude": 5.38,
        "modalities": ["MODALITY_NURSE_ASSISTED"],
    }


def test_a_request_naming_an_unknown_place_alone_is_refused_and_nothing_is_kept(meuse):
    # As the scheduler runs it: staged writes, committed only after the input's events.
    staged = Agenda(TERRITORY, meuse.tables, staged=True)

    with pytest.raises(PlaceNotRegistered, match="'cabin-55122' is not in the directory"):
        scheduling.request_consultation(staged, consultation("r-1", where=only("cabin-55122")), NOW)

    # Nothing staged: no request, no booking, every slot still free.
    assert staged.request("r-1") is None
    assert staged.requests() == []
    assert staged.bookings() == []
    assert all(slot.free for slot in staged.slots())


def test_a_request_at_a_directory_place_for_a_modality_it_does_not_host_is_refused(meuse):
    staged = Agenda(TERRITORY, meuse.tables, staged=True)
    by_phone = consultation("r-1", where=only("ehpad-55545"), modality=PHONE)

    with pytest.raises(
        InvalidEventError,
        match="'ehpad-55545' does not host phone consultations \\(it hosts nurse-assisted\\)",
    ):
        scheduling.request_consultation(staged, by_phone, NOW)

    assert staged.requests() == []
    assert staged.bookings() == []
    # A modality the place hosts is booked.
    nurse_assisted = consultation("r-2", where=only("ehpad-55545"), modality=NURSE_ASSISTED)
    [booking] = booked(meuse.ask(nurse_assisted))
    assert (booking.practitioner_id, booking.modality) == ("gp-nurse", NURSE_ASSISTED)


def test_an_inline_place_is_used_as_given_even_when_its_id_is_registered(meuse):
    inline = place(VERDUN, PlaceKind.PLACE_KIND_EHPAD, (VIDEO,), "ehpad-55545")

    [booking] = booked(meuse.ask(consultation("r-1", where=inline)))

    assert (booking.practitioner_id, booking.modality) == ("gp-video", VIDEO)


def test_an_unknown_place_id_with_a_commune_is_an_inline_place_as_before(meuse):
    inline = place(BAR_LE_DUC, PlaceKind.PLACE_KIND_PHARMACY_CABIN, place_id="cabin-55029")

    [booking] = booked(meuse.ask(consultation("r-1", where=inline)))

    assert booking.practitioner_id == "gp-video"


def test_registering_a_place_again_replaces_it_for_later_requests(meuse):
    meuse.register_place(place(VERDUN, PlaceKind.PLACE_KIND_EHPAD, (VIDEO,), "ehpad-55545"))

    [booking] = booked(meuse.ask(consultation("r-1", where=only("ehpad-55545"))))

    assert (booking.practitioner_id, booking.modality) == ("gp-video", VIDEO)
    assert [p.modalities for p in meuse.agenda.places()] == [[VIDEO]]


def test_a_practitioner_registered_with_a_place_id_alone_works_at_the_directory_place(meuse):
    registered = practitioner("nurse-1", BAR_LE_DUC)
    registered.place.CopyFrom(only("ehpad-55545"))

    meuse.register(registered)

    nurse = meuse.agenda.practitioner("nurse-1")
    assert nurse is not None
    assert (nurse.place.commune, nurse.place.kind) == ("55545", PlaceKind.PLACE_KIND_EHPAD)


def test_a_practitioner_at_an_unknown_place_id_alone_is_refused(meuse):
    registered = practitioner("nurse-1", BAR_LE_DUC)
    registered.place.CopyFrom(only("msp-55000"))

    with pytest.raises(PlaceNotRegistered, match="RegisterPlace first"):
        meuse.register(registered)
    assert meuse.agenda.practitioner("nurse-1") is None


def test_a_home_is_never_registered():
    home = place(VERDUN, PlaceKind.PLACE_KIND_HOME, (PHONE,), "home-1")

    with pytest.raises(InvalidEventError, match="a home is never registered"):
        check_place(place_registered(home))


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        (place(VERDUN, PlaceKind.PLACE_KIND_EHPAD, (VIDEO,)), "place_id must be an id"),
        (place(VERDUN, PlaceKind.PLACE_KIND_EHPAD, (VIDEO,), "a place"), "place_id must be an id"),
        (place(VERDUN, 0, (VIDEO,), "ehpad-1"), "place.kind must be"),
        (place(None, PlaceKind.PLACE_KIND_EHPAD, (VIDEO,), "ehpad-1"), "INSEE commune code"),
        (place(VERDUN, PlaceKind.PLACE_KIND_EHPAD, (), "ehpad-1"), "must host remote care"),
        (place(VERDUN, PlaceKind.PLACE_KIND_EHPAD, (0,), "ehpad-1"), "must host remote care"),
        (unlocated(place(VERDUN, PlaceKind.PLACE_KIND_EHPAD, (VIDEO,), "ehpad-1")), "is located"),
        (moved(place(VERDUN, PlaceKind.PLACE_KIND_EHPAD, (VIDEO,), "ehpad-1"), 91), "in degrees"),
        (moved(place(VERDUN, PlaceKind.PLACE_KIND_EHPAD, (VIDEO,), "ehpad-1"), nan), "in degrees"),
    ],
)
def test_a_place_the_directory_cannot_use_is_refused_with_the_reason(where, reason):
    with pytest.raises(InvalidEventError, match=reason):
        check_place(place_registered(where))


def test_a_place_is_registered_in_the_territory_of_its_commune():
    in_nancy = Place(
        place_id="cabin-54395", kind=PlaceKind.PLACE_KIND_PHARMACY_CABIN, commune="54395"
    )
    in_nancy.modalities.append(VIDEO)

    with pytest.raises(InvalidEventError, match="54395 is not in territory 55"):
        check_place(place_registered(in_nancy))


def test_a_place_registration_is_recorded_by_its_event_id_whatever_fields_it_carries(meuse):
    # A Place from a newer client: a field this service does not know (number 15).
    newer = Place()
    newer.ParseFromString(
        place(
            COMMERCY, PlaceKind.PLACE_KIND_PHARMACY_CABIN, (VIDEO,), "cabin-55122"
        ).SerializeToString()
        + b"\x78\x01"
    )

    scheduling.register_place(meuse.agenda, place_registered(newer), "event-1")
    # Replaced at once by another registration of the same place_id.
    scheduling.register_place(meuse.agenda, place_registered(phone_only(newer)), "event-2")

    for event_id in ("event-1", "event-2"):
        outcome = meuse.agenda.action_outcome(place_registration_id(event_id))
        assert outcome == {"ok": True, "place_id": "cabin-55122"}
    cabin = meuse.agenda.place("cabin-55122")
    assert cabin is not None and cabin.modalities == [PHONE]


def phone_only(where: Place) -> Place:
    """The same place, hosting phone consultations instead."""
    again = Place()
    again.CopyFrom(where)
    again.ClearField("modalities")
    again.modalities.append(PHONE)
    return again


HOME_VERDUN = place(VERDUN)  # a home: its commune alone


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        (
            Place(
                kind=PlaceKind.PLACE_KIND_HOME,
                place_id="home-dupont",
                commune="55545",
                latitude=49.160123,
                longitude=5.381234,
            ),
            "a home has no place_id",
        ),
        (
            Place(
                kind=PlaceKind.PLACE_KIND_HOME,
                commune="55545",
                latitude=49.160123,
                longitude=5.381234,
            ),
            "a home is located by its commune alone: give no latitude or longitude",
        ),
        (
            Place(kind=PlaceKind.PLACE_KIND_HOME, commune="55545", latitude=49.16),
            "a home is located by its commune alone",
        ),
        (
            # Not said to be a home, and no directory id: could be anyone's address.
            Place(commune="55545", latitude=49.160123, longitude=5.381234),
            "a place given by its coordinates says what it is",
        ),
    ],
)
def test_a_request_locating_a_home_more_precisely_than_its_commune_is_refused(meuse, where, reason):
    staged = Agenda(TERRITORY, meuse.tables, staged=True)

    with pytest.raises(InvalidEventError, match=reason):
        scheduling.request_consultation(staged, consultation("r-1", where=where), NOW)

    assert staged.requests() == []
    assert staged.bookings() == []


def test_a_request_from_a_home_by_its_commune_alone_is_booked_and_kept_as_such(meuse):
    [booking] = booked(meuse.ask(consultation("r-1", where=HOME_VERDUN)))

    assert booking.distance_km == 0.0  # no coordinates, no distance
    request = meuse.agenda.request("r-1")
    assert request is not None
    assert request.message["place"] == {"kind": "PLACE_KIND_HOME", "commune": "55545"}


def test_a_practitioner_working_from_home_is_located_by_the_commune_alone(meuse):
    at_home = practitioner("psy-1", VERDUN)
    at_home.place.CopyFrom(
        Place(kind=PlaceKind.PLACE_KIND_HOME, commune="55545", latitude=49.160123, longitude=5.38)
    )

    with pytest.raises(InvalidEventError, match="a home is located by its commune alone"):
        meuse.register(at_home)
    assert meuse.agenda.practitioner("psy-1") is None

    at_home.place.CopyFrom(HOME_VERDUN)
    meuse.register(at_home)
    registered = meuse.agenda.practitioner("psy-1")
    assert registered is not None and not registered.place.located
