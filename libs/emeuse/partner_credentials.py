"""A partner's Kafka client settings: the file `emeuse partner add` writes, and reading it back.

The file uses librdkafka's property names (kcat -F, confluent-kafka read it as is), one
`key=value` a line; `read` gives a ClientConfig, whose `kafka_python_options()` are
kafka-python keyword arguments.
Java clients need `sasl.jaas.config` instead of sasl.username/sasl.password (the file says how).
On a SASL_SSL partner listener (the default of `make up`) the file also names the CA the
broker's certificate is checked against (`ssl.ca.location`, an absolute path).

The file also lists what the partner may publish and its experiments, for the SDK to check
events before sending. They are `#emeuse.` comment lines because librdkafka refuses a
property it does not know (kcat -F would stop on them).
"""

from __future__ import annotations

import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECURITY_PROTOCOL = "SASL_SSL"
CA_KEY = "ssl.ca.location"
SASL_MECHANISM = "SCRAM-SHA-512"
_KEYS = (
    "bootstrap.servers",
    "security.protocol",
    "sasl.mechanism",
    "sasl.username",
    "sasl.password",
)
# Grants the SDK checks; comments to every Kafka client.
PUBLISH_LINE = "#emeuse.publish="
EXPERIMENTS_LINE = "#emeuse.experiments="


class CredentialsFileError(ValueError):
    """A client settings file that is missing, unreadable or incomplete."""


def new_password() -> str:
    """A random password (256 bits, URL-safe: no quoting needed in any client config)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ClientConfig:
    bootstrap: str
    username: str
    password: str
    security_protocol: str = SECURITY_PROTOCOL
    sasl_mechanism: str = SASL_MECHANISM
    # None: a file written before grants were listed (the SDK cannot check them).
    publishes: tuple[str, ...] | None = None
    experiments: tuple[str, ...] | None = None
    # The CA of the broker's certificate under SASL_SSL (None: the system's CAs).
    ca_file: Path | None = None

    @property
    def encrypted(self) -> bool:
        return self.security_protocol == "SASL_SSL"

    def __repr__(self) -> str:  # never the password in a log or a traceback
        return f"ClientConfig(bootstrap={self.bootstrap!r}, username={self.username!r})"

    def render(self, partner_id: str) -> str:
        return (
            f"# Kafka client settings of partner {partner_id}, written by `emeuse partner add`.\n"
            "# Keep this file secret: it holds the partner's password.\n"
            "# Java clients: replace the sasl.username/sasl.password lines with\n"
            "#   sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
            'required username="<sasl.username>" password="<sasl.password>";\n'
            f"{self.render_java_trust()}"
            f"bootstrap.servers={self.bootstrap}\n"
            f"security.protocol={self.security_protocol}\n"
            f"{self.render_ca()}"
            f"sasl.mechanism={self.sasl_mechanism}\n"
            f"sasl.username={self.username}\n"
            f"sasl.password={self.password}\n" + self.render_grants()
        )

    def render_ca(self) -> str:
        return f"{CA_KEY}={self.ca_file}\n" if self.encrypted and self.ca_file else ""

    def render_java_trust(self) -> str:
        if not (self.encrypted and self.ca_file):
            return ""
        return (
            f"# and {CA_KEY} with ssl.truststore.type=PEM and "
            f"ssl.truststore.location={self.ca_file}\n"
        )

    def render_grants(self) -> str:
        if self.publishes is None and self.experiments is None:
            return ""
        return (
            "# What this partner may publish and its experiments, checked by the emeuse SDK\n"
            "# before sending (comments: other clients ignore them). The gateway checks again.\n"
            f"{PUBLISH_LINE}{','.join(self.publishes or ())}\n"
            f"{EXPERIMENTS_LINE}{','.join(self.experiments or ())}\n"
        )

    def kafka_python_options(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's KafkaConsumer, KafkaProducer or admin client."""
        return {"bootstrap_servers": self.bootstrap.split(",")} | self.login_options()

    def login_options(self) -> dict[str, Any]:
        """The security keyword arguments alone, named alike by kafka-python and aiokafka
        (the raw record reader takes them as `login`)."""
        options: dict[str, Any] = {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
        }
        if self.encrypted:
            # Checks the broker's certificate and its name against the bootstrap host.
            options["ssl_context"] = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file else None
            )
        return options


def parse_grants(text: str) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """The publish grants and experiments a settings file lists (None: not listed)."""
    found: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        line = line.strip()
        for prefix in (PUBLISH_LINE, EXPERIMENTS_LINE):
            if line.startswith(prefix):
                items = line.removeprefix(prefix).split(",")
                found[prefix] = tuple(item.strip() for item in items if item.strip())
    return found.get(PUBLISH_LINE), found.get(EXPERIMENTS_LINE)


def parse(text: str) -> ClientConfig:
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    missing = [key for key in _KEYS if not values.get(key)]
    if missing:
        raise CredentialsFileError(f"client settings lack {', '.join(missing)}")
    publishes, experiments = parse_grants(text)
    return ClientConfig(
        bootstrap=values["bootstrap.servers"],
        username=values["sasl.username"],
        password=values["sasl.password"],
        security_protocol=values["security.protocol"],
        sasl_mechanism=values["sasl.mechanism"],
        publishes=publishes,
        experiments=experiments,
        ca_file=Path(values[CA_KEY]) if values.get(CA_KEY) else None,
    )


def read(path: Path) -> ClientConfig:
    """The settings file at `path` as a ClientConfig (not client options: for kafka-python,
    `KafkaConsumer(**read(path).kafka_python_options())`); CredentialsFileError if unusable."""
    try:
        config = parse(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CredentialsFileError(f"cannot read {path}: {exc.strerror}") from None
    except CredentialsFileError as exc:
        raise CredentialsFileError(f"{path}: {exc}") from None
    if config.encrypted and config.ca_file and not config.ca_file.is_file():
        raise CredentialsFileError(f"{path}: {CA_KEY}={config.ca_file}: no such file")
    return config


def write(path: Path, partner_id: str, config: ClientConfig) -> None:
    """Write the file readable by its owner only, replacing an older one in one step."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    # Created 0600 from the start: the password is never readable by others, even briefly.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(config.render(partner_id))
    os.replace(partial, path)
