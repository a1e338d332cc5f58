"""The group assignment: partition p whole to one instance, balanced, sticky."""

from __future__ import annotations

from emeuse.kernel.assignor import balance


def test_every_partition_goes_to_exactly_one_instance_in_balanced_shares() -> None:
    owned = balance(6, {}, order=["a", "b", "c", "d"])
    assert sorted(p for ps in owned.values() for p in ps) == list(range(6))
    assert sorted(len(ps) for ps in owned.values()) == [1, 1, 2, 2]


def test_an_instance_that_rejoins_gets_its_own_partitions_back() -> None:
    before = balance(6, {}, order=["a", "b"])
    after = balance(6, before, order=["a", "b"])
    assert after == before


def test_an_instance_joining_takes_partitions_only_from_those_over_their_share() -> None:
    before = balance(6, {}, order=["a", "b"])
    after = balance(6, before, order=["a", "b", "c"])
    moved = {p for p in range(6) if not any(p in after[m] and p in before[m] for m in before)}
    assert len(moved) == 2 and set(after["c"]) == moved


def test_an_instance_leaving_moves_only_its_partitions() -> None:
    before = balance(6, {}, order=["a", "b", "c"])
    after = balance(6, {m: before[m] for m in ("a", "c")}, order=["a", "c"])
    for member in ("a", "c"):
        assert set(before[member]) <= set(after[member])


def test_no_instance_is_left_without_work_while_another_has_two_shares() -> None:
    owned = balance(6, {"a": [0, 1, 2, 3, 4, 5]}, order=["a", "b"])
    assert len(owned["a"]) == len(owned["b"]) == 3
