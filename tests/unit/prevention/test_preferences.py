"""Preferences and opt-outs: only an explicit consent lifts an opt-out."""

from emeuse.prevention.v1.prevention_events_pb2 import PreferencesUpdated
from services.prevention.grpc_api import _profile
from services.prevention.handlers import opt_out, update_preferences
from tests.unit.prevention.people import NOW, enrolled
from tests.unit.prevention.people import opt_out as refusal


def test_writing_back_the_returned_profile_does_not_lift_an_opt_out() -> None:
    person, state = enrolled(channels=("app", "sms"))
    refused = opt_out(refusal(person, "sms"), state=state, now=NOW).state
    profile = _profile(person, refused)
    assert list(profile.allowed_channels) == ["app"]
    # A client sending back what it holds, or sms allowed again without consent.
    for allowed in (list(profile.allowed_channels), ["app", "sms"]):
        change = PreferencesUpdated(person_pseudonym=person, change_id=str(allowed))
        change.allowed_channels.extend(allowed)
        after = update_preferences(change, state=refused, now=NOW).state
        assert after.opted_out_channels == ["sms"]
        assert "sms" not in _profile(person, after).allowed_channels


def test_an_explicit_consent_lifts_the_opt_out() -> None:
    person, state = enrolled(channels=("app", "sms"))
    refused = opt_out(refusal(person, "sms"), state=state, now=NOW).state
    change = PreferencesUpdated(
        person_pseudonym=person,
        change_id="c",
        allowed_channels=["app", "sms"],
        consented_channels=["sms"],
    )
    after = update_preferences(change, state=refused, now=NOW).state
    assert after.opted_out_channels == []
    assert list(_profile(person, after).allowed_channels) == ["app", "sms"]
