"""A replayed event is marked: the replay's id travels in the emeuse_replay header and
reaches a partner's handler as the envelope's replay_id; a live event has none."""

from datetime import UTC, datetime

from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import READING_RECORDED
from emeuse.runtime import envelope as env
from emeuse.runtime.pseudonym import random_pseudonym


def live_headers() -> list[tuple[str, bytes]]:
    envelope = env.new_envelope(
        event_type=READING_RECORDED.type_name,
        source="emeuse/chronic",
        subject_pseudonym=random_pseudonym(),
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="exp-test",
        schema_version="v1",
        occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    return env.to_headers(envelope)


def test_a_live_event_has_no_replay_id() -> None:
    assert env.from_headers(live_headers()).replay_id == ""


def test_a_replayed_event_carries_its_replays_id_in_the_envelope() -> None:
    # What the gateway's replay adds to the record as it was (services/gateway/replay.py).
    replayed = [*live_headers(), (env.H_REPLAY, b"rp-1")]
    envelope = env.from_headers(replayed)
    assert envelope.replay_id == "rp-1"
    # Written back out, the mark stays: a tool that copies the envelope keeps it.
    assert (env.H_REPLAY, b"rp-1") in env.to_headers(envelope)
