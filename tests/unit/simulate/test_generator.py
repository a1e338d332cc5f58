"""The synthetic territory: its proportions, its anomaly rates and its determinism."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from google.protobuf import json_format

from emeuse.cli.main import main
from emeuse.registry import READING_RECORDED, by_name
from emeuse.runtime.id_rules import ID_FIELDS, check_id
from emeuse.runtime.pseudonym import is_pseudonym
from emeuse.simulate.care_team import acknowledgement, answer_delay, consultation_outcome
from emeuse.simulate.communes import COMMUNES
from emeuse.simulate.events import GRPC, KAFKA, Options
from emeuse.simulate.partners import PARTNER, PARTNERS, partner_users
from emeuse.simulate.population import build_population
from emeuse.simulate.run import plan
from emeuse.simulate.send import APIS
from emeuse.simulate.territory import AGE_BANDS, DEPARTEMENTS
from services.chronic.domain.measures import normalise
from services.home.configuration import check_contact_id

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def events_of(options: Options) -> list[str]:
    run_plan = plan(options, now=START)
    return [e.to_json() for stage in run_plan.stages for e in stage] + [
        e.to_json() for e in run_plan.live
    ]


def test_each_departement_takes_its_share_of_the_people_and_of_the_patients():
    population = build_population(seed=3, scale=0.05)
    real = {d.code: d.population for d in DEPARTEMENTS}
    assert population.people == {code: round(n * 0.05) for code, n in real.items()}
    patients = Counter(p.person.territory for p in population.patients)
    for code, n in real.items():
        assert patients[code] / len(population.patients) == pytest.approx(
            n / sum(real.values()), abs=0.01
        )


def test_prevention_enrollees_fall_in_the_age_bands_in_their_proportions():
    enrollees = build_population(seed=4, scale=0.2).enrollees
    adults = [band for band in AGE_BANDS if band[0] >= 15]
    total_share = sum(share for *_, share in adults)
    seen = Counter((p.age_from, p.age_to) for p in enrollees)
    for low, high, share in adults:
        assert seen[(low, high)] / len(enrollees) == pytest.approx(share / total_share, abs=0.02)


def test_people_live_in_real_communes_of_their_departement_and_are_named_by_pseudonyms():
    population = build_population(seed=5, scale=0.01)
    people = [*population.enrollees, *(p.person for p in population.patients)]
    assert all(p.commune.insee.startswith(p.territory) for p in people)
    assert all(is_pseudonym(p.pseudonym) for p in people)
    assert len({p.pseudonym for p in people}) == len(people)


def test_anomalies_come_at_the_rates_asked():
    options = Options(seed=6, scale=0.02, rate=1000, duration=40, critical_rate=0.1)
    live = list(plan(options, now=START).live)
    kinds = Counter(e.kind for e in live)
    readings = sum(n for kind, n in kinds.items() if kind.startswith("reading"))
    assert kinds["reading.critical"] / readings == pytest.approx(0.1, abs=0.02)
    assert kinds["duplicate"] / len(live) == pytest.approx(options.duplicate_rate, abs=0.004)
    malformed = sum(n for kind, n in kinds.items() if kind.startswith("malformed"))
    assert malformed / len(live) == pytest.approx(options.malformed_rate, abs=0.003)


def test_a_silent_patient_sends_nothing_after_enrolment():
    run_plan = plan(Options(seed=7, gap_share=0.5, duration=20), now=START)
    silent = {p.person.pseudonym for p in run_plan.population.patients if p.silent}
    assert silent
    assert not [e for e in run_plan.live if e.kind.startswith("reading") and e.subject in silent]


def test_the_same_seed_and_options_give_the_same_events_and_another_seed_others():
    options = Options(seed=8, duration=10)
    assert events_of(options) == events_of(options)
    assert events_of(Options(seed=9, duration=10)) != events_of(options)


def test_every_event_but_the_malformed_ones_is_a_valid_record_or_request():
    run_plan = plan(Options(seed=10, duration=60, opt_out_share=0.2), now=START)
    live = list(run_plan.live)
    events = [e for stage in run_plan.stages for e in stage] + live
    for event in events:
        if event.via in (KAFKA, PARTNER) and event.raw is None:
            spec = by_name(event.target if event.via == KAFKA else READING_RECORDED.name)
            message = json_format.ParseDict(event.message, spec.message())
            assert spec.record_key(message) == event.subject
        elif event.via == GRPC:
            service, method = event.target.split("/")
            json_format.ParseDict(event.message, getattr(APIS[service][0], f"{method}Request")())
    assert {"home/CheckIn", "prevention/OptOut"} <= {e.target for e in live}
    dues = [e.due for e in live]
    assert dues == sorted(dues)


def test_dry_run_writes_every_event_as_a_json_line(tmp_path: Path):
    out = tmp_path / "events.jsonl"
    code = main(
        [
            "simulate",
            "--dry-run",
            str(out),
            "--duration",
            "2",
            "--rate",
            "100",
            "--start",
            START.isoformat(),
            "--territory",
            "55",
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    live = [line for line in lines if line["via"] in ("kafka", "partner")]
    assert len(live) == 200
    assert {line["territory"] for line in lines} == {"55"}
    assert any(line["target"] == "chronic/EnrollPatient" for line in lines)


def test_a_scale_outside_zero_to_one_is_refused_with_a_clear_error(capsys):
    assert main(["simulate", "--dry-run", "/dev/null", "--scale", "2"]) == 1
    assert "--scale must be above 0 and at most 1" in capsys.readouterr().err


def test_care_teams_answer_the_share_asked_within_their_delay_and_the_same_alert_alike():
    options = Options(acknowledged_share=0.7, acknowledge_within_s=600)
    delays = [answer_delay(1, f"alert-{n}", options) for n in range(2000)]
    answered = [d for d in delays if d is not None]
    assert len(answered) / len(delays) == pytest.approx(0.7, abs=0.04)
    assert all(60 <= d <= 540 for d in answered)
    assert delays == [answer_delay(1, f"alert-{n}", options) for n in range(2000)]


def test_the_member_an_alert_names_is_the_one_who_acknowledges_it():
    shown = {
        "topic": "emeuse.chronic.alert-raised.v1",
        "headers": {"ce_territory": "55"},
        "event": {
            "alert_id": "a-1",
            "patient_pseudonym": "psn-" + "a" * 32,
            "notified": {"member_id": "gp-55-0001"},
        },
    }
    call = acknowledgement(shown, START)
    assert call is not None and call.target == "chronic/AcknowledgeAlert"
    assert call.message == {
        "patient_pseudonym": "psn-" + "a" * 32,
        "alert_id": "a-1",
        "member_id": "gp-55-0001",
    }


def test_without_the_setup_nothing_is_enrolled_and_no_visit_is_checked_in():
    run_plan = plan(Options(seed=12, duration=60), now=START, setup=False)
    assert run_plan.stages == []
    assert not [e for e in run_plan.live if e.target == "home/CheckIn"]


def test_people_are_spread_over_the_real_communes_in_proportion_to_their_population():
    meuse = next(d for d in DEPARTEMENTS if d.code == "55")
    listed = [c for c in COMMUNES if c[0].startswith("55")]
    assert meuse.population == sum(population for _, _, population, _ in listed)
    population = build_population(seed=6, scale=0.2, territories=("55",))
    people = [*population.enrollees, *(p.person for p in population.patients)]
    by_arrondissement = Counter(
        next(c[3] for c in listed if c[0] == p.commune.insee) for p in people
    )
    for arrondissement in {c[3] for c in listed}:
        expected = sum(c[2] for c in listed if c[3] == arrondissement) / meuse.population
        assert by_arrondissement[arrondissement] / len(people) == pytest.approx(expected, abs=0.02)
    # Villages left empty since 1916 are in the table, with nobody drawn to them.
    empty = {c[0] for c in listed if c[2] == 0}
    assert empty and not empty & {p.commune.insee for p in people}


def test_speed_spreads_the_events_times_over_simulated_days_ending_when_the_run_ends():
    options = Options(seed=9, scale=0.01, rate=100, duration=60, speed=1440)
    # The records; timed calls (visits, opt-outs) keep the wall clock's times.
    live = [e for e in plan(options, now=START).live if e.via == KAFKA and e.kind != "duplicate"]
    ends = START + timedelta(seconds=60)
    times = [e.at for e in live if not e.kind.endswith("late")]
    # A day of simulated time in a minute of sending, none of it in the future.
    assert max(times) <= ends and ends - min(times) > timedelta(hours=23)
    assert all(later >= earlier for earlier, later in pairwise(times))
    # Sent a minute apart all the same: only the times the events carry are compressed.
    assert max(e.due for e in live) < 60
    # Homes live the simulated day: at night they mostly report heartbeats and temperatures.
    quiet = Counter(e.kind for e in live if e.kind.startswith("home.") and e.at.hour in (1, 2))
    assert quiet and quiet["home.motion"] < (quiet["home.heartbeat"] + quiet["home.temperature"])


def test_a_speed_below_one_is_refused_with_a_clear_error(capsys):
    assert main(["simulate", "--speed", "0.5", "--dry-run", "/dev/null"]) != 0
    assert "--speed must be at least 1" in capsys.readouterr().err


def test_booked_consultations_are_completed_or_missed_at_the_share_asked_once_the_slot_allows():
    options = Options(no_show_rate=0.25)

    def booked(n: int, start: datetime) -> dict[str, str]:
        return {
            "booking_id": f"bkg-{n}",
            "territory": "55",
            "patient_pseudonym": "psn-x",
            "practitioner_id": "gp-55-0001",
            "start": start.isoformat().replace("+00:00", "Z"),
        }

    soon = [consultation_outcome(1, booked(n, START), START, options) for n in range(2000)]
    kinds = Counter(call.kind for _, call in soon)
    assert kinds["care_team.consultation_no_show"] / 2000 == pytest.approx(0.25, abs=0.03)
    assert set(kinds) == {"care_team.consultation_no_show", "care_team.consultation_completed"}
    assert all(call.message["actor_id"] == "gp-55-0001" for _, call in soon)
    assert all(0 < delay < 10 for delay, _ in soon)
    # A slot an hour ahead: its outcome waits until 15 minutes before it starts.
    delay, _ = consultation_outcome(1, booked(1, START + timedelta(hours=1)), START, options)
    assert 45 * 60 <= delay <= 45 * 60 + 10
    assert consultation_outcome(1, booked(7, START), START, options) == consultation_outcome(
        1, booked(7, START), START, options
    )


def agendas(now: datetime, seed: int) -> dict[str, list[tuple[str, datetime, datetime]]]:
    """Each practitioner's published slots: (id, start, end)."""
    [_, second] = plan(Options(seed=seed, scale=0.01, territories=("55",)), now=now).stages
    found = {}
    for call in second:
        if call.kind == "setup.agenda":
            availability = call.message["availability"]
            slots = []
            for slot in availability["slots"]:
                start = datetime.fromisoformat(slot["start"].replace("Z", "+00:00"))
                end = start + timedelta(seconds=int(slot["duration"].rstrip("s")))
                slots.append((slot["slot_id"], start, end))
            found[availability["practitioner_id"]] = slots
    return found


def test_agendas_are_back_to_back_quarter_hours_that_a_later_run_publishes_again_identically():
    first = agendas(START + timedelta(minutes=7, seconds=30), seed=1)
    assert first
    for practitioner_id, slots in first.items():
        assert len(slots) == 20
        assert all(start.minute % 15 == 0 and start.second == 0 for _, start, _ in slots)
        assert all(end == after for (_, _, end), (_, after, _) in pairwise(slots))
        _, start, _ = slots[0]
        assert start == START + timedelta(minutes=15)
        assert slots[0][0] == f"{practitioner_id}-20261207T0915"
    # Another seed, 50 minutes later: the same practitioners, and where their agendas meet,
    # the same slots (same id, same times), never one overlapping another.
    later = agendas(START + timedelta(minutes=57, seconds=30), seed=2)
    assert later.keys() == first.keys()
    for practitioner_id, slots in later.items():
        earlier = first[practitioner_id]
        meeting = [
            (old, new)
            for old in earlier
            for new in slots
            if old[1] < new[2] and new[1] < old[2]  # overlapping in time
        ]
        assert meeting and all(old == new for old, new in meeting)
        assert len(meeting) == 20 - 3  # the first run's 10:00 to 14:00 slots


def test_a_consultation_booked_in_the_first_slot_gets_its_outcome_within_seconds():
    # Published a second before the quarter hour: the first slot starts in a second, or
    # published just after it, in nearly 15 minutes; either way access takes an outcome
    # at once, so a short run sees the consultation end.
    for offset in (timedelta(minutes=14, seconds=59), timedelta(seconds=1)):
        now = START + offset
        slot_id, start, _ = next(iter(agendas(now, seed=1).values()))[0]
        booked = {
            "booking_id": "bkg-1",
            "territory": "55",
            "patient_pseudonym": "psn-x",
            "practitioner_id": slot_id.rsplit("-", 1)[0],
            "start": start.isoformat().replace("+00:00", "Z"),
        }
        delay, _ = consultation_outcome(1, booked, now, Options())
        assert delay <= 10


def test_a_share_of_partner_programme_patients_consent_and_send_readings_through_the_partner():
    options = Options(seed=12, scale=0.05, duration=60, rate=100, consent_withdrawal_share=0.2)
    run_plan = plan(options, now=START)
    programmes = {partner.partner_id: partner.programme for partner in PARTNERS}
    users = partner_users(run_plan.population, options)
    of_programmes = [p for p in run_plan.population.patients if p.programme in programmes.values()]
    assert len(users) / len(of_programmes) == pytest.approx(options.partner_share, abs=0.05)
    programme_of = {p.person.pseudonym: p.programme for p in run_plan.population.patients}
    assert all(programmes[partner] == programme_of[who] for who, partner in users.items())
    consented = {
        (e.subject, e.message["partner_id"])
        for stage in run_plan.stages
        for e in stage
        if e.target == "gateway/RecordConsent" and e.message["granted"]
    }
    assert consented == set(users.items())
    live = list(run_plan.live)
    through_partners = [e for e in live if e.via == PARTNER]
    assert through_partners and all(users[e.subject] == e.target for e in through_partners)
    # A partner resends too: duplicates of its readings go the same way.
    assert all(e.kind.startswith(("partner.reading", "duplicate")) for e in through_partners)
    withdrawn = [e for e in live if e.kind == "partner.consent_withdrawn"]
    assert len(withdrawn) / len(users) == pytest.approx(0.2, abs=0.06)
    assert all(not e.message["granted"] and e.subject in users for e in withdrawn)
    # Nobody else's readings go through a partner, and users' readings all do until they
    # withdraw: the partner sends nothing for them after it (the gateway would refuse it).
    withdrew_at = {e.subject: e.due for e in withdrawn}
    direct = [e for e in live if e.via == KAFKA and e.kind.startswith("reading")]
    users_direct = [e for e in direct if e.subject in users]
    assert users_direct and all(withdrew_at[e.subject] <= e.due for e in users_direct)
    assert all(e.due < withdrew_at.get(e.subject, math.inf) for e in through_partners)
    # Their consents cover every time the run's readings may say, late ones included.
    [covers_from] = {
        e.message["covers_from"] for e in run_plan.stages[0] if e.kind == "setup.consent"
    }
    assert datetime.fromisoformat(covers_from) <= min(e.at for e in through_partners)
    assert not partner_users(run_plan.population, Options(seed=12, partner_share=0))


def test_every_reading_but_the_malformed_ones_is_a_value_chronic_takes_as_possible():
    # SpO2's critical threshold is its ceiling (100 %): a critical SpO2 is a low one.
    options = Options(seed=13, scale=0.05, rate=1000, duration=30, critical_rate=0.3)
    readings = [
        e
        for e in plan(options, now=START).live
        if e.kind.startswith(("reading", "partner.reading"))
    ]
    assert {e.message["loinc_code"] for e in readings} >= {"59408-5", "2339-0", "8867-4"}
    for event in readings:
        message = event.message
        normalise(message["loinc_code"], message["value"], message["unit"])  # raises if not
    spo2 = [e.message["value"] for e in readings if e.message["loinc_code"] == "59408-5"]
    assert min(spo2) < 85  # critical ones are there, below the critical low


def test_no_id_the_simulator_makes_reads_as_a_person_s_number_even_when_its_start_could():
    # At 20:59:44 on 2026-12-07 the start's digits, run together, were a NIR with a valid
    # key: every reading and visit of such a run was set aside as identifying content.
    start = datetime(2026, 12, 7, 20, 59, 44, tzinfo=UTC)
    run_plan = plan(Options(seed=1, duration=2, rate=50, start=start), now=start)
    checked = Counter()
    for event in [e for stage in run_plan.stages for e in stage] + list(run_plan.live):
        if event.raw is not None:
            continue
        for field, value in (event.message or {}).items():
            if field in ID_FIELDS and isinstance(value, str):
                check_id(field, value, ID_FIELDS[field])
                checked[field] += 1
            if field == "visit_id":  # home's own rule for its ids: lowercase
                check_contact_id(value, field)
    assert checked["reading_id"] > 0 and checked["visit_id"] > 0, checked
