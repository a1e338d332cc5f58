"""Set the SCRAM credential of each of the platform's own Kafka users (a service each, and
`emeuse-cli` for the tools) from its password file; used by deploy/kafka/kafka.sh when the
broker has a secure listener. Run against the loopback PLAINTEXT listener, as the tools do.

    python -m emeuse.cli.platform_users --bootstrap 127.0.0.1:9092 --passwords .local/secrets/kafka

Each user is a super user of the local broker (kafka.sh): per-service ACLs are not drawn.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kafka.admin import KafkaAdminClient, ScramMechanism, UserScramCredentialUpsertion

from emeuse.cli.errors import CliError
from emeuse.cli.kafka import kafka_errors
from emeuse.cli.partner_admin import SCRAM_ITERATIONS
from emeuse.registry import SERVICES
from emeuse.runtime.security import TOOLS

USERS = tuple(f"emeuse-{party}" for party in (*SERVICES, TOOLS))
ENFORCED_WITHIN_S = 15.0


def passwords(folder: Path) -> dict[str, str]:
    """user -> password, from `<folder>/<user>.password`; CliError naming a missing file."""
    found = {}
    for user in USERS:
        path = folder / f"{user}.password"
        try:
            found[user] = path.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError):
            raise CliError(f"{path}: no password (make them with scripts/certs.sh)") from None
    return found


def set_credentials(admin: KafkaAdminClient, wanted: dict[str, str]) -> None:
    failed = admin.alter_user_scram_credentials(
        [
            UserScramCredentialUpsertion(
                user, ScramMechanism.SCRAM_SHA_512, password, iterations=SCRAM_ITERATIONS
            )
            for user, password in wanted.items()
        ]
    )
    refused = {user: error for user, error in failed.items() if error}
    if refused:
        raise CliError(f"SCRAM credentials refused: {refused}")
    deadline = time.monotonic() + ENFORCED_WITHIN_S
    while time.monotonic() < deadline:
        described = admin.describe_user_scram_credentials(list(wanted))
        if all((described.get(user) or {}).get("error") is None for user in wanted):
            return
        time.sleep(0.2)
    raise CliError(f"the SCRAM credentials were not in force within {ENFORCED_WITHIN_S:g} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emeuse.cli.platform_users")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--passwords", type=Path, default=Path(".local/secrets/kafka"))
    args = parser.parse_args(argv)
    try:
        wanted = passwords(args.passwords)
        with kafka_errors(args.bootstrap):
            admin = KafkaAdminClient(bootstrap_servers=args.bootstrap.split(","))
            try:
                set_credentials(admin, wanted)
            finally:
                admin.close()
    except CliError as exc:
        print(f"kafka users: {exc}", file=sys.stderr)
        return 1
    print(f"kafka users: {', '.join(wanted)} can log in with SCRAM-SHA-512")
    return 0


if __name__ == "__main__":
    sys.exit(main())
