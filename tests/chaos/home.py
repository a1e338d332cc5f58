"""The home service under faults: falls and panic presses escalated contact by contact.

Each resident's home is enrolled (HomeConfigured on Kafka) with a fall detector, a motion
sensor and a call button, two contacts and the device provider; its rhythm and thresholds
keep every time-based detection (inactivity, a silent device) hours away, and no door or
thermometer report is sent, so only the alarms of the stream raise incidents. The stream is
mostly movements (activity: no output); a seeded third of the residents (at least one) get
one alarm each, a fall (confidence 0.9) or a press of the button, all event times within
ten minutes (so no alarm is "late", and every report of one resident's alarm is one
episode). Some alarms are followed by their detector alerting again 20 s later (it joins
the incident) or by the same report resent under a new id (a duplicate): neither may raise
anything.
The outputs are unambiguous:
- one IncidentRaised per alarm, id incident_id_for(resident, kind, the alarm's report id),
  the first contact notified;
- "unanswered" homes (contacts given ACKNOWLEDGE_WITHIN_S each): nobody answers, so the
  incident escalates to the second contact then to the SAMU: one IncidentEscalated per
  step 1, 2, id derived_id(incident, "escalated", step), and the chain ends there;
- "answered" homes (contacts given an hour): once the stream is handled, the first contact
  acknowledges and resolves (handled at home): one IncidentAcknowledged and one
  IncidentResolved each, ids derived_id(incident, "acknowledged" / "resolved"), and no
  escalation.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format

from emeuse.home.v1.home_events_pb2 import (
    HomeConfigured,
    IncidentAction,
    IncidentActionRequested,
    IncidentKind,
    IncidentOutcome,
    SensorEventReported,
    SensorKind,
)
from emeuse.registry import (
    HOME_CONFIGURED,
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_ACTION_REQUESTED,
    INCIDENT_ESCALATED,
    INCIDENT_RAISED,
    INCIDENT_RESOLVED,
    SENSOR_EVENT_REPORTED,
    VISIT_ENDED,
    VISIT_PLANNED,
    VISIT_STARTED,
)
from emeuse.runtime.pseudonym import random_pseudonym
from services.home.domain.detection import Incident
from services.home.incidents import derived_id, incident_id_for
from tests.chaos.kafka_io import Output
from tests.chaos.scenario import Record, Row, Scenario, Workload, tally
from tests.integration.events import headers_for

ACKNOWLEDGE_WITHIN_S = 4
FIRST, SECOND, SAMU = "family-0001", "neighbour-0002", "samu-55"  # Meuse homes: the 15 of 55
STEPS = {1: SECOND, 2: SAMU}
FALL_DETECTOR, MOTION, BUTTON = "fall-01", "motion-01", "button-01"
# One resident in ALARM_SHARE has an alarm; one alarm in ANSWERED_SHARE is answered.
ALARM_SHARE = 3
ANSWERED_SHARE = 3
# Every event time of the stream falls within this (an episode lasts 30 min).
EVENT_SPAN = timedelta(minutes=10)
KINDS = {
    Incident.FALL: (SensorKind.SENSOR_KIND_FALL, FALL_DETECTOR, IncidentKind.INCIDENT_KIND_FALL),
    Incident.PANIC: (
        SensorKind.SENSOR_KIND_PANIC_BUTTON,
        BUTTON,
        IncidentKind.INCIDENT_KIND_PANIC,
    ),
}


def home(resident: str, acknowledge_within_s: int) -> HomeConfigured:
    def contact(contact_id: str, role: str, seconds: int) -> dict[str, str]:
        return {
            "contact_id": contact_id,
            "role": f"CONTACT_ROLE_{role}",
            "acknowledge_within": f"{seconds}s",
        }

    return json_format.ParseDict(
        {
            "resident_pseudonym": resident,
            "gir_level": 4,
            "devices": [
                {"device_id": FALL_DETECTOR, "kind": "DEVICE_KIND_FALL_DETECTOR"},
                {"device_id": MOTION, "kind": "DEVICE_KIND_MOTION_SENSOR"},
                {"device_id": BUTTON, "kind": "DEVICE_KIND_PANIC_BUTTON"},
            ],
            "contacts": [
                contact(FIRST, "FAMILY_CAREGIVER", acknowledge_within_s),
                contact(SECOND, "NEIGHBOUR", acknowledge_within_s),
            ],
            "device_provider": contact("provider-0042", "DEVICE_PROVIDER", 3600),
            # No time-based detection within a round: inactivity after 12 h, silence a day.
            "rhythm": {"inactivity_alert_after": "43200s"},
            "thresholds": {"device_offline_after": "86400s"},
        },
        HomeConfigured(),
    )


def _record(spec: Any, message: Any, resident: str) -> Record:
    return (spec.name, resident.encode(), message.SerializeToString(), headers_for(spec, resident))


def _report(
    resident: str, kind: SensorKind.ValueType, device: str, at: datetime, **fields: Any
) -> SensorEventReported:
    report = SensorEventReported(
        sensor_event_id=f"se-{uuid.uuid4().hex[:16]}-1",
        resident_pseudonym=resident,
        device_id=device,
        kind=kind,
        **fields,
    )
    report.occurred_at.FromDatetime(at)
    return report


def _action(
    resident: str, incident_id: str, action: IncidentAction.ValueType, **fields: Any
) -> IncidentActionRequested:
    request = IncidentActionRequested(
        action_id=f"act-{uuid.uuid4().hex[:16]}-1",
        resident_pseudonym=resident,
        incident_id=incident_id,
        contact_id=FIRST,
        action=action,
        **fields,
    )
    request.requested_at.GetCurrentTime()
    return request


def build(rng: random.Random, residents: int, reports: int) -> Workload:
    """`residents` enrolments, then `reports` sensor reports: movements, and one alarm (a
    fall or a press) for a third of the residents, some reported twice."""
    if reports < residents:
        raise ValueError("give every resident a report: --readings >= --patients")
    who = [random_pseudonym() for _ in range(residents)]
    alarmed = rng.sample(who, max(1, residents // ALARM_SHARE))
    answered = set(alarmed[: len(alarmed) // ANSWERED_SHARE])
    slots = [who[i % residents] for i in range(reports)]
    rng.shuffle(slots)
    positions: dict[str, list[int]] = {}
    for i, resident in enumerate(slots):
        positions.setdefault(resident, []).append(i)
    alarm_at = {rng.choice(positions[r]): r for r in alarmed}
    start = datetime.now(UTC) - EVENT_SPAN - timedelta(minutes=1)
    step = EVENT_SPAN / reports
    stream: list[Record] = []
    later: list[tuple[int, Record]] = []  # a second report of an alarm, placed after it
    incidents: dict[str, tuple[str, Incident]] = {}  # resident -> incident id, kind
    for i, resident in enumerate(slots):
        at = start + step * i
        if i not in alarm_at:
            report = _report(resident, SensorKind.SENSOR_KIND_MOTION, MOTION, at)
            stream.append(_record(SENSOR_EVENT_REPORTED, report, resident))
            continue
        kind = rng.choice(list(KINDS))
        sensor, device, _ = KINDS[kind]
        confidence = {"confidence": 0.9} if kind is Incident.FALL else {}
        report = _report(resident, sensor, device, at, **confidence)
        stream.append(_record(SENSOR_EVENT_REPORTED, report, resident))
        incidents[resident] = (incident_id_for(resident, kind, report.sensor_event_id), kind)
        again = rng.random()
        if again < 1 / 3:  # the same report, resent by its device under a new id
            resent = SensorEventReported()
            resent.CopyFrom(report)
            resent.sensor_event_id = f"se-{uuid.uuid4().hex[:16]}-2"
            later.append(
                (i + rng.randrange(1, 50), _record(SENSOR_EVENT_REPORTED, resent, resident))
            )
        elif again < 2 / 3:  # the detector alerts again a little later: the same episode
            realert = _report(resident, sensor, device, at + timedelta(seconds=20), **confidence)
            later.append(
                (i + rng.randrange(1, 50), _record(SENSOR_EVENT_REPORTED, realert, resident))
            )
    for position, record in sorted(later, key=lambda p: p[0], reverse=True):
        stream.insert(min(position, len(stream)), record)
    setup = [
        _record(
            HOME_CONFIGURED,
            home(r, 3600 if r in answered else ACKNOWLEDGE_WITHIN_S),
            r,
        )
        for r in who
    ]
    answers = []
    for resident in answered:
        incident_id = incidents[resident][0]
        for action, fields in (
            (IncidentAction.INCIDENT_ACTION_ACKNOWLEDGE, {}),
            (
                IncidentAction.INCIDENT_ACTION_RESOLVE,
                {"outcome": IncidentOutcome.INCIDENT_OUTCOME_HANDLED_AT_HOME},
            ),
        ):
            request = _action(resident, incident_id, action, **fields)
            answers.append(_record(INCIDENT_ACTION_REQUESTED, request, resident))
    unanswered = len(incidents) - len(answered)
    return Workload(
        keys=who,
        setup=setup,
        stream=stream,
        answers=answers,
        expected=(incidents, answered),
        outputs_expected=len(incidents) + unanswered * len(STEPS) + 2 * len(answered),
        notes=[
            f"{len(incidents)} alarms among {residents} residents "
            f"({len(answered)} answered after the stream), {len(later)} reported twice"
        ],
    )


def check(workload: Workload, outputs: dict[str, list[Output]]) -> list[Row]:
    incidents: dict[str, tuple[str, Incident]]
    incidents, answered = workload.expected
    ours = set(workload.keys)

    def mine(topic: str) -> list[Output]:
        return [o for o in outputs[topic] if (o.key or b"").decode() in ours]

    def resident(o: Output) -> Hashable:
        return o.message.resident_pseudonym

    def incident(o: Output) -> Hashable:
        return o.message.incident_id

    raised = tally(
        "incidents raised (one per alarm)",
        {r: incident_id for r, (incident_id, _) in incidents.items()},
        mine(INCIDENT_RAISED.name),
        resident,
        lambda o: (
            o.message.kind == KINDS[incidents[o.message.resident_pseudonym][1]][2]
            and o.message.notified.contact_id == FIRST
        ),
    )
    kind_of = {incident_id: kind for incident_id, kind in incidents.values()}
    steps = tally(
        "escalations (unanswered: 2nd contact, SAMU)",
        {
            (incidents[r][0], step): derived_id(incidents[r][0], "escalated", str(step))
            for r in incidents
            if r not in answered
            for step in STEPS
        },
        mine(INCIDENT_ESCALATED.name),
        lambda o: (o.message.incident_id, o.message.notified.step),
        lambda o: (
            o.message.notified.contact_id == STEPS[o.message.notified.step]
            and o.message.kind == KINDS[kind_of[o.message.incident_id]][2]
        ),
    )
    answered_ids = {incidents[r][0] for r in answered}
    acknowledged = tally(
        "acknowledged (answered homes)",
        {i: derived_id(i, "acknowledged") for i in answered_ids},
        mine(INCIDENT_ACKNOWLEDGED.name),
        incident,
        lambda o: o.message.contact_id == FIRST and o.message.step == 0,
    )
    resolved = tally(
        "resolved (answered homes)",
        {i: derived_id(i, "resolved") for i in answered_ids},
        mine(INCIDENT_RESOLVED.name),
        incident,
        lambda o: o.message.outcome == IncidentOutcome.INCIDENT_OUTCOME_HANDLED_AT_HOME,
    )
    return [raised, steps, acknowledged, resolved]


HOME = Scenario(
    service="home",
    inputs=(
        HOME_CONFIGURED,
        SENSOR_EVENT_REPORTED,
        VISIT_PLANNED,
        VISIT_STARTED,
        VISIT_ENDED,
        INCIDENT_ACTION_REQUESTED,
    ),
    stream_topic=SENSOR_EVENT_REPORTED,
    outputs=(INCIDENT_RAISED, INCIDENT_ESCALATED, INCIDENT_ACKNOWLEDGED, INCIDENT_RESOLVED),
    build=build,
    check=check,
    timers_s=ACKNOWLEDGE_WITHIN_S * len(STEPS),
)
