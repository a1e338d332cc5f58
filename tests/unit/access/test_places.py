"""The place directory: what a place needs to be registered."""

import pytest

from emeuse.access.v1.access_events_pb2 import Place, PlaceKind
from emeuse.runtime.codec import InvalidEventError
from services.access.scheduling import check_place
from tests.unit.access.meuse import (
    NURSE_ASSISTED,
    PHONE,
    VERDUN,
    VIDEO,
    Meuse,
    place,
    place_registered,
)

EHPAD_VERDUN = place(VERDUN, PlaceKind.PLACE_KIND_EHPAD, (NURSE_ASSISTED,), "ehpad-55545")


def only(place_id: str) -> Place:
    return Place(place_id=place_id)


def test_registering_a_place_again_replaces_it():
    meuse = Meuse()
    meuse.register_place(EHPAD_VERDUN)
    meuse.register_place(place(VERDUN, PlaceKind.PLACE_KIND_EHPAD, (VIDEO,), "ehpad-55545"))

    [ehpad] = meuse.agenda.places()
    assert (ehpad.place_id, ehpad.commune, ehpad.modalities) == ("ehpad-55545", "55545", [VIDEO])


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
