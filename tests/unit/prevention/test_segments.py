"""Campaign targeting: who a segment and its audiences reach."""

from services.prevention.domain.campaign import Audience, follows
from services.prevention.domain.segments import Person, Segment, matches
from tests.unit.prevention.people import campaign

TEEN_MEUSE = Person(15, 19, "55")


def test_a_person_whose_age_band_lies_inside_the_segment_matches() -> None:
    assert matches(Segment(age_from=11, age_to=25), TEEN_MEUSE)


def test_a_band_only_overlapping_the_segment_is_not_known_to_match() -> None:
    assert not matches(Segment(age_from=11, age_to=17), TEEN_MEUSE)
    assert not matches(Segment(age_from=18, age_to=25), Person(15, 24, "55"))


def test_territories_limit_the_segment_and_none_listed_means_all() -> None:
    assert matches(Segment(territories=["55", "52"]), TEEN_MEUSE)
    assert not matches(Segment(territories=["54"]), TEEN_MEUSE)
    assert matches(Segment(), Person(70, 74, "54"))


def test_every_attribute_of_the_segment_is_needed() -> None:
    diabetic = Person(50, 54, "55", frozenset({"chronic.diabetes"}))
    assert matches(Segment(attributes=["chronic.diabetes"]), diabetic)
    assert not matches(Segment(attributes=["chronic.diabetes"]), Person(50, 54, "55"))
    assert not matches(Segment(attributes=["chronic.diabetes", "chronic.respiratory"]), diabetic)


def test_a_person_gets_the_first_audience_message_in_their_language() -> None:
    teens = Segment(age_from=11, age_to=17)
    young_adults = Segment(age_from=18, age_to=25)
    hpv = campaign(
        segment=Segment(age_from=11, age_to=25),
        audiences=[
            Audience(segment=teens, template_id="hpv.teen.de", language="de"),
            Audience(segment=teens, template_id="hpv.teen"),
            Audience(segment=young_adults, template_id="hpv.adult"),
        ],
    )
    assert hpv.audience_for(Person(11, 14, "55"), "fr").template_id == "hpv.teen"  # type: ignore[union-attr]
    assert hpv.audience_for(Person(11, 14, "55"), "de").template_id == "hpv.teen.de"  # type: ignore[union-attr]
    assert hpv.audience_for(Person(20, 24, "55"), "fr").template_id == "hpv.adult"  # type: ignore[union-attr]
    assert hpv.audience_for(Person(15, 19, "55"), "fr") is None  # in no audience
    assert hpv.audience_for(Person(30, 34, "55"), "fr") is None  # outside the segment


def test_a_change_applies_only_on_top_of_the_version_before_it() -> None:
    draft = campaign(version=1, status="draft")
    approved = campaign(version=2, status="approved")
    assert follows(None, draft)
    assert follows(draft, approved)


def test_the_first_record_of_a_compacted_log_is_taken_at_any_consistent_version() -> None:
    # Compaction leaves only each campaign's latest record: it is the campaign.
    assert follows(None, campaign(version=3, status="approved"))
    assert follows(None, campaign(version=5, status="paused"))
    assert follows(None, campaign(version=2, status="finished"))
    assert follows(None, campaign(version=2, status="draft"))
    # Not a state any history reaches.
    assert not follows(None, campaign(version=1, status="approved"))
    assert not follows(None, campaign(version=0, status="draft"))
    assert not follows(None, campaign(version=2, status="draft", approved_by="staff-2"))


def test_the_rest_of_the_log_still_applies_in_order() -> None:
    draft = campaign(version=1, status="draft")
    approved = campaign(version=2, status="approved")
    assert follows(draft, approved)
    assert not follows(draft, campaign(version=3, status="approved"))
    assert not follows(approved, campaign(version=3, status="draft"))
    assert not follows(
        campaign(version=2, status="finished"), campaign(version=3, status="approved")
    )


def test_a_regional_language_tag_takes_its_language_then_any_matching_audience() -> None:
    teen = Segment(age_from=11, age_to=19)
    hpv = campaign(
        audiences=[
            Audience(segment=teen, template_id="hpv.de", language="de"),
            Audience(segment=teen, template_id="hpv.fr", language="fr"),
        ]
    )
    assert hpv.audience_for(TEEN_MEUSE, "fr-FR").template_id == "hpv.fr"  # type: ignore[union-attr]
    assert hpv.audience_for(TEEN_MEUSE, "de-DE").template_id == "hpv.de"  # type: ignore[union-attr]
    # No audience in their language: they still get the campaign's message.
    assert hpv.audience_for(TEEN_MEUSE, "lb").template_id == "hpv.de"  # type: ignore[union-attr]
