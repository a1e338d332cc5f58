"""The enrolments a simulated territory needs before its devices speak, as gRPC calls.

Stages run in order, the calls of one stage in any order: a campaign is approved, a
practitioner's slots published and a pregnancy programme started only once the campaign,
practitioner and person exist.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from emeuse.simulate.events import GRPC, Options, SimEvent, duration, rfc3339
from emeuse.simulate.measures import MONITORING_PROGRAMME, PROGRAMME_MEASURES
from emeuse.simulate.population import Home, Patient, Population, Practitioner
from emeuse.simulate.rollout import experiment_of
from emeuse.simulate.territory import SHARES

TERRITORY_ENUM = {
    "55": "TERRITORY_MEUSE",
    "52": "TERRITORY_HAUTE_MARNE",
    "54": "TERRITORY_MEURTHE_ET_MOSELLE",
}
MODALITIES = {
    "ehpad": ["MODALITY_NURSE_ASSISTED"],
    "pharmacy_cabin": ["MODALITY_VIDEO", "MODALITY_NURSE_ASSISTED"],
    "health_centre": ["MODALITY_VIDEO", "MODALITY_PHONE"],
}
# Home devices: one of each kind a connected home gets.
DEVICES = {
    "fall": "DEVICE_KIND_FALL_DETECTOR",
    "motion": "DEVICE_KIND_MOTION_SENSOR",
    "door": "DEVICE_KIND_DOOR_SENSOR",
    "bed": "DEVICE_KIND_BED_SENSOR",
    "thermo": "DEVICE_KIND_THERMOMETER",
    "panic": "DEVICE_KIND_PANIC_BUTTON",
}


def device_id(kind: str) -> str:
    return f"{kind}-01"


def setup_stages(population: Population, options: Options, now: datetime) -> list[list[SimEvent]]:
    rng = random.Random(f"emeuse-simulate-setup-{population.seed}")
    serial = iter(range(1, 10**9))

    def call(
        kind: str, target: str, territory: str, subject: str, message: dict[str, Any]
    ) -> SimEvent:
        return SimEvent(
            kind,
            GRPC,
            target,
            territory,
            subject,
            now,
            f"sim-{population.seed}-setup-{next(serial)}",
            message,
        )

    def exp(territory: str) -> str:
        return experiment_of(options, territory, now)

    first: list[SimEvent] = []
    second: list[SimEvent] = []
    for place in population.places:
        commune = place.commune
        first.append(
            call(
                "setup.place",
                "access/RegisterPlace",
                place.territory,
                "",
                {
                    "registration": {
                        "territory": place.territory,
                        "place": {
                            "place_id": place.place_id,
                            "kind": f"PLACE_KIND_{place.kind.upper()}",
                            "commune": commune.insee,
                            "latitude": commune.latitude,
                            "longitude": commune.longitude,
                            "modalities": MODALITIES[place.kind],
                        },
                    },
                    "experiment_id": exp(place.territory),
                },
            )
        )
    for practitioner in population.practitioners:
        first.append(
            call(
                "setup.practitioner",
                "access/RegisterPractitioner",
                practitioner.territory,
                "",
                _practitioner(practitioner, exp(practitioner.territory)),
            )
        )
        second.append(
            call(
                "setup.agenda",
                "access/PublishAvailability",
                practitioner.territory,
                "",
                _agenda(practitioner, exp(practitioner.territory), now),
            )
        )
    for patient in population.patients:
        first.append(
            call(
                "setup.patient",
                "chronic/EnrollPatient",
                patient.person.territory,
                patient.person.pseudonym,
                _enrolment(patient, exp(patient.person.territory), options, population.seed),
            )
        )
    for home in population.homes:
        first.append(
            call(
                "setup.home",
                "home/EnrollHome",
                home.person.territory,
                home.person.pseudonym,
                _home(home, exp(home.person.territory), options),
            )
        )
    for person in population.enrollees:
        first.append(
            call(
                "setup.person",
                "prevention/EnrollPerson",
                person.territory,
                person.pseudonym,
                {
                    "person": {
                        "person_pseudonym": person.pseudonym,
                        "age_band_from": person.age_from,
                        "age_band_to": person.age_to,
                        "territory": TERRITORY_ENUM[person.territory],
                        "allowed_channels": rng.choice(
                            (["app"], ["sms"], ["app", "sms"], ["email"])
                        ),
                    },
                    "experiment_id": exp(person.territory),
                },
            )
        )
        if person.age_to <= 44 and rng.random() < SHARES["pregnancy"]:
            due = now + timedelta(days=rng.randint(30, 250))
            second.append(
                call(
                    "setup.pregnancy",
                    "prevention/StartProgramme",
                    person.territory,
                    person.pseudonym,
                    {
                        "person_pseudonym": person.pseudonym,
                        "programme": "PROGRAMME_PREGNANCY",
                        "expected_due_date": rfc3339(due),
                    },
                )
            )
    for code in population.people:
        campaign_id = f"cmp-sim-{population.seed}-{code}-screening"
        first.append(
            call(
                "setup.campaign",
                "prevention/CreateCampaign",
                code,
                "",
                _campaign(campaign_id, code, exp(code), now),
            )
        )
        second.append(
            call(
                "setup.campaign_approved",
                "prevention/ApproveCampaign",
                code,
                "",
                {"campaign_id": campaign_id, "approver_id": f"ars-{code}-0001"},
            )
        )
    return [first, second]


def _practitioner(practitioner: Practitioner, exp: str) -> dict[str, Any]:
    commune = practitioner.commune
    return {
        "practitioner": {
            "practitioner_id": practitioner.practitioner_id,
            "territory": practitioner.territory,
            "profession": f"PROFESSION_{practitioner.profession}",
            "specialty": "cardiology" if practitioner.profession == "SPECIALIST" else "",
            "care_line": "CARE_LINE_SECOND"
            if practitioner.profession == "SPECIALIST"
            else "CARE_LINE_FIRST",
            "modalities": ["MODALITY_VIDEO", "MODALITY_NURSE_ASSISTED"],
            "place": {
                "kind": "PLACE_KIND_PRACTICE",
                "commune": commune.insee,
                "latitude": commune.latitude,
                "longitude": commune.longitude,
            },
            "active": True,
        },
        "experiment_id": exp,
    }


# A practitioner's agenda: back-to-back slots on the quarter hours, so every run lays its
# slots on the same grid and a later run re-publishes an earlier run's slot as the same slot
# (same id, same times: access ignores it) instead of one overlapping it (refused). The
# first slot starts within 15 minutes, when access already takes its outcome
# (care_team.OUTCOME_TOLERANCE), so a consultation booked during a short run ends in it.
SLOT_MINUTES = 15
SLOTS_PER_AGENDA = 20


def slot_starts(now: datetime) -> list[datetime]:
    """The starts of an agenda published now: from the next quarter of an hour (UTC) on."""
    now = now.astimezone(UTC)
    quarter = now.replace(minute=now.minute - now.minute % SLOT_MINUTES, second=0, microsecond=0)
    return [quarter + timedelta(minutes=SLOT_MINUTES * n) for n in range(1, SLOTS_PER_AGENDA + 1)]


def slot_id(practitioner_id: str, start: datetime) -> str:
    return f"{practitioner_id}-{start:%Y%m%dT%H%M}"


def _agenda(practitioner: Practitioner, exp: str, now: datetime) -> dict[str, Any]:
    slots = [
        {
            "slot_id": slot_id(practitioner.practitioner_id, start),
            "start": rfc3339(start),
            "duration": f"{SLOT_MINUTES * 60}s",
        }
        for start in slot_starts(now)
    ]
    return {
        "availability": {
            "practitioner_id": practitioner.practitioner_id,
            "territory": practitioner.territory,
            "slots": slots,
        },
        "experiment_id": exp,
    }


def _enrolment(patient: Patient, exp: str, options: Options, seed: int) -> dict[str, Any]:
    measures = PROGRAMME_MEASURES[patient.programme]
    thresholds = [
        {
            "loinc_code": m.loinc,
            "unit": m.unit,
            "critical_low": m.critical_low,
            "low": m.low,
            "high": m.high,
            "critical_high": m.critical_high,
            "expected_every": duration(options.expected_every_s or m.cadence_s),
        }
        for m in measures
    ]
    team = [
        {"member_id": patient.gp_id, "role": "CARE_ROLE_GP", "escalation_rank": 1},
        {"member_id": patient.nurse_id, "role": "CARE_ROLE_NURSE", "escalation_rank": 2},
    ]
    plan: dict[str, Any] = {
        "patient_pseudonym": patient.person.pseudonym,
        "care_plan_id": f"cp-sim-{seed}-{patient.person.pseudonym[4:16]}",
        "programme": MONITORING_PROGRAMME[patient.programme],
        "thresholds": thresholds,
        "care_team": team,
        "acknowledge_within": duration(options.acknowledge_within_s),
    }
    if patient.programme == "anticoagulated_ehpad":
        team.insert(
            0,
            {
                "member_id": f"staff-{patient.place_id}",
                "role": "CARE_ROLE_EHPAD_STAFF",
                "escalation_rank": 1,
            },
        )
        team[1]["escalation_rank"], team[2]["escalation_rank"] = 2, 3
        team.append(
            {
                "member_id": f"lab-{patient.person.territory}-0001",
                "role": "CARE_ROLE_LAB",
                "escalation_rank": 4,
            }
        )
        plan["review_within"] = "7200s"
    return {
        "care_plan": plan,
        "territory": patient.person.territory,
        "experiment_id": exp,
    }


def _home(home: Home, exp: str, options: Options) -> dict[str, Any]:
    code = home.person.territory
    ack = duration(options.acknowledge_within_s)
    tail = home.person.pseudonym[4:10]
    return {
        "home": {
            "resident_pseudonym": home.person.pseudonym,
            "gir_level": 4,
            "devices": [
                {"device_id": device_id(kind), "kind": kind_enum}
                for kind, kind_enum in DEVICES.items()
            ],
            "contacts": [
                {
                    "contact_id": f"family-{code}{tail}1",
                    "role": "CONTACT_ROLE_FAMILY_CAREGIVER",
                    "acknowledge_within": ack,
                },
                {
                    "contact_id": f"neighbour-{code}{tail}2",
                    "role": "CONTACT_ROLE_NEIGHBOUR",
                    "acknowledge_within": ack,
                },
            ],
            "device_provider": {
                "contact_id": f"provider-{code}01",
                "role": "CONTACT_ROLE_DEVICE_PROVIDER",
                "acknowledge_within": "3600s",
            },
            "aide_service": {
                "contact_id": f"ssiad-{code}01",
                "role": "CONTACT_ROLE_HOME_AIDE_SERVICE",
                "acknowledge_within": ack,
            },
            "rhythm": {"wakes_at": home.wakes_at, "goes_to_bed_at": home.goes_to_bed_at},
        },
        "territory": code,
        "experiment_id": exp,
    }


def _campaign(campaign_id: str, code: str, exp: str, now: datetime) -> dict[str, Any]:
    return {
        "campaign": {
            "campaign_id": campaign_id,
            "label_code": "screening.colorectal.invitation",
            "segment": {"age_from": 50, "age_to": 74, "territories": [TERRITORY_ENUM[code]]},
            "messages": [
                {
                    "template_id": "campaign.screening.colorectal",
                    "parameters": {"departement": code},
                }
            ],
            "start_at": rfc3339(now),
            "end_at": rfc3339(now + timedelta(days=30)),
            "created_by": f"ars-{code}-0002",
            "experiment_id": exp,
        }
    }
