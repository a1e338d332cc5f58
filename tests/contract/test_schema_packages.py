"""The schema packages of other languages (docs/partners.md, Any language): what Python
encodes, a Go consumer decodes with the module sdk/go and a Java consumer with the classes
sdk/java builds, to the same fields, presence, enums, times and UTF-8 text included."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf import json_format, text_format
from google.protobuf.message import Message

from emeuse.chronic.v1 import chronic_events_pb2 as chronic
from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.place.v1.territory_pb2 import TERRITORY_MEUSE
from emeuse.prevention.v1 import prevention_events_pb2 as prevention
from emeuse.runtime.pseudonym import random_pseudonym

ROOT = Path(__file__).resolve().parents[2]
CROSSLANG = Path(__file__).resolve().parent / "crosslang"
JAVA_SDK = ROOT / "sdk" / "java"
# A first run resolves the Go modules and the Maven plugins, protoc and protobuf-java
# (minutes on a loaded 2-core machine); later runs build nothing that is up to date.
FIRST_RUN_SECONDS = 900


@dataclass(frozen=True)
class Vector:
    message: Message
    java_class: str  # the generated class's binary name (no java_package: protoc's defaults)

    @property
    def type_name(self) -> str:
        return self.message.DESCRIPTOR.full_name


def _vectors() -> list[Vector]:
    patient = random_pseudonym()
    measured = datetime(2026, 12, 7, 7, 30, 15, 250000, tzinfo=UTC)
    reading = chronic.ReadingRecorded(
        reading_id="gf-0001",
        patient_pseudonym=patient,
        loinc_code="2339-0",
        value=104.5,
        unit="mg/dL",
        device_id="glucoflow-meter-7",
        point_of_care=True,
    )
    reading.measured_at.FromDatetime(measured)
    alert = chronic.AlertRaised(
        alert_id="alert-42",
        patient_pseudonym=patient,
        severity=chronic.ALERT_SEVERITY_CRITICAL,
        rule="threshold.high",
        reason="34714-6 5.6 ratio au-dessus du seuil critique 5 (µ, é)",
        reading_ids=["inr-1", "inr-2"],
        loinc_code="34714-6",
        target_low=2.0,
        target_high=3.0,
        unit="{INR}",
        notified=chronic.CareTeamMember(
            member_id="ps-0007", role=chronic.CARE_ROLE_NURSE, escalation_rank=1
        ),
        recent_results=[
            chronic.RecentResult(reading_id="inr-2", value=5.6, unit="{INR}"),
            chronic.RecentResult(reading_id="inr-1", value=3.1, unit="{INR}"),
        ],
        # previous_value 0 is set, not absent: presence must survive the trip.
        correction=chronic.ReadingCorrection(
            reading_id="inr-2", previous_value=0.0, corrected_value=5.6, unit="{INR}"
        ),
    )
    alert.raised_at.FromDatetime(measured + timedelta(seconds=3))
    alert.measured_at.FromDatetime(measured)
    alert.measurement_to_alert.FromTimedelta(timedelta(seconds=3, milliseconds=5))
    envelope = EventEnvelope(
        event_id="0b9e4c1e-8f0e-4d59-a1c4-6f7c2e3d9a10",
        event_type=reading.DESCRIPTOR.full_name,
        source="partner/glucoflow",
        subject_pseudonym=patient,
        territory=TERRITORY_MEUSE,
        experiment_id="glucoflow-pilot",
        correlation_id="0b9e4c1e-8f0e-4d59-a1c4-6f7c2e3d9a10",
        causation_id="c0ffee00-0000-4000-8000-000000000001",
        schema_version="v1",
    )
    envelope.occurred_at.FromDatetime(measured)
    envelope.recorded_at.FromDatetime(measured + timedelta(milliseconds=40))
    action = prevention.PreventionActionRecorded(
        action_id="lab-77",
        person_pseudonym=random_pseudonym(),
        programme="screening.colorectal",
        kind=prevention.PREVENTION_ACTION_KIND_SCREENING_DONE,
    )
    action.acted_at.FromDatetime(datetime(2026, 12, 1, tzinfo=UTC))
    return [
        Vector(reading, "emeuse.chronic.v1.ChronicEvents$ReadingRecorded"),
        Vector(alert, "emeuse.chronic.v1.ChronicEvents$AlertRaised"),
        Vector(envelope, "emeuse.event.v1.Envelope$EventEnvelope"),
        Vector(action, "emeuse.prevention.v1.PreventionEvents$PreventionActionRecorded"),
    ]


@pytest.fixture(scope="module")
def vectors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[Vector, Path]]]:
    """Each test vector's bytes as a Kafka record's value carries them."""
    directory = tmp_path_factory.mktemp("vectors")
    written = []
    for index, vector in enumerate(_vectors()):
        path = directory / f"{index}.binpb"
        path.write_bytes(vector.message.SerializeToString())
        written.append((vector, path))
    yield written


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: the {name} half of the schema packages is untested")
    return found


def _run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=FIRST_RUN_SECONDS
    )
    assert done.returncode == 0, f"{' '.join(command[:3])}: {done.stdout}{done.stderr}"
    return done.stdout


def _decoded_lines(output: str) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in output.splitlines() if "\t" in line)


@pytest.mark.timeout(FIRST_RUN_SECONDS)
def test_a_go_consumer_decodes_what_python_encodes(vectors: list[tuple[Vector, Path]]) -> None:
    go = _tool("go")
    output = _run(
        [go, "run", ".", *(f"{v.type_name}={path}" for v, path in vectors)], CROSSLANG / "go"
    )
    decoded = _decoded_lines(output)
    for vector, _ in vectors:
        seen = json_format.Parse(decoded[vector.type_name], type(vector.message)())
        assert seen == vector.message, vector.type_name
    reading = json.loads(decoded["emeuse.chronic.v1.ReadingRecorded"])
    assert (reading["readingId"], reading["value"], reading["unit"]) == ("gf-0001", 104.5, "mg/dL")
    assert reading["measuredAt"] == "2026-12-07T07:30:15.250Z"


@pytest.mark.timeout(FIRST_RUN_SECONDS)
def test_a_java_consumer_decodes_what_python_encodes(vectors: list[tuple[Vector, Path]]) -> None:
    mvn, java = _tool("mvn"), _tool("java")
    _run([mvn, "-q", "-B", "-f", str(JAVA_SDK / "pom.xml"), "package"], ROOT)
    version = json.loads((ROOT / "sdk/typescript/package.json").read_text())["version"]
    jar = JAVA_SDK / "target" / f"emeuse-schemas-{version}.jar"
    assert jar.is_file(), f"{jar.name}: the jar is named for the schemas' release"
    classpath = f"{jar}:{(JAVA_SDK / 'target' / 'classpath.txt').read_text().strip()}"
    output = _run(
        [
            java,
            "-cp",
            classpath,
            str(CROSSLANG / "Decode.java"),
            *(f"{v.java_class}={path}" for v, path in vectors),
        ],
        ROOT,
    )
    decoded = _decoded_lines(output)
    for vector, _ in vectors:
        seen = text_format.Parse(decoded[vector.type_name], type(vector.message)())
        assert seen == vector.message, vector.type_name
    assert 'reading_id: "gf-0001"' in decoded["emeuse.chronic.v1.ReadingRecorded"]
    assert "severity: ALERT_SEVERITY_CRITICAL" in decoded["emeuse.chronic.v1.AlertRaised"]
