"""Page tokens: what a service gave reads back; anything else is refused the same way."""

import base64

import pytest

from emeuse.runtime.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    NOT_OURS,
    page_cursor,
    page_size,
    page_token,
)


def test_a_token_reads_back_its_cursor():
    token = page_token({"place_id": "ehpad-c"})
    assert page_cursor(token, lambda data: data["place_id"]) == "ehpad-c"


def test_no_token_is_the_first_page():
    assert page_cursor("", lambda data: data["place_id"]) is None


@pytest.mark.parametrize(
    "token",
    [
        "not a token",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        page_token(["urgency", "at", "r-1"]),  # another list's token: read finds no key
        page_token({"other": 1}),
    ],
)
def test_anything_else_is_refused(token):
    with pytest.raises(ValueError, match=NOT_OURS):
        page_cursor(token, lambda data: data["place_id"])


def test_a_page_size_of_0_is_the_default_and_one_over_the_bound_is_refused():
    assert page_size(0) == DEFAULT_PAGE_SIZE
    assert page_size(MAX_PAGE_SIZE) == MAX_PAGE_SIZE
    for wrong in (-1, MAX_PAGE_SIZE + 1):
        with pytest.raises(ValueError, match=f"page_size must be 0 to {MAX_PAGE_SIZE}"):
            page_size(wrong)
