"""Prevention rules: which national programmes an age band is invited to, on which channel."""

import pytest

from services.prevention.domain.channels import choose_channel
from services.prevention.domain.programmes import programmes_for


def names(band_from: int, band_to: int) -> set[str]:
    return {programme.name for programme in programmes_for(band_from, band_to)}


def test_age_band_50_54_gets_colorectal_and_breast_screening() -> None:
    assert names(50, 54) == {"screening.colorectal", "screening.breast"}


def test_age_band_11_14_gets_hpv_vaccination() -> None:
    assert names(11, 14) == {"vaccination.hpv"}


def test_age_band_30_34_gets_nothing() -> None:
    assert names(30, 34) == set()


def test_a_band_that_only_touches_a_programme_s_ages_still_overlaps_it() -> None:
    assert names(74, 79) == {"screening.colorectal", "screening.breast"}
    assert names(75, 79) == set()
    assert names(45, 50) == {"screening.colorectal", "screening.breast"}


@pytest.mark.parametrize(("band_from", "band_to"), [(60, 55), (-5, 4), (115, 121)])
def test_an_impossible_age_band_is_refused(band_from: int, band_to: int) -> None:
    with pytest.raises(ValueError, match="age band"):
        programmes_for(band_from, band_to)


def test_the_channel_is_the_first_the_person_allows_that_we_send_on() -> None:
    assert choose_channel(["fax", "sms", "app"]) == "sms"


def test_no_allowed_channel_we_send_on_gives_no_channel() -> None:
    assert choose_channel([]) is None
    assert choose_channel(["fax", "pigeon"]) is None
