// A partner reading its consent-filtered feed in TypeScript: kafkajs for Kafka, the generated
// schemas (@emeuse/schemas, `make proto`) for the payload. Routes each record on its ce_type
// header, decodes the value with that type's schema, handles it, then commits (at-least-once:
// deduplicate on the event id). A record it cannot read is set aside on its own dead-letter
// topic with the reason, and the feed goes on. One JSON line per record with its ids, never
// the payload or the patient's pseudonym.
//
//   EMEUSE_PARTNER_ID=glucoflow EMEUSE_PARTNER_CONFIG=glucoflow.properties node dist/consumer.js
import { fromBinary, type Message } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import {
  AlertRaisedSchema,
  ReadingRecordedSchema,
} from "@emeuse/schemas/emeuse/chronic/v1/chronic_events_pb.js";
import { DeadLetterCause } from "@emeuse/schemas/emeuse/platform/v1/dead_letter_pb.js";
import { Kafka, logLevel, Partitioners, type KafkaMessage, type Producer } from "kafkajs";
import { deadLetterRecord } from "./deadletter.js";
import { type Envelope, envelopeOf, header } from "./envelope.js";
import { loadSettings, type PartnerSettings, SettingsError } from "./settings.js";

type Handler = (event: Envelope, value: Uint8Array) => string;
const HANDLERS = new Map<string, Handler>();

/** A value that is not the message its ce_type names. */
class Undecodable extends Error {}

/** Register what to do with one event type; returns an id worth logging. */
function handles<T extends Message>(
  schema: GenMessage<T>,
  handler: (event: Envelope, message: T) => string,
): void {
  HANDLERS.set(schema.typeName, (event, value) => {
    let message: T;
    try {
      message = fromBinary(schema, value);
    } catch (error) {
      throw new Undecodable(`value is not a ${schema.typeName}: ${(error as Error).message}`);
    }
    return handler(event, message);
  });
}

// The partner's business: here, the ids of what it received.
handles(ReadingRecordedSchema, (_event, reading) => reading.readingId);
handles(AlertRaisedSchema, (_event, alert) => alert.alertId);

function log(fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), ...fields }));
}

interface SetAside {
  cause: DeadLetterCause;
  reason: string; // in the dead letter
  logged: Record<string, unknown>; // on the line: what names nothing
}

interface Outcome {
  line: Record<string, unknown>;
  setAside?: SetAside;
}

/** What becomes of one record. One no handler can be given (no valid envelope, a value that
 * does not decode as its type) or whose handler throws is set aside, as the Python SDK does
 * (without its retries: a handler here fails once). */
function handle(message: KafkaMessage): Outcome {
  const claimed = header(message.headers, "ce_type");
  const handler = HANDLERS.get(claimed);
  // A type this partner does not read: passed, as the SDK skips it.
  if (claimed && !handler) return { line: { event: "event.skipped", type: claimed } };
  let event: Envelope;
  try {
    event = envelopeOf(message.headers);
  } catch (error) {
    const reason = (error as Error).message;
    const cause = DeadLetterCause.INVALID_ENVELOPE;
    return { line: {}, setAside: { cause, reason, logged: { reason } } };
  }
  const ids = { type: event.type, event_id: event.id, replay_id: event.replayId || undefined };
  try {
    const id = handler!(event, message.value ?? new Uint8Array());
    return { line: { event: "event.handled", ...ids, id } };
  } catch (error) {
    if (error instanceof Undecodable) {
      const reason = error.message; // names the type and the decoder's fault, not the value
      const cause = DeadLetterCause.UNDECODABLE;
      return { line: ids, setAside: { cause, reason, logged: { reason } } };
    }
    // The error's text may quote the event: the letter keeps it, the line its name only.
    const { name, message: text } = error as Error;
    const reason = `handler failed after 1 attempt(s): ${name}: ${text}`;
    const cause = DeadLetterCause.HANDLER_FAILED;
    return { line: ids, setAside: { cause, reason, logged: { error: name } } };
  }
}

/** Writes the letter and waits for the broker (acks from all replicas). */
async function setAside(
  producer: Producer,
  settings: PartnerSettings,
  place: { topic: string; partition: number; offset: string },
  message: KafkaMessage,
  aside: SetAside,
): Promise<void> {
  const letter = deadLetterRecord(settings, place, message, aside.cause, aside.reason);
  await producer.send({
    topic: letter.topic,
    acks: -1,
    messages: [{ key: null, value: Buffer.from(letter.value), headers: letter.headers }],
  });
}

async function main(): Promise<number> {
  const settings = loadSettings(process.env);
  const kafka = new Kafka({ ...settings.kafka, logLevel: logLevel.WARN });
  // Its dead letters: no idempotence nor transactions, which need rights on the cluster a
  // partner's credential does not have (a letter written twice is harmless).
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  // The gateway writes feeds in transactions: read only what it committed.
  const consumer = kafka.consumer({ groupId: settings.groupId, readUncommitted: false });
  const counts = { handled: 0, skipped: 0, dead_lettered: 0 };
  let failed: Error | undefined;
  let stop: () => void = () => {};
  const stopping = new Promise<void>((resolve) => {
    stop = resolve;
  });
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topic: settings.feedTopic, fromBeginning: settings.fromBeginning });
  await consumer.run({
    autoCommit: false, // commit only what was handled or set aside
    eachMessage: async ({ topic, partition, message }) => {
      if (failed) return; // stopping without committing: read again at the next start
      const place = { topic, partition, offset: message.offset };
      const { line, setAside: aside } = handle(message);
      if (aside) {
        try {
          await setAside(producer, settings, place, message, aside);
        } catch (error) {
          // Not set aside, so not committed: the app stops, as the SDK does.
          failed = error as Error;
          const where = { partition, offset: message.offset };
          log({ event: "dead_letter.failed", ...where, error: failed.name });
          stop();
          return;
        }
        counts.dead_lettered += 1;
        const where = { partition, offset: message.offset };
        const cause = DeadLetterCause[aside.cause];
        log({ event: "event.dead_lettered", ...line, cause, ...aside.logged, ...where });
      } else {
        counts[line.event === "event.handled" ? "handled" : "skipped"] += 1;
        log({ ...line, partition, offset: message.offset });
      }
      const next = (BigInt(message.offset) + 1n).toString();
      await consumer.commitOffsets([{ topic, partition, offset: next }]);
    },
  });
  log({ event: "partner.started", partner: settings.partnerId, group: settings.groupId });
  // SIGTERM or Ctrl-C: the record in hand is finished and committed, then the group is left.
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  await stopping;
  await consumer.disconnect();
  await producer.disconnect();
  log({ event: "partner.stopped", partner: settings.partnerId, ...counts });
  return failed ? 1 : 0;
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
