"""`emeuse partner status`: standing consents as the last change of each consent, refusals
by who refused, and what an operator and a partner are shown."""

from __future__ import annotations

import pytest

from emeuse.cli.errors import CliError
from emeuse.cli.main import build_parser
from emeuse.cli.partner_status import (
    GroupLag,
    Status,
    cmd_partner_status,
    refusal_counts,
    render,
    standing_consents,
)
from emeuse.partners.v1.partners_pb2 import ConsentChanged
from emeuse.platform.v1.dead_letter_pb2 import MessageDeadLettered
from emeuse.runtime.pseudonym import random_pseudonym

ANNE, BRUNO, CLAIRE = (random_pseudonym() for _ in range(3))


def change(patient: str, granted: bool, purpose: str = "remote-monitoring", partner="glucoflow"):
    return ConsentChanged(
        patient_pseudonym=patient, partner_id=partner, purpose=purpose, granted=granted
    )


def test_consents_count_the_patients_whose_last_change_grants() -> None:
    changes = [
        change(ANNE, True),
        change(ANNE, True, purpose="education"),
        change(BRUNO, True),
        change(BRUNO, False),  # withdrawn since
        change(CLAIRE, False),
        change(CLAIRE, True),  # granted again
        change(BRUNO, True, partner="othercare"),  # another partner's
    ]
    assert standing_consents(changes, "glucoflow") == {"patients": 2, "consents": 3}
    assert standing_consents(changes, "othercare") == {"patients": 1, "consents": 1}


def test_refusals_are_counted_by_who_refused() -> None:
    def letter(consumer: str, event_id: str) -> MessageDeadLettered:
        return MessageDeadLettered(consumer=consumer, original_headers={"ce_id": event_id.encode()})

    letters = [
        letter("gateway", "e-1"),
        letter("gateway", "e-2"),
        letter("gateway", "e-2"),  # checked twice (at least once): one event refused
        letter("chronic", "e-3"),
        letter("partner/glucoflow", "e-4"),
        MessageDeadLettered(consumer="gateway"),  # no id kept (withheld): counted as it is
    ]
    assert refusal_counts(letters, "glucoflow") == {"app": 1, "chronic": 1, "gateway": 3}


def test_the_operators_view_shows_grants_consents_lag_and_refusals() -> None:
    shown = render(
        Status(
            "glucoflow",
            True,
            {"reads": ["emeuse.chronic.v1.ReadingRecorded"], "publishes": []},
            {"patients": 2, "consents": 3},
            [GroupLag("emeuse-partner.glucoflow.sdk", 4, {0: 4})],
            "2026-12-06T08:00:00+00:00",
            {"chronic": 1, "gateway": 2},
        )
    )
    assert "reads       emeuse.chronic.v1.ReadingRecorded" in shown
    assert "publishes   -" in shown
    assert "2 patient(s) consent now" in shown
    assert "emeuse-partner.glucoflow.sdk: 4 record(s) behind" in shown
    assert "refusals    3 since 2026-12-06T08:00:00+00:00 (chronic 1, gateway 2)" in shown


def test_a_partners_view_says_consents_are_not_its_to_see() -> None:
    shown = render(Status("glucoflow", None, {}, None, [], "2026-12-06T08:00:00+00:00", {}))
    assert "not visible with a partner's credential" in shown
    assert "no consumer group has committed on the feed yet" in shown
    assert "refusals    0 since" in shown


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["partner", "status", "Bad_Id"], "partner id"),
        (["partner", "status", "glucoflow", "--hours", "0"], "--hours"),
    ],
)
def test_bad_arguments_are_one_clear_error(argv: list[str], error: str) -> None:
    args = build_parser().parse_args(argv)
    with pytest.raises(CliError, match=error):
        cmd_partner_status(args)
