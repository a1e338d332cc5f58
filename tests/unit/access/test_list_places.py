"""ListPlaces paging, without a broker: pages by place_id, the commune filter, tokens."""

import base64
from datetime import UTC, datetime

import pytest

from services.access.domain.agenda import Location, RequestState
from services.access.grpc_api import _place_cursor, _token, place_page

STENAY, VERDUN = "55502", "55545"
PLACES = [
    Location(place_id="ehpad-c", kind=1, commune=STENAY, latitude=49.49, longitude=5.19),
    Location(place_id="cabin-a", kind=2, commune=STENAY, latitude=49.49, longitude=5.19),
    Location(place_id="msp-b", kind=3, commune=STENAY, latitude=49.49, longitude=5.19),
    Location(place_id="cabin-v", kind=2, commune=VERDUN, latitude=49.16, longitude=5.38),
]


def ids(page: list[Location]) -> list[str]:
    return [p.place_id for p in page]


def all_pages(commune: str, size: int) -> list[tuple[list[str], str]]:
    pages, after = [], ""
    while True:
        page, token = place_page(PLACES, commune, after, size)
        pages.append((ids(page), token))
        if not token:
            return pages
        after = _place_cursor(token)


def test_a_commune_is_paged_by_place_id_and_the_last_page_has_no_token():
    [(first, token), (last, end)] = all_pages(STENAY, 2)

    assert first == ["cabin-a", "ehpad-c"]
    assert token and _place_cursor(token) == "ehpad-c"
    assert (last, end) == (["msp-b"], "")


def test_without_a_commune_every_place_of_the_territory_is_listed_once():
    pages = all_pages("", 2)

    assert [page for page, _ in pages] == [["cabin-a", "cabin-v"], ["ehpad-c", "msp-b"]]
    assert pages[-1][1] == ""


def test_a_page_holding_the_last_places_exactly_gives_no_token():
    assert all_pages(STENAY, 3) == [(["cabin-a", "ehpad-c", "msp-b"], "")]
    assert all_pages("55029", 2) == [([], "")]


def test_the_first_page_starts_at_the_first_place_id():
    assert _place_cursor("") == ""


def open_requests_token() -> str:
    at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    request = RequestState(
        request_id="r-1", patient="psn-x", urgency=4, profession=1, requested_at=at, received_at=at
    )
    return _token(request)


@pytest.mark.parametrize(
    "token",
    [
        "not a token",
        "cGxhY2U",  # "place" without padding
        base64.urlsafe_b64encode(b"slot:cabin-a").decode(),
        base64.urlsafe_b64encode(b"\xff\xfeplace:x").decode(),
        open_requests_token(),  # a ListOpenRequests token
    ],
)
def test_a_token_this_service_did_not_give_for_places_is_refused(token):
    with pytest.raises(ValueError, match="page_token is not one this service gave"):
        _place_cursor(token)
