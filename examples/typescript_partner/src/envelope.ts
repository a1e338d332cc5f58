// The platform's envelope as record headers: CloudEvents 1.0, Kafka protocol binding, binary
// content mode (attributes as `ce_` headers, the value the bare protobuf message), plus the
// platform's extensions (docs/catalogue.md, "Headers of every record"). Read and written as
// libs/emeuse/runtime/envelope.py does; routing needs only the headers.
import { randomUUID } from "node:crypto";
import type { IHeaders } from "kafkajs";

export interface Envelope {
  id: string; // ce_id: deduplicate on it
  type: string; // ce_type: the message's full name, e.g. emeuse.chronic.v1.ReadingRecorded
  source: string; // ce_source: emeuse/<service> or partner/<id>
  time: string; // ce_time: when it happened (RFC 3339, UTC)
  subject: string; // ce_subject: the patient's pseudonym, never logged
  territory: string; // ce_territory: 52, 54 or 55
  experiment: string;
  correlationId: string; // shared by an event and everything it caused
  causationId: string; // the event that caused this one, if any
  schemaVersion: string; // the message's package version, e.g. v1
  replayId: string; // emeuse_replay: empty on a live event
}

export const SPEC_VERSION = "1.0";
export const CONTENT_TYPE = "application/protobuf";
export const TERRITORIES = ["52", "54", "55"] as const;
export const PSEUDONYM = /^psn-[a-z2-7]{32}$/;
// Records about the platform's own work carry no territory (envelope.TERRITORY_FREE_TYPES).
const TERRITORY_FREE = new Set([
  "emeuse.platform.v1.MessageDeadLettered",
  "emeuse.audit.v1.PatientDataAccessed",
]);
const REQUIRED = ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_experiment"];

/** A header's text ("" when absent); of a repeated header, the first. */
export function header(headers: IHeaders | undefined, key: string): string {
  const value = headers?.[key];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? "" : first.toString();
}

/** The envelope of a record; throws saying what is wrong, as the Python SDK's check does
 * (a missing header, a spec version or content type not the platform's, a time that is not
 * RFC 3339, a subject that is not a pseudonym, a territory not of the programme). The
 * message names the header, never its value: it is logged. */
export function envelopeOf(headers: IHeaders | undefined): Envelope {
  const get = (key: string): string => header(headers, key);
  const missing = REQUIRED.filter((key) => !get(key));
  if (!get("ce_territory") && !TERRITORY_FREE.has(get("ce_type"))) missing.push("ce_territory");
  if (missing.length) throw new Error(`missing header(s) ${missing.join(", ")}`);
  if (get("ce_specversion") !== SPEC_VERSION) {
    throw new Error(`ce_specversion is not ${SPEC_VERSION}`);
  }
  const contentType = get("content-type");
  if (contentType && contentType !== CONTENT_TYPE) {
    throw new Error(`content-type is not ${CONTENT_TYPE}`);
  }
  if (!/(?:[zZ]|[+-]\d\d:\d\d)$/.test(get("ce_time")) || Number.isNaN(Date.parse(get("ce_time")))) {
    throw new Error("header ce_time is not an RFC 3339 time");
  }
  const territory = get("ce_territory");
  if (territory && !(TERRITORIES as readonly string[]).includes(territory)) {
    throw new Error("ce_territory is not a programme département (52, 54 or 55)");
  }
  if (get("ce_subject") && !PSEUDONYM.test(get("ce_subject"))) {
    throw new Error("subject is not a platform pseudonym (psn-...)"); // never quoted
  }
  return {
    id: get("ce_id"),
    type: get("ce_type"),
    source: get("ce_source"),
    time: get("ce_time"),
    subject: get("ce_subject"),
    territory,
    experiment: get("ce_experiment"),
    correlationId: get("ce_correlationid") || get("ce_id"),
    causationId: get("ce_causationid"),
    schemaVersion: get("ce_schemaversion"),
    replayId: get("emeuse_replay"),
  };
}

export interface NewEvent {
  type: string;
  source: string;
  subject: string; // "" for an event about no person
  territory: string; // "" only for a territory-free type
  experiment: string;
  occurredAt: Date;
  id?: string; // default: a new random id (give the first one again when re-sending)
  cause?: Envelope; // the event this one answers: correlation and causation follow it
}

/** A new event's envelope, its ids derived as the platform derives them
 * (envelope.new_envelope): a random ce_id; the correlation id of its cause, or its own id
 * when it starts a story; the cause's id as causation id. */
export function newEnvelope(event: NewEvent): Envelope {
  const id = event.id ?? randomUUID();
  return {
    id,
    type: event.type,
    source: event.source,
    time: event.occurredAt.toISOString(),
    subject: event.subject,
    territory: event.territory,
    experiment: event.experiment,
    correlationId: event.cause ? event.cause.correlationId : id,
    causationId: event.cause ? event.cause.id : "",
    // The version is the last part of the message's package: emeuse.chronic.v1 -> v1.
    schemaVersion: event.type.split(".").slice(-2, -1)[0] ?? "",
    replayId: "",
  };
}

/** The headers of `envelope`, in the order and form envelope.to_headers writes them. */
export function toHeaders(envelope: Envelope, recordedAt = new Date()): IHeaders {
  const headers: IHeaders = {
    ce_specversion: SPEC_VERSION,
    ce_id: envelope.id,
    ce_type: envelope.type,
    ce_source: envelope.source,
    ce_time: envelope.time,
    ce_recordedtime: recordedAt.toISOString(),
    ce_experiment: envelope.experiment,
    ce_correlationid: envelope.correlationId,
    ce_schemaversion: envelope.schemaVersion,
    "content-type": CONTENT_TYPE,
  };
  if (envelope.territory) headers.ce_territory = envelope.territory;
  if (envelope.subject) headers.ce_subject = envelope.subject;
  if (envelope.causationId) headers.ce_causationid = envelope.causationId;
  return headers;
}
