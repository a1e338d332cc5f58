// A partner's settings, read as the Python SDK reads them (libs/emeuse/partner/settings.py):
// who it is from EMEUSE_PARTNER_ID, how it reaches the broker from the properties file
// operations gave it (EMEUSE_PARTNER_CONFIG). Without that file it refuses to start unless
// EMEUSE_PARTNER_LOCAL=1 says it runs on the platform's own unauthenticated listener: a
// forgotten variable must never connect where no credential is checked. The file's
// `#emeuse.publish=` and `#emeuse.experiments=` lines are the grants checked before publishing.
import { readFileSync } from "node:fs";
import type { KafkaConfig, SASLOptions } from "kafkajs";

export class SettingsError extends Error {}

export interface PartnerSettings {
  partnerId: string;
  feedTopic: string; // it reads only this
  inboundTopic: string; // it publishes only on this
  deadLetterTopic: string; // it sets aside here what it cannot read
  groupId: string;
  fromBeginning: boolean;
  kafka: KafkaConfig;
  // Stamped on what the partner publishes and sets aside: EMEUSE_EXPERIMENT, else the
  // file's first experiment, else the partner id (as the Python SDK).
  experimentId: string;
  // From the settings file; undefined when it does not list them (local listener, older
  // file): then only the gateway checks grants and experiment.
  publishes?: ReadonlySet<string>;
  experiments?: readonly string[];
}

const PARTNER_ID = /^[a-z][a-z0-9-]{2,31}$/;
const GROUP_SUFFIX = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const EXPERIMENT_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const PUBLISH_LINE = "#emeuse.publish=";
const EXPERIMENTS_LINE = "#emeuse.experiments=";
const MECHANISMS: Record<string, SASLOptions["mechanism"]> = {
  "SCRAM-SHA-512": "scram-sha-512",
  "SCRAM-SHA-256": "scram-sha-256",
  PLAIN: "plain",
};

/** `key=value` lines with `#` and `!` comments: the file `emeuse partner add` writes. */
export function readProperties(path: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new SettingsError(`EMEUSE_PARTNER_CONFIG=${path}: ${(error as Error).message}`);
  }
  const values = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const match = /^([^=:\s]+)\s*[=:]\s*(.*)$/.exec(line);
    if (line && !"#!".includes(line[0]!) && match) values.set(match[1]!, match[2]!.trim());
  }
  return values;
}

/** The publish grants and experiments the file lists (undefined: not listed), as
 * emeuse.partner_credentials.parse_grants reads them. */
export function grantsFromProperties(path: string): {
  publishes?: string[];
  experiments?: string[];
} {
  const found: { publishes?: string[]; experiments?: string[] } = {};
  const items = (line: string, prefix: string): string[] =>
    line
      .slice(prefix.length)
      .split(",")
      .map((item) => item.trim())
      .filter(Boolean);
  for (const raw of readFileSync(path, "utf8").split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith(PUBLISH_LINE)) found.publishes = items(line, PUBLISH_LINE);
    if (line.startsWith(EXPERIMENTS_LINE)) found.experiments = items(line, EXPERIMENTS_LINE);
  }
  return found;
}

/** kafkajs settings from the properties file; SASL_SSL trusts `ssl.ca.location` when given. */
export function connectionFromProperties(path: string, clientId: string): KafkaConfig {
  const props = readProperties(path);
  const need = (key: string): string => {
    const value = props.get(key);
    if (!value) throw new SettingsError(`${path}: no ${key}`);
    return value;
  };
  const brokers = need("bootstrap.servers").split(",").map((s) => s.trim());
  const protocol = (props.get("security.protocol") ?? "PLAINTEXT").toUpperCase();
  if (protocol === "PLAINTEXT") return { clientId, brokers };
  if (protocol !== "SASL_PLAINTEXT" && protocol !== "SASL_SSL") {
    throw new SettingsError(
      `${path}: security.protocol=${protocol}: expected PLAINTEXT, SASL_PLAINTEXT or SASL_SSL`,
    );
  }
  const mechanism = MECHANISMS[(props.get("sasl.mechanism") ?? "SCRAM-SHA-512").toUpperCase()];
  if (!mechanism) throw new SettingsError(`${path}: sasl.mechanism: expected SCRAM-SHA-512`);
  const sasl = {
    mechanism,
    username: need("sasl.username"),
    password: need("sasl.password"),
  } as SASLOptions;
  if (protocol === "SASL_PLAINTEXT") return { clientId, brokers, sasl };
  const ca = props.get("ssl.ca.location");
  if (!ca) return { clientId, brokers, sasl, ssl: true }; // the system's trusted CAs
  try {
    return { clientId, brokers, sasl, ssl: { ca: [readFileSync(ca, "utf8")] } };
  } catch (error) {
    throw new SettingsError(`${path}: ssl.ca.location=${ca}: ${(error as Error).message}`);
  }
}

export function loadSettings(env: NodeJS.ProcessEnv): PartnerSettings {
  const partnerId = env.EMEUSE_PARTNER_ID?.trim() ?? "";
  if (!PARTNER_ID.test(partnerId)) {
    throw new SettingsError(`EMEUSE_PARTNER_ID=${JSON.stringify(partnerId)}: not a partner id`);
  }
  const config = env.EMEUSE_PARTNER_CONFIG?.trim();
  const local = env.EMEUSE_PARTNER_LOCAL?.trim() === "1";
  if (config && local) {
    throw new SettingsError("EMEUSE_PARTNER_CONFIG and EMEUSE_PARTNER_LOCAL=1: give one, not both");
  }
  const clientId = `partner-${partnerId}`;
  let kafka: KafkaConfig;
  let grants: ReturnType<typeof grantsFromProperties> = {};
  if (config) {
    kafka = connectionFromProperties(config, clientId);
    grants = grantsFromProperties(config);
  } else if (local) {
    kafka = { clientId, brokers: (env.EMEUSE_KAFKA_BOOTSTRAP ?? "127.0.0.1:9092").split(",") };
  } else {
    throw new SettingsError(
      "no credentials: set EMEUSE_PARTNER_CONFIG to the settings file operations gave you, " +
        "or EMEUSE_PARTNER_LOCAL=1 to use the platform's local listener",
    );
  }
  const group = env.EMEUSE_PARTNER_GROUP?.trim() || "typescript";
  if (!GROUP_SUFFIX.test(group)) {
    throw new SettingsError(`EMEUSE_PARTNER_GROUP=${group}: lower-case letters, digits, ._-`);
  }
  const reset = env.EMEUSE_PARTNER_OFFSET_RESET?.trim() || "earliest";
  if (reset !== "earliest" && reset !== "latest") {
    throw new SettingsError(`EMEUSE_PARTNER_OFFSET_RESET=${reset}: expected earliest or latest`);
  }
  const chosen = env.EMEUSE_EXPERIMENT?.trim() ?? "";
  const experimentId = chosen || grants.experiments?.[0] || partnerId;
  if (!EXPERIMENT_ID.test(experimentId)) {
    throw new SettingsError(`EMEUSE_EXPERIMENT=${experimentId}: expected a lowercase id`);
  }
  if (chosen && grants.experiments?.length && !grants.experiments.includes(chosen)) {
    throw new SettingsError(
      `EMEUSE_EXPERIMENT=${chosen} is not one of your experiments ` +
        `(${grants.experiments.join(", ")}); the platform would refuse what you publish`,
    );
  }
  return {
    partnerId,
    // The partner's names (libs/emeuse/partners/__init__.py): its topics and groups.
    feedTopic: `emeuse-partner.${partnerId}.feed`,
    inboundTopic: `emeuse-partner.${partnerId}.inbound`,
    deadLetterTopic: `emeuse-partner.${partnerId}.dead-letter`,
    groupId: `emeuse-partner.${partnerId}.${group}`,
    fromBeginning: reset === "earliest",
    kafka,
    experimentId,
    publishes: grants.publishes && new Set(grants.publishes),
    experiments: grants.experiments,
  };
}
