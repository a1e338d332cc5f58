"""`emeuse partner run module:app`: run a partner's PartnerApp until SIGTERM or SIGINT.

The app is imported like uvicorn does: `module` from the current directory or the
installed packages, `app` an attribute of it. Settings come from the environment
(EMEUSE_PARTNER_ID, EMEUSE_PARTNER_CONFIG, or EMEUSE_PARTNER_LOCAL=1 and
EMEUSE_KAFKA_BOOTSTRAP; docs/partners.md).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from aiokafka.errors import KafkaError

from emeuse.cli.errors import CliError
from emeuse.partner.app import PartnerApp


def add_partner_run_command(partner_commands: Any) -> None:
    """Add `run` to the `emeuse partner` sub-commands."""
    run = partner_commands.add_parser(
        "run", help="run a partner app (module:attribute) on the partner's feed"
    )
    run.add_argument("target", metavar="module:app", help="e.g. examples.glucoflow.app:app")
    run.add_argument(
        "--config",
        help="connection properties file from operations (env EMEUSE_PARTNER_CONFIG)",
    )
    run.add_argument("--partner-id", help="partner id (env EMEUSE_PARTNER_ID)")
    run.add_argument(
        "--local",
        action="store_true",
        help="no credentials: use the platform's local, unauthenticated listener "
        "(EMEUSE_KAFKA_BOOTSTRAP; env EMEUSE_PARTNER_LOCAL=1)",
    )
    run.set_defaults(handler=cmd_partner_run)


def load_app(target: str) -> PartnerApp:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise CliError(f"{target!r}: expected module:attribute, e.g. examples.glucoflow.app:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise CliError(f"cannot import {module_name}: {exc}") from None
    app = getattr(module, attribute, None)
    if not isinstance(app, PartnerApp):
        raise CliError(f"{target}: not a PartnerApp (found {type(app).__name__})")
    return app


def cmd_partner_run(args: argparse.Namespace) -> int:
    app = load_app(args.target)
    env = dict(os.environ)
    if args.config:
        env["EMEUSE_PARTNER_CONFIG"] = args.config
    if args.partner_id:
        env["EMEUSE_PARTNER_ID"] = args.partner_id
    if args.local:
        env["EMEUSE_PARTNER_LOCAL"] = "1"
    try:
        return app.run(env)
    except KafkaError as exc:
        raise CliError(f"Kafka: {exc}") from None
