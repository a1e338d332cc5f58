"""A GlucoFlow meter uploads one reading: published on GlucoFlow's inbound topic.

    python -m examples.glucoflow.device psn-... 104 --territory 55 --experiment pilot-2027

The platform checks it (allowed type, schema, source, the patient's consent to GlucoFlow)
before its services read it.
Settings are the app's: EMEUSE_PARTNER_CONFIG, or EMEUSE_PARTNER_LOCAL=1 and
EMEUSE_KAFKA_BOOTSTRAP.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import UTC, datetime

from aiokafka.errors import KafkaError

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.partner import PublishError
from emeuse.partner.inbound import inbound_record
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.settings import SettingsError
from examples.glucoflow.app import app
from examples.glucoflow.counts import GLUCOSE


async def upload(patient: str, mg_dl: float, territory: str, experiment: str) -> str:
    reading = ReadingRecorded(
        reading_id=f"gf-{uuid.uuid4()}",
        patient_pseudonym=patient,
        loinc_code=GLUCOSE,
        value=mg_dl,
        unit="mg/dL",
        measured_at=timestamp(datetime.now(UTC)),
        device_id="gf-meter-0007",
    )
    # Checked before connecting: a reading the platform would refuse never leaves the meter.
    inbound_record(app.partner_id, reading, territory=territory, experiment_id=experiment)
    async with app.producing():
        envelope = await app.publish(reading, territory=territory, experiment_id=experiment)
    return envelope.event_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.glucoflow.device")
    parser.add_argument("patient", help="pseudonym of the patient (psn-...)")
    parser.add_argument("mg_dl", type=float, help="capillary glucose in mg/dL")
    parser.add_argument("--territory", default="55", help="département: 55, 52 or 54")
    parser.add_argument("--experiment", default="glucoflow-pilot")
    args = parser.parse_args(argv)
    try:
        app.configure()
        print(asyncio.run(upload(args.patient, args.mg_dl, args.territory, args.experiment)))
    except (SettingsError, PublishError) as exc:
        print(f"glucoflow: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"glucoflow: Kafka: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
