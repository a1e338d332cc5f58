"""Unmet need: a flagged request is told by what it asked for, and then forgotten."""

from __future__ import annotations

from emeuse.access.v1.access_events_pb2 import (
    ConsultationRequested,
    Modality,
    Place,
    Profession,
    RequestFlagged,
    SlotBooked,
    Urgency,
)
from emeuse.registry import CONSULTATION_REQUESTED, REQUEST_FLAGGED, SLOT_BOOKED
from services.evaluation.domain import cells
from services.evaluation.unmet import WAITING
from tests.unit.evaluation.partitions import Partitions
from tests.unit.evaluation.scenario import MARCH, Sent, completed, person

ROUTINE = Urgency.URGENCY_ROUTINE


def access_event(spec, message) -> Sent:
    return completed(Sent(spec, message, "54", "telesuivi", "54", MARCH))


def request(n: int, **fields) -> Sent:
    asked = ConsultationRequested(
        request_id=f"q-{n}", territory="54", patient_pseudonym=person("c", n), **fields
    )
    return access_event(CONSULTATION_REQUESTED, asked)


def flag(n: int) -> Sent:
    flagged = RequestFlagged(
        request_id=f"q-{n}", territory="54", patient_pseudonym=person("c", n), urgency=ROUTINE
    )
    return access_event(REQUEST_FLAGGED, flagged)


def unmet(state: Partitions) -> dict[str, float]:
    merged = cells.merge(cell for key, cell in state.cells() if key.endswith("|2026-03"))
    return {
        f.breakdown: f.value
        for f in cells.figures("2026-03", merged, frozenset())
        if f.name == "access.requests_flagged_unmet"
    }


def waiting(state: Partitions) -> list[str]:
    return [key for p in state.committed.values() for key in p[WAITING]]


def test_a_flagged_request_counts_by_urgency_profession_modality_and_commune():
    state = Partitions()
    state.handle(
        request(
            1,
            urgency=ROUTINE,
            profession=Profession.PROFESSION_SPECIALIST,
            place=Place(commune="54395"),
        )
    )
    state.handle(flag(1))
    assert unmet(state) == {
        "": 1,
        "urgency=routine": 1,
        "profession=specialist": 1,
        "modality=any": 1,
        "commune=54395": 1,
    }
    assert waiting(state) == []


def test_a_booked_request_is_forgotten_and_a_flag_for_an_unknown_request_has_its_urgency_only():
    state = Partitions()
    state.handle(request(2, urgency=ROUTINE, modality=Modality.MODALITY_VIDEO))
    assert waiting(state) == ["54|q-2"]
    booked = SlotBooked(
        booking_id="b-2", territory="54", request_id="q-2", patient_pseudonym=person("c", 2)
    )
    state.handle(access_event(SLOT_BOOKED, booked))
    assert waiting(state) == []
    state.handle(flag(3))
    assert unmet(state) == {"": 1, "urgency=routine": 1}


def test_a_flag_read_before_its_request_counts_the_same_as_after_it():
    """Reading every topic from the start (a rebuild), the flag topic may come first: the
    kernel orders records within a topic only. The figures must not depend on it."""
    asked = {
        "urgency": ROUTINE,
        "profession": Profession.PROFESSION_SPECIALIST,
        "place": Place(commune="54395"),
    }
    live = Partitions()
    live.handle(request(4, **asked))
    live.handle(flag(4))
    rebuilt = Partitions()
    rebuilt.handle(flag(4))
    assert unmet(rebuilt) == {"": 1, "urgency=routine": 1}  # what it asked, not known yet
    # The same flag again (a copy), before or after its request: urgency only, both ways.
    live.handle(flag(4))
    rebuilt.handle(flag(4))
    # A booking after the flag (rebooked later), read before the request, keeps it waiting.
    booked = SlotBooked(
        booking_id="b-4", territory="54", request_id="q-4", patient_pseudonym=person("c", 4)
    )
    rebuilt.handle(access_event(SLOT_BOOKED, booked))
    rebuilt.handle(request(4, **asked))
    assert unmet(rebuilt) == unmet(live)
    assert unmet(rebuilt)["profession=specialist"] == 1
    assert waiting(rebuilt) == []


def by_experiment(state: Partitions) -> dict[str, dict[str, float]]:
    """Unmet need of March in territory 54, by experiment."""
    out: dict[str, dict[str, float]] = {}
    for experiment in ("telesuivi", "access-default"):
        merged = cells.merge(
            cell for key, cell in state.cells() if key.endswith(f"|{experiment}|54|2026-03")
        )
        found = {
            f.breakdown: f.value
            for f in cells.figures("2026-03", merged, frozenset())
            if f.name == "access.requests_flagged_unmet"
        }
        if found:
            out[experiment] = found
    return out


def test_a_flag_counts_in_its_request_s_experiment_whichever_topic_is_read_first():
    """A request access stored before it kept experiments is flagged in access's default
    experiment: the flag still counts in the experiment the request was made in."""
    asked = {"urgency": ROUTINE, "profession": Profession.PROFESSION_NURSE}
    in_default = completed(
        Sent(REQUEST_FLAGGED, flag(5).message, "54", "access-default", "54", MARCH)
    )
    live = Partitions()
    live.handle(request(5, **asked))
    live.handle(in_default)
    rebuilt = Partitions()
    rebuilt.handle(in_default)
    assert by_experiment(rebuilt) == {"access-default": {"": 1, "urgency=routine": 1}}
    rebuilt.handle(request(5, **asked))
    expected = {
        "telesuivi": {
            "": 1,
            "urgency=routine": 1,
            "profession=nurse": 1,
            "modality=any": 1,
            "commune=unknown": 1,
        }
    }
    assert by_experiment(live) == expected
    assert by_experiment(rebuilt) == expected
    # Moved out, the default experiment's cells hold nothing: no figure of 0 left behind.
    assert not [key for key, _ in rebuilt.cells() if "|access-default|" in key]
