"""A few seconds of a simulated Meuse through the real services: enrolments over gRPC,
readings and home reports on Kafka, and what the platform makes of them."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from emeuse.access.v1 import access_service_pb2 as api
from emeuse.registry import (
    ALERT_ACKNOWLEDGED,
    ALERT_ESCALATED,
    ALERT_RAISED,
    CONSULTATION_STATUS_CHANGED,
    INCIDENT_RAISED,
    READING_RECORDED,
    VISIT_ENDED,
    dead_letter_topic,
)
from emeuse.simulate.care_team import CareTeams
from emeuse.simulate.events import Options
from emeuse.simulate.feed_readers import FeedReaders
from emeuse.simulate.lag import PlatformLag
from emeuse.simulate.run import Plan, plan, run
from emeuse.simulate.send import PlatformTransport, Tally
from emeuse.simulate.setup import setup_stages, slot_id, slot_starts
from tests.integration.harness import Bus, Platform, emeuse
from tests.integration.test_access import access, withdraw_waiting

# What the simulated patients were left waiting for is withdrawn after each test (conftest).
pytestmark = pytest.mark.usefixtures("line_left_as_found")


def simulate(
    platform: Platform,
    bus: Bus,
    options: Options,
    partners_dir: Path,
    *,
    linger_s: float,
    lag: PlatformLag | None = None,
    read_feeds: bool = False,
) -> Tally:
    """A run of `emeuse simulate` through the test platform's real interfaces, care teams
    answering (and, with `read_feeds`, the partners' apps reading their feeds); it fails on
    any failed send. `partners_dir` keeps the simulated partners' settings files."""
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
        partner_secrets=partners_dir,
    )

    def care_teams(people: set[str], tally: Tally) -> CareTeams:
        return CareTeams(bus.bootstrap, options, people, transport, tally)

    def partner_apps(run_plan: Plan, tally: Tally) -> FeedReaders:
        return FeedReaders(
            run_plan.partners,
            run_plan.users,
            run_plan.withdrawn,
            partners_dir,
            tally,
            experiment=options.experiment,
        )

    try:
        tally = run(
            options,
            transport,
            Console(quiet=True),
            responders=care_teams,
            linger_s=linger_s,
            lag=lag,
            feed_readers=partner_apps if read_feeds else None,
        )
    finally:
        transport.close()
    assert not tally.failed, tally.reasons
    return tally


def test_a_simulated_territory_raises_alerts_and_home_incidents_and_sets_bad_input_aside(
    platform, bus, simulated_partners_dir
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
    lag = PlatformLag(bus.bootstrap, every_s=1)
    tally = simulate(
        platform, bus, options, simulated_partners_dir, linger_s=8, lag=lag, read_feeds=True
    )
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
    # Each aide who came left before the run's end: the visit ended, its length measured.
    assert tally.sent["home.visit_checked_out"] == tally.sent["home.visit_checked_in"]
    bus.wait_for(VISIT_ENDED.name, lambda r: r["key"] in residents)
    assert tally.sent["prevention.opted_out"] > 0
    # Care teams take some alerts in hand, and leave others to escalate.
    assert tally.sent["care_team.alert_acknowledged"] > 0
    assert tally.sent["care_team.never_answered"] > 0
    acknowledged = bus.wait_for(ALERT_ACKNOWLEDGED.name, lambda r: r["key"] in patients)[0]
    bus.wait_for(ALERT_ESCALATED.name, lambda r: r["key"] in patients)
    # `emeuse audit` answers, after the run, who took that patient's alert in hand.
    rows = audited(bus, acknowledged["key"], "AcknowledgeAlert")
    assert {row["subject_pseudonym"] for row in rows} == {acknowledged["key"]}
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
    # The partners' apps (the SDK, their own credentials) read their feeds: consenting
    # patients' readings only (a reading of anyone else would have failed the run above).
    assert tally.sent["partner.feed_read"] > 0, tally.sent
    # The live view measured the services' consumer lag.
    assert lag.latest is not None and "emeuse-chronic" in lag.latest.per_group
    # Malformed readings are dead-lettered with their reason, never dropped in silence.
    dead = bus.wait_for(
        dead_letter_topic("chronic").name,
        lambda r: r["key"] in patients and r["event"].get("source_topic") == READING_RECORDED.name,
    )
    assert dead[0]["event"].get("reason")


def audited(bus: Bus, subject: str, method: str, timeout: float = 30) -> list[dict[str, Any]]:
    """`emeuse audit --subject` as an auditor runs it, until it shows an answered call of
    `method` (the services write their audit records in batches, just after answering)."""
    deadline = time.monotonic() + timeout
    while True:
        touched = emeuse("audit", "--subject", subject, "--json", bootstrap=bus.bootstrap)
        assert touched.returncode == 0, touched.stderr
        rows = [json.loads(line) for line in touched.stdout.splitlines()]
        if any(method in row["method"] and row["outcome"] == "OK" for row in rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(1)


def set_up(options: Options, now: datetime, transport: PlatformTransport) -> Tally:
    """The simulator's enrolments and agendas, stage by stage, as a run at `now` sends them."""
    tally = Tally()
    for stage in setup_stages(plan(options).population, options, now):
        for call in stage:
            tally.started()
            transport.send(call, tally.done)
        deadline = time.monotonic() + 120
        while tally.pending and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not tally.pending, "the platform did not answer every enrolment"
    return tally


def test_a_second_and_a_third_run_publish_the_same_agendas_again_and_no_slot_is_refused(
    platform, bus
):
    # Any seed: the practitioners are the same (gp-55-0001, ...), their agendas shared
    # with every other run on this platform.
    options = Options(seed=12, scale=0.01, territories=("55",), experiment="simulation-tests")
    client = access(platform)
    withdraw_waiting(client, "55")  # a request waiting would take the slots published
    targets = {
        s: platform.services[s].grpc_target for s in ("chronic", "home", "prevention", "access")
    }
    transport = PlatformTransport(bus.bootstrap, targets, platform.auth, options.experiment)
    now = datetime.now(UTC)
    # Runs 25 and 50 minutes apart, so a grid laid from each run's time (slots 20 minutes
    # apart, as before) would put slots across the earlier runs' ones.
    runs = [now, now + timedelta(minutes=25), now + timedelta(minutes=50)]
    try:
        for at in runs:
            tally = set_up(options, at, transport)
            # What `emeuse simulate` exits 0 on: no call failed.
            assert not tally.failed, tally.reasons
            assert tally.sent["setup.agenda"] == len(plan(options).population.practitioners)
    finally:
        transport.close()
    for practitioner in plan(options).population.practitioners:
        agenda = client.GetPractitionerAgenda(
            api.GetPractitionerAgendaRequest(
                territory="55", practitioner_id=practitioner.practitioner_id
            )
        )
        published = {
            (s.slot.slot_id, s.slot.start.ToDatetime(tzinfo=UTC), s.slot.duration.ToSeconds())
            for s in agenda.slots
        }
        # Every slot of every run is in the agenda, once, as a 15-minute slot.
        starts = {start for at in runs for start in slot_starts(at)}
        asked = {(slot_id(practitioner.practitioner_id, t), t, 900) for t in starts}
        assert asked <= published, sorted(asked - published)[:3]
        ordered = sorted(agenda.slots, key=lambda s: s.slot.start.ToDatetime(tzinfo=UTC))
        for before, after in pairwise(ordered):
            ends = before.slot.start.ToDatetime(tzinfo=UTC) + timedelta(
                seconds=before.slot.duration.ToSeconds()
            )
            assert ends <= after.slot.start.ToDatetime(tzinfo=UTC)
