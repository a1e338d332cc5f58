// Publishing on the partner's inbound topic: the event with the platform's envelope headers,
// checked first as the Python SDK checks it (libs/emeuse/partner/inbound.py), so a fault it
// can know of is a PublishError here rather than a dead letter later. The gateway checks
// everything again, and alone knows the rest: whether the partner is still registered, the
// owning service's domain rules (a reading's unit and range) and the patient's consent.
import {
  type DescMessage,
  isFieldSet,
  type MessageShape,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import { ReadingRecordedSchema } from "@emeuse/schemas/emeuse/chronic/v1/chronic_events_pb.js";
import type { IHeaders } from "kafkajs";
import { type Envelope, newEnvelope, PSEUDONYM, TERRITORIES, toHeaders } from "./envelope.js";
import type { PartnerSettings } from "./settings.js";

/** An event the platform would refuse from this partner; the message says why. */
export class PublishError extends Error {}

interface PlatformTopic {
  subjectField: string; // the field the record is keyed by, and ce_subject
  required: readonly string[];
}

// What the registry (libs/emeuse/registry.py, docs/catalogue.md) says of the types this
// partner publishes. A type missing here has no platform topic for this client.
const PLATFORM_TOPICS = new Map<string, PlatformTopic>([
  [
    ReadingRecordedSchema.typeName,
    {
      subjectField: "patient_pseudonym",
      required: ["reading_id", "patient_pseudonym", "loinc_code", "unit", "measured_at"],
    },
  ],
]);
const EXPERIMENT_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export interface InboundRecord {
  topic: string;
  key: string;
  value: Uint8Array;
  headers: IHeaders;
  envelope: Envelope;
}

export interface PublishOptions {
  territory?: string; // 55, 52 or 54; default: the cause's
  experiment?: string; // default: the cause's, else the settings' (EMEUSE_EXPERIMENT, the file)
  cause?: Envelope; // the feed event this one answers: territory, experiment, correlation
  occurredAt?: Date; // when it happened; default now
  id?: string; // the ce_id of a first attempt, when sending it again
}

/** The record to send for `message`, or PublishError for what the gateway would refuse and
 * can be known here. Key and ce_subject are the message's subject field, ce_source is
 * `partner/<id>`, the ids are derived as newEnvelope says. */
export function inboundRecord<Desc extends DescMessage>(
  settings: PartnerSettings,
  schema: Desc,
  message: MessageShape<Desc>,
  options: PublishOptions = {},
): InboundRecord {
  const type = schema.typeName;
  const topic = PLATFORM_TOPICS.get(type);
  if (!topic) throw new PublishError(`${type} has no platform topic: it cannot be published`);
  const territory = options.territory?.trim() || options.cause?.territory || "";
  if (!territory) throw new PublishError("no territory: give one (55, 52 or 54) or a cause");
  if (!(TERRITORIES as readonly string[]).includes(territory)) {
    throw new PublishError(`territory ${JSON.stringify(territory)} is not 52, 54 or 55`);
  }
  const experiment = options.experiment || options.cause?.experiment || settings.experimentId;
  if (!EXPERIMENT_ID.test(experiment)) {
    throw new PublishError("ce_experiment is not an experiment id ([a-z0-9][a-z0-9._-]*)");
  }
  checkGrants(settings, type, experiment);
  checkPseudonyms(schema, message);
  const missing = topic.required.filter((name) => {
    const field = schema.fields.find((f) => f.name === name);
    return !field || !isFieldSet(message, field);
  });
  if (missing.length) {
    throw new PublishError(`${type} lacks required field(s) ${missing.join(", ")}`);
  }
  const subject = String(fieldValue(schema, message, topic.subjectField) ?? "");
  const envelope = newEnvelope({
    type,
    source: `partner/${settings.partnerId}`,
    subject,
    territory,
    experiment,
    occurredAt: options.occurredAt ?? new Date(),
    id: options.id,
    cause: options.cause,
  });
  return {
    topic: settings.inboundTopic,
    key: subject,
    value: toBinary(schema, message),
    headers: toHeaders(envelope),
    envelope,
  };
}

/** Grants and experiments from the settings file; unchecked when the file lists none. */
function checkGrants(settings: PartnerSettings, type: string, experiment: string): void {
  const partner = JSON.stringify(settings.partnerId);
  if (settings.publishes && !settings.publishes.has(type)) {
    const granted = [...settings.publishes].sort().join(", ") || "none";
    throw new PublishError(
      `${type} is not granted to partner ${partner} for publishing (granted: ${granted}); ` +
        "operations grant it with `emeuse partner grant`",
    );
  }
  if (settings.experiments && !settings.experiments.includes(experiment)) {
    throw new PublishError(
      `experiment ${JSON.stringify(experiment)} is not one of partner ${partner} ` +
        `(${settings.experiments.join(", ") || "none"})`,
    );
  }
}

/** Every `*_pseudonym` string field holds a platform pseudonym, never anything else. */
function checkPseudonyms<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>) {
  for (const field of schema.fields) {
    if (!field.name.endsWith("_pseudonym") || field.scalar !== ScalarType.STRING) continue;
    const value = fieldValue(schema, message, field.name);
    const values = Array.isArray(value) ? value : [value];
    if (values.some((one) => one && !PSEUDONYM.test(String(one)))) {
      throw new PublishError(
        `${field.name} is not a platform pseudonym (psn- and 32 letters or digits 2-7): ` +
          "never a name or an identifier",
      );
    }
  }
}

function fieldValue<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
  name: string,
): unknown {
  const field = schema.fields.find((f) => f.name === name);
  return field ? (message as Record<string, unknown>)[field.localName] : undefined;
}
