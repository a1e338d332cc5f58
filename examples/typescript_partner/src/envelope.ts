// The platform's envelope, read from the record's headers (CloudEvents Kafka binding, binary
// mode: docs/catalogue.md). Routing needs only these; the value is plain protobuf.
import type { IHeaders } from "kafkajs";

export interface Envelope {
  id: string; // ce_id: deduplicate on it
  type: string; // ce_type: the message's full name, e.g. emeuse.chronic.v1.ReadingRecorded
  source: string;
  time: string;
  subject: string; // the patient's pseudonym: never log it
  territory: string;
  experiment: string;
  correlationId: string;
  replayId: string; // emeuse_replay: empty on a live event
}

const REQUIRED = ["ce_id", "ce_type", "ce_source", "ce_time", "ce_specversion"] as const;

function text(value: IHeaders[string]): string {
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? "" : first.toString();
}

/** The envelope of a record; throws naming the first required header it lacks. */
export function envelopeOf(headers: IHeaders | undefined): Envelope {
  const get = (key: string): string => text(headers?.[key]);
  const missing = REQUIRED.find((key) => !get(key));
  if (missing) throw new Error(`no ${missing} header`);
  return {
    id: get("ce_id"),
    type: get("ce_type"),
    source: get("ce_source"),
    time: get("ce_time"),
    subject: get("ce_subject"),
    territory: get("ce_territory"),
    experiment: get("ce_experiment"),
    correlationId: get("ce_correlationid"),
    replayId: get("emeuse_replay"),
  };
}
