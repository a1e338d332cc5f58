"""Moving state kept under the old partitioning (territory code alone) to the new one."""

from emeuse.kernel.store import changelog_key
from emeuse.registry import CONSULTATION_REQUESTED
from emeuse.runtime.codec import expected_partition
from services.access.repartition import moves
from services.access.state import REQUESTS, SLOTS, TABLES

OLD = expected_partition(b"52", 6)  # where "52", "54" and "55" all used to hash


def new_partition(territory: str) -> int:
    return expected_partition(f"agenda-{territory}".encode(), 6)


def test_the_territories_no_longer_share_one_partition():
    assert {new_partition(t) for t in ("52", "54", "55")} == {0, 1, 3}
    for territory in ("52", "54", "55"):
        assert (
            CONSULTATION_REQUESTED.partition_key(
                territory.encode(), CONSULTATION_REQUESTED.message(territory=territory)
            )
            == f"agenda-{territory}".encode()
        )


def test_live_entries_move_to_their_territorys_new_partition_and_deleted_ones_stay_gone():
    records = [
        (OLD, changelog_key(REQUESTS, "52|r-1"), b"first"),
        (OLD, changelog_key(REQUESTS, "52|r-1"), b"latest"),
        (OLD, changelog_key(SLOTS, "55|s-1"), b"slot"),
        (OLD, changelog_key(SLOTS, "55|s-2"), b"gone"),
        (OLD, changelog_key(SLOTS, "55|s-2"), None),
        (OLD, changelog_key("someone_elses", "52|x"), b"not ours"),
    ]
    found = {m.key: m for m in moves(records, TABLES, 6)}
    moved_request = found[changelog_key(REQUESTS, "52|r-1")]
    assert (moved_request.value, moved_request.source) == (b"latest", OLD)
    assert moved_request.target == new_partition("52")
    assert found[changelog_key(SLOTS, "55|s-1")].target == new_partition("55")
    assert changelog_key(SLOTS, "55|s-2") not in found
    assert changelog_key("someone_elses", "52|x") not in found


def test_entries_already_where_they_hash_do_not_move():
    home = new_partition("54")
    records = [(home, changelog_key(REQUESTS, "54|r-9"), b"state")]
    assert moves(records, TABLES, 6) == []
