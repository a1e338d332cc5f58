"""Table values are parsed once per stored object, and again when it is replaced."""

from emeuse.runtime.parsed import ParsedValues


def counting_parser():
    parsed: list[object] = []

    def parse(stored):
        parsed.append(stored)
        return {"parsed": dict(stored or {})}

    return parse, parsed


def test_the_same_stored_object_is_parsed_once():
    parse, parsed = counting_parser()
    values = ParsedValues(parse)
    stored = {"alerts": 1}
    first = values.get("psn-a", stored)
    assert values.get("psn-a", stored) is first
    assert parsed == [stored]


def test_a_replaced_value_is_parsed_again_even_when_equal():
    parse, parsed = counting_parser()
    values = ParsedValues(parse)
    values.get("psn-a", {"alerts": 1})
    assert values.get("psn-a", {"alerts": 2}) == {"parsed": {"alerts": 2}}
    values.get("psn-a", {"alerts": 2})
    assert len(parsed) == 3  # a new object each time: parsed each time


def test_a_writer_remembers_what_it_stored_and_nothing_is_parsed():
    parse, parsed = counting_parser()
    values = ParsedValues(parse)
    stored, state = {"alerts": 3}, {"parsed": {"alerts": 3}}
    values.remember("psn-a", stored, state)
    assert values.get("psn-a", stored) is state
    assert parsed == []


def test_an_absent_value_is_parsed_and_not_kept():
    parse, parsed = counting_parser()
    values = ParsedValues(parse)
    values.get("psn-a", {"alerts": 1})
    # A table declared with default=dict answers a new {} for a key it does not hold.
    assert values.get("psn-a", {}) == {"parsed": {}}
    assert values.get("psn-b", None) == {"parsed": {}}
    assert len(values) == 0
    assert parsed[1:] == [{}, None]


def test_keys_no_longer_held_are_forgotten():
    parse, _ = counting_parser()
    values = ParsedValues(parse)
    for key in ("psn-a", "psn-b", "psn-c"):
        values.get(key, {"alerts": 1})
    values.retain(["psn-b", "psn-z"])
    assert len(values) == 1
