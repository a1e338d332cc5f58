"""A few seconds of a simulated Meuse through the real services: enrolments over gRPC,
readings and home reports on Kafka, and what the platform makes of them."""

from __future__ import annotations

import os

import pytest
from rich.console import Console

from emeuse.registry import (
    ALERT_ACKNOWLEDGED,
    ALERT_ESCALATED,
    ALERT_RAISED,
    CONSULTATION_STATUS_CHANGED,
    INCIDENT_RAISED,
    READING_RECORDED,
    dead_letter_topic,
)
from emeuse.simulate.care_team import CareTeams
from emeuse.simulate.events import Options
from emeuse.simulate.lag import PlatformLag
from emeuse.simulate.run import plan, run
from emeuse.simulate.send import PlatformTransport, Tally
from tests.integration.test_access import access, withdraw_waiting

# What the simulated patients were left waiting for is withdrawn after each test (conftest).
pytestmark = pytest.mark.usefixtures("line_left_as_found")


def test_a_simulated_territory_raises_alerts_and_home_incidents_and_sets_bad_input_aside(
    platform, bus, tmp_path
):
    options = Options(
        seed=11,
        scale=0.01,
        territories=("55",),
        rate=60,
        duration=5,
        critical_rate=0.3,
        fall_rate=0.1,
        malformed_rate=0.05,
        experiment="simulation-tests",
        acknowledge_within_s=4,
        acknowledged_share=0.5,
        missed_visit_rate=0.5,
        visit_missed_after_s=3,
        opt_out_share=0.1,
        no_show_rate=0.5,
        partner_share=0.6,
    )
    targets = {
        s: platform.services[s].grpc_target
        for s in ("chronic", "home", "prevention", "access", "gateway")
    }
    # Requests earlier tests left waiting in the territory would take the simulated
    # practitioners' slots: a coordinator withdraws them, so the line starts empty.
    for territory in options.territories:
        withdraw_waiting(access(platform), territory)
    transport = PlatformTransport(
        bus.bootstrap,
        targets,
        platform.auth,
        options.experiment,
        partner_bootstrap=os.environ["EMEUSE_KAFKA_PARTNER_BOOTSTRAP"],
        partner_secrets=tmp_path,
    )
    lag = PlatformLag(bus.bootstrap, every_s=1)

    def care_teams(people: set[str], tally: Tally) -> CareTeams:
        return CareTeams(bus.bootstrap, options, people, transport, tally)

    try:
        tally = run(
            options, transport, Console(quiet=True), responders=care_teams, linger_s=8, lag=lag
        )
    finally:
        transport.close()
    assert not tally.failed, tally.reasons
    assert tally.sent["setup.patient"] > 0 and tally.sent["reading.critical"] > 0

    population = plan(options).population
    patients = {p.person.pseudonym for p in population.patients}
    residents = {h.person.pseudonym for h in population.homes}
    alerts = bus.wait_for(ALERT_RAISED.name, lambda r: r["key"] in patients)
    assert alerts[0]["headers"]["ce_experiment"] == "simulation-tests"
    for kind in ("INCIDENT_KIND_FALL", "INCIDENT_KIND_VISIT_MISSED"):
        bus.wait_for(
            INCIDENT_RAISED.name,
            lambda r, k=kind: r["key"] in residents and r["event"]["kind"] == k,
        )
    # Aides checked in to some of the visits planned; the others were missed (above).
    assert tally.sent["home.visit_planned"] > tally.sent["home.visit_checked_in"] > 0
    assert tally.sent["prevention.opted_out"] > 0
    # Care teams take some alerts in hand, and leave others to escalate.
    assert tally.sent["care_team.alert_acknowledged"] > 0
    assert tally.sent["care_team.never_answered"] > 0
    bus.wait_for(ALERT_ACKNOWLEDGED.name, lambda r: r["key"] in patients)
    bus.wait_for(ALERT_ESCALATED.name, lambda r: r["key"] in patients)
    # Consultations the platform booked for critical readings: completed or missed.
    outcomes = {"care_team.consultation_completed", "care_team.consultation_no_show"}
    assert sum(tally.sent[kind] for kind in outcomes) > 0, tally.sent
    bus.wait_for(
        CONSULTATION_STATUS_CHANGED.name,
        lambda r: (
            r["event"].get("patient_pseudonym") in patients
            and r["event"].get("status")
            in ("CONSULTATION_STATUS_COMPLETED", "CONSULTATION_STATUS_NO_SHOW")
        ),
    )
    # Partners' users consented, and their devices' readings came through the gateway.
    assert tally.sent["setup.consent"] > 0 and tally.sent["partner.reading"] > 0
    bus.wait_for(
        READING_RECORDED.name,
        lambda r: r["key"] in patients and r["headers"].get("ce_source", "").startswith("partner/"),
    )
    # The live view measured the services' consumer lag.
    assert lag.latest is not None and "emeuse-chronic" in lag.latest.per_group
    # Malformed readings are dead-lettered with their reason, never dropped in silence.
    dead = bus.wait_for(
        dead_letter_topic("chronic").name,
        lambda r: r["key"] in patients and r["event"].get("source_topic") == READING_RECORDED.name,
    )
    assert dead[0]["event"].get("reason")
