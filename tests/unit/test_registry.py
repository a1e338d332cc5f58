from emeuse.registry import OWNERS, SERVICES, TOPIC_NAME, TOPICS, by_name, for_type


def test_topic_names_follow_the_naming_rule():
    assert all(TOPIC_NAME.match(spec.name) for spec in TOPICS), [s.name for s in TOPICS]


def test_topic_names_are_unique():
    assert len({spec.name for spec in TOPICS}) == len(TOPICS)


def test_each_topic_is_owned_by_a_service_and_named_after_it():
    for spec in TOPICS:
        assert spec.owner in OWNERS
        assert spec.name.startswith(f"emeuse.{spec.owner}.")


def test_every_required_field_and_key_field_exists_in_the_message():
    for spec in TOPICS:
        fields = spec.message.DESCRIPTOR.fields_by_name
        assert all(name in fields for name in spec.required), spec.name
        if not spec.is_dead_letter:
            # A key field, or "|"-joined key fields (a compacted topic's composite key).
            assert all(name in fields for name in spec.key.split("|")), spec.name


def test_event_topics_keep_order_per_person_or_per_territory_agenda():
    for spec in TOPICS:
        if spec.is_dead_letter:
            continue
        # Keyed (or partitioned) by the person, by the territory whose agenda has one writer
        # (access), or a directory keyed by its entry (partners, campaigns: compacted, read
        # whole); a topic about a person names the pseudonym field ce_subject must match.
        ordered_by = spec.partition_by or spec.key
        assert ordered_by.endswith("_pseudonym") or ordered_by in (
            "territory",
            "partner_id",
            "campaign_id",
        ), spec.name
        fields = spec.message.DESCRIPTOR.fields_by_name
        if spec.subject_field:
            assert spec.subject_field.endswith("_pseudonym"), spec.name
            assert spec.subject_field in fields, spec.name


def test_every_service_has_a_dead_letter_topic_kept_90_days():
    dead_letters = {spec.owner: spec for spec in TOPICS if spec.is_dead_letter}
    assert set(dead_letters) == set(SERVICES)
    assert all(spec.retention_days == 90 for spec in dead_letters.values())


def test_compacted_topics_keep_latest_state_and_others_expire():
    assert by_name("emeuse.chronic.care-plan-updated.v1").kafka_config() == {
        "cleanup.policy": "compact"
    }
    config = by_name("emeuse.chronic.reading-recorded.v1").kafka_config()
    assert config == {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)}


def test_a_type_on_one_topic_resolves_to_it():
    [spec] = for_type("emeuse.chronic.v1.AlertRaised")
    assert spec.name == "emeuse.chronic.alert-raised.v1"
    assert spec.schema_version == "v1"


def test_every_topic_spreads_over_several_partitions():
    assert all(spec.partitions > 1 for spec in TOPICS)
