"""The partners' event catalogue is generated from the registry and proto comments, and
the committed docs/catalogue.md is what the generator writes (`make docs`)."""

from __future__ import annotations

import json
import re

import pytest
from google.protobuf import json_format

from emeuse.catalogue import OUTPUT, example_json, load_comments, render
from emeuse.registry import TOPICS
from emeuse.runtime.codec import missing_fields
from emeuse.runtime.pseudonym import is_pseudonym


@pytest.fixture(scope="module")
def comments():
    return load_comments()


def test_the_committed_catalogue_is_what_make_docs_writes(comments):
    assert OUTPUT.read_text(encoding="utf-8") == render(comments), (
        "docs/catalogue.md is stale: run `make docs` and commit it"
    )


def test_every_topic_has_a_section_with_its_message_and_key(comments):
    text = render(comments)
    for spec in TOPICS:
        assert f"\n### {spec.name}\n" in text
        assert f"[`{spec.type_name}`]" in text


def test_every_example_is_a_valid_event_of_its_topic(comments):
    for spec in TOPICS:
        data = json.loads(example_json(spec, comments))
        message = json_format.ParseDict(data, spec.message())
        assert missing_fields(spec, message) == [], spec.name
        for name, value in data.items():
            if name.endswith("_pseudonym"):
                assert is_pseudonym(value), (spec.name, name)


def test_meanings_come_from_the_proto_comments(comments):
    assert comments["emeuse.chronic.v1.ReadingRecorded.measured_at"] == (
        "When the value was measured (not when it arrived)."
    )
    assert comments["emeuse.chronic.v1.ALERT_SEVERITY_CRITICAL"].startswith(
        "ALERT_SEVERITY_CRITICAL"
    )
    for spec in TOPICS:
        assert comments[spec.type_name], spec.type_name


def test_links_inside_the_catalogue_point_at_its_headings(comments):
    text = render(comments)
    anchors = {
        re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    }
    for target in re.findall(r"\]\(#([^)]+)\)", text):
        assert target in anchors, target
