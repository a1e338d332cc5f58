"""Partner topic names come from one place, importable next to the generated partners.v1."""

import pytest

from emeuse import partners
from emeuse.partners.v1.partners_pb2 import PartnerRegistered


def test_a_partner_is_given_its_feed_inbound_dead_letter_topics_and_group_prefix():
    assert partners.feed_topic("glucoflow") == "emeuse-partner.glucoflow.feed"
    assert partners.inbound_topic("glucoflow") == "emeuse-partner.glucoflow.inbound"
    assert partners.dead_letter_topic("glucoflow") == "emeuse-partner.glucoflow.dead-letter"
    assert partners.consumer_group_prefix("glucoflow") == "emeuse-partner.glucoflow."
    assert partners.kafka_user("glucoflow") == "partner-glucoflow"


def test_the_names_and_the_generated_registry_message_live_in_one_package():
    assert PartnerRegistered.DESCRIPTOR.full_name == "emeuse.partners.v1.PartnerRegistered"


@pytest.mark.parametrize("bad", ["Glucoflow", "gl", "gluco_flow", "1glucoflow", "a" * 33])
def test_an_id_that_cannot_name_a_user_and_topics_is_refused(bad):
    with pytest.raises(partners.PartnerIdError):
        partners.feed_topic(bad)
