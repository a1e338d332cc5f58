"""Exit 0 once Kafka answers an admin call (`list_topics`), used by deploy/kafka/kafka.sh."""

from __future__ import annotations

import argparse
import sys

from emeuse.cli.errors import CliError
from emeuse.cli.kafka import admin, kafka_errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emeuse.cli.kafka_ready")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    try:
        client = admin(args.bootstrap, args.timeout)
        with kafka_errors(args.bootstrap):
            client.list_topics()
        client.close()
    except CliError as exc:
        print(f"kafka not ready: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
