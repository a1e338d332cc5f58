"""The live events of a simulated territory, as devices would send them on Kafka.

Event n is sent at start + n / rate. Who speaks is drawn by realistic weight (a patient
measured daily speaks seven times as often as one measured weekly; a connected home
reports a dozen times a day), but the rate compresses everyone's cadence alike: at
50 events/s a 1 % territory lives days of readings in a minute. With `speed` S the events
say they happened S times further apart, in the S x duration before the last one is sent
(never in the future, which the services refuse): at S = 1440 a minute's events span a
day, with its nights. What a home reports follows its resident's rhythm in the local time
the event says. Anomalies are drawn at the options' rates.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from emeuse.registry import READING_RECORDED, SENSOR_EVENT_REPORTED
from emeuse.simulate.events import KAFKA, Options, SimEvent, rfc3339
from emeuse.simulate.measures import DAY_S, PROGRAMME_MEASURES, Measure
from emeuse.simulate.partners import PARTNER
from emeuse.simulate.population import Home, Patient, Population
from emeuse.simulate.rollout import marked
from emeuse.simulate.setup import device_id

PARIS = ZoneInfo("Europe/Paris")
HOME_REPORTS_PER_DAY = 12
RECENT = 50  # how far back a duplicate may reach
LATE_S = (60, 1800)  # how late a late reading arrives after it was measured


@dataclass(frozen=True)
class _Source:
    patient: Patient | None = None
    measure: Measure | None = None
    home: Home | None = None
    partner: str = ""  # the partner whose device sends it through the gateway


def _sources(population: Population, users: dict[str, str]) -> tuple[list[_Source], list[float]]:
    sources: list[_Source] = []
    weights: list[float] = []
    for patient in population.patients:
        if patient.silent:
            continue
        partner = users.get(patient.person.pseudonym, "")
        for measure in PROGRAMME_MEASURES[patient.programme]:
            sources.append(_Source(patient=patient, measure=measure, partner=partner))
            weights.append(DAY_S / measure.cadence_s)
    for home in population.homes:
        sources.append(_Source(home=home))
        weights.append(HOME_REPORTS_PER_DAY)
    return sources, weights


def earliest(options: Options, start: datetime) -> datetime:
    """The earliest time a live event may say it happened: the first one's, spread back by
    `speed`, less the most a late reading lags."""
    first = start + timedelta(seconds=options.duration * (1 - options.speed))
    return min(start, first) - timedelta(seconds=LATE_S[1])


def live_events(
    population: Population,
    options: Options,
    start: datetime,
    users: dict[str, str] | None = None,
    withdrawn: dict[str, float] | None = None,
) -> Iterator[SimEvent]:
    """rate x duration events, the same ones for the same population, options and start;
    `users` (patient -> partner) send their readings through their partner, until they
    withdraw their consent to it (`withdrawn`: patient -> the withdrawal's due)."""
    rng = random.Random(f"emeuse-simulate-stream-{options.seed}")
    sources, weights = _sources(population, users or {})
    if not sources:
        return
    cumulative = []
    total = 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    # random.choices(sources, cum_weights=cumulative), inlined: the same single draw, without
    # the list it builds per call (a draw per event at 5,000 events/s).
    scaled, last = cumulative[-1] + 0.0, len(sources) - 1
    local = _LocalTime()
    # The start is in the id: a later run of the same seed sends new readings, not duplicates.
    # The t splits its digits: fourteen in a row can be a NIR with a valid key (id_rules).
    id_prefix = f"sim-{options.seed}-{start:%Y%m%dt%H%M%S}-"
    recent: deque[SimEvent] = deque(maxlen=RECENT)
    for n in range(round(options.rate * options.duration)):
        due = n / options.rate
        at = start + timedelta(seconds=options.duration - (options.duration - due) * options.speed)
        draw = rng.random()
        if recent and draw < options.duplicate_rate:
            again = rng.choice(recent)
            yield replace(again, kind="duplicate", due=due)
            continue
        source = sources[bisect(cumulative, rng.random() * scaled, 0, last)]
        event_id = f"{id_prefix}{n}"
        if source.patient is not None and source.measure is not None:
            event = _reading(rng, options, source.patient, source.measure, at, event_id, due)
            if source.partner and event.raw is None and not event.kind.startswith("malformed"):
                # The partner's device: the same reading, through the partner gateway.
                event = replace(
                    event, kind=f"partner.{event.kind}", via=PARTNER, target=source.partner
                )
        else:
            assert source.home is not None
            event = _home_report(rng, options, source.home, at, event_id, due, local)
        if event.via == PARTNER and (withdrawn or {}).get(event.subject, due + 1) <= due:
            # The partner no longer sends for a patient who withdrew their consent to it
            # (the gateway would refuse it): the platform's own device sends the reading.
            event = replace(
                event,
                kind=event.kind.removeprefix("partner."),
                via=KAFKA,
                target=READING_RECORDED.name,
            )
        if event.raw is None and not event.kind.startswith("malformed"):
            recent.append(event)
        yield event


class _LocalTime:
    """Paris wall-clock HH:MM of the stream's times, worked out once per minute: they come
    in order, and Paris is a whole number of hours from UTC, so a UTC minute is a local one."""

    def __init__(self) -> None:
        self.since: datetime | None = None
        self.until: datetime | None = None
        self.text = ""

    def hh_mm(self, at: datetime) -> str:
        if self.since is None or self.until is None or not self.since <= at < self.until:
            self.since = at.replace(second=0, microsecond=0)
            self.until = self.since + timedelta(minutes=1)
            self.text = at.astimezone(PARIS).strftime("%H:%M")
        return self.text


def _late(rng: random.Random, options: Options, at: datetime) -> datetime | None:
    if rng.random() < options.late_rate:
        return at - timedelta(seconds=rng.uniform(*LATE_S))
    return None


def _reading(
    rng: random.Random,
    options: Options,
    patient: Patient,
    measure: Measure,
    at: datetime,
    event_id: str,
    due: float,
) -> SimEvent:
    person = patient.person
    draw = rng.random()
    if draw < options.malformed_rate:
        experiment = marked(options, person.territory, at)
        return _malformed_reading(
            rng, person.territory, person.pseudonym, at, event_id, due, experiment
        )
    draw -= options.malformed_rate
    abnormal = ""
    if draw < options.critical_rate:
        abnormal = "critical"
    elif draw < options.critical_rate + options.warning_rate:
        abnormal = "warning"
    late = None if abnormal else _late(rng, options, at)
    kind = f"reading.{abnormal}" if abnormal else ("reading.late" if late else "reading")
    device = f"poc-{patient.place_id}" if measure.point_of_care else f"dev-{person.pseudonym[4:14]}"
    message: dict[str, Any] = {
        "reading_id": event_id,
        "patient_pseudonym": person.pseudonym,
        "loinc_code": measure.loinc,
        "value": measure.value(rng, abnormal),
        "unit": measure.unit,
        "measured_at": rfc3339(late or at),
        "device_id": device,
        "point_of_care": measure.point_of_care,
    }
    happened = late or at
    return SimEvent(
        kind,
        KAFKA,
        READING_RECORDED.name,
        person.territory,
        person.pseudonym,
        happened,
        event_id,
        message,
        due=due,
        experiment=marked(options, person.territory, happened),
    )


def _malformed_reading(
    rng: random.Random,
    territory: str,
    patient: str,
    at: datetime,
    event_id: str,
    due: float,
    experiment: str,
) -> SimEvent:
    """Bytes that are no protobuf message, or a reading in a unit that is no UCUM code."""
    if rng.random() < 0.5:
        raw = b"\xff\xfe not a ReadingRecorded " + event_id.encode()
        return SimEvent(
            "malformed.bytes",
            KAFKA,
            READING_RECORDED.name,
            territory,
            patient,
            at,
            event_id,
            raw=raw,
            due=due,
            experiment=experiment,
        )
    message = {
        "reading_id": event_id,
        "patient_pseudonym": patient,
        "loinc_code": "2339-0",
        "value": 1.2,
        "unit": "grams per litre",
        "measured_at": rfc3339(at),
    }
    return SimEvent(
        "malformed.reading",
        KAFKA,
        READING_RECORDED.name,
        territory,
        patient,
        at,
        event_id,
        message,
        due=due,
        experiment=experiment,
    )


def asleep(home: Home, at: datetime, local: str = "") -> bool:
    """Whether the resident is in their quiet hours (bedtime to waking, local time);
    `local`: `at` as HH:MM in Paris, when known."""
    local = local or at.astimezone(PARIS).strftime("%H:%M")
    return local >= home.goes_to_bed_at or local < home.wakes_at


def _home_report(
    rng: random.Random,
    options: Options,
    home: Home,
    at: datetime,
    event_id: str,
    due: float = 0.0,
    local: _LocalTime | None = None,
) -> SimEvent:
    person = home.person
    night = asleep(home, at, local.hh_mm(at) if local else "")
    draw = rng.random()
    fields: dict[str, Any]
    late = None
    if draw < options.malformed_rate:
        kind, device, fields = (
            "malformed.home",
            "door",
            {"kind": "SENSOR_KIND_DOOR"},
        )  # no door state
    elif (draw := draw - options.malformed_rate) < options.fall_rate:
        kind, device, fields = (
            "home.fall",
            "fall",
            {"kind": "SENSOR_KIND_FALL", "confidence": round(rng.uniform(0.7, 0.99), 2)},
        )
    elif (draw := draw - options.fall_rate) < options.panic_rate:
        kind, device, fields = "home.panic", "panic", {"kind": "SENSOR_KIND_PANIC_BUTTON"}
    elif night and draw - options.panic_rate < options.wandering_rate:
        kind, device, fields = (
            "home.wandering",
            "door",
            {"kind": "SENSOR_KIND_DOOR", "door_state": "DOOR_STATE_OPENED"},
        )
    else:
        kind, device, fields = _ordinary(rng, night)
        late = _late(rng, options, at)
        kind = "home.late" if late else kind
    message = {
        "sensor_event_id": event_id,
        "resident_pseudonym": person.pseudonym,
        "device_id": device_id(device),
        "occurred_at": rfc3339(late or at),
        **fields,
    }
    happened = late or at
    return SimEvent(
        kind,
        KAFKA,
        SENSOR_EVENT_REPORTED.name,
        person.territory,
        person.pseudonym,
        happened,
        event_id,
        message,
        due=due,
        experiment=marked(options, person.territory, happened),
    )


_NIGHT = (("heartbeat", "thermo", "motion"), list(accumulate((5, 4, 1))))
_DAY = (
    ("motion", "door", "bed", "thermo", "heartbeat", "battery"),
    list(accumulate((12, 3, 1, 3, 2, 1))),
)


def _ordinary(rng: random.Random, night: bool) -> tuple[str, str, dict[str, Any]]:
    """A report of an ordinary day (or night) in a connected home."""
    # rng.choices(kinds, weights)[0], with the weights summed once: the same single draw.
    kinds, cumulative = _NIGHT if night else _DAY
    choice = kinds[bisect(cumulative, rng.random() * (cumulative[-1] + 0.0), 0, len(kinds) - 1)]
    if choice == "motion":
        return "home.motion", "motion", {"kind": "SENSOR_KIND_MOTION"}
    if choice == "door":
        state = rng.choice(("DOOR_STATE_OPENED", "DOOR_STATE_CLOSED"))
        return "home.door", "door", {"kind": "SENSOR_KIND_DOOR", "door_state": state}
    if choice == "bed":
        return "home.bed_exit", "bed", {"kind": "SENSOR_KIND_BED_EXIT"}
    if choice == "thermo":
        temperature = round(rng.uniform(19, 23), 1)
        return (
            "home.temperature",
            "thermo",
            {"kind": "SENSOR_KIND_ROOM_TEMPERATURE", "temperature_celsius": temperature},
        )
    if choice == "battery":
        return (
            "home.battery",
            "motion",
            {"kind": "SENSOR_KIND_BATTERY", "battery_percent": rng.randint(40, 100)},
        )
    return "home.heartbeat", "fall", {"kind": "SENSOR_KIND_HEARTBEAT"}
