"""A partition's store: values, due-index and checkpoint change together."""

from __future__ import annotations

from pathlib import Path

from emeuse.kernel.store import PartitionStore, changelog_key, split_changelog_key


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
