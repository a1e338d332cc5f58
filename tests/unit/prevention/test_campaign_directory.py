"""The campaign directory read from the compacted campaign log."""

from services.prevention.campaigns import Directory, to_message
from services.prevention.domain.campaign import APPROVED, PAUSED
from tests.unit.prevention.people import campaign


def record(**fields: object) -> bytes:
    return to_message(campaign(**fields)).SerializeToString()


def test_a_compacted_log_with_only_the_latest_version_still_knows_the_campaign() -> None:
    directory = Directory()
    assert directory.apply(record(version=3, status=APPROVED, approved_by="staff-2"))
    known = directory.get("cmp-hpv")
    assert known is not None and known.version == 3 and known.status == APPROVED
    # Later changes apply on top of it, older or repeated ones do not.
    assert not directory.apply(record(version=3, status=PAUSED))
    assert directory.apply(record(version=4, status=PAUSED, approved_by="staff-2"))
    assert directory.get("cmp-hpv").status == PAUSED  # type: ignore[union-attr]


def test_a_reload_reads_into_a_fresh_copy_swapped_in_when_caught_up() -> None:
    directory = Directory()
    directory.apply(record(version=1, status="draft"))
    directory.reloading()
    directory.apply_record(b"cmp-hpv", record(version=4, status=APPROVED, approved_by="s"))
    assert directory.get("cmp-hpv").version == 1  # type: ignore[union-attr]
    directory.caught_up()
    assert directory.get("cmp-hpv").version == 4  # type: ignore[union-attr]
