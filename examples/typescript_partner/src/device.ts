// A meter uploads one glucose reading: published on the partner's inbound topic with the
// platform's envelope, as examples/glucoflow/device.py does with the Python SDK.
//
//   EMEUSE_PARTNER_ID=glucoflow EMEUSE_PARTNER_CONFIG=glucoflow.properties \
//       node dist/device.js psn-... 104 --territory 55
//
// Checked before connecting (grants and experiment from the settings file, required fields,
// pseudonym): a reading the platform would refuse for those reasons never leaves the meter
// (exit 2, one line saying why). The gateway then checks it again, with what only it knows:
// the patient's consent to this partner, and chronic's rules for the measure (unit, range).
// A refusal comes back on the partner's dead letters, with the reason and this ce_id.
// Prints one JSON line with the event id sent (never the pseudonym).
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ReadingRecordedSchema } from "@emeuse/schemas/emeuse/chronic/v1/chronic_events_pb.js";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { inboundRecord, PublishError } from "./inbound.js";
import { loadSettings, SettingsError } from "./settings.js";

const GLUCOSE = "2339-0"; // LOINC: glucose, capillary blood, mass/volume

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      territory: { type: "string", default: "55" },
      experiment: { type: "string" }, // default: EMEUSE_EXPERIMENT, else the file's first
    },
  });
  const [patient, raw] = positionals;
  const mgPerDl = Number(raw);
  if (!patient || positionals.length !== 2 || !raw || !Number.isFinite(mgPerDl)) {
    throw new UsageError("usage: device.js <patient pseudonym> <mg/dL> [--territory 55]");
  }
  const settings = loadSettings(process.env);
  const now = new Date();
  const reading = create(ReadingRecordedSchema, {
    readingId: `ts-${randomUUID()}`,
    patientPseudonym: patient,
    loincCode: GLUCOSE,
    value: mgPerDl,
    unit: "mg/dL",
    measuredAt: timestampFromDate(now),
    deviceId: "ts-meter-0001",
  });
  const record = inboundRecord(settings, ReadingRecordedSchema, reading, {
    territory: values.territory,
    experiment: values.experiment,
    occurredAt: now,
  });
  const kafka = new Kafka({ ...settings.kafka, logLevel: logLevel.WARN });
  // Murmur2, as Java, kafka-python and aiokafka: the reading lands where the platform's do.
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  try {
    await producer.send({
      topic: record.topic,
      acks: -1,
      messages: [{ key: record.key, value: Buffer.from(record.value), headers: record.headers }],
    });
  } finally {
    await producer.disconnect();
  }
  console.log(
    JSON.stringify({
      event: "event.published",
      type: record.envelope.type,
      event_id: record.envelope.id,
      reading_id: reading.readingId,
      topic: record.topic,
    }),
  );
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    // Nothing sent: a wrong setting or an event the platform would refuse, one line, exit 2.
    if (error instanceof SettingsError || error instanceof PublishError) {
      console.error(`device: ${error.message}`);
      process.exit(2);
    }
    const code = (error as { code?: string }).code ?? "";
    if (error instanceof UsageError || code.startsWith("ERR_PARSE_ARGS")) {
      console.error(error.message);
      process.exit(2);
    }
    console.error(`device: Kafka: ${error.name}: ${error.message}`);
    process.exit(1);
  },
);
