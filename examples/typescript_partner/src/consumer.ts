// A partner reading its consent-filtered feed in TypeScript: kafkajs for Kafka, the generated
// schemas (@emeuse/schemas, `make proto`) for the payload. Routes each record on its ce_type
// header, decodes the value with that type's schema, handles it, then commits (at-least-once:
// deduplicate on the event id). One JSON line per record with its ids, never the payload or
// the patient's pseudonym.
//
//   EMEUSE_PARTNER_ID=glucoflow EMEUSE_PARTNER_CONFIG=glucoflow.properties node dist/consumer.js
import { fromBinary, type Message } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import {
  AlertRaisedSchema,
  ReadingRecordedSchema,
} from "@emeuse/schemas/emeuse/chronic/v1/chronic_events_pb.js";
import { Kafka, logLevel, type KafkaMessage } from "kafkajs";
import { type Envelope, envelopeOf } from "./envelope.js";
import { loadSettings, SettingsError } from "./settings.js";

type Handler = (event: Envelope, value: Uint8Array) => string;
const HANDLERS = new Map<string, Handler>();

/** Register what to do with one event type; returns an id worth logging. */
function handles<T extends Message>(
  schema: GenMessage<T>,
  handler: (event: Envelope, message: T) => string,
): void {
  HANDLERS.set(schema.typeName, (event, value) => handler(event, fromBinary(schema, value)));
}

// The partner's business: here, the ids of what it received.
handles(ReadingRecordedSchema, (_event, reading) => reading.readingId);
handles(AlertRaisedSchema, (_event, alert) => alert.alertId);

function log(fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), ...fields }));
}

/** What became of one record. One that cannot be handled (no envelope, a value that does not
 * decode as its type, a handler that throws) is reported and passed: the SDK would retry it and
 * set it aside on the partner's dead-letter topic. */
function handle(message: KafkaMessage): Record<string, unknown> {
  let event: Envelope;
  try {
    event = envelopeOf(message.headers);
  } catch (error) {
    return { event: "event.invalid_envelope", reason: (error as Error).message };
  }
  const ids = { type: event.type, event_id: event.id, replay_id: event.replayId || undefined };
  const handler = HANDLERS.get(event.type);
  if (!handler) return { event: "event.skipped", ...ids }; // a type this partner does not read
  try {
    const id = handler(event, message.value ?? new Uint8Array());
    return { event: "event.handled", ...ids, id };
  } catch (error) {
    return { event: "event.failed", ...ids, reason: (error as Error).message };
  }
}

async function main(): Promise<number> {
  const settings = loadSettings(process.env);
  const kafka = new Kafka({ ...settings.kafka, logLevel: logLevel.WARN });
  // The gateway writes feeds in transactions: read only what it committed.
  const consumer = kafka.consumer({ groupId: settings.groupId, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: settings.feedTopic, fromBeginning: settings.fromBeginning });
  await consumer.run({
    autoCommit: false, // commit only what was handled
    eachMessage: async ({ topic, partition, message }) => {
      log({ ...handle(message), partition, offset: message.offset });
      const next = (BigInt(message.offset) + 1n).toString();
      await consumer.commitOffsets([{ topic, partition, offset: next }]);
    },
  });
  log({ event: "partner.started", partner: settings.partnerId, group: settings.groupId });
  // SIGTERM or Ctrl-C: the record in hand is finished and committed, then the group is left.
  await new Promise((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await consumer.disconnect();
  log({ event: "partner.stopped", partner: settings.partnerId });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    // A wrong setting is one line naming it (exit 2), as with the Python SDK.
    if (error instanceof SettingsError) {
      console.error(error.message);
      process.exit(2);
    }
    console.error(`partner failed: ${error.name}: ${error.message}`);
    process.exit(1);
  },
);
