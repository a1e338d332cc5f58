"""A partition's store: values, due-index and checkpoint change together."""

from __future__ import annotations

from pathlib import Path

import pytest

from emeuse.kernel.declare import Processor, TableSpec
from emeuse.kernel.store import (
    INPUT_OFFSETS,
    PartitionStore,
    changelog_key,
    encode_offset,
    split_changelog_key,
)
from emeuse.registry import READING_RECORDED


def test_values_due_entries_and_checkpoint_survive_a_reopen(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p0")
    store.apply(
        [("states", "psn-a", b"1"), ("states", "psn-b", b"2"), ("plans", "psn-a", b"p")],
        [("steps", "psn-a", 1_000)],
        checkpoint=17,
    )
    store.apply([("states", "psn-b", None)], [("steps", "psn-a", None)], checkpoint=19)
    store.close()
    store = PartitionStore(tmp_path / "p0")
    assert store.get("states", "psn-a") == b"1"
    assert store.get("states", "psn-b") is None
    assert list(store.items("states")) == [("psn-a", b"1")]
    assert list(store.due_items("steps")) == []
    assert store.checkpoint() == 19
    store.close()


def test_a_store_never_written_has_no_checkpoint(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p1")
    assert store.checkpoint() is None
    store.close()


def test_changelog_keys_name_the_table_and_the_key() -> None:
    assert split_changelog_key(changelog_key("states", "43|req-1")) == ("states", "43|req-1")


def test_input_offsets_travel_as_changelog_entries_and_survive_a_reopen(tmp_path: Path) -> None:
    """Where a partition reads on is written like any value (same transaction, same
    changelog), so a store caught up from the changelog knows it."""
    store = PartitionStore(tmp_path / "p2")
    assert store.input_offset("emeuse.chronic.reading-recorded.v1") is None
    store.apply(
        [
            ("states", "psn-a", b"1"),
            (INPUT_OFFSETS, "emeuse.chronic.reading-recorded.v1", encode_offset(42)),
        ],
        checkpoint=3,
    )
    store.apply([(INPUT_OFFSETS, "emeuse.chronic.reading-recorded.v1", encode_offset(57))])
    store.close()
    store = PartitionStore(tmp_path / "p2")
    assert store.input_offset("emeuse.chronic.reading-recorded.v1") == 57
    assert store.input_offset("emeuse.chronic.care-plan-updated.v1") is None
    assert list(store.items("states")) == [("psn-a", b"1")]
    store.close()
    table, topic = split_changelog_key(changelog_key(INPUT_OFFSETS, "emeuse.x.y.v1"))
    assert (table, topic) == (INPUT_OFFSETS, "emeuse.x.y.v1")


def test_a_service_cannot_declare_a_table_named_like_the_kernels_own() -> None:
    with pytest.raises(ValueError, match="'__' are the kernel's"):
        Processor(
            service="chronic",
            inputs={READING_RECORDED: _ignore},
            tables=[TableSpec(INPUT_OFFSETS, "clashes with the kernel's offsets")],
        )


async def _ignore(event: object, tx: object) -> None:
    return None
