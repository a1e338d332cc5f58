// A feed record this partner cannot read, set aside on its own dead-letter topic as the Python
// SDK sets one aside (libs/emeuse/partner/dispatch.py): a MessageDeadLettered with the cause,
// the reason, where it was read, `consumer` partner/<id>, under the platform's envelope.
//
// Unlike the SDK it keeps no copy of the original, only its size and SHA-256: the SDK keeps
// one unless the platform's detector of direct identifiers finds one in it, and that detector
// is Python (libs/emeuse/runtime/identifying.py). A copy never checked could name someone;
// the record itself stays readable on the feed at the place the letter gives.
import { createHash } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type DeadLetterCause,
  MessageDeadLetteredSchema,
} from "@emeuse/schemas/emeuse/platform/v1/dead_letter_pb.js";
import type { IHeaders, KafkaMessage } from "kafkajs";
import { header, newEnvelope, TERRITORIES, toHeaders } from "./envelope.js";
import type { PartnerSettings } from "./settings.js";

const REASON_LIMIT = 1000;
const WITHHELD =
  "; original withheld: this client keeps no copy it has not checked for direct " +
  "identifiers (the record stays on the feed at this partition and offset)";

export interface Place {
  topic: string;
  partition: number;
  offset: string;
}

export interface DeadLetterRecord {
  topic: string;
  value: Uint8Array;
  headers: IHeaders;
}

/** The record that sets `message` aside; written unkeyed, since the original is withheld. */
export function deadLetterRecord(
  settings: PartnerSettings,
  place: Place,
  message: KafkaMessage,
  cause: DeadLetterCause,
  reason: string,
  now = new Date(),
): DeadLetterRecord {
  const value = message.value ?? Buffer.alloc(0);
  const letter = create(MessageDeadLetteredSchema, {
    cause,
    reason: reason.slice(0, REASON_LIMIT) + WITHHELD,
    consumer: `partner/${settings.partnerId}`,
    sourceTopic: place.topic,
    sourcePartition: place.partition,
    sourceOffset: BigInt(place.offset),
    deadLetteredAt: timestampFromDate(now),
    originalWithheld: true,
    originalValueSize: BigInt(value.length),
    originalValueSha256: createHash("sha256").update(value).digest(),
  });
  const territory = header(message.headers, "ce_territory");
  const envelope = newEnvelope({
    type: MessageDeadLetteredSchema.typeName,
    source: `partner/${settings.partnerId}`,
    subject: "",
    territory: (TERRITORIES as readonly string[]).includes(territory) ? territory : "",
    experiment: settings.experimentId,
    occurredAt: now,
  });
  return {
    topic: settings.deadLetterTopic,
    value: toBinary(MessageDeadLetteredSchema, letter),
    headers: toHeaders(envelope, now),
  };
}
